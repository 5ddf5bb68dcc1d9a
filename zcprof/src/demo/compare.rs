//! The comparison of a scenario's variants (pure): each worker checked against the demo's
//! ground truth, and the figures a user compares between modes.
//!
//! Bytes, calls, copy amplification and the zero-copy ratio come from the **syscall and
//! io_uring layers** (what zcprof counted for the variant's worker processes, summed as
//! `run` sums them); throughput and CPU time come from the demo (its wall clock and its
//! workers' rusage). A figure derived from a worker the profiler did not match exactly is
//! still shown, but the variant is marked.
//!
//! The **kernel layer** adds one figure beside them, never into them: the bytes its copy
//! role's probes saw copied (see [`KernelCopies`]). The demo has no ground truth for it.
//!
//! The demo's own tallies of each worker's io_uring requests and of its zero-copy sends
//! with what their notifications said (`demo_io_uring`, `demo_zerocopy`) are carried
//! beside the figures: they are the ground truth the io_uring layer and the zero-copy
//! split are checked against, opcode by opcode.

use serde::Serialize;
use zcprof_common::{io_uring, kernel::Role};
use zcprof_demos::uring::IoUringReport;
use zcprof_demos::zerocopy::ZeroCopyReport;
use zcprof_demos::{Counter, RoleReport, ScenarioInfo};
use zcprof_recording::MsgZerocopy;

use super::measure::{Measured, WorkerMeasure};
use crate::model::{Figures, IoUringOps, KernelProbes, Totals};

/// Every difference between what the profiler attributed to a worker and what the worker
/// tallied itself; empty means exact.
pub fn differences(expected: &RoleReport, worker: &WorkerMeasure) -> Vec<String> {
    let Some(seen) = &worker.seen else {
        return vec![format!(
            "pid {} not found among the demo's descendants",
            worker.pid
        )];
    };
    let mut out = Vec::new();
    if !seen.forked {
        out.push("its fork was not seen".to_string());
    }
    if !seen.exited {
        out.push("its exit was not seen".to_string());
    }
    let names = expected
        .syscalls
        .keys()
        .chain(seen.syscalls.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for name in names {
        let want = expected.syscalls.get(name).copied().unwrap_or_default();
        let got = seen.syscalls.get(name).copied().unwrap_or_default();
        if want != got {
            out.push(format!(
                "{name}: profiler {}, demo {}",
                triple(&got),
                triple(&want)
            ));
        }
    }
    out.extend(io_uring_differences(
        expected.io_uring.as_ref(),
        &seen.io_uring,
    ));
    // Zero-copy sends (MSG_ZEROCOPY or io_uring SEND_ZC) and what their notifications said,
    // against the demo's own tally.
    let z = seen.figures.msg_zerocopy;
    let want = expected
        .zerocopy
        .map_or_else(MsgZerocopy::default, |t| MsgZerocopy {
            requested_bytes: t.requested.bytes,
            requested_sends: t.requested.calls - t.requested.errors,
            done_sends: t.not_copied.sends,
            copied_sends: t.copied.sends,
        });
    if z != want {
        out.push(format!("zero-copy sends: profiler {z:?}, demo {want:?}"));
    }
    // The mapped layer's pages of the worker's input file against the pages it touched
    // through its one mapping; only where the layer attached (Linux 6.12+).
    // Only where the worker's own loads read the mapping: pages the kernel reads itself
    // (write/send from a mapping) may be mapped without the tracepoints firing. A lower
    // bound even then: a kernel that maps a large folio at once (6.18) reports part of it,
    // so the profiler may see fewer pages than were touched, but never more, and not none.
    if let (Some(m), Some(files)) = (&expected.mapped, &seen.mapped_files)
        && !m.by_kernel
    {
        let got: u64 = files
            .iter()
            .filter(|f| f.dev == m.dev && f.ino == m.ino)
            .map(|f| f.pages)
            .sum();
        if got == 0 || got > m.pages {
            out.push(format!(
                "mapped pages of {} ino {}: profiler {got}, demo {} (a lower bound, above 0)",
                m.dev, m.ino, m.pages
            ));
        }
    }
    out
}

/// The io_uring layer against the worker's ring tally: per opcode its completions, bytes
/// and errors, and the SEND_ZC notifications; a worker without a ring has no io_uring counts.
fn io_uring_differences(tally: Option<&IoUringReport>, got: &Totals<IoUringOps>) -> Vec<String> {
    if got.unseen_calls() > 0 {
        return vec![zcprof_recording::diff::IO_URING_CAVEAT.to_string()];
    }
    let Some(tally) = tally else {
        return match got.requests().next() {
            Some(_) => vec!["io_uring completions counted for a worker without a ring".into()],
            None => Vec::new(),
        };
    };
    let mut out = Vec::new();
    for code in 0..io_uring::OPCODES {
        let want = tally
            .ops
            .values()
            .find(|op| usize::from(op.opcode) == code)
            .map(|op| Counter {
                calls: op.calls,
                bytes: op.bytes,
                errors: op.errors,
            })
            .unwrap_or_default();
        let s = &got[code];
        let have = Counter {
            calls: s.calls,
            bytes: s.bytes,
            errors: s.errors,
        };
        if have != want {
            out.push(format!(
                "io_uring {}: profiler {}, demo {}",
                io_uring::OPS[code].name,
                triple(&have),
                triple(&want)
            ));
        }
    }
    let notifications: u64 = tally.ops.values().map(|op| op.notifications).sum();
    let seen = got[io_uring::NOTIF as usize].calls;
    if seen != notifications {
        out.push(format!(
            "io_uring SEND_ZC notifications: profiler {seen}, demo {notifications}"
        ));
    }
    out
}

fn triple(c: &Counter) -> String {
    format!("{} calls/{} B/{} errors", c.calls, c.bytes, c.errors)
}

/// The kernel layer's copies: bytes counted by the probes of the session's copy role only
/// (`probes::copy_source`: the copy primitives, else `__check_object_size`), since
/// probes of different roles see the same bytes. All `None` when no copy role attached
/// (also the `Default`): the kernel layer could not see the copies, which `0` would deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelCopies {
    pub copy_source: Option<&'static str>,
    pub copy_k2u_bytes: Option<u64>,
    pub copy_u2k_bytes: Option<u64>,
}

