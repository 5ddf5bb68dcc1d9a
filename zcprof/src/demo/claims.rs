//! The seed guides' claims (a C# and a Go article on zero-copy, in `shared/seeds`) as
//! numbers, and how each is measured from a scenario's [`Comparison`] (pure).
//!
//! A claim is a range: it *agrees* when the measured figure falls inside it. Where the
//! guides give one figure for a timing, the range is a factor of two either way (timings
//! differ between machines and languages); where they count copies, the range is exact.
//! Every claim names where its measured figure comes from, and carries a note that says
//! why this machine can legitimately see something else.

use serde::Serialize;

use super::compare::{Comparison, ratio};
use crate::units;

/// How a figure is obtained from a scenario's comparison.
#[derive(Clone, Copy, Debug)]
pub enum Metric {
    /// Throughput of `mode` over throughput of `over` (the demo's wall clock).
    Speedup {
        mode: &'static str,
        over: &'static str,
    },
    /// Bytes copied across the user/kernel boundary per payload byte by `roles` (all
    /// workers when empty) in `mode` (syscall layer).
    Copies {
        mode: &'static str,
        roles: &'static [&'static str],
    },
    /// `1 - copies(mode) / copies(over)` over all workers (syscall layer).
    CopyReduction {
        mode: &'static str,
        over: &'static str,
    },
    /// Bytes copied in user space per payload byte in `mode` (the demo's tally).
    UserCopies { mode: &'static str },
    /// Nanoseconds per 64 KiB copied in user space: the extra CPU time of `mode` over
    /// `over` divided by the 64 KiB units `mode` copied (rusage and demo tally). CPU time
    /// rather than wall time, because on a shared machine the wall clock also counts
    /// time spent waiting for a CPU.
    CopyCost {
        mode: &'static str,
        over: &'static str,
    },
    /// Of the bytes `mode` sent with zero-copy requested, the share the kernel reported it
    /// copied anyway (the demo's tally of the kernel's own completion notifications).
    CopiedAnyway { mode: &'static str },
}

impl Metric {
    /// Where the measured figure comes from, as printed beside it.
    pub fn source(&self) -> &'static str {
        match self {
            Metric::Speedup { .. } => "wall clock (demo)",
            Metric::Copies { .. } | Metric::CopyReduction { .. } => "syscall layer",
            Metric::UserCopies { .. } => "demo tally (user-space copies)",
            Metric::CopyCost { .. } => "CPU time (perf task-clock, else rusage) + demo tally",
            Metric::CopiedAnyway { .. } => "kernel notifications (demo tally)",
        }
    }

    /// The modes the figure is computed from.
    fn modes(&self) -> Vec<&'static str> {
        match *self {
            Metric::Speedup { mode, over }
            | Metric::CopyReduction { mode, over }
            | Metric::CopyCost { mode, over } => vec![mode, over],
            Metric::Copies { mode, .. }
            | Metric::UserCopies { mode }
            | Metric::CopiedAnyway { mode } => vec![mode],
        }
    }

    fn uses_syscall_layer(&self) -> bool {
        matches!(self, Metric::Copies { .. } | Metric::CopyReduction { .. })
    }

    /// The figure formatted for a table.
    pub fn format(&self, value: f64) -> String {
        match self {
            Metric::Speedup { .. } => format!("{value:.2}x"),
            Metric::Copies { .. } | Metric::UserCopies { .. } => {
                format!("{value:.2} B per payload B")
            }
            Metric::CopyReduction { .. } | Metric::CopiedAnyway { .. } => {
                units::percent(Some(value))
            }
            Metric::CopyCost { .. } => format!("{} ns", units::count(value.max(0.0) as u64)),
        }
    }
}

/// One claim of the seed guides.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub scenario: &'static str,
    /// The claim, in the guide's words as far as a table cell allows.
    pub text: &'static str,
    /// Which guide, which section.
    pub source: &'static str,
    /// The claimed figure as the guide states it.
    pub claimed: &'static str,
    /// The range that counts as agreeing.
    pub low: f64,
    pub high: f64,
    pub metric: Metric,
    /// Why a measurement here may differ from the claim.
    pub note: &'static str,
}

