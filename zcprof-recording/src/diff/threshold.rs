//! `--fail-if` conditions: a small expression language so a diff can gate CI.
//!
//! ```text
//! CONDITION := METRIC [ "-increase" | "-decrease" ] OP NUMBER [ "%" ]
//!            | "regressions" OP NUMBER
//! METRIC    := copied | copied-k2u | copied-u2k | zero-copy | calls | errors
//!            | zero-copy-ratio | amplification
//! OP        := > | >= | < | <= | = | !=
//! ```
//!
//! All on the diff's total, normalised as the diff is. `copied-increase>5%`: copied bytes
//! rose by more than 5 % (from zero, any rise is an infinite increase); without `%` the
//! change is in normalised units. `-decrease` is the negated increase, so
//! `copied-decrease<50%` fails unless copies at least halved. A bare metric compares the
//! AFTER value; `%` is allowed there only for `zero-copy-ratio`, whose changes with `%` are
//! in percentage points. `regressions>0` fails when any copy path grew or appeared.
//! `errors` counts failures only: EAGAIN/EWOULDBLOCK and EINTR (would block / interrupted)
//! are left out, so a server that polls more often never fails `errors-increase>0`.
//!
//! An inconclusive diff (no sound unit of work) cannot be judged: every condition on it
//! evaluates to "cannot judge" (`held: null`), and `zcprof diff` exits 2, never 0 or 1.

use serde::Serialize;

use super::{Change, Diff};

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The condition as the user wrote it.
    pub text: String,
    metric: Metric,
    change: Option<Way>,
    op: Op,
    value: f64,
    percent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    Copied,
    CopyK2u,
    CopyU2k,
    ZeroCopy,
    Calls,
    Errors,
    ZeroCopyRatio,
    Amplification,
    Regressions,
}

const METRICS: [(&str, Metric); 9] = [
    ("copied", Metric::Copied),
    ("copied-k2u", Metric::CopyK2u),
    ("copied-u2k", Metric::CopyU2k),
    ("zero-copy", Metric::ZeroCopy),
    ("calls", Metric::Calls),
    ("errors", Metric::Errors),
    ("zero-copy-ratio", Metric::ZeroCopyRatio),
    ("amplification", Metric::Amplification),
    ("regressions", Metric::Regressions),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Way {
    Increase,
    Decrease,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// A condition checked against a diff.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    pub condition: String,
    /// The left-hand side, in the condition's unit (`null` for an infinite increase, and
    /// when not judged).
    pub value: Option<f64>,
    /// `true`: the condition holds (the diff fails); `null`: cannot judge (the diff is
    /// inconclusive).
    pub held: Option<bool>,
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Threshold, String> {
        parse(text)
    }
}

/// Parses one condition; the error is one sentence for the user.
pub fn parse(text: &str) -> Result<Threshold, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let at = compact
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| format!("`{text}` has no comparison (write e.g. copied-increase>5%)"))?;
    let (lhs, rest) = compact.split_at(at);
    let (op, number) = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ]
    .iter()
    .find_map(|(s, op)| rest.strip_prefix(s).map(|n| (*op, n)))
    .ok_or_else(|| format!("`{text}`: unknown comparison (use >, >=, <, <=, = or !=)"))?;
    let (number, percent) = match number.strip_suffix('%') {
        Some(n) => (n, true),
        None => (number, false),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("`{text}`: `{number}` is not a number"))?;
    let (name, change) = if let Some(n) = lhs.strip_suffix("-increase") {
        (n, Some(Way::Increase))
    } else if let Some(n) = lhs.strip_suffix("-decrease") {
        (n, Some(Way::Decrease))
    } else {
        (lhs, None)
    };
    let metric = METRICS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            let names: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
            format!(
                "`{text}`: unknown metric `{name}` (one of {}, optionally with -increase or -decrease)",
                names.join(", ")
            )
        })?;
    if metric == Metric::Regressions && (change.is_some() || percent) {
        return Err(format!(
            "`{text}`: regressions is a count (write e.g. regressions>0)"
        ));
    }
    if percent && change.is_none() && metric != Metric::ZeroCopyRatio {
        return Err(format!(
            "`{text}`: a % needs -increase or -decrease (e.g. {name}-increase>5%)"
        ));
    }
    Ok(Threshold {
        text: text.trim().to_string(),
        metric,
        change,
        op,
        value,
        percent,
    })
}

