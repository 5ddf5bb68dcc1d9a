//! `zcbench startup`: how long zcprof takes to load its eBPF object and attach every probe
//! (what a user waits for before the first count), and to detach again, timed in-process
//! through the library so that nothing else (runtime, first interval) is included.

use std::time::Instant;

use serde_json::json;
use zcprof::probes::{self, LoadOptions, SyscallProbe};

#[derive(clap::Args)]
pub struct Args {
    /// Repetitions
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// The syscall probe mode to time
    #[arg(long, value_enum, default_value_t = SyscallProbe::Btf)]
    syscall_probe: SyscallProbe,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let opts = LoadOptions {
        syscall_probe: args.syscall_probe,
        ..LoadOptions::default()
    };
    let mut attach = Vec::new();
    let mut detach = Vec::new();
    let mut attached = 0;
    for _ in 0..args.reps.max(1) {
        let t0 = Instant::now();
        let loaded = probes::load(&opts)?;
        let t1 = Instant::now();
        attached = loaded.probes.iter().filter(|p| p.via().is_some()).count();
        drop(loaded);
        attach.push((t1 - t0).as_secs_f64());
        detach.push(t1.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        json!({"load_attach_s": attach, "detach_s": detach, "probes_attached": attached})
    );
    Ok(())
}
