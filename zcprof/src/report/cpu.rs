//! The cpu layer's views: "CPU copying: kernel X %, user Y % of the process's CPU (N
//! samples)", with the error a sampled share carries, and its JSON object.

use serde::Serialize;

use crate::model::{CpuShares, CpuSlots, Totals};

/// The text line for one process (or a total); `None` when the layer saw no sample of it.
pub fn line(t: &Totals<CpuSlots>) -> Option<String> {
    let s = t.shares();
    if s.samples == 0 {
        return None;
    }
    let kernel = s.kernel_copy_share().unwrap_or(0.0);
    let user = s.user_copy_share().unwrap_or(0.0);
    let unresolved = if s.user_unresolved_samples > 0 {
        format!(
            "; {} user samples outside any file with a build ID, not classified",
            crate::units::count(s.user_unresolved_samples)
        )
    } else {
        String::new()
    };
    Some(format!(
        "  cpu layer: CPU copying: kernel {}, user {} of the process's CPU ({} samples, ±{:.1} points; {:.0} % in the kernel, ~{:.2} s of CPU){unresolved}\n",
        percent(kernel),
        percent(user),
        crate::units::count(s.samples),
        100.0 * s.error(kernel).max(s.error(user)),
        100.0 * s.kernel_samples as f64 / s.samples as f64,
        s.cpu_ns as f64 / 1e9,
    ))
}

fn percent(share: f64) -> String {
    format!("{:.1} %", 100.0 * share)
}

/// The cpu layer in `run --json` (`schema/run.v1.json#/$defs/cpu`).
#[derive(Debug, Serialize)]
pub struct JsonCpu {
    #[serde(flatten)]
    pub samples: CpuShares,
    /// `kernel_copy_samples / samples`, `null` without samples.
    pub kernel_copy_share: Option<f64>,
    /// `user_copy_samples / samples`.
    pub user_copy_share: Option<f64>,
    /// The binomial standard error of either share, `sqrt(p (1 - p) / samples)` for the
    /// larger of the two errors.
    pub share_error: Option<f64>,
}

impl JsonCpu {
    pub fn of(t: &Totals<CpuSlots>) -> JsonCpu {
        let s = t.shares();
        let (k, u) = (s.kernel_copy_share(), s.user_copy_share());
        JsonCpu {
            samples: s,
            kernel_copy_share: k,
            user_copy_share: u,
            share_error: k.zip(u).map(|(k, u)| s.error(k).max(s.error(u))),
        }
    }
}

#[cfg(test)]
mod tests {
    use zcprof_common::cpu;

    use super::*;
    use crate::{model::Counters, probes::Layer};

    fn with(samples: &[(u32, u64)]) -> Counters {
        let mut c = Counters::zero();
        for &(slot, n) in samples {
            let e = c.slot_mut(Layer::Cpu, slot).expect("a cpu slot");
            e.calls = n;
            e.bytes = n * 1_001_001;
        }
        c
    }

    #[test]
    fn the_line_gives_both_shares_and_the_samples() {
        let c = with(&[
            (cpu::KERNEL_COPY, 100),
            (cpu::KERNEL, 300),
            (cpu::USER_COPY, 500),
            (cpu::USER, 100),
        ]);
        let text = line(&c.cpu).expect("samples");
        assert!(
            text.contains("CPU copying: kernel 10.0 %, user 50.0 % of the process's CPU (1,000 samples, ±1.6 points; 40 % in the kernel"),
            "{text}"
        );
        assert!(!text.contains("not classified"), "{text}");
        assert_eq!(line(&Counters::zero().cpu), None);
        let j = JsonCpu::of(&c.cpu);
        assert_eq!(j.samples.samples, 1000);
        assert_eq!(j.user_copy_share, Some(0.5));
        let e = j.share_error.expect("samples");
        assert!((e - (0.25f64 / 1000.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn unresolved_user_samples_are_said() {
        let c = with(&[(cpu::USER_UNRESOLVED, 7), (cpu::USER, 3)]);
        let text = line(&c.cpu).expect("samples");
        assert!(text.contains("7 user samples outside any file"), "{text}");
    }
}
