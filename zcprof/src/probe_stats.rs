//! The probes' own cost, from the kernel's BPF run-time statistics (issue 15): how long
//! zcprof's programs ran and how often (each loaded program's `bpf_prog_info.run_time_ns`
//! and `run_cnt`, read after every batch), as figures per interval and per session.
//!
//! The kernel keeps those counters only while statistics are on, and keeping them costs
//! about 20 ns per program run (the clock read around each run), so zcprof turns them on
//! only for `--probe-stats`. It does so with `BPF_ENABLE_STATS`, whose fd keeps them on
//! while it is open: the kernel drops that reference when the fd closes, however zcprof
//! ends (SIGKILL included), and leaves `kernel.bpf_stats_enabled` as it found it. Writing
//! the sysctl instead would leave statistics on after a crash (bpftop #34). When the sysctl
//! is already 1 the counters run anyway, so they are shown without the flag too: that
//! costs nothing more.
//!
//! Invariant: a [`Cost`] covers only zcprof's own programs, every one that is loaded, runs
//! weighted (ns per run is total run time over total runs, not a mean of per-program means).

use std::{io, os::fd::OwnedFd, time::Instant};

use aya::Ebpf;
use serde::Serialize;

/// The sysctl that turns statistics on for everyone. It reads back what was last written
/// to it, not whether statistics are on: a `BPF_ENABLE_STATS` fd turns them on without
/// changing it (kernel/bpf/syscall.c, `bpf_stats_handler`: both only count references on
/// one static key, and the handler keeps its own `saved_val`).
pub const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Whether `kernel.bpf_stats_enabled` reads 1 now; `None` when it cannot be read (a kernel
/// without BPF statistics).
pub fn sysctl_on() -> Option<bool> {
    std::fs::read_to_string(SYSCTL)
        .ok()
        .map(|text| text.trim() == "1")
}

/// Who turned the statistics on that a [`Cost`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnabledBy {
    /// `--probe-stats`: zcprof holds a `BPF_ENABLE_STATS` fd while its probes are attached.
    Zcprof,
    /// `kernel.bpf_stats_enabled` was 1 when zcprof started (someone else's setting).
    Sysctl,
}

impl EnabledBy {
    /// Its name in JSON and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            EnabledBy::Zcprof => "zcprof",
            EnabledBy::Sysctl => "sysctl",
        }
    }
}

/// Whether this kernel lets zcprof turn statistics on: tries `BPF_ENABLE_STATS` and closes
/// the fd at once (`zcprof doctor`).
pub fn allowed() -> Result<(), Refused> {
    enable().map(drop)
}

/// Statistics that are on for this session; they stay on (for zcprof's part) while this
/// lives.
#[derive(Debug)]
pub struct Enabled {
    /// The `BPF_ENABLE_STATS` reference; `None` when the sysctl had them on already and
    /// zcprof was not asked to.
    _fd: Option<OwnedFd>,
    pub by: EnabledBy,
}

/// `--probe-stats` was given and the kernel would not turn statistics on.
#[derive(Debug, thiserror::Error)]
#[error("the kernel refused BPF_ENABLE_STATS (BPF run-time statistics, Linux 5.8+): {0}")]
pub struct Refused(#[source] pub io::Error);

/// Asks the kernel for run-time statistics (`BPF_ENABLE_STATS`, `BPF_STATS_RUN_TIME`,
/// Linux 5.8+; it needs CAP_SYS_ADMIN, which CAP_BPF does not replace: EPERM without it);
/// they are on until the returned fd closes.
pub fn enable() -> Result<OwnedFd, Refused> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(|err| Refused(err.io_error))
}

/// The statistics this session reports: turned on by zcprof when `requested`, else those the
/// sysctl has on already, else none. Fails only when `requested` and the kernel refused
/// while the sysctl is off.
pub fn start(requested: bool) -> Result<Option<Enabled>, Refused> {
    let sysctl = || sysctl_on() == Some(true);
    if requested {
        return match enable() {
            Ok(fd) => Ok(Some(Enabled {
                _fd: Some(fd),
                by: EnabledBy::Zcprof,
            })),
            Err(_) if sysctl() => Ok(Some(Enabled {
                _fd: None,
                by: EnabledBy::Sysctl,
            })),
            Err(err) => Err(err),
        };
    }
    Ok(sysctl().then_some(Enabled {
        _fd: None,
        by: EnabledBy::Sysctl,
    }))
}

/// Run time and runs, cumulative, of every loaded program together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub run_time_ns: u64,
    pub runs: u64,
}

impl Counters {
    /// The sums over `ebpf`'s loaded programs (one `BPF_OBJ_GET_INFO_BY_FD` each: no read
    /// of /proc, which zcprof's own probes would count). A program that did not load has no
    /// counters and adds nothing.
    pub fn of(ebpf: &Ebpf) -> Counters {
        ebpf.programs()
            .filter_map(|(_, program)| program.info().ok())
            .fold(Counters::default(), |sum, info| Counters {
                run_time_ns: sum
                    .run_time_ns
                    .saturating_add(u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX)),
                runs: sum.runs.saturating_add(info.run_count()),
            })
    }

    /// What ran between `before` and `self` (zero rather than negative should a program
    /// have gone meanwhile).
    fn since(self, before: Counters) -> Counters {
        Counters {
            run_time_ns: self.run_time_ns.saturating_sub(before.run_time_ns),
            runs: self.runs.saturating_sub(before.runs),
        }
    }
}