impl KernelCopies {
    pub fn of(k: &Totals<KernelProbes>, source: Option<Role>) -> KernelCopies {
        let copied = source.map(|role| k.copied(role));
        KernelCopies {
            copy_source: source.map(Role::name),
            copy_k2u_bytes: copied.map(|(k2u, _)| k2u),
            copy_u2k_bytes: copied.map(|(_, u2k)| u2k),
        }
    }

    /// Both directions; `None` when no copy role attached.
    pub fn copied_bytes(&self) -> Option<u64> {
        Some(self.copy_k2u_bytes? + self.copy_u2k_bytes?)
    }
}

/// One worker in a comparison.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerRow {
    pub role: String,
    pub pid: u32,
    /// Syscall and io_uring layers; zero when the worker was not found.
    pub figures: Figures,
    /// Kernel layer; zero bytes (from the copy role) when the worker was not found.
    pub kernel: KernelCopies,
    /// Profiler versus ground truth; empty when exact.
    pub differences: Vec<String>,
    /// The demo's tally of the worker's io_uring use (the io_uring layer's ground truth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_io_uring: Option<IoUringReport>,
    /// The demo's tally of the worker's zero-copy sends and their notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_zerocopy: Option<ZeroCopyReport>,
    /// What replaced the read copy when the worker maps its input file: the pages it
    /// touched (the demo's tally) and the mapped layer's pages of that file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped: Option<MappedRow>,
}

/// A worker's mapped file pages: the demo's tally and zcprof's mapped layer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MappedRow {
    pub demo_pages: u64,
    /// The kernel read the mapping (no exact comparison: see the README).
    pub by_kernel: bool,
    /// `None` when the mapped layer did not attach (Linux < 6.12).
    pub profiler_pages: Option<u64>,
    /// The worker's page faults, minor and major, as the kernel counted them for the
    /// process (getrusage): every mapping of the process, not only the file's. The mapped
    /// layer's tracepoints do not say which of its pages needed I/O; these do, per worker.
    pub minor_faults: u64,
    pub major_faults: u64,
}

/// A role that the catalogue says makes no copy-family syscall in this mode.
#[derive(Clone, Debug, Serialize)]
pub struct CopyFree {
    pub role: String,
    /// Copy-family calls and bytes the syscall and io_uring layers attributed to it.
    pub copy_calls: u64,
    pub copied_bytes: u64,
    /// Found, and zero copy-family calls.
    pub ok: bool,
}