/// The Go guide's copy and slice benchmarks, ns per op.
const GO_COPY_NS: f64 = 4246.0;
const GO_SLICE_NS: f64 = 0.592;

static CLAIMS: [Claim; 18] = [
    Claim {
        scenario: "file-serve",
        text: "sendfile() can be 2-5x faster than read+write for large file transfers",
        source: "C# zero-copy guide, OS-level zero-copy",
        claimed: "2-5x",
        low: 2.0,
        high: 5.0,
        metric: Metric::Speedup {
            mode: "sendfile",
            over: "read-write",
        },
        note: "over loopback TCP the client copies every byte in every mode and bounds the \
               rate, and the sender's CPU time includes the receive path",
    },
    Claim {
        scenario: "file-serve",
        text: "4 GB of data movement to send 1 GB (file served with read+write)",
        source: "C# zero-copy guide, web server example",
        claimed: "4 B per payload B",
        low: 4.0,
        high: 4.0,
        metric: Metric::Copies {
            mode: "read-write",
            roles: &[],
        },
        note: "the syscall layer counts user/kernel copies only: the server's read and write \
               (2 per byte) and the client's read (1); the guide's disk DMA and NIC copies \
               are not user/kernel copies, and loopback has no NIC",
    },
    Claim {
        scenario: "file-serve",
        text: "with sendfile() the server program never copies the file's bytes",
        source: "C# zero-copy guide, OS-level zero-copy",
        claimed: "0 B per payload B",
        low: 0.0,
        high: 0.0,
        metric: Metric::Copies {
            mode: "sendfile",
            roles: &["server"],
        },
        note: "",
    },
    Claim {
        scenario: "file-serve",
        text: "MSG_ZEROCOPY sends from the application's pages: the kernel does not copy them",
        source: "issue 13: what a move to MSG_ZEROCOPY expects",
        claimed: "0% copied",
        low: 0.0,
        high: 0.0,
        metric: Metric::CopiedAnyway {
            mode: "msg-zerocopy",
        },
        note: "over loopback the kernel always copies (Documentation/networking/\
               msg_zerocopy.rst): every notification says SO_EE_CODE_ZEROCOPY_COPIED; only a \
               NIC that can send from the pinned pages avoids the copy",
    },
    Claim {
        scenario: "file-serve",
        text: "io_uring SEND_ZC sends without copying the data",
        source: "issue 13: what a move to io_uring SEND_ZC expects",
        claimed: "0% copied",
        low: 0.0,
        high: 0.0,
        metric: Metric::CopiedAnyway {
            mode: "io-uring-send-zc",
        },
        note: "over loopback the kernel always copies: every notification CQE carries \
               IORING_NOTIF_USAGE_ZC_COPIED",
    },
    Claim {
        scenario: "file-read",
        text: "mmap is nearly 2x faster than ReadAt for a 4 MiB file (94,650 vs 50,082 ns/op)",
        source: "Go zero-copy guide, memory mapping vs standard read",
        claimed: "1.89x",
        low: 1.5,
        high: 2.5,
        metric: Metric::Speedup {
            mode: "mmap",
            over: "read",
        },
        note: "the file is in the page cache; a fresh mapping pays a page fault per page \
               where read pays a copy, and one 4 MiB pass takes about a millisecond",
    },
    Claim {
        scenario: "file-read",
        text: "mapping the file removes the kernel-to-user read copies",
        source: "Go zero-copy guide, memory mapping",
        claimed: "0 B per payload B",
        low: 0.0,
        high: 0.0,
        metric: Metric::Copies {
            mode: "mmap",
            roles: &[],
        },
        note: "",
    },
    Claim {
        scenario: "in-process",
        text: "copying a 64 KiB buffer costs 4,246 ns per op (allocation included)",
        source: "Go zero-copy guide, BenchmarkCopy",
        claimed: "4,246 ns",
        low: GO_COPY_NS / 2.0,
        high: GO_COPY_NS * 2.0,
        metric: Metric::CopyCost {
            mode: "copy",
            over: "slice",
        },
        note: "measured as the extra CPU time of `copy` over `slice` per 64 KiB it copied, \
               allocation included; memory bandwidth and the allocator differ by machine",
    },
    Claim {
        scenario: "in-process",
        text: "re-slicing instead of copying 64 KiB: 0.592 vs 4,246 ns per op",
        source: "Go zero-copy guide, BenchmarkSlice vs BenchmarkCopy",
        claimed: "7,172x",
        low: GO_COPY_NS / GO_SLICE_NS / 2.0,
        high: GO_COPY_NS / GO_SLICE_NS * 2.0,
        metric: Metric::Speedup {
            mode: "slice",
            over: "copy",
        },
        note: "the Go benchmark's slice does no work at all; here both modes decode, \
               transform and checksum every byte, so the ratio is of whole pipelines",
    },
    Claim {
        scenario: "in-process",
        text: "a pipeline over spans instead of per-stage copies is 20-40% faster",
        source: "C# zero-copy guide, scenario 3 (data pipeline)",
        claimed: "1.2-1.4x",
        low: 1.2,
        high: 1.4,
        metric: Metric::Speedup {
            mode: "slice",
            over: "copy",
        },
        note: "how much faster depends on how much work each stage does per byte \
               compared with a memcpy of it",
    },
    Claim {
        scenario: "in-process",
        text: "a three-stage pipeline that copies at every stage copies the data 3 times",
        source: "C# zero-copy guide, scenario 3 (data pipeline)",
        claimed: "3 B per payload B",
        low: 3.0,
        high: 3.0,
        metric: Metric::UserCopies { mode: "copy" },
        note: "the demo also copies each payload (and its 24-byte header) out of the packet \
               before the three stages: 4 copies per byte plus headers; the syscall layer \
               sees none of these user-space copies",
    },
    Claim {
        scenario: "proxy",
        text: "relaying through a buffer moves each byte twice (read + write)",
        source: "C# zero-copy guide, scenario 2 (network data)",
        claimed: "2 B per payload B",
        low: 2.0,
        high: 2.0,
        metric: Metric::Copies {
            mode: "fresh-buffer",
            roles: &["proxy"],
        },
        note: "",
    },
    Claim {
        scenario: "proxy",
        text: "io.CopyBuffer's reused buffer avoids repeated allocations (faster)",
        source: "Go zero-copy guide, io.CopyBuffer",
        claimed: "> 1x",
        low: 1.0,
        high: f64::INFINITY,
        metric: Metric::Speedup {
            mode: "reused-buffer",
            over: "fresh-buffer",
        },
        note: "both modes make the same syscalls and copies; only an allocation per chunk \
               differs, which is small next to two kernel copies and within run-to-run noise",
    },
    Claim {
        scenario: "proxy",
        text: "zero-copy makes I/O-heavy programs 20-50% faster (splice relay)",
        source: "C# zero-copy guide, summary",
        claimed: "1.2-1.5x",
        low: 1.2,
        high: 1.5,
        metric: Metric::Speedup {
            mode: "splice",
            over: "fresh-buffer",
        },
        note: "the source and sink copy every byte in every mode and bound the rate; \
               only the proxy's copies are removed",
    },
    Claim {
        scenario: "pipe",
        text: "sharing one buffer instead of copying it per consumer: 1 MB instead of 6 MB \
               of memory operations (83% less)",
        source: "C# zero-copy guide, reference sharing",
        claimed: "83%",
        low: 0.80,
        high: 0.86,
        metric: Metric::CopyReduction {
            mode: "vmsplice",
            over: "read-write",
        },
        note: "both consumers must still read every byte to verify it, so 2 of the \
               baseline's 6 copies per byte remain",
    },
    Claim {
        scenario: "file-copy",
        text: "OS-level zero-copy removes the kernel-to-user and user-to-kernel copies",
        source: "C# zero-copy guide, OS-level zero-copy",
        claimed: "0 B per payload B",
        low: 0.0,
        high: 0.0,
        metric: Metric::Copies {
            mode: "copy-file-range",
            roles: &[],
        },
        note: "",
    },
    Claim {
        scenario: "file-copy",
        text: "zero-copy makes I/O-heavy programs 20-50% faster (copy_file_range)",
        source: "C# zero-copy guide, summary",
        claimed: "1.2-1.5x",
        low: 1.2,
        high: 1.5,
        metric: Metric::Speedup {
            mode: "copy-file-range",
            over: "read-write",
        },
        note: "on a page-cache-backed file system the copy is bounded by memory bandwidth; \
               some file systems share extents instead of copying (much faster)",
    },
    Claim {
        scenario: "file-copy",
        text: "sendfile() can be 2-5x faster for large file transfers (file to file)",
        source: "C# zero-copy guide, OS-level zero-copy",
        claimed: "2-5x",
        low: 2.0,
        high: 5.0,
        metric: Metric::Speedup {
            mode: "sendfile",
            over: "read-write",
        },
        note: "the guide's figure is for file to socket; file to file, sendfile still \
               copies page to page inside the kernel",
    },
];

