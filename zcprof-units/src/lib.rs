//! Sizes and durations as people type them on the command lines of `zcprof`, `zcprof-demo`
//! and `zcbench`: one grammar and one set of error messages for every crate.
//!
//! Its own crate, with no dependencies, rather than a module of `zcprof-common`: that crate
//! is the `#![no_std]` kernel ABI shared with the eBPF programs, and the demos (which must not
//! depend on zcprof or on aya) need these parsers too.
//!
//! - A size is a whole number of bytes with an optional binary suffix (k = 1024), case
//!   insensitive: `4194304`, `64k`, `4M`, `1G`, `2T`, also written `kb`/`KiB`. Zero is
//!   refused: every caller needs some bytes to move.
//! - A duration is a non-negative decimal number with an optional unit: none or `s`
//!   (seconds), `ms`, `m` (minutes) or `h` (hours): `2`, `0.5`, `250ms`, `2s`, `5m`, `1h`.
//!   What is allowed depends on what it measures, so each caller names a
//!   [`DurationRule`], and its bounds and name appear in the message when they are not met.

use std::{fmt, time::Duration};

/// What went wrong, worded for one line on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a whole number with one of the size suffixes.
    NotASize(String),
    /// More bytes than a `u64` holds.
    SizeTooLarge(String),
    /// `0`, `0k`, …
    ZeroSize(String),
    /// Not a number with one of the duration units.
    NotADuration(String),
    /// Below the rule's minimum (or not above zero when the rule has none).
    TooShort {
        name: &'static str,
        min: Duration,
        text: String,
    },
    /// Above the rule's maximum, or longer than a `Duration` holds.
    TooLong {
        name: &'static str,
        max: Option<Duration>,
        text: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotASize(text) => {
                write!(f, "`{text}` is not a size (try 4194304, 64k, 4M or 1G)")
            }
            Self::SizeTooLarge(text) => write!(f, "`{text}` is too large"),
            Self::ZeroSize(text) => write!(f, "a size must be greater than 0, not `{text}`"),
            Self::NotADuration(text) => write!(
                f,
                "`{text}` is not a duration (try 2, 0.5, 250ms, 2s, 5m or 1h)"
            ),
            Self::TooShort { name, min, text } if min.is_zero() => {
                write!(f, "the {name} must be greater than 0, not `{text}`")
            }
            Self::TooShort { name, min, text } => write!(
                f,
                "the {name} must be at least {}, not `{text}`",
                human(*min)
            ),
            Self::TooLong {
                name,
                max: Some(max),
                text,
            } => write!(
                f,
                "the {name} must be at most {}, not `{text}`",
                human(*max)
            ),
            Self::TooLong {
                name,
                max: None,
                text,
            } => write!(f, "the {name} `{text}` is too long"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a byte size: `4194304`, `64k`, `4M`, `1G`, `16MiB`; never 0.
pub fn parse_size(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(ParseError::NotASize(t.to_owned())),
    };
    if digits.is_empty() {
        return Err(ParseError::NotASize(t.to_owned()));
    }
    // Only digits are left, so the one way to fail is a number too large for u64.
    let n: u64 = digits
        .parse()
        .map_err(|_| ParseError::SizeTooLarge(t.to_owned()))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| ParseError::SizeTooLarge(t.to_owned()))?;
    if bytes == 0 {
        return Err(ParseError::ZeroSize(t.to_owned()));
    }
    Ok(bytes)
}

/// What a duration argument measures and the range it must fall in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRule {
    /// Named in messages: "the interval must be at least 10ms".
    pub name: &'static str,
    /// The shortest allowed; zero means anything longer than zero.
    pub min: Duration,
    /// The longest allowed, if any.
    pub max: Option<Duration>,
}

impl DurationRule {
    /// Anything longer than zero.
    pub const fn positive(name: &'static str) -> Self {
        Self {
            name,
            min: Duration::ZERO,
            max: None,
        }
    }

    /// From `min` to `max`, both included.
    pub const fn between(name: &'static str, min: Duration, max: Duration) -> Self {
        Self {
            name,
            min,
            max: Some(max),
        }
    }