/// One mode of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Variant {
    pub mode: String,
    pub baseline: bool,
    pub payload_bytes: u64,
    pub verified: bool,
    pub chunk_bytes: u64,
    /// Sum over the variant's worker processes (syscall and io_uring layers).
    pub figures: Figures,
    /// Sum over the variant's worker processes (kernel layer).
    pub kernel: KernelCopies,
    /// Bytes copied across the user/kernel boundary per payload byte (syscall and io_uring
    /// layers).
    pub copy_amplification: Option<f64>,
    /// Zero-copy bytes over all moved bytes (syscall and io_uring layers).
    pub zero_copy_ratio: Option<f64>,
    /// Bytes the workers copied in user space (the demo's tally; invisible to syscalls).
    pub user_copy_bytes: u64,
    pub wall_seconds: f64,
    pub throughput_bytes_per_sec: f64,
    /// CPU time of the workers: perf task-clock where the demo could open it, else rusage
    /// user + system.
    pub cpu_seconds: f64,
    /// Throughput over the baseline's; `None` when either is zero.
    pub speedup: Option<f64>,
    pub workers: Vec<WorkerRow>,
    pub copy_free: Vec<CopyFree>,
}

impl Variant {
    /// Every worker matched its ground truth exactly.
    pub fn exact(&self) -> bool {
        self.workers.iter().all(|w| w.differences.is_empty())
    }

    /// Every copy-free role really made no copy-family syscall.
    pub fn copy_free_ok(&self) -> bool {
        self.copy_free.iter().all(|c| c.ok)
    }

    /// Copy amplification of some roles only (all when `roles` is empty).
    pub fn copies_per_byte_of(&self, roles: &[&str]) -> Option<f64> {
        let copied: u64 = self
            .workers
            .iter()
            .filter(|w| roles.is_empty() || roles.contains(&w.role.as_str()))
            .map(|w| w.figures.copied_bytes())
            .sum();
        ratio(copied as f64, self.payload_bytes as f64)
    }
}

/// A mode this kernel cannot run, skipped with the demo's reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unsupported {
    pub mode: String,
    pub reason: String,
}

/// All compared modes of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub baseline: String,
    pub variants: Vec<Variant>,
    /// Modes not run because this kernel cannot (not a mismatch, not a failure).
    pub unsupported: Vec<Unsupported>,
    /// The kernel-layer role behind every [`KernelCopies`] here, for the text to name;
    /// the JSON names it in each `kernel` object instead.
    #[serde(skip)]
    pub copy_source: Option<Role>,
}

impl Comparison {
    /// Builds the comparison of `runs` (one per mode, in display order) of scenario `info`;
    /// kernel copies come from the probes of `copy_source` (`probes::copy_source` of
    /// the session's layers).
    pub fn new(info: &ScenarioInfo, runs: &[Measured], copy_source: Option<Role>) -> Comparison {
        let mut variants: Vec<Variant> =
            runs.iter().map(|m| variant(info, m, copy_source)).collect();
        let base = variants
            .iter()
            .find(|v| v.mode == info.baseline)
            .map(|v| v.throughput_bytes_per_sec);
        for v in &mut variants {
            v.speedup = base.and_then(|b| ratio(v.throughput_bytes_per_sec, b));
        }
        Comparison {
            scenario: info.name.to_string(),
            baseline: info.baseline.to_string(),
            variants,
            unsupported: Vec::new(),
            copy_source,
        }
    }

    pub fn variant(&self, mode: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.mode == mode)
    }

    /// Every worker of every variant was exact and every copy-free role was copy-free.
    pub fn all_exact(&self) -> bool {
        self.variants.iter().all(|v| v.exact() && v.copy_free_ok())
    }
}