/// The probes' cost over a span of time (an interval, or a whole `run`), as `top --json`,
/// `run --json` and the OpenMetrics export carry it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cost {
    pub enabled_by: EnabledBy,
    /// Program runs (one per probe hit) in the span.
    pub runs: u64,
    /// Their run time, nanoseconds.
    pub run_time_ns: u64,
    /// `run_time_ns / runs`; `null` when nothing ran.
    pub ns_per_run: Option<f64>,
    /// `run_time_ns` over the span's length, percent of one CPU (as zcprof's own CPU is
    /// given: 100 is one core busy all the time, whatever the number of cores); `null`
    /// for a span of no length.
    pub cpu_percent: Option<f64>,
}

impl Cost {
    /// The cost of `ran` over `seconds`.
    pub fn over(ran: Counters, seconds: f64, enabled_by: EnabledBy) -> Cost {
        Cost {
            enabled_by,
            runs: ran.runs,
            run_time_ns: ran.run_time_ns,
            ns_per_run: (ran.runs > 0).then(|| ran.run_time_ns as f64 / ran.runs as f64),
            cpu_percent: (seconds > 0.0).then(|| ran.run_time_ns as f64 / (seconds * 1e7)),
        }
    }

    /// `52 ns/call, 0.8% CPU` (a call is one program run), for headers and summaries.
    pub fn line(&self) -> String {
        format!(
            "{} ns/call, {} CPU",
            self.ns_per_run
                .map_or_else(|| "-".to_string(), |ns| format!("{ns:.0}")),
            self.cpu_percent
                .map_or_else(|| "-".to_string(), |c| format!("{c:.1}%"))
        )
    }
}

/// A session's statistics over time: the counters when it started and at the last batch.
#[derive(Clone, Copy, Debug)]
pub struct Tracker {
    by: EnabledBy,
    first: (Instant, Counters),
    last: (Instant, Counters),
    interval: Option<Cost>,
}

impl Tracker {
    /// Starts at `counters`, read at `at` (before the first interval; zero when statistics
    /// were on before the programs loaded).
    pub fn new(by: EnabledBy, at: Instant, counters: Counters) -> Tracker {
        Tracker {
            by,
            first: (at, counters),
            last: (at, counters),
            interval: None,
        }
    }

    /// Closes an interval at `at` with the counters then.
    pub fn update(&mut self, at: Instant, counters: Counters) {
        let (then, before) = self.last;
        let seconds = at.saturating_duration_since(then).as_secs_f64();
        self.interval = Some(Cost::over(counters.since(before), seconds, self.by));
        self.last = (at, counters);
    }

    /// The last interval's cost (`None` before the first one closed).
    pub fn interval(&self) -> Option<Cost> {
        self.interval
    }

    /// The cost from the start to the last batch.
    pub fn total(&self) -> Cost {
        let seconds = self
            .last
            .0
            .saturating_duration_since(self.first.0)
            .as_secs_f64();
        Cost::over(self.last.1.since(self.first.1), seconds, self.by)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn c(run_time_ns: u64, runs: u64) -> Counters {
        Counters { run_time_ns, runs }
    }

    #[test]
    fn an_interval_is_the_difference_over_its_length() {
        let t0 = Instant::now();
        let mut t = Tracker::new(EnabledBy::Zcprof, t0, c(1_000, 10));
        assert_eq!(t.interval(), None);
        // 2 s in which 100,000 runs took 5.2 ms: 52 ns per run, 0.26 % of one CPU.
        t.update(t0 + Duration::from_secs(2), c(5_201_000, 100_010));
        let i = t.interval().expect("an interval");
        assert_eq!((i.runs, i.run_time_ns), (100_000, 5_200_000));
        assert_eq!(i.ns_per_run, Some(52.0));
        assert!((i.cpu_percent.expect("cpu") - 0.26).abs() < 1e-9, "{i:?}");
        assert_eq!(i.line(), "52 ns/call, 0.3% CPU");
        // An interval with no runs: no ns per run, 0 % CPU.
        t.update(t0 + Duration::from_secs(3), c(5_201_000, 100_010));
        let idle = t.interval().expect("an interval");
        assert_eq!(
            (idle.runs, idle.ns_per_run, idle.cpu_percent),
            (0, None, Some(0.0))
        );
        assert_eq!(idle.line(), "- ns/call, 0.0% CPU");
        // The total runs from the start: 5.2 ms over 3 s.
        let total = t.total();
        assert_eq!((total.runs, total.run_time_ns), (100_000, 5_200_000));
        assert!((total.cpu_percent.expect("cpu") - 5.2e6 / 3e9 * 100.0).abs() < 1e-9);
        assert_eq!(total.enabled_by, EnabledBy::Zcprof);
    }

    /// Many programs are weighted by their runs: one hot cheap program and one rare dear one
    /// average to nearly the cheap one's cost (here, as [`Counters::of`] sums them).
    #[test]
    fn ns_per_run_weights_programs_by_their_runs() {
        let cost = Cost::over(c(990 * 50 + 10 * 5_000, 1_000), 1.0, EnabledBy::Sysctl);
        assert_eq!(cost.ns_per_run, Some(99.5));
    }

    #[test]
    fn counters_that_went_down_count_as_zero() {
        assert_eq!(c(5, 1).since(c(10, 2)), c(0, 0));
        let zero_length = Cost::over(c(5, 1), 0.0, EnabledBy::Zcprof);
        assert_eq!(zero_length.cpu_percent, None);
    }
}