/// Every claim, grouped by scenario in catalogue order.
pub fn claims() -> &'static [Claim] {
    &CLAIMS
}

/// Whether the measurement agrees with a claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "reason")]
pub enum Verdict {
    Agrees,
    Disagrees,
    /// No trustworthy figure (a mode missing, unverified, or not matched exactly).
    NotMeasured(String),
}

/// A claim beside what was measured.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub claim: &'static Claim,
    pub measured: Option<f64>,
    pub verdict: Verdict,
}

impl Evaluated {
    /// The measured figure as printed, or `-`.
    pub fn measured_text(&self) -> String {
        self.measured
            .map_or_else(|| "-".into(), |v| self.claim.metric.format(v))
    }
}

/// Sets `claim` beside the figures of its scenario's comparison.
pub fn evaluate(claim: &'static Claim, comparison: Option<&Comparison>) -> Evaluated {
    let not = |why: String| Evaluated {
        claim,
        measured: None,
        verdict: Verdict::NotMeasured(why),
    };
    let Some(c) = comparison else {
        return not(format!("{} was not run", claim.scenario));
    };
    for mode in claim.metric.modes() {
        if let Some(u) = c.unsupported.iter().find(|u| u.mode == mode) {
            return not(format!("mode {mode} is not supported here: {}", u.reason));
        }
        let Some(v) = c.variant(mode) else {
            return not(format!("mode {mode} was not run"));
        };
        if !v.verified {
            return not(format!("mode {mode} did not verify its payload"));
        }
        if claim.metric.uses_syscall_layer() && !v.exact() {
            return not(format!(
                "the profiler did not match the ground truth for mode {mode}"
            ));
        }
    }
    let get = |mode: &str| c.variant(mode);
    let measured = match claim.metric {
        Metric::Speedup { mode, over } => get(mode)
            .zip(get(over))
            .and_then(|(a, b)| ratio(a.throughput_bytes_per_sec, b.throughput_bytes_per_sec)),
        Metric::Copies { mode, roles } => get(mode).and_then(|v| v.copies_per_byte_of(roles)),
        Metric::CopyReduction { mode, over } => get(mode)
            .zip(get(over))
            .and_then(|(a, b)| ratio(a.copy_amplification?, b.copy_amplification?))
            .map(|r| 1.0 - r),
        Metric::UserCopies { mode } => {
            get(mode).and_then(|v| ratio(v.user_copy_bytes as f64, v.payload_bytes as f64))
        }
        Metric::CopyCost { mode, over } => get(mode).zip(get(over)).and_then(|(a, b)| {
            let extra_ns = (a.cpu_seconds - b.cpu_seconds) * 1e9;
            ratio(extra_ns, a.user_copy_bytes as f64 / 65_536.0)
        }),
        Metric::CopiedAnyway { mode } => get(mode).and_then(|v| {
            let (copied, requested) = v
                .workers
                .iter()
                .filter_map(|w| w.demo_zerocopy)
                .fold((0, 0), |(c, r), z| {
                    (c + z.copied.bytes, r + z.requested.bytes)
                });
            ratio(copied as f64, requested as f64)
        }),
    };
    let Some(value) = measured else {
        return not("the figure is undefined (nothing moved)".into());
    };
    Evaluated {
        claim,
        measured: Some(value),
        verdict: if within(value, claim.low, claim.high) {
            Verdict::Agrees
        } else {
            Verdict::Disagrees
        },
    }
}

