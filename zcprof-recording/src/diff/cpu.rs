//! What `zcprof diff` says of the cpu layer (`record --cpu`): how the share of the CPU
//! spent in kernel and in user-space copy routines changed, or that the samples are too
//! few to tell.
//!
//! # The rule
//! A share is `copy samples / samples` of the recording's total (its `cpu` layer). A change
//! is stated ("fell" / "rose") only when both sides have at least [`MIN_SAMPLES`] samples
//! and the change exceeds [`SIGMAS`] standard errors of the difference, `sqrt(v1 + v2)` with
//! `v = p (1 - p) / n` and `p` kept at least `1 / n` (a share of 0 still has an error: by
//! the rule of three its 95 % bound is `3 / n`). Otherwise the change is "within the
//! error", or the comparison "inconclusive" when a side has too few samples.

use crate::format::{Layers, Recording};

/// The cpu layer's name in a recording's `layers`.
pub const CPU_LAYER: &str = "cpu";
/// Fewest samples on each side for a stated change: the error of a share is then at most
/// 0.5 / √100 = 5 points.
pub const MIN_SAMPLES: u64 = 100;
/// Standard errors a change must exceed to be stated.
pub const SIGMAS: f64 = 2.0;

/// `(samples, kernel copy samples, user copy samples)` of a recording's layers.
fn samples(layers: &Layers) -> Option<(u64, u64, u64)> {
    let l = layers.get(CPU_LAYER)?;
    let slot = |name: &str| l.probes.get(name).map_or(0, |e| e.calls);
    Some((l.totals.calls, slot("kernel_copy"), slot("user_copy")))
}

/// How one share changed, by the rule of the module docs.
pub fn change(hits1: u64, n1: u64, hits2: u64, n2: u64) -> String {
    let share = |h: u64, n: u64| if n == 0 { 0.0 } else { h as f64 / n as f64 };
    let (p1, p2) = (share(hits1, n1), share(hits2, n2));
    let head = format!("{:.1} % → {:.1} %", 100.0 * p1, 100.0 * p2);
    if n1 < MIN_SAMPLES || n2 < MIN_SAMPLES {
        return format!("{head} (inconclusive: fewer than {MIN_SAMPLES} samples on a side)");
    }
    let var = |p: f64, n: u64| {
        let p = p.max(1.0 / n as f64);
        p * (1.0 - p) / n as f64
    };
    let sigma = (var(p1, n1) + var(p2, n2)).sqrt();
    let delta = p2 - p1;
    if delta.abs() <= SIGMAS * sigma {
        return format!("{head} (within the error, ±{:.1} points)", 100.0 * sigma);
    }
    let how = if delta < 0.0 { "fell" } else { "rose" };
    format!(
        "{head} ({how} by {:.1} ± {:.1} points)",
        100.0 * delta.abs(),
        100.0 * sigma
    )
}

/// The note on the CPU spent copying, when either recording has the cpu layer.
pub fn note(before: &Recording, after: &Recording) -> Option<String> {
    match (samples(&before.total.layers), samples(&after.total.layers)) {
        (None, None) => None,
        (Some((n1, k1, u1)), Some((n2, k2, u2))) => Some(format!(
            "cpu layer, CPU copying of the recorded processes' CPU ({n1} samples before, {n2} after): kernel {}, user {}",
            change(k1, n1, k2, n2),
            change(u1, n1, u2, n2)
        )),
        (Some(_), None) | (None, Some(_)) => Some(
            "cpu layer: only one recording was made with --cpu, the CPU spent copying is not compared".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_stated_only_beyond_the_error_with_enough_samples() {
        assert_eq!(
            change(400, 1000, 0, 1000),
            "40.0 % → 0.0 % (fell by 40.0 ± 1.6 points)"
        );
        assert!(change(100, 1000, 300, 1000).contains("rose by 20.0"));
        assert!(
            change(100, 1000, 110, 1000).contains("within the error"),
            "{}",
            change(100, 1000, 110, 1000)
        );
        assert!(change(40, 99, 0, 1000).contains("inconclusive"));
        assert!(change(0, 1000, 0, 1000).contains("within the error"));
    }
}
