//! `zcbench empty-hook`: the benchmark's floor. Attaches only zcprof's empty programs on the
//! hooks its default layers run on at every event (`tp_btf/sys_exit`, and the io_uring
//! layer's submit and complete tracepoints), prints a ready line naming them, and holds
//! them until a signal ends the process (the kernel detaches them then): the cost of the
//! hooks alone, measured like every other condition.

use std::io::Write as _;

pub const READY: &str = "zcbench-empty-hook-ready";

pub fn run() -> anyhow::Result<()> {
    // SIGTERM and SIGINT end the run normally (status 0, like the profilers it stands
    // beside); blocked before anything else so none arrives unhandled.
    // SAFETY: a signal set on the stack, filled and used by libc only.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let (_ebpf, hooks) = zcprof::probes::load_floor()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}: {}", hooks.join(", "))?;
    out.flush()?;
    let mut signal = 0;
    // SAFETY: waiting for one of the blocked signals.
    unsafe { libc::sigwait(&set, &mut signal) };
    Ok(())
}
