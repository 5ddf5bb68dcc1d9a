//! `zcbench empty-hook`: the benchmark's floor. Attaches only zcprof's empty program on the
//! syscall layer's default hook (`tp_btf/sys_exit`), prints a ready line, and holds it until
//! a signal ends the process (the kernel detaches it then): the cost of the hook alone,
//! measured like every other condition.

use std::io::Write as _;

pub const READY: &str = "zcbench-empty-hook-ready";

pub fn run() -> anyhow::Result<()> {
    let _ebpf = zcprof::probes::load_floor()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}")?;
    out.flush()?;
    loop {
        std::thread::park();
    }
}
