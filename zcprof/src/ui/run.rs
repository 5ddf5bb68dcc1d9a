//! The dashboard's event loop: one `tokio::select!` over the session's batches, the
//! terminal's events, demo processes ending, and SIGINT/SIGTERM. A batch is applied to
//! the model by the session, then to the app, then drawn: one draw per batch (plus one per
//! key or resize), nothing blocking on this task. Demos run as `zcprof-demo` child
//! processes, each awaited by its own task that reports back over a channel.

use std::{
    path::PathBuf,
    process::{ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::{
    App, Command,
    app::{DemoScenario, Filter, HostInfo},
    color_enabled, draw,
    terminal::TerminalGuard,
};
use crate::{
    probes::LoadOptions,
    procfs,
    session::{Session, Signals},
};

/// What a demo's task reports.
enum DemoEvent {
    Spawned {
        scenario: String,
        mode: String,
        result: Result<u32, String>,
    },
    Exited {
        scenario: String,
        mode: String,
        result: Result<zcprof_demos::Report, String>,
    },
}

/// Runs the dashboard until `q`, Ctrl-C, SIGINT or SIGTERM. `filter` is an initial `/`
/// filter (from `top -p`/`-c`), if any.
pub async fn run(
    load: &LoadOptions,
    interval: Duration,
    filter: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::new()?;
    // Probes attach (and warnings print) before the screen is taken over.
    let mut session = Session::start(load, interval)?;
    let info = HostInfo {
        kernel: kernel_release(),
        layers: session.layers.clone(),
        refresh: interval,
    };
    let mut app = App::new(info, DemoScenario::catalogue());
    app.color = color_enabled();
    if let Some(text) = filter {
        match Filter::parse(&text) {
            Ok(f) => app.set_filter(f),
            Err(err) => bail!("the filter `{text}`: {err}"),
        }
    }
    let mut guard = TerminalGuard::enter()?;
    let mut events = EventStream::new();
    let (demo_tx, mut demo_rx) = mpsc::channel::<DemoEvent>(32);
    let mut cpu = SelfCpu::new();
    guard.terminal.draw(|f| draw(f, &app)).context("drawing")?;
    let mut running: Vec<u32> = Vec::new();
    loop {
        tokio::select! {
            batch = session.next() => {
                if batch.is_none() {
                    bail!("the collector stopped unexpectedly");
                }
                app.self_cpu = cpu.sample();
                app.apply(&session.model, &procfs::cmdline);
                session.model.prune_exited();
            }
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    match app.handle_key(key) {
                        Some(Command::Quit) => break,
                        Some(Command::StartDemos { scenario, modes, seconds }) => {
                            for mode in modes {
                                start_demo(&scenario, &mode, seconds, demo_tx.clone());
                            }
                        }
                        Some(Command::StopDemo { pid }) => interrupt(pid),
                        None => {}
                    }
                }
                Some(Ok(_)) => {} // resize, focus, mouse: just redraw
                Some(Err(err)) => return Err(err).context("reading terminal events"),
                None => break,
            },
            Some(event) = demo_rx.recv() => match event {
                DemoEvent::Spawned { scenario, mode, result } => {
                    if let Ok(pid) = result {
                        running.push(pid);
                    }
                    app.demo_spawned(&scenario, &mode, result);
                }
                DemoEvent::Exited { scenario, mode, result } => {
                    if let Some(pid) = app.demos.run(&scenario, &mode).and_then(|r| r.pid) {
                        running.retain(|p| *p != pid);
                    }
                    app.demo_exited(&scenario, &mode, result);
                }
            },
            _ = signals.recv() => break,
        }
        guard.terminal.draw(|f| draw(f, &app)).context("drawing")?;
    }
    drop(guard);
    // Demos end with the dashboard: interrupt them and give them a moment to remove their
    // temporary files (dropping their tasks would SIGKILL them).
    for &pid in &running {
        interrupt(pid);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, demo_rx.recv()).await {
            Ok(Some(DemoEvent::Exited { scenario, mode, .. })) => {
                if let Some(pid) = app.demos.run(&scenario, &mode).and_then(|r| r.pid) {
                    running.retain(|p| *p != pid);
                }
            }
            Ok(Some(DemoEvent::Spawned { .. })) => {}
            Ok(None) | Err(_) => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `$ZCPROF_DEMO` if set, else `zcprof-demo` beside this executable (as installed and as
/// built by cargo), else from `PATH`.
fn demo_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ZCPROF_DEMO") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("zcprof-demo")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("zcprof-demo"))
}

/// Spawns one demo variant and a task that reports its start and its end.
fn start_demo(scenario: &str, mode: &str, seconds: u32, tx: mpsc::Sender<DemoEvent>) {
    let bin = demo_binary();
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(["run", scenario, "--mode", mode, "--seconds"])
        .arg(seconds.to_string())
        .arg("--compact")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If the dashboard goes away first, so does the demo (its workers follow it).
        .kill_on_drop(true);
    let (scenario, mode) = (scenario.to_string(), mode.to_string());
    let spawned = cmd
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", bin.display()));
    tokio::spawn(async move {
        let child = match spawned {
            Ok(child) => child,
            Err(err) => {
                let _ = tx
                    .send(DemoEvent::Spawned {
                        scenario,
                        mode,
                        result: Err(err),
                    })
                    .await;
                return;
            }
        };
        let pid = child
            .id()
            .ok_or_else(|| "the demo exited at once".to_string());
        let _ = tx
            .send(DemoEvent::Spawned {
                scenario: scenario.clone(),
                mode: mode.clone(),
                result: pid,
            })
            .await;
        let result = match child.wait_with_output().await {
            Err(err) => Err(format!("waiting for the demo: {err}")),
            Ok(out) => {
                let report = serde_json::from_slice::<zcprof_demos::Report>(&out.stdout);
                match (out.status.code(), report) {
                    // 3: finished, but the payload did not verify (the report says so).
                    (Some(0 | 3), Ok(report)) => Ok(report),
                    _ => {
                        let stderr = String::from_utf8_lossy(&out.stderr);
                        let line = stderr.lines().last().unwrap_or("").trim();
                        let line = line.strip_prefix("zcprof-demo: ").unwrap_or(line);
                        Err(if line.is_empty() {
                            format!("exited with {}", out.status)
                        } else {
                            line.to_string()
                        })
                    }
                }
            }
        };
        let _ = tx
            .send(DemoEvent::Exited {
                scenario,
                mode,
                result,
            })
            .await;
    });
}

/// Asks a demo to stop as Ctrl-C would (it cleans up its temporary files).
fn interrupt(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a pid we spawned; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// zcprof's own CPU use between samples, from /proc/self/stat (utime + stime).
struct SelfCpu {
    last: Option<(Instant, u64)>,
    ticks_per_second: f64,
}

impl SelfCpu {
    fn new() -> Self {
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        SelfCpu {
            last: None,
            ticks_per_second: if hz > 0 { hz as f64 } else { 100.0 },
        }
    }

    /// Percent of one CPU since the previous sample (`None` for the first).
    fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let ticks = own_cpu_ticks()?;
        let previous = self.last.replace((now, ticks));
        let (then, before) = previous?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0)
            .then(|| ticks.saturating_sub(before) as f64 / self.ticks_per_second / wall * 100.0)
    }
}

fn own_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}