    /// Parses `2`, `0.5`, `250ms`, `2s`, `5m`, `1h` and checks it against the rule.
    pub fn parse(&self, text: &str) -> Result<Duration, ParseError> {
        let t = text.trim();
        // Longest unit first: `ms` also ends in `s`.
        let units: [(&str, f64); 4] = [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
        let (number, scale) = units
            .iter()
            .find_map(|&(unit, scale)| t.strip_suffix(unit).map(|n| (n, scale)))
            .unwrap_or((t, 1.0));
        let value: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| ParseError::NotADuration(t.to_owned()))?;
        let seconds = value * scale;
        let too_short = || ParseError::TooShort {
            name: self.name,
            min: self.min,
            text: t.to_owned(),
        };
        let too_long = || ParseError::TooLong {
            name: self.name,
            max: self.max,
            text: t.to_owned(),
        };
        if seconds <= 0.0 || seconds < self.min.as_secs_f64() {
            return Err(too_short());
        }
        let duration = Duration::try_from_secs_f64(seconds).map_err(|_| too_long())?;
        if self.max.is_some_and(|max| duration > max) {
            return Err(too_long());
        }
        Ok(duration)
    }
}

/// `10ms`, `2s`, `5m`, `24h`: the largest unit that shows the duration exactly.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 || !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}s", d.as_secs_f64());
    }
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_in_any_case() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4194304"), Ok(4_194_304));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2t"), Ok(2 << 40));
        assert_eq!(parse_size(" 8mb "), Ok(8 << 20));
        assert_eq!(parse_size("8 MiB"), Ok(8 << 20));
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        let not = |t: &str| ParseError::NotASize(t.into());
        for bad in ["", "k", "-1", "1.5M", "4X", "0x10", "M4"] {
            assert_eq!(parse_size(bad), Err(not(bad.trim())), "{bad}");
        }
        assert_eq!(parse_size("0"), Err(ParseError::ZeroSize("0".into())));
        assert_eq!(parse_size("0k"), Err(ParseError::ZeroSize("0k".into())));
        for huge in ["99999999999999999999", "20000000T", "99999999999T"] {
            assert_eq!(
                parse_size(huge),
                Err(ParseError::SizeTooLarge(huge.into())),
                "{huge}"
            );
        }
        assert_eq!(
            parse_size("4X").map_err(|e| e.to_string()),
            Err("`4X` is not a size (try 4194304, 64k, 4M or 1G)".into())
        );
        assert_eq!(
            parse_size("0").map_err(|e| e.to_string()),
            Err("a size must be greater than 0, not `0`".into())
        );
    }

    const INTERVAL: DurationRule = DurationRule::between(
        "interval",
        Duration::from_millis(10),
        Duration::from_secs(86_400),
    );

    #[test]
    fn durations_take_seconds_milliseconds_minutes_and_hours() {
        let ok = |t: &str| INTERVAL.parse(t);
        assert_eq!(ok("1"), Ok(Duration::from_secs(1)));
        assert_eq!(ok("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(ok("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(ok("250 ms"), Ok(Duration::from_millis(250)));
        assert_eq!(ok("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(ok("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(ok("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(ok("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(ok("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(ok("10ms"), Ok(Duration::from_millis(10)));
    }

    #[test]
    fn durations_out_of_range_name_the_rule() {
        let err = |t: &str| INTERVAL.parse(t).map_err(|e| e.to_string());
        assert_eq!(
            err("0"),
            Err("the interval must be at least 10ms, not `0`".into())
        );
        assert_eq!(
            err("-1"),
            Err("the interval must be at least 10ms, not `-1`".into())
        );
        assert_eq!(
            err("9ms"),
            Err("the interval must be at least 10ms, not `9ms`".into())
        );
        assert_eq!(
            err("25h"),
            Err("the interval must be at most 24h, not `25h`".into())
        );
        assert_eq!(
            err("1e9"),
            Err("the interval must be at most 24h, not `1e9`".into())
        );
        for bad in ["abc", "NaN", "inf", "", "s", "1d", "1 hour", "2x"] {
            assert_eq!(
                INTERVAL.parse(bad),
                Err(ParseError::NotADuration(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            err("soon"),
            Err("`soon` is not a duration (try 2, 0.5, 250ms, 2s, 5m or 1h)".into())
        );
    }

    #[test]
    fn a_positive_rule_has_no_floor_but_zero_and_no_ceiling_but_overflow() {
        let rule = DurationRule::positive("run length");
        assert_eq!(rule.parse("0.001ms"), Ok(Duration::from_micros(1)));
        assert_eq!(rule.parse("1000h"), Ok(Duration::from_secs(3_600_000)));
        assert_eq!(
            rule.parse("0").map_err(|e| e.to_string()),
            Err("the run length must be greater than 0, not `0`".into())
        );
        assert_eq!(
            rule.parse("1e300").map_err(|e| e.to_string()),
            Err("the run length `1e300` is too long".into())
        );
    }

    #[test]
    fn bounds_are_written_in_the_largest_exact_unit() {
        assert_eq!(human(Duration::from_millis(10)), "10ms");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human(Duration::from_secs(2)), "2s");
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_secs(86_400)), "24h");
        assert_eq!(human(Duration::from_micros(1)), "0.000001s");
    }
}
