//! Go duration strings (`time.ParseDuration`): "168h", "10s", "1h30m", "500ms", "1.5h".
//!
//! Distribution's struct fields of type `time.Duration` (e.g. `http.draintimeout`) also take a
//! plain YAML integer, read as nanoseconds (gopkg.in/yaml.v2 behaviour; the docs say "If you
//! specify a value but omit the suffix, the value is interpreted as a number of nanoseconds").
//! Settings read from a free-form parameter map (`storage.maintenance.uploadpurging.age`) take
//! strings only. Which rule applies is decided by the key table, not here.

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

const NANOS_PER_UNIT: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5 micro sign
    ("μs", 1_000), // U+03BC greek mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration string. Negative durations are rejected: no Berth setting means
/// anything with one.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let bad = |why: &str| DurationError(format!("invalid duration {input:?}: {why}"));
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_num) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad("expected a number"));
        }
        let unit_len =
            after_num.char_indices().find(|(_, c)| c.is_ascii_digit() || *c == '.').map_or(after_num.len(), |(i, _)| i);
        let (unit, after_unit) = after_num.split_at(unit_len);
        let scale =
            NANOS_PER_UNIT.iter().find(|(name, _)| *name == unit).map(|(_, scale)| *scale).ok_or_else(|| {
                if unit.is_empty() {
                    bad("missing unit (one of ns, us, ms, s, m, h)")
                } else {
                    bad(&format!("unknown unit {unit:?}"))
                }
            })?;
        let whole: u128 =
            if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| bad("number too large"))? };
        let mut frac_nanos: u128 = 0;
        if !frac_part.is_empty() {
            // Keep at most 18 digits: enough for nanosecond precision of any unit.
            let digits = &frac_part[..frac_part.len().min(18)];
            let numerator: u128 = digits.parse().map_err(|_| bad("bad fraction"))?;
            let denominator = 10u128.pow(u32::try_from(digits.len()).unwrap_or(18));
            frac_nanos = numerator * scale / denominator;
        }
        total = whole
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| n.checked_add(total))
            .ok_or_else(|| bad("overflow"))?;
        rest = after_unit;
    }
    if negative && total != 0 {
        return Err(bad("negative durations are not allowed"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad("overflow"))?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| bad("overflow"))?;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Go's parser reads it back, shortest units first omitted:
/// 168h, 1h30m, 1s500ms, 0s.
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let nanos = d.subsec_nanos();
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value != 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if nanos != 0 {
        if nanos % 1_000_000 == 0 {
            out.push_str(&format!("{}ms", nanos / 1_000_000));
        } else if nanos % 1_000 == 0 {
            out.push_str(&format!("{}us", nanos / 1_000));
        } else {
            out.push_str(&format!("{nanos}ns"));
        }
    }
    out
}

/// `#[serde(with = "crate::duration::go")]`: a Go duration string, or an integer of nanoseconds.
pub(crate) mod go {
    use super::{format_go_duration, parse_go_duration};
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct GoDuration;
        impl Visitor<'_> for GoDuration {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"24h\" or an integer of nanoseconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_go_duration(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_nanos(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v).map(Duration::from_nanos).map_err(|_| E::custom("negative durations are not allowed"))
            }
        }
        d.deserialize_any(GoDuration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_go_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_examples_in_distribution_docs() {
        // configuration.md: "Some examples: `45m`, `2h10m`, `168h`", defaults 168h / 24h / 10s.
        assert_eq!(ok("45m"), Duration::from_secs(45 * 60));
        assert_eq!(ok("2h10m"), Duration::from_secs(2 * 3600 + 600));
        assert_eq!(ok("168h"), Duration::from_secs(7 * 24 * 3600));
        assert_eq!(ok("24h"), Duration::from_secs(86_400));
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("3000s"), Duration::from_secs(3000));
        assert_eq!(ok("10ms"), Duration::from_millis(10));
    }

    #[test]
    fn parses_go_syntax_corners() {
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("1us"), Duration::from_micros(1));
        assert_eq!(ok("1µs"), Duration::from_micros(1));
        assert_eq!(ok("1μs"), Duration::from_micros(1));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("1h1m1s1ms1us1ns"), Duration::new(3661, 1_001_001));
    }

    #[test]
    fn rejects_invalid_and_negative() {
        // "3000 s" is invalid per the cloudfront `duration` docs; a bare number needs a unit;
        // negative values Go accepts are refused by Berth (no setting means anything with one).
        for bad in ["", "3000 s", "10", "h", "1x", "1.2.3s", "-5s", "s10", " 1s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["168h", "24h", "1h30m", "500ms", "1s500ms", "0s", "10s", "1us", "7ns"] {
            assert_eq!(format_go_duration(ok(s)), s);
        }
    }
}