fn variant(info: &ScenarioInfo, m: &Measured, copy_source: Option<Role>) -> Variant {
    let r = &m.report;
    let mut figures = Figures::default();
    // Summed per probe, then reduced to the copy role once, as `run` does for its total.
    let mut kernel = Totals::<KernelProbes>::zero();
    let mut workers = Vec::new();
    for (expected, w) in r.roles.iter().zip(&m.workers) {
        let f = w.seen.as_ref().map(|s| s.figures).unwrap_or_default();
        figures.add(&f);
        let k = w.seen.as_ref().map(|s| &s.kernel);
        if let Some(k) = k {
            kernel.add(k);
        }
        workers.push(WorkerRow {
            role: w.role.clone(),
            pid: w.pid,
            figures: f,
            kernel: KernelCopies::of(k.unwrap_or(&Totals::<KernelProbes>::zero()), copy_source),
            differences: differences(expected, w),
            demo_io_uring: expected.io_uring.clone(),
            demo_zerocopy: expected.zerocopy,
            mapped: expected.mapped.as_ref().map(|m| MappedRow {
                demo_pages: m.pages,
                by_kernel: m.by_kernel,
                minor_faults: expected.minor_faults,
                major_faults: expected.major_faults,
                profiler_pages: w.seen.as_ref().and_then(|s| s.mapped_files.as_ref()).map(
                    |files| {
                        files
                            .iter()
                            .filter(|f| f.dev == m.dev && f.ino == m.ino)
                            .map(|f| f.pages)
                            .sum()
                    },
                ),
            }),
        });
    }
    if r.roles.len() != m.workers.len() {
        // Cannot happen with `measure`, which maps roles one to one; say so if it does.
        if let Some(first) = workers.first_mut() {
            first
                .differences
                .push("worker count differs from the report".into());
        }
    }
    let copy_free = info
        .mode(&r.mode)
        .map(|mode| mode.copy_free_roles)
        .unwrap_or_default()
        .iter()
        .map(|role| {
            let seen = m
                .workers
                .iter()
                .find(|w| w.role == *role)
                .and_then(|w| w.seen.as_ref());
            let (calls, bytes) = seen.map_or((0, 0), |s| (s.copy_calls, s.figures.copied_bytes()));
            CopyFree {
                role: role.to_string(),
                copy_calls: calls,
                copied_bytes: bytes,
                ok: seen.is_some() && calls == 0 && bytes == 0,
            }
        })
        .collect();
    Variant {
        mode: r.mode.clone(),
        baseline: r.mode == info.baseline,
        payload_bytes: r.payload_bytes,
        verified: r.verified,
        chunk_bytes: r.chunk_bytes,
        copy_amplification: ratio(figures.copied_bytes() as f64, r.payload_bytes as f64),
        zero_copy_ratio: figures.zero_copy_ratio(),
        figures,
        kernel: KernelCopies::of(&kernel, copy_source),
        user_copy_bytes: r.roles.iter().map(|x| x.user_copy_bytes).sum(),
        wall_seconds: r.wall_seconds,
        throughput_bytes_per_sec: r.throughput_bytes_per_sec,
        cpu_seconds: r
            .roles
            .iter()
            // task-clock where the demo could read it (exact to the scheduler), else rusage.
            .map(|x| {
                x.perf
                    .map_or(x.cpu_user_seconds + x.cpu_system_seconds, |p| {
                        p.task_clock_seconds
                    })
            })
            .sum(),
        speedup: None,
        workers,
        copy_free,
    }
}

/// `a / b`, or `None` when `b` is not a positive finite number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && b.is_finite() && a.is_finite()).then(|| a / b)
}

/// Of several runs of one mode, the one to show: the first whose profile was not exact
/// (a mismatch must never be hidden by a repeat), else the median by throughput.
pub fn representative(mut runs: Vec<Measured>) -> Option<Measured> {
    let inexact = runs.iter().position(|m| {
        m.report
            .roles
            .iter()
            .zip(&m.workers)
            .any(|(e, w)| !differences(e, w).is_empty())
    });
    if let Some(i) = inexact {
        return Some(runs.swap_remove(i));
    }
    runs.sort_by(|a, b| {
        a.report
            .throughput_bytes_per_sec
            .total_cmp(&b.report.throughput_bytes_per_sec)
    });
    let mid = runs.len() / 2;
    (!runs.is_empty()).then(|| runs.swap_remove(mid))
}

#[cfg(test)]
mod tests {
    use zcprof_common::kernel::id;
    use zcprof_demos::Report;

    use super::*;
    use crate::demo::measure::Seen;

    fn counter(calls: u64, bytes: u64) -> Counter {
        Counter {
            calls,
            bytes,
            errors: 0,
        }
    }

    fn role(name: &str, pid: i32, syscalls: &[(&str, Counter)]) -> RoleReport {
        RoleReport {
            role: name.into(),
            pid,
            syscalls: syscalls.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            copy_family: Counter::default(),
            zero_copy_family: Counter::default(),
            user_copy_bytes: 0,
            payload_bytes: 0,
            cpu_user_seconds: 0.5,
            cpu_system_seconds: 0.25,
            minor_faults: 0,
            major_faults: 0,
            perf: None,
            io_uring: None,
            zerocopy: None,
            mapped: None,
        }
    }