/// `low <= value <= high`, forgiving float rounding of exact counts (3.0000000001).
fn within(value: f64, low: f64, high: f64) -> bool {
    let slack = 1e-9 * value.abs().max(1.0);
    value >= low - slack && value <= high + slack
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::compare::{KernelCopies, Variant, WorkerRow};
    use crate::model::Figures;

    fn variant(mode: &str, throughput: f64, copied: u64, wall: f64, user: u64) -> Variant {
        let figures = Figures {
            copy_k2u_bytes: copied,
            ..Figures::default()
        };
        Variant {
            mode: mode.into(),
            baseline: false,
            payload_bytes: 1000,
            verified: true,
            chunk_bytes: 100,
            figures,
            kernel: KernelCopies::default(),
            copy_amplification: Some(copied as f64 / 1000.0),
            zero_copy_ratio: None,
            user_copy_bytes: user,
            wall_seconds: wall,
            throughput_bytes_per_sec: throughput,
            cpu_seconds: wall,
            speedup: None,
            workers: vec![WorkerRow {
                role: "proxy".into(),
                pid: 1,
                figures,
                kernel: KernelCopies::default(),
                differences: Vec::new(),
                demo_io_uring: None,
                demo_zerocopy: None,
                mapped: None,
            }],
            copy_free: Vec::new(),
        }
    }

    fn comparison(variants: Vec<Variant>) -> Comparison {
        Comparison {
            scenario: "x".into(),
            baseline: "a".into(),
            variants,
            unsupported: Vec::new(),
            copy_source: None,
        }
    }

    fn claim(metric: Metric, low: f64, high: f64) -> &'static Claim {
        Box::leak(Box::new(Claim {
            scenario: "x",
            text: "",
            source: "",
            claimed: "",
            low,
            high,
            metric,
            note: "",
        }))
    }

    #[test]
    fn every_claim_names_a_real_scenario_and_modes() {
        for c in claims() {
            let info = zcprof_demos::scenario(c.scenario).expect(c.scenario);
            for mode in c.metric.modes() {
                assert!(info.mode(mode).is_some(), "{}: {mode}", c.scenario);
            }
            if let Metric::Copies { roles, .. } = c.metric {
                for r in roles {
                    assert!(info.roles.contains(r), "{}: {r}", c.scenario);
                }
            }
            assert!(c.low <= c.high, "{}", c.text);
        }
    }

    #[test]
    fn speedups_and_copies_are_ratios() {
        let c = comparison(vec![
            variant("a", 100.0, 3000, 1.0, 0),
            variant("b", 250.0, 1000, 0.5, 0),
        ]);
        let s = evaluate(
            claim(
                Metric::Speedup {
                    mode: "b",
                    over: "a",
                },
                2.0,
                5.0,
            ),
            Some(&c),
        );
        assert_eq!((s.measured, s.verdict), (Some(2.5), Verdict::Agrees));
        let k = evaluate(
            claim(
                Metric::Copies {
                    mode: "a",
                    roles: &[],
                },
                4.0,
                4.0,
            ),
            Some(&c),
        );
        assert_eq!(
            (k.measured, k.verdict.clone()),
            (Some(3.0), Verdict::Disagrees)
        );
        assert_eq!(k.measured_text(), "3.00 B per payload B");
        let r = evaluate(
            claim(
                Metric::CopyReduction {
                    mode: "b",
                    over: "a",
                },
                0.6,
                0.7,
            ),
            Some(&c),
        );
        assert!((r.measured.expect("defined") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.verdict, Verdict::Agrees);
    }

    #[test]
    fn copy_cost_is_extra_cpu_time_per_64k_copied() {
        // 4 MiB copied = 64 units of 64 KiB; 0.1 ms extra = 100,000 ns / 64.
        let c = comparison(vec![
            variant("copy", 1.0, 0, 0.0012, 4 << 20),
            variant("slice", 1.0, 0, 0.0011, 0),
        ]);
        let e = evaluate(
            claim(
                Metric::CopyCost {
                    mode: "copy",
                    over: "slice",
                },
                0.0,
                1e9,
            ),
            Some(&c),
        );
        let ns = e.measured.expect("defined");
        assert!((ns - 100_000.0 / 64.0).abs() < 1e-3, "{ns}");
        assert_eq!(e.measured_text(), "1,562 ns");
    }

    /// The share the kernel copied of what was sent zero-copy, from the demo's tally of its
    /// notifications; a mode the kernel cannot run leaves the claim not measured, saying why.
    #[test]
    fn copied_anyway_is_the_kernel_reported_share_and_unsupported_is_not_measured() {
        use zcprof_demos::Counter;
        use zcprof_demos::zerocopy::{Sends, Via, ZeroCopyReport};
        let mut zc = variant("zc", 1.0, 1000, 1.0, 0);
        zc.workers[0].demo_zerocopy = Some(ZeroCopyReport {
            via: Via::MsgZerocopy,
            requested: Counter {
                calls: 4,
                bytes: 1000,
                errors: 0,
            },
            notifications: 2,
            copied: Sends {
                sends: 3,
                bytes: 750,
            },
            not_copied: Sends {
                sends: 1,
                bytes: 250,
            },
        });
        let mut c = comparison(vec![zc]);
        let metric = Metric::CopiedAnyway { mode: "zc" };
        let e = evaluate(claim(metric, 0.0, 0.0), Some(&c));
        assert_eq!(
            (e.measured, e.verdict.clone()),
            (Some(0.75), Verdict::Disagrees)
        );
        assert_eq!(metric.source(), "kernel notifications (demo tally)");
        c.variants.clear();
        c.unsupported.push(crate::demo::compare::Unsupported {
            mode: "zc".into(),
            reason: "no SEND_ZC usage reports".into(),
        });
        let e = evaluate(claim(metric, 0.0, 0.0), Some(&c));
        assert_eq!(
            e.verdict,
            Verdict::NotMeasured("mode zc is not supported here: no SEND_ZC usage reports".into())
        );
    }

    #[test]
    fn untrustworthy_figures_are_not_measured() {
        let mut bad = variant("a", 100.0, 3000, 1.0, 0);
        bad.workers[0].differences.push("read: …".into());
        let c = comparison(vec![bad, variant("b", 1.0, 0, 1.0, 0)]);
        let copies = evaluate(
            claim(
                Metric::Copies {
                    mode: "a",
                    roles: &[],
                },
                3.0,
                3.0,
            ),
            Some(&c),
        );
        assert!(matches!(copies.verdict, Verdict::NotMeasured(_)));
        // Timings do not depend on the profiler's match.
        let speed = evaluate(
            claim(
                Metric::Speedup {
                    mode: "b",
                    over: "a",
                },
                0.0,
                1.0,
            ),
            Some(&c),
        );
        assert_eq!(speed.verdict, Verdict::Agrees);
        let missing = evaluate(
            claim(
                Metric::Speedup {
                    mode: "z",
                    over: "a",
                },
                0.0,
                1.0,
            ),
            Some(&c),
        );
        assert!(matches!(missing.verdict, Verdict::NotMeasured(_)));
        assert!(matches!(
            evaluate(claims().first().expect("some"), None).verdict,
            Verdict::NotMeasured(_)
        ));
    }

    #[test]
    fn exact_counts_forgive_rounding() {
        assert!(within(3.000_000_000_1, 3.0, 3.0));
        assert!(!within(3.01, 3.0, 3.0));
        assert!(within(7.0, 1.0, f64::INFINITY));
    }
}
