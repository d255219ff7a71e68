//! Dialed-number normalisation: every form a carrier or a softphone may send
//! (`12345`, `07352912345`, `+86 735 2912345`, `tel:+86-735-2912345`,
//! `sip:2912345@host;user=phone`, …) reduced to one canonical digit string.
//!
//! The canonical form is what the routing table is keyed by:
//! - a number in the gateway's own area loses country code, trunk prefix and
//!   area code (`+8607352912345` → `2912345`, `0735110` → `110`);
//! - a national number elsewhere keeps its trunk prefix (`+867342912345` → `07342912345`);
//! - a foreign number keeps `00` and its country code (`+44…` → `0044…`).
//!
//! It runs on the hot path, so it never allocates: the result is a small
//! `Copy` value on the stack. Numbers are compared as a packed `u64` key.

use std::fmt;

/// The longest canonical number we keep. E.164 allows 15 digits; `00` + 15 = 17.
pub const MAX_DIGITS: usize = 18;

/// Numbering plan facts the normaliser needs, taken from `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberingPlan {
    /// Country calling code without `+`, e.g. `86`.
    pub country_code: String,
    /// Local area code without the trunk prefix, e.g. `735` for 0735.
    pub area_code: String,
}

/// A canonical dialed number: ASCII digits only, at most [`MAX_DIGITS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    len: u8,
    digits: [u8; MAX_DIGITS],
}

/// Why a dialed string is not a number we can route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("no digits in the dialed number")]
    Empty,
    #[error("the dialed number has characters that are not digits")]
    NotDigits,
    #[error("the dialed number is longer than {MAX_DIGITS} digits")]
    TooLong,
}

impl Number {
    /// Builds a number from a string of ASCII digits (no normalisation).
    pub fn from_digits(s: &str) -> Result<Self, NumberError> {
        let mut n = Number {
            len: 0,
            digits: [0; MAX_DIGITS],
        };
        if s.is_empty() {
            return Err(NumberError::Empty);
        }
        for b in s.bytes() {
            if !b.is_ascii_digit() {
                return Err(NumberError::NotDigits);
            }
            n.push(b)?;
        }
        Ok(n)
    }