    /// A worker seen with exactly the role's counters (sorted into copy/zero-copy the way
    /// the syscall table does for read/write/sendfile), and by the kernel layer as
    /// `__check_object_size` would see them, with the socket-receive breakdown counting
    /// every read again (as if all were from a socket).
    fn seen_as(r: &RoleReport) -> WorkerMeasure {
        let mut f = Figures::default();
        let mut k = Totals::<KernelProbes>::zero();
        let mut copy_calls = 0;
        for (name, c) in &r.syscalls {
            let mut kernel = |probe: u32| {
                let s = &mut k[probe as usize];
                s.calls += c.calls;
                s.bytes += c.bytes;
            };
            match name.as_str() {
                "read" => {
                    f.copy_k2u_bytes += c.bytes;
                    kernel(id::CHECK_OBJECT_SIZE_TO_USER);
                    kernel(id::SKB_COPY_DATAGRAM_ITER);
                }
                "write" => {
                    f.copy_u2k_bytes += c.bytes;
                    kernel(id::CHECK_OBJECT_SIZE_FROM_USER);
                }
                _ => f.zero_copy_bytes += c.bytes,
            }
            if name != "sendfile" {
                copy_calls += c.calls;
            }
            f.calls += c.calls;
        }
        WorkerMeasure {
            role: r.role.clone(),
            pid: r.pid as u32,
            seen: Some(Seen {
                forked: true,
                exited: true,
                syscalls: r.syscalls.clone(),
                figures: f,
                copy_calls,
                io_uring: Totals::zero(),
                kernel: k,
                mapped_files: None,
            }),
        }
    }

    fn run(mode: &str, throughput: f64, roles: Vec<RoleReport>) -> Measured {
        let workers = roles.iter().map(seen_as).collect();
        Measured {
            report: Report {
                scenario: "file-serve".into(),
                mode: mode.into(),
                baseline: mode == "read-write",
                payload_bytes: 1000,
                verified: true,
                chunk_bytes: 100,
                requested_bytes: Some(1000),
                requested_seconds: None,
                wall_seconds: 1000.0 / throughput,
                throughput_bytes_per_sec: throughput,
                parent_pid: 1,
                roles,
            },
            workers,
        }
    }

    fn file_serve(copy_source: Option<Role>) -> Comparison {
        let info = zcprof_demos::scenario("file-serve").expect("catalogue");
        let rw = run(
            "read-write",
            100.0,
            vec![
                role(
                    "server",
                    10,
                    &[("read", counter(11, 1000)), ("write", counter(10, 1000))],
                ),
                role("client", 11, &[("read", counter(11, 1000))]),
            ],
        );
        let sf = run(
            "sendfile",
            250.0,
            vec![
                role("server", 20, &[("sendfile", counter(10, 1000))]),
                role("client", 21, &[("read", counter(11, 1000))]),
            ],
        );
        Comparison::new(info, &[rw, sf], copy_source)
    }

    #[test]
    fn amplification_ratio_and_speedup() {
        let c = file_serve(Some(Role::CrossCheck));
        let rw = c.variant("read-write").expect("baseline");
        assert_eq!(rw.copy_amplification, Some(3.0));
        assert_eq!(rw.zero_copy_ratio, Some(0.0));
        assert_eq!(rw.speedup, Some(1.0));
        assert_eq!(rw.copies_per_byte_of(&["server"]), Some(2.0));
        assert_eq!(rw.cpu_seconds, 1.5);
        let sf = c.variant("sendfile").expect("sendfile");
        assert_eq!(sf.copy_amplification, Some(1.0));
        assert_eq!(sf.zero_copy_ratio, Some(0.5));
        assert_eq!(sf.speedup, Some(2.5));
        assert_eq!(sf.copies_per_byte_of(&["server"]), Some(0.0));
        assert!(c.all_exact());
        assert_eq!(sf.copy_free.len(), 1);
        assert!(sf.copy_free[0].ok);
    }