impl Threshold {
    /// Whether the condition holds for `d`, or cannot be judged (`d` is inconclusive); an
    /// error when the diff lacks the figure (amplification without `--per-bytes-delivered`,
    /// a ratio when nothing moved).
    pub fn evaluate(&self, d: &Diff) -> Result<Evaluation, String> {
        if self.metric == Metric::Amplification && d.total.metrics.copy_amplification.is_none() {
            return Err(format!(
                "`{}`: amplification needs --per-bytes-delivered",
                self.text
            ));
        }
        if d.inconclusive.is_some() {
            return Ok(Evaluation {
                condition: self.text.clone(),
                value: None,
                held: None,
            });
        }
        let m = &d.total.metrics;
        let lhs = if self.metric == Metric::Regressions {
            d.regressions.len() as f64
        } else {
            let c: Change = match self.metric {
                Metric::Copied => m.copied,
                Metric::CopyK2u => m.copy_k2u,
                Metric::CopyU2k => m.copy_u2k,
                Metric::ZeroCopy => m.zero_copy,
                Metric::Calls => m.calls,
                Metric::Errors => m.errors,
                Metric::ZeroCopyRatio => m.zero_copy_ratio,
                Metric::Amplification => m.copy_amplification.ok_or_else(|| {
                    format!("`{}`: amplification needs --per-bytes-delivered", self.text)
                })?,
                Metric::Regressions => unreachable!("handled above"),
            };
            let ratio = self.metric == Metric::ZeroCopyRatio;
            let missing = || {
                format!(
                    "`{}`: the ratio is undefined because nothing moved",
                    self.text
                )
            };
            match self.change {
                None => {
                    let after = c.after.ok_or_else(missing)?;
                    if ratio && self.percent {
                        after * 100.0
                    } else {
                        after
                    }
                }
                Some(way) => {
                    let (b, a) = (c.before.ok_or_else(missing)?, c.after.ok_or_else(missing)?);
                    let up = if ratio && self.percent {
                        (a - b) * 100.0
                    } else if self.percent {
                        match (b == 0.0, a == 0.0) {
                            (true, true) => 0.0,
                            (true, false) => f64::INFINITY,
                            _ => (a - b) / b * 100.0,
                        }
                    } else {
                        a - b
                    };
                    if way == Way::Increase { up } else { -up }
                }
            }
        };
        let held = match self.op {
            Op::Gt => lhs > self.value,
            Op::Ge => lhs >= self.value,
            Op::Lt => lhs < self.value,
            Op::Le => lhs <= self.value,
            Op::Eq => lhs == self.value,
            Op::Ne => lhs != self.value,
        };
        Ok(Evaluation {
            condition: self.text.clone(),
            value: Some(lhs),
            held: Some(held),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let t = parse("copied-increase>5%").expect("parses");
        assert_eq!(
            (t.metric, t.change, t.op, t.value, t.percent),
            (Metric::Copied, Some(Way::Increase), Op::Gt, 5.0, true)
        );
        let t = parse(" zero-copy-ratio < 90 % ").expect("parses");
        assert_eq!(
            (t.metric, t.op, t.value, t.percent),
            (Metric::ZeroCopyRatio, Op::Lt, 90.0, true)
        );
        assert_eq!(parse("regressions>=1").expect("parses").op, Op::Ge);
        assert_eq!(parse("calls-decrease!=0").expect("parses").op, Op::Ne);
        assert_eq!(parse("errors=0").expect("parses").op, Op::Eq);
    }

    #[test]
    fn refuses_nonsense_in_one_sentence() {
        for (bad, needle) in [
            ("copied", "no comparison"),
            ("copied>>5", "not a number"),
            ("copied=>5", "not a number"),
            ("bytes>5", "unknown metric `bytes`"),
            ("copied>5%", "needs -increase"),
            ("copied-increase>five", "not a number"),
            ("regressions-increase>0", "is a count"),
            ("copied-increase>inf", "not a number"),
            ("", "no comparison"),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
