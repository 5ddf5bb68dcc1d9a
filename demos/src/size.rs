//! Parsing of human sizes (`64k`, `4M`, `1G`, `512`) and durations for the CLI.
//!
//! Suffixes are binary (k = 1024), case-insensitive, and may be written `k`, `kb`, `kib`.
//! Zero is rejected here because every caller needs a positive amount of work.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("size is empty")]
    Empty,
    #[error("size '{0}' is not a number with an optional k/M/G/T suffix")]
    Malformed(String),
    #[error("size '{0}' is too large")]
    Overflow(String),
    #[error("size must be greater than 0")]
    Zero,
    #[error("duration '{0}' is not a positive number of seconds")]
    BadSeconds(String),
}

/// Parses a byte size such as `64k`, `4M`, `1G` or `4096`.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SizeError::Empty);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(SizeError::Malformed(t.to_owned()));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(SizeError::Malformed(t.to_owned())),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| SizeError::Overflow(t.to_owned()))?;
    let value = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow(t.to_owned()))?;
    if value == 0 {
        return Err(SizeError::Zero);
    }
    Ok(value)
}

/// Parses a positive, finite number of seconds (`2`, `0.5`).
pub fn parse_seconds(text: &str) -> Result<f64, SizeError> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(s),
        _ => Err(SizeError::BadSeconds(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_binary_and_case_insensitive() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2t"), Ok(2 << 40));
        assert_eq!(parse_size(" 8mb "), Ok(8 << 20));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("0"), Err(SizeError::Zero));
        assert_eq!(parse_size("0k"), Err(SizeError::Zero));
        assert!(matches!(parse_size("k"), Err(SizeError::Malformed(_))));
        assert!(matches!(parse_size("-1"), Err(SizeError::Malformed(_))));
        assert!(matches!(parse_size("1.5M"), Err(SizeError::Malformed(_))));
        assert!(matches!(parse_size("4X"), Err(SizeError::Malformed(_))));
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(
            parse_size("20000000T"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn seconds_must_be_positive_and_finite() {
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        assert_eq!(parse_seconds("2"), Ok(2.0));
        for bad in ["0", "-1", "nan", "inf", "x", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
