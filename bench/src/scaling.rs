//! How the daemon's cost grows with the number of live processes (issue 15): `zcbench
//! sleepers` makes that many processes, each with a counted syscall a second, and `zcbench
//! frames` is the dashboard's daemon without a terminal — a real session, the dashboard's
//! state fed from it at every refresh and drawn on ratatui's test backend — timing the
//! update and the draw of each frame.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use ratatui::{Terminal, backend::TestBackend};
use serde_json::json;
use zcprof::{
    host::procfs,
    probes::LoadOptions,
    session::{Retention, Session},
    ui::{self, App, demos::DemoScenario, shared::HostInfo},
};

use crate::workload::process_cpu_ns;

#[derive(clap::Args)]
pub struct SleepersArgs {
    /// How many processes
    #[arg(long)]
    count: usize,
}

/// Forks `count` processes that each read a byte from /dev/zero and write it to /dev/null
/// once a second (so every refresh has them all active, each with two counted syscalls), prints `{"ready": count}` once all run, and waits for its
/// stdin to close; then kills and reaps them all. Should this process be killed instead,
/// they die with it (`PR_SET_PDEATHSIG`).
pub fn sleepers(args: &SleepersArgs) -> anyhow::Result<()> {
    // SAFETY: open(2) of a NUL-terminated literal path.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    // SAFETY: as above.
    let zero = unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if null < 0 || zero < 0 {
        bail!("/dev/null, /dev/zero: {}", std::io::Error::last_os_error());
    }
    let parent = std::process::id() as i32;
    let mut children = Vec::with_capacity(args.count);
    for made in 0..args.count {
        // SAFETY: the child only makes raw syscalls (no allocation) until it dies.
        match unsafe { libc::fork() } {
            -1 => bail!(
                "fork after {made} of {} sleepers: {} (see kernel.pid_max, kernel.threads-max, RLIMIT_NPROC)",
                args.count,
                std::io::Error::last_os_error()
            ),
            0 => {
                // SAFETY: raw syscalls on values this process owns.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() != parent {
                        libc::_exit(0);
                    }
                    let mut byte = 0u8;
                    loop {
                        libc::read(zero, (&raw mut byte).cast(), 1);
                        libc::write(null, (&raw const byte).cast(), 1);
                        libc::sleep(1);
                    }
                }
            }
            pid => children.push(pid),
        }
    }
    println!("{}", json!({ "ready": args.count }));
    std::io::stdout().flush()?;
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    for &pid in &children {
        // SAFETY: kill(2) and waitpid(2) of our own children.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for &pid in &children {
        // SAFETY: as above.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct FramesArgs {
    /// Frames to time (one per refresh)
    #[arg(long, default_value_t = 10)]
    frames: usize,
    /// Refresh interval, milliseconds
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// The terminal's size, columns x rows
    #[arg(long, default_value_t = 200)]
    width: u16,
    #[arg(long, default_value_t = 50)]
    height: u16,
}

/// Runs the dashboard's daemon for `frames` refreshes after a first one (which fills the
/// process table from /proc): each refresh feeds the dashboard's state from the session
/// (`App::apply`, as the event loop does) and draws it, both timed; prints one JSON object
/// with the times, the rows the table had, this process's CPU per refresh and its memory.
pub fn frames(args: &FramesArgs) -> anyhow::Result<()> {
    let interval = Duration::from_millis(args.interval_ms.max(10));
    let opts = LoadOptions::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        let mut session = Session::start(&opts, interval, Retention::PruneExited)?;
        let info = HostInfo::of(&session, interval);
        let mut app = App::new(info, DemoScenario::catalogue());
        let mut terminal =
            Terminal::new(TestBackend::new(args.width, args.height)).context("the test backend")?;
        // The first interval: every process is new to the dashboard.
        session.next().await?;
        app.apply(&session.model, &procfs::cmdline);
        let cpu0 = process_cpu_ns();
        let (mut apply_ms, mut draw_ms) = (Vec::new(), Vec::new());
        for _ in 0..args.frames.max(1) {
            session.next().await?;
            let t0 = Instant::now();
            app.apply(&session.model, &procfs::cmdline);
            let t1 = Instant::now();
            terminal.draw(|f| ui::draw(f, &app)).context("drawing")?;
            apply_ms.push((t1 - t0).as_secs_f64() * 1e3);
            draw_ms.push(t1.elapsed().as_secs_f64() * 1e3);
        }
        let cpu_ms = (process_cpu_ns() - cpu0) as f64 / 1e6 / apply_ms.len() as f64;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        println!(
            "{}",
            json!({
                "apply_ms": apply_ms,
                "draw_ms": draw_ms,
                "rows": app.processes.visible().count(),
                "processes": session.model.processes().count(),
                "cpu_ms_per_refresh": cpu_ms,
                "vm_hwm_kib": kib("VmHWM:"),
                "vm_rss_kib": kib("VmRSS:"),
                "lost": session.model.counters.lost(),
            })
        );
        anyhow::Ok(())
    })
}
