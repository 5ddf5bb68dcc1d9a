//! The demos tab's `zcprof-demo` processes: each variant is found, started and read by
//! [`crate::demo::runner`] (as `zcprof demo` runs them) on a task of its own, which reports
//! its start and its end over a channel; the event loop awaits [`Launcher::next`] beside the
//! session and the terminal, so nothing here blocks drawing. Demos end with the dashboard:
//! [`Launcher::shutdown`] interrupts them and gives them a moment to remove their
//! temporary files.

use std::time::Duration;

use tokio::sync::mpsc;

use super::Demos;
use crate::demo::runner::{self, DemoFailed, Length};

/// What a demo's task reports.
#[derive(Debug)]
pub enum DemoEvent {
    Spawned {
        scenario: String,
        mode: String,
        /// The `zcprof-demo` pid, or why it did not start.
        result: Result<u32, String>,
    },
    Exited {
        scenario: String,
        mode: String,
        pid: Option<u32>,
        /// Its report, or why it failed, in a few words.
        result: Result<zcprof_demos::Report, String>,
    },
}

/// How long demos get to end after the dashboard quits, before they are killed.
const GRACE: Duration = Duration::from_secs(3);

/// Starts demos and hears back from them.
pub struct Launcher {
    tx: mpsc::Sender<DemoEvent>,
    rx: mpsc::Receiver<DemoEvent>,
    /// Pids of the `zcprof-demo` processes started and not yet ended.
    running: Vec<u32>,
}

impl Default for Launcher {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(32);
        Launcher {
            tx,
            rx,
            running: Vec::new(),
        }
    }
}

impl Launcher {
    /// Starts `scenario` in each of `modes` for `seconds`, side by side.
    pub fn start(&self, scenario: &str, modes: &[String], seconds: u32) {
        for mode in modes {
            tokio::spawn(run(
                scenario.to_string(),
                mode.clone(),
                seconds,
                self.tx.clone(),
            ));
        }
    }

    /// The next start or end of a demo, once the launcher has counted it.
    pub async fn next(&mut self) -> Option<DemoEvent> {
        let event = self.rx.recv().await?;
        match &event {
            DemoEvent::Spawned {
                result: Ok(pid), ..
            } => self.running.push(*pid),
            DemoEvent::Exited { pid: Some(pid), .. } => self.running.retain(|p| p != pid),
            _ => {}
        }
        Some(event)
    }

    /// Interrupts every demo still running and waits, three seconds at most, for them to end
    /// (dropping their tasks would SIGKILL them, leaving their temporary files behind).
    pub async fn shutdown(mut self) {
        for &pid in &self.running {
            interrupt(pid);
        }
        let deadline = tokio::time::Instant::now() + GRACE;
        while !self.running.is_empty() {
            match tokio::time::timeout_at(deadline, self.next()).await {
                // One that was starting as the dashboard quit ends with the others.
                Ok(Some(DemoEvent::Spawned {
                    result: Ok(pid), ..
                })) => interrupt(pid),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

impl Demos {
    /// Records what a demo's task reported.
    pub fn record(&mut self, event: DemoEvent) {
        match event {
            DemoEvent::Spawned {
                scenario,
                mode,
                result,
            } => self.spawned(&scenario, &mode, result),
            DemoEvent::Exited {
                scenario,
                mode,
                result,
                ..
            } => self.exited(&scenario, &mode, result),
        }
    }
}

/// One demo variant's task: start it, report the pid, wait, report how it ended.
async fn run(scenario: String, mode: String, seconds: u32, tx: mpsc::Sender<DemoEvent>) {
    let child = runner::locate()
        .and_then(|exe| runner::spawn(&exe, &scenario, &mode, Length::Seconds(seconds)));
    let child = match child {
        Ok(child) => child,
        Err(err) => {
            let result = Err(format!("{err:#}"));
            let _ = tx
                .send(DemoEvent::Spawned {
                    scenario,
                    mode,
                    result,
                })
                .await;
            return;
        }
    };
    let pid = child.id();
    let _ = tx
        .send(DemoEvent::Spawned {
            scenario: scenario.clone(),
            mode: mode.clone(),
            result: pid.ok_or_else(|| "the demo exited at once".to_string()),
        })
        .await;
    let result = match child.wait_with_output().await {
        Err(err) => Err(format!("waiting for the demo: {err}")),
        Ok(output) => runner::outcome(&scenario, &mode, &output).map_err(|err| {
            match err.downcast_ref::<DemoFailed>() {
                Some(failed) => failed.reason().to_string(),
                None => format!("{err:#}"),
            }
        }),
    };
    let _ = tx
        .send(DemoEvent::Exited {
            scenario,
            mode,
            pid,
            result,
        })
        .await;
}

/// Asks a demo to stop as Ctrl-C would (it cleans up its temporary files).
pub fn interrupt(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a pid we spawned; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
}
