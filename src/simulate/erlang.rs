//! Queueing theory's answers, to check the simulator against and to print
//! beside its plan.
//!
//! - **Erlang C** (M/M/N: Poisson arrivals, exponential handle times, N
//!   identical seats, nobody hangs up): the probability of waiting by the
//!   Erlang B recursion (stable for hundreds of seats), then the service
//!   level, the average speed of answer and the occupancy in closed form.
//! - **Erlang A** (M/M/N+M: exponential patience too): the birth–death
//!   chain's stationary distribution, summed until its terms vanish; the
//!   probability of waiting, of abandoning, and the occupancy.

/// Erlang C figures for `seats` serving `traffic` erlangs (arrival rate
/// times mean handle time). `None` when the queue is unstable
/// (`traffic >= seats`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangC {
    pub p_wait: f64,
    /// Mean wait over all callers, in units of the mean handle time.
    pub asa_handles: f64,
    pub occupancy: f64,
    seats: f64,
    traffic: f64,
}

impl ErlangC {
    pub fn new(traffic: f64, seats: usize) -> Option<ErlangC> {
        let n = seats as f64;
        if seats == 0 || traffic >= n || traffic < 0.0 {
            return None;
        }
        let mut b = 1.0;
        for k in 1..=seats {
            b = traffic * b / (k as f64 + traffic * b);
        }
        let p_wait = n * b / (n - traffic * (1.0 - b));
        Some(ErlangC {
            p_wait,
            asa_handles: p_wait / (n - traffic),
            occupancy: traffic / n,
            seats: n,
            traffic,
        })
    }

    /// The share answered within `t` (in units of the mean handle time).
    pub fn service_level(&self, t: f64) -> f64 {
        1.0 - self.p_wait * (-(self.seats - self.traffic) * t).exp()
    }

    /// The fewest seats meeting `target` within `t` handle times (at
    /// least one when there is traffic).
    pub fn seats_for(traffic: f64, target: f64, t: f64) -> usize {
        if traffic <= 0.0 {
            return 0;
        }
        let mut n = traffic.floor() as usize + 1;
        loop {
            if let Some(c) = ErlangC::new(traffic, n)
                && c.service_level(t) >= target
            {
                return n;
            }
            n += 1;
        }
    }
}

/// Erlang A figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    pub p_wait: f64,
    pub p_abandon: f64,
    pub occupancy: f64,
    /// Mean wait over all callers (abandoning ones up to their leaving),
    /// seconds.
    pub mean_wait: f64,
}

impl ErlangA {
    /// `lambda` arrivals, `mu` services per seat, `theta` abandons per
    /// waiting caller, all per second.
    pub fn new(lambda: f64, mu: f64, theta: f64, seats: usize) -> ErlangA {
        // π_k ∝ Π_{i=1..k} λ / (min(i, N)·μ + max(i − N, 0)·θ), summed
        // with scaling so no term overflows.
        let n = seats;
        let mut terms = vec![1.0_f64];
        let mut k = 0;
        loop {
            k += 1;
            let death = (k.min(n) as f64) * mu + (k.saturating_sub(n) as f64) * theta;
            let next = terms[k - 1] * lambda / death;
            terms.push(next);
            if k > n && (next < 1e-18 * terms.iter().sum::<f64>() || k > n + 100_000) {
                break;
            }
            if next > 1e200 {
                let s = next;
                terms.iter_mut().for_each(|x| *x /= s);
            }
        }
        let sum: f64 = terms.iter().sum();
        let p = |k: usize| terms[k] / sum;
        let p_wait: f64 = (n..terms.len()).map(p).sum();
        let queue: f64 = (n + 1..terms.len()).map(|k| (k - n) as f64 * p(k)).sum();
        let p_abandon = theta * queue / lambda;
        ErlangA {
            p_wait,
            p_abandon,
            occupancy: lambda * (1.0 - p_abandon) / (n as f64 * mu),
            mean_wait: queue / lambda,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_gives_the_published_figures() {
        // 100 calls per 30 minutes, 180 s handle: 10 erlangs on 14 seats.
        let c = ErlangC::new(10.0, 14).unwrap();
        assert!((c.p_wait - 0.1741).abs() < 5e-5, "{}", c.p_wait);
        assert!((c.service_level(20.0 / 180.0) - 0.8884).abs() < 5e-5);
        assert!((c.asa_handles * 180.0 - 7.83).abs() < 0.01);
        assert!((c.occupancy - 0.7143).abs() < 5e-5);
        // 13 seats give 79.6%, 14 give 88.8%.
        assert_eq!(ErlangC::seats_for(10.0, 0.8, 20.0 / 180.0), 14);
        assert_eq!(ErlangC::seats_for(10.0, 0.79, 20.0 / 180.0), 13);
        assert!(ErlangC::new(10.0, 10).is_none());
    }

    #[test]
    fn erlang_a_without_patience_limits_is_erlang_c() {
        // Patience so long that nobody abandons: Erlang C's waiting.
        let a = ErlangA::new(100.0 / 1800.0, 1.0 / 180.0, 1e-12, 14);
        assert!((a.p_wait - 0.1741).abs() < 5e-4, "{}", a.p_wait);
        assert!(a.p_abandon < 1e-6);
        // With patience, fewer wait and some leave.
        let a = ErlangA::new(100.0 / 1800.0, 1.0 / 180.0, 1.0 / 60.0, 14);
        assert!(a.p_wait < 0.1741 && a.p_abandon > 0.0);
    }
}