    fn push(&mut self, b: u8) -> Result<(), NumberError> {
        if self.len as usize >= MAX_DIGITS {
            return Err(NumberError::TooLong);
        }
        self.digits[self.len as usize] = b;
        self.len += 1;
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever pushed.
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A packed key: a leading 1 keeps leading zeros distinct (`0110` ≠ `110`).
    pub fn key(&self) -> u64 {
        self.digits[..self.len as usize]
            .iter()
            .fold(1u64, |k, d| k * 10 + u64::from(d - b'0'))
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({})", self.as_str())
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Visual separators RFC 3966 §5.1.1 allows inside a telephone number.
fn is_visual_separator(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')' | b' ' | b'\t')
}

/// Digits of a dial string, with the `+` flag, gathered without allocating.
struct DialString {
    international: bool,
    digits: Number,
}

impl DialString {
    fn new() -> Self {
        DialString {
            international: false,
            digits: Number {
                len: 0,
                digits: [0; MAX_DIGITS],
            },
        }
    }

    /// Feeds raw bytes, decoding `%XX` escapes (SIP user parts escape `+`).
    fn feed(&mut self, raw: &[u8]) -> Result<(), NumberError> {
        let mut i = 0;
        while i < raw.len() {
            let mut b = raw[i];
            if b == b'%' {
                let hex = |at: usize| raw.get(at).and_then(|&c| (c as char).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(h), Some(l)) => {
                        b = (h * 16 + l) as u8;
                        i += 2;
                    }
                    _ => return Err(NumberError::NotDigits),
                }
            }
            i += 1;
            if b.is_ascii_digit() {
                self.digits.push(b)?;
            } else if b == b'+' && self.digits.is_empty() && !self.international {
                self.international = true;
            } else if !is_visual_separator(b) {
                return Err(NumberError::NotDigits);
            }
        }
        Ok(())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get` rather than slicing: the input may hold multi-byte characters.
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => s.get(prefix.len()..),
        _ => None,
    }
}

/// Finds `name=value` among `;`-separated parameters.
fn find_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

impl NumberingPlan {
    /// Normalises whatever arrived as the dialed number into its canonical form.
    pub fn normalize(&self, dialed: &str) -> Result<Number, NumberError> {
        let mut s = dialed.trim();
        // `"Name" <sip:…>` or `<tel:…>`: keep what is inside the brackets.
        if let (Some(open), Some(close)) = (s.find('<'), s.rfind('>'))
            && open < close
        {
            s = s[open + 1..close].trim();
        }
        let mut dial = DialString::new();
        let mut context: Option<&str> = None;
        if let Some(rest) = strip_prefix_ci(s, "sip:").or_else(|| strip_prefix_ci(s, "sips:")) {
            // userinfo ends at '@'; URI parameters and headers follow the host.
            let user = match rest.find('@') {
                Some(at) => &rest[..at],
                None => rest.split([';', '?']).next().unwrap_or(""),
            };
            // A user part may carry RFC 3966 parameters itself (`2912345;phone-context=+86-735`).
            let (num, params) = user.split_once(';').unwrap_or((user, ""));
            let num = num.split(':').next().unwrap_or(num); // drop a password
            context = find_param(params, "phone-context");
            dial.feed(num.as_bytes())?;
        } else if let Some(rest) = strip_prefix_ci(s, "tel:") {
            let (num, params) = rest.split_once(';').unwrap_or((rest, ""));
            context = find_param(params, "phone-context");
            dial.feed(num.as_bytes())?;
        } else {
            dial.feed(s.as_bytes())?;
        }
        if dial.digits.is_empty() {
            return Err(NumberError::Empty);
        }
        if !dial.international
            && let Some(ctx) = context
            && ctx.starts_with('+')
        {
            // A local number in a global context: `2912345;phone-context=+86-735`.
            let mut full = DialString::new();
            full.feed(ctx.as_bytes())?;
            for &d in dial.digits.as_str().as_bytes() {
                full.digits.push(d)?;
            }
            dial = full;
        }
        self.canonical(dial)
    }

    fn canonical(&self, dial: DialString) -> Result<Number, NumberError> {
        let digits = dial.digits.as_str();
        let (national, had_prefix) = if dial.international {
            match digits.strip_prefix(self.country_code.as_str()) {
                // `+86 0735 …` is wrong but common: drop the stray trunk prefix.
                Some(nsn) => (nsn.strip_prefix('0').unwrap_or(nsn), true),
                None => return self.foreign(digits),
            }
        } else if let Some(intl) = digits.strip_prefix("00") {
            match intl.strip_prefix(self.country_code.as_str()) {
                Some(nsn) => (nsn.strip_prefix('0').unwrap_or(nsn), true),
                None => return self.foreign(intl),
            }
        } else if let Some(nsn) = digits.strip_prefix('0') {
            (nsn, true)
        } else {
            // Dialed locally: service numbers, local numbers, mobiles as they are.
            return Number::from_digits(digits);
        };
        if !had_prefix || national.is_empty() {
            return Err(NumberError::Empty);
        }
        if let Some(local) = national.strip_prefix(self.area_code.as_str())
            && !local.is_empty()
        {
            return Number::from_digits(local);
        }
        // Mobiles (11 digits, 13x–19x) and short codes (12345, 10086, 96119,
        // 95xxx: at most 6 digits, starting 1 or 9) take no trunk prefix.
        // Everything else is a number in another area and keeps `0` + area
        // code: `02912345` is Xi'an's 12345, not this area's 2912345, and
        // `01065529999` is Beijing, not a 106 SMS number.
        let b = national.as_bytes();
        let mobile = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
        let short_code = b.len() <= 6 && matches!(b[0], b'1' | b'9');
        if mobile || short_code {
            return Number::from_digits(national);
        }
        let mut n = Number::from_digits("0")?;
        for b in national.bytes() {
            n.push(b)?;
        }
        Ok(n)
    }

    fn foreign(&self, intl: &str) -> Result<Number, NumberError> {
        let mut n = Number::from_digits("00")?;
        for b in intl.bytes() {
            n.push(b)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> NumberingPlan {
        NumberingPlan {
            country_code: "86".into(),
            area_code: "735".into(),
        }
    }

    fn norm(s: &str) -> Result<String, NumberError> {
        plan().normalize(s).map(|n| n.as_str().to_string())
    }

    #[test]
    fn every_form_the_issue_names_reaches_the_same_number() {
        for form in [
            "12345",
            "073512345",
            "+8612345",
            "sip:12345@gw.example;user=phone",
            "sip:+8612345@gw.example",
            "tel:+86-735-12345",
        ] {
            assert_eq!(norm(form).unwrap(), "12345", "{form}");
        }
        for form in [
            "2912345",
            "07352912345",
            "+8607352912345",
            "+86 735 2912345",
            "tel:+86-735-2912345",
            "sip:2912345@10.0.0.1;user=phone",
            "sip:+8607352912345@host",
            "<sip:07352912345@host>",
            "\"Caller\" <tel:+86-735-2912345>",
            "sip:%2B867352912345@host",
            "tel:2912345;phone-context=+86-735",
            "sip:2912345;phone-context=+86-735@host;user=phone",
            "0086 735 2912345",
            "(0735) 291-2345",
            "SIP:2912345@HOST",
        ] {
            assert_eq!(norm(form).unwrap(), "2912345", "{form}");
        }
    }

    #[test]
    fn emergency_numbers_survive_area_code_and_country_code() {
        assert_eq!(norm("110").unwrap(), "110");
        assert_eq!(norm("0735110").unwrap(), "110");
        assert_eq!(norm("+86735119").unwrap(), "119");
        assert_eq!(norm("sip:120@host").unwrap(), "120");
        assert_eq!(norm("+8696119").unwrap(), "96119");
        assert_eq!(norm("sip:+86735122@host").unwrap(), "122");
    }

    #[test]
    fn other_areas_and_countries_keep_their_prefixes() {
        assert_eq!(norm("07342912345").unwrap(), "07342912345");
        assert_eq!(norm("+867342912345").unwrap(), "07342912345");
        assert_eq!(norm("+8613812345678").unwrap(), "13812345678");
        assert_eq!(norm("13812345678").unwrap(), "13812345678");
        assert_eq!(norm("+442079460000").unwrap(), "00442079460000");
        assert_eq!(norm("00442079460000").unwrap(), "00442079460000");
        // Another city's 12345 is not this area's 7-digit local number.
        assert_eq!(norm("02912345").unwrap(), "02912345");
        assert_eq!(norm("+862912345").unwrap(), "02912345");
        assert_eq!(norm("0086 29 12345").unwrap(), "02912345");
        assert_eq!(norm("073412345").unwrap(), "073412345");
        // Beijing keeps its 010; service numbers with +86 do not need it.
        assert_eq!(norm("+861065529999").unwrap(), "01065529999");
        assert_eq!(norm("01012345").unwrap(), "01012345");
        assert_eq!(norm("+8610086").unwrap(), "10086");
        assert_eq!(norm("+8695588").unwrap(), "95588");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(norm(""), Err(NumberError::Empty));
        assert_eq!(norm("   "), Err(NumberError::Empty));
        assert_eq!(norm("sip:@host"), Err(NumberError::Empty));
        assert_eq!(norm("sip:alice@host"), Err(NumberError::NotDigits));
        assert_eq!(norm("12a45"), Err(NumberError::NotDigits));
        assert_eq!(norm("*12345#"), Err(NumberError::NotDigits));
        assert_eq!(norm("1+2345"), Err(NumberError::NotDigits));
        assert_eq!(norm("++8612345"), Err(NumberError::NotDigits));
        assert_eq!(norm("sip:%2@host"), Err(NumberError::NotDigits));
        assert_eq!(norm("sip:%@host"), Err(NumberError::NotDigits));
        assert_eq!(norm("0"), Err(NumberError::Empty));
        assert_eq!(norm("+"), Err(NumberError::Empty));
        assert_eq!(norm("1234567890123456789"), Err(NumberError::TooLong));
        assert_eq!(norm("tel:"), Err(NumberError::Empty));
        assert_eq!(norm("<>"), Err(NumberError::Empty));
        assert_eq!(norm("sip:12345\u{fffd}@h"), Err(NumberError::NotDigits));
    }

    #[test]
    fn keys_keep_leading_zeros_apart() {
        let a = Number::from_digits("0110").unwrap();
        let b = Number::from_digits("110").unwrap();
        assert_ne!(a.key(), b.key());
        assert_eq!(Number::from_digits("12345").unwrap().key(), 112345);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every string of up to 3 bytes from a small alphabet.
        let alphabet = [
            "", "+", "0", "8", "6", "%", "2", "B", "<", ">", ";", "@", "sip:", "tel:", " ", "é",
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let _ = norm(&format!("{a}{b}{c}"));
                }
            }
        }
        // And 200,000 pseudo-random strings of URI-ish and multi-byte pieces
        // (a fixed-seed xorshift, so a failure reproduces).
        let pieces = [
            "sip:",
            "tel:",
            "<",
            ">",
            "@",
            ";",
            "phone-context=",
            "+",
            "86",
            "0735",
            "%",
            "%2B",
            "%E9",
            "-",
            " ",
            "1",
            "2345",
            "é",
            "号",
            "\u{0}",
            "\"",
            ":",
            "?",
            "00",
            "\u{fffd}",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            let mut s = String::new();
            for _ in 0..(x % 9) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if let Ok(n) = norm(&s) {
                assert!(
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
                    "{s:?} → {n:?}"
                );
            }
        }
    }
}
