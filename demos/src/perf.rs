//! A worker's CPU as the kernel's perf counters measure it (the `perf-event` crate): the
//! software task-clock (nanoseconds on a CPU, at the scheduler's resolution rather than
//! rusage's tick) and page faults, and the hardware cycles and instructions where the
//! machine has a PMU (virtual machines often have none: then they are absent, never 0).
//!
//! The parent opens the counters on a worker it just forked, before the worker starts its
//! job (the worker waits for the slot's `go` flag), and reads them after reaping it: the
//! worker itself makes no syscall for them, so its exact syscall tally is untouched.

use perf_event::{
    Builder, Counter,
    events::{Hardware, Software},
};
use serde::{Deserialize, Serialize};

/// The open counters of one worker (inherited by its threads).
pub struct Counters {
    task_clock: Counter,
    page_faults: Counter,
    cycles: Option<Counter>,
    instructions: Option<Counter>,
}

/// What they counted, as the demo reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfReport {
    /// task-clock: the worker's CPU time, in seconds.
    pub task_clock_seconds: f64,
    /// Page faults (minor and major together).
    pub page_faults: u64,
    /// Hardware counters; absent where the machine has no PMU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<u64>,
}

fn counter(
    pid: libc::pid_t,
    kind: impl Into<perf_event::events::Event>,
) -> std::io::Result<Counter> {
    let mut builder = Builder::new().kind(kind).observe_pid(pid);
    builder.inherit(true);
    let mut counter = builder.build()?;
    counter.enable()?;
    Ok(counter)
}

impl Counters {
    /// Opens and enables the counters on process `pid`; `Err` when perf events are not
    /// permitted (the report then has rusage only).
    pub fn open(pid: libc::pid_t) -> std::io::Result<Counters> {
        Ok(Counters {
            task_clock: counter(pid, Software::TASK_CLOCK)?,
            page_faults: counter(pid, Software::PAGE_FAULTS)?,
            cycles: counter(pid, Hardware::CPU_CYCLES).ok(),
            instructions: counter(pid, Hardware::INSTRUCTIONS).ok(),
        })
    }

    /// The counts (of an exited worker: its final ones).
    pub fn read(&mut self) -> Option<PerfReport> {
        Some(PerfReport {
            task_clock_seconds: self.task_clock.read().ok()? as f64 / 1e9,
            page_faults: self.page_faults.read().ok()?,
            cycles: self.cycles.as_mut().and_then(|c| c.read().ok()),
            instructions: self.instructions.as_mut().and_then(|c| c.read().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_process_when_permitted() {
        // This thread (the test harness runs tests in threads of their own).
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let Ok(mut c) = Counters::open(me) else {
            eprintln!("perf events not permitted here: skipped");
            return;
        };
        let mut x = 0u64;
        for i in 0..10_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        let r = c.read().expect("readable");
        assert!(r.task_clock_seconds > 0.0, "{r:?}");
        assert!(x > 0);
    }
}