    #[test]
    fn kernel_copies_come_from_the_copy_role_alone() {
        let c = file_serve(Some(Role::CrossCheck));
        assert_eq!(c.copy_source, Some(Role::CrossCheck));
        let rw = c.variant("read-write").expect("baseline");
        // Summed over server and client; the skb breakdown's 2000 B are not added.
        assert_eq!(
            rw.kernel,
            KernelCopies {
                copy_source: Some("cross_check"),
                copy_k2u_bytes: Some(2000),
                copy_u2k_bytes: Some(1000),
            }
        );
        assert_eq!(rw.kernel.copied_bytes(), Some(3000));
        assert_eq!(rw.workers[0].kernel.copied_bytes(), Some(2000));
        assert_eq!(rw.workers[1].kernel.copy_k2u_bytes, Some(1000));
        let sf = c.variant("sendfile").expect("sendfile");
        assert_eq!(sf.workers[0].kernel.copied_bytes(), Some(0));

        // A worker the profiler did not find shows zero bytes, like its syscall figures
        // (its mismatch is named), not the absence of a probe.
        let info = zcprof_demos::scenario("file-serve").expect("catalogue");
        let mut m = run("sendfile", 1.0, vec![role("client", 21, &[])]);
        m.workers[0].seen = None;
        let lost = Comparison::new(info, &[m], Some(Role::CrossCheck));
        assert_eq!(lost.variants[0].workers[0].kernel.copied_bytes(), Some(0));
    }

    #[test]
    fn no_copy_role_means_no_kernel_copy_figure() {
        let c = file_serve(None);
        assert_eq!(c.copy_source, None);
        for v in &c.variants {
            // The counters fired (the skb breakdown), yet without a copy role there is no
            // figure to make of them: `None`, never 0.
            assert_eq!(v.kernel, KernelCopies::default(), "{}", v.mode);
            assert_eq!(v.kernel.copied_bytes(), None);
            for w in &v.workers {
                assert_eq!(w.kernel.copy_source, None);
                assert_eq!(w.kernel.copy_k2u_bytes, None);
            }
        }
        // The syscall layer does not depend on it.
        let rw = c.variant("read-write").expect("baseline");
        assert_eq!(rw.copy_amplification, Some(3.0));
    }

    #[test]
    fn a_difference_is_named() {
        let expected = role("server", 5, &[("read", counter(2, 10))]);
        let mut w = seen_as(&expected);
        if let Some(s) = &mut w.seen {
            s.syscalls.insert("read".into(), counter(2, 9));
            s.syscalls.insert("write".into(), counter(1, 1));
        }
        let d = differences(&expected, &w);
        assert_eq!(
            d,
            [
                "read: profiler 2 calls/9 B/0 errors, demo 2 calls/10 B/0 errors",
                "write: profiler 1 calls/1 B/0 errors, demo 0 calls/0 B/0 errors"
            ]
        );
        w.seen = None;
        assert_eq!(differences(&expected, &w).len(), 1);
        let mut unfinished = seen_as(&expected);
        if let Some(s) = &mut unfinished.seen {
            s.exited = false;
        }
        assert_eq!(
            differences(&expected, &unfinished),
            ["its exit was not seen"]
        );
    }

    #[test]
    fn copies_by_a_copy_free_role_fail_the_check() {
        let info = zcprof_demos::scenario("file-serve").expect("catalogue");
        let server = role("server", 20, &[("sendfile", counter(10, 1000))]);
        let mut m = run("sendfile", 1.0, vec![server]);
        if let Some(s) = &mut m.workers[0].seen {
            s.copy_calls = 1;
        }
        let c = Comparison::new(info, &[m], None);
        assert!(!c.variants[0].copy_free_ok());
        assert!(!c.all_exact());
        // No baseline among the runs: no speed-up rather than a made-up one.
        assert_eq!(c.variants[0].speedup, None);
    }

    #[test]
    fn representative_is_the_median_or_a_mismatch() {
        let mk = |t: f64| run("read-write", t, vec![role("client", 1, &[])]);
        let pick = representative(vec![mk(3.0), mk(1.0), mk(2.0)]).expect("one");
        assert_eq!(pick.report.throughput_bytes_per_sec, 2.0);
        let mut bad = mk(9.0);
        bad.workers[0].seen = None;
        let pick = representative(vec![mk(3.0), bad, mk(2.0)]).expect("one");
        assert_eq!(pick.report.throughput_bytes_per_sec, 9.0);
        assert!(representative(Vec::new()).is_none());
    }

    #[test]
    fn ratios_refuse_empty_denominators() {
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(1.0, f64::NAN), None);
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
    }
}
