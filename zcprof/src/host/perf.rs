//! Whether this machine lets zcprof open perf events (the cpu layer's cpu-clock sampling):
//! `kernel.perf_event_paranoid`, and a try at the event the layer opens (software
//! cpu-clock, every process on CPU 0), closed at once. Also whether a hardware PMU exists
//! (cycles and instructions; virtual machines often have none).

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct PerfEvents {
    /// `kernel.perf_event_paranoid` (`unknown` when unreadable).
    pub paranoid: String,
    /// A system-wide software cpu-clock event opened (what `--cpu` attaches to).
    pub cpu_clock_allowed: bool,
    /// The kernel's reason when it did not.
    pub error: Option<String>,
    /// A `cpu` event source exists (hardware counters: cycles, instructions).
    pub hardware_pmu: bool,
    /// `kernel.perf_event_max_sample_rate`, the highest `--cpu-frequency`.
    pub max_sample_rate: Option<u64>,
}

/// The first 64 bytes of `struct perf_event_attr` (`PERF_ATTR_SIZE_VER0`), enough for a
/// counting software event.
#[repr(C)]
#[derive(Default)]
struct Attr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    bp_addr: u64,
}
const _: () = assert!(std::mem::size_of::<Attr>() == 64);

/// `PERF_TYPE_SOFTWARE`, `PERF_COUNT_SW_CPU_CLOCK`, `attr.disabled` (uapi/linux/perf_event.h).
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
const DISABLED: u64 = 1;
/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// Tries the cpu layer's event.
pub fn read() -> PerfEvents {
    let attr = Attr {
        kind: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<Attr>() as u32,
        config: PERF_COUNT_SW_CPU_CLOCK,
        flags: DISABLED,
        ..Attr::default()
    };
    // SAFETY: a valid attribute of the size it states; pid -1 and cpu 0 is a system-wide
    // event on CPU 0 (what the layer opens per CPU); the descriptor is closed below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &raw const attr,
            -1,
            0,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    let error = if fd < 0 {
        Some(std::io::Error::last_os_error().to_string())
    } else {
        // SAFETY: a descriptor this function opened and nothing else holds.
        unsafe { libc::close(fd as i32) };
        None
    };
    PerfEvents {
        paranoid: super::perf_event_paranoid(),
        cpu_clock_allowed: error.is_none(),
        error,
        hardware_pmu: super::has_hardware_pmu(),
        max_sample_rate: super::perf_event_max_sample_rate(),
    }
}

impl PerfEvents {
    /// doctor's line.
    pub fn line(&self) -> String {
        let allowed = match &self.error {
            None => "system-wide cpu-clock sampling permitted (--cpu works)".to_string(),
            Some(err) => format!(
                "NOT permitted ({err}): --cpu needs root or CAP_PERFMON, or a lower kernel.perf_event_paranoid"
            ),
        };
        let pmu = if self.hardware_pmu {
            "hardware PMU present (cycles, instructions)"
        } else {
            "no hardware PMU (software events only: cpu-clock, task-clock, page faults)"
        };
        let max = self
            .max_sample_rate
            .map_or_else(|| "unknown".into(), |m| format!("{m} Hz"));
        format!(
            "{allowed}; perf_event_paranoid {}; max sample rate {max}; {pmu}",
            self.paranoid
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let p = read();
        assert_eq!(p.cpu_clock_allowed, p.error.is_none());
        let line = p.line();
        assert!(line.contains("perf_event_paranoid"), "{line}");
    }
}
