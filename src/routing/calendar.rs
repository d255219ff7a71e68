//! The working-day calendar (工作日): weekends, public holidays and the weekend
//! days made working days in exchange (调休), as the State Council publishes
//! them each year. Deadlines such as "a 热线问政 ticket is due in 3 working
//! days" are counted on it.
//!
//! Pure: every function takes the date or instant it works on.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use rustc_hash::FxHashSet;
use std::collections::BTreeSet;

/// Which days are worked, for the years the table covers.
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    tz: Tz,
    weekend: [bool; 7],
    holidays: FxHashSet<NaiveDate>,
    make_up_workdays: FxHashSet<NaiveDate>,
    years: BTreeSet<i32>,
}

/// When a ticket is due: by the end of `due_date`, local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The last working day on which the work may be finished.
    pub due_date: NaiveDate,
    /// The instant the deadline passes: midnight at the end of `due_date`, local time.
    pub due: DateTime<Utc>,
    /// True when the count crossed a year the calendar does not cover, so only
    /// weekends were known to be off: the date may move once that year's
    /// holidays are entered.
    pub approximate: bool,
}

impl WorkCalendar {
    pub fn new(
        tz: Tz,
        weekend: &[Weekday],
        holidays: impl IntoIterator<Item = NaiveDate>,
        make_up_workdays: impl IntoIterator<Item = NaiveDate>,
        years: impl IntoIterator<Item = i32>,
    ) -> Self {
        let mut w = [false; 7];
        for d in weekend {
            w[d.num_days_from_monday() as usize] = true;
        }
        WorkCalendar {
            tz,
            weekend: w,
            holidays: holidays.into_iter().collect(),
            make_up_workdays: make_up_workdays.into_iter().collect(),
            years: years.into_iter().collect(),
        }
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether the calendar holds the official holidays of `date`'s year.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.years.contains(&date.year())
    }

    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.make_up_workdays.contains(&date) {
            return true;
        }
        if self.holidays.contains(&date) {
            return false;
        }
        !self.weekend[date.weekday().num_days_from_monday() as usize]
    }

    /// The first working day strictly after `date`.
    pub fn next_working_day(&self, date: NaiveDate) -> NaiveDate {
        self.add_working_days(date, 1).0
    }

    /// The `n`th working day strictly after `date` (the start day never counts,
    /// worked or not, as in Chinese administrative practice), and whether the
    /// count left the covered years.
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> (NaiveDate, bool) {
        let mut d = date;
        let mut left = n;
        let mut approximate = false;
        // A year has at least ~240 working days; the bound only guards a
        // calendar that declares every day off.
        let mut guard = 0u32;
        while left > 0 && guard < 3660 {
            d = d + Days::new(1);
            guard += 1;
            approximate |= !self.covers(d);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        (d, approximate)
    }

    /// The local calendar date of an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// The instant a local wall-clock time on `date` happens.
    pub fn instant(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let naive = date.and_time(time);
        // China has no DST; for zones that do, an ambiguous time takes the
        // earlier mapping and a skipped one moves forward by the hour the clocks jumped.
        match self.tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => {
                let later = naive + chrono::Duration::hours(1);
                self.tz
                    .from_local_datetime(&later)
                    .earliest()
                    .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
            }
        }
    }

    /// "Due in `n` working days" from an instant: by the end of the `n`th
    /// working day after the local day the ticket was created.
    pub fn deadline(&self, created: DateTime<Utc>, n: u32) -> Deadline {
        let start = self.local_date(created);
        let (due_date, approximate) = self.add_working_days(start, n);
        let next = due_date + Days::new(1);
        Deadline {
            due_date,
            due: self.instant(next, NaiveTime::MIN),
            approximate: approximate || !self.covers(start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// The 2023 official calendar (国办发明电〔2022〕16号).
    fn cal_2023() -> WorkCalendar {
        let mut holidays = vec![d("2023-01-01"), d("2023-01-02"), d("2023-04-05")];
        let range = |a: &str, b: &str| {
            let end = d(b);
            d(a).iter_days().take_while(move |x| *x <= end)
        };
        holidays.extend(range("2023-01-21", "2023-01-27"));
        holidays.extend(range("2023-04-29", "2023-05-03"));
        holidays.extend(range("2023-06-22", "2023-06-24"));
        holidays.extend(range("2023-09-29", "2023-10-06"));
        let workdays = [
            "2023-01-28",
            "2023-01-29",
            "2023-04-23",
            "2023-05-06",
            "2023-06-25",
            "2023-10-07",
            "2023-10-08",
        ]
        .map(d);
        WorkCalendar::new(
            chrono_tz::Asia::Shanghai,
            &[Weekday::Sat, Weekday::Sun],
            holidays,
            workdays,
            [2023],
        )
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekdays_work_weekends_rest_holidays_rest_make_up_days_work() {
        let c = cal_2023();
        assert!(c.is_working_day(d("2023-03-08"))); // Wednesday
        assert!(!c.is_working_day(d("2023-03-11"))); // Saturday
        assert!(!c.is_working_day(d("2023-10-02"))); // National Day, Monday
        assert!(c.is_working_day(d("2023-10-07"))); // make-up Saturday
        assert!(c.is_working_day(d("2023-01-29"))); // make-up Sunday
    }

    #[test]
    fn three_working_days_across_a_weekend() {
        let c = cal_2023();
        // Friday 10:00 → Mon, Tue, Wed.
        let dl = c.deadline(at("2023-03-10T10:00:00+08:00"), 3);
        assert_eq!(dl.due_date, d("2023-03-15"));
        assert_eq!(dl.due, at("2023-03-16T00:00:00+08:00"));
        assert!(!dl.approximate);
        // Saturday and Sunday count from Monday as well.
        assert_eq!(
            c.deadline(at("2023-03-11T09:00:00+08:00"), 3).due_date,
            d("2023-03-15")
        );
        assert_eq!(
            c.deadline(at("2023-03-12T23:59:59+08:00"), 3).due_date,
            d("2023-03-15")
        );
        // Monday → Thursday.
        assert_eq!(
            c.deadline(at("2023-03-13T00:00:00+08:00"), 3).due_date,
            d("2023-03-16")
        );
    }

    #[test]
    fn the_local_day_decides_not_the_utc_day() {
        let c = cal_2023();
        // 2023-03-09T17:00Z is Friday 01:00 in Shanghai: counts from Friday.
        assert_eq!(
            c.deadline(at("2023-03-09T17:00:00Z"), 3).due_date,
            d("2023-03-15")
        );
        // 2023-03-09T15:59:59Z is still Thursday in Shanghai.
        assert_eq!(
            c.deadline(at("2023-03-09T15:59:59Z"), 3).due_date,
            d("2023-03-14")
        );
    }

    #[test]
    fn three_working_days_across_a_holiday_and_make_up_days() {
        let c = cal_2023();
        // Friday before Spring Festival: Jan 21–27 off, Jan 28 (Sat) and 29 (Sun) worked.
        assert_eq!(
            c.deadline(at("2023-01-20T15:00:00+08:00"), 3).due_date,
            d("2023-01-30")
        );
        // Inside the National Day week: Oct 7 (Sat), Oct 8 (Sun), Oct 9 (Mon).
        assert_eq!(
            c.deadline(at("2023-10-03T11:00:00+08:00"), 3).due_date,
            d("2023-10-09")
        );
        // Just before Labour Day: Apr 28 (Fri) → Apr 29–May 3 off → May 4, 5, 6 (make-up Sat).
        assert_eq!(
            c.deadline(at("2023-04-28T10:00:00+08:00"), 3).due_date,
            d("2023-05-06")
        );
        // Qingming on a Wednesday: Apr 4 → Apr 6, 7, 10.
        assert_eq!(
            c.deadline(at("2023-04-04T10:00:00+08:00"), 3).due_date,
            d("2023-04-10")
        );
    }

    #[test]
    fn leaving_the_covered_years_is_flagged() {
        let c = cal_2023();
        let dl = c.deadline(at("2023-12-29T10:00:00+08:00"), 3);
        assert_eq!(dl.due_date, d("2024-01-03"));
        assert!(dl.approximate);
        assert!(c.deadline(at("2022-06-01T10:00:00+08:00"), 3).approximate);
    }

    #[test]
    fn next_working_day_skips_holidays_and_lands_on_make_up_days() {
        let c = cal_2023();
        assert_eq!(c.next_working_day(d("2023-01-25")), d("2023-01-28"));
        assert_eq!(c.next_working_day(d("2023-03-08")), d("2023-03-09"));
        assert_eq!(c.next_working_day(d("2023-03-10")), d("2023-03-13"));
    }

    #[test]
    fn zero_working_days_is_the_end_of_the_same_day() {
        let c = cal_2023();
        assert_eq!(
            c.deadline(at("2023-03-11T09:00:00+08:00"), 0).due_date,
            d("2023-03-11")
        );
    }
}
