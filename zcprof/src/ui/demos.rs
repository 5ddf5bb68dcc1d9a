//! The demos section (tab 2): the bundled `zcprof-demo` scenarios, each mode runnable from
//! here, and what the syscall layer measured for each run's workers beside what the demo
//! reported (payload, throughput, copy amplification). This module owns the section's
//! state; `keys.rs` its bindings, `panel.rs` its drawing, [`launch`] the `zcprof-demo`
//! processes themselves (through [`crate::demo::runner`], as `zcprof demo` runs them).
//!
//! State changes only in [`Demos::apply`] (the workers, from the model after a batch),
//! [`Demos::handle_key`], and [`Demos::spawned`] / [`Demos::exited`] (what happened to a
//! process the launcher started, through [`Demos::record`]). There is at most one run per variant (scenario × mode):
//! starting a variant again replaces its last run.

mod keys;
pub mod launch;
mod panel;

#[cfg(test)]
mod tests;

pub use self::{keys::BINDINGS, panel::render};
use crate::{model::Model, report::Rates};

/// A scenario from the demo catalogue.
#[derive(Clone, Debug)]
pub struct DemoScenario {
    pub name: String,
    pub description: String,
    pub modes: Vec<String>,
    pub baseline: String,
}

impl DemoScenario {
    /// The whole bundled catalogue, baseline mode first.
    pub fn catalogue() -> Vec<DemoScenario> {
        zcprof_demos::scenarios()
            .iter()
            .map(|s| {
                let mut modes: Vec<String> = s.modes.iter().map(|m| m.name.to_string()).collect();
                if let Some(i) = modes.iter().position(|m| m == s.baseline) {
                    let base = modes.remove(i);
                    modes.insert(0, base);
                }
                DemoScenario {
                    name: s.name.to_string(),
                    description: s.description.to_string(),
                    modes,
                    baseline: s.baseline.to_string(),
                }
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DemoState {
    /// Asked for; the event loop has not spawned it yet.
    Starting,
    Running,
    /// Asked to stop (SIGINT sent).
    Stopping,
    /// Ended after being asked to stop.
    Stopped,
    Finished,
    Failed(String),
}

/// One worker process of a demo run, as zcprof measured it.
#[derive(Clone, Debug)]
pub struct DemoWorker {
    pub pid: u32,
    pub comm: String,
    /// From the demo's report, once it finished.
    pub role: Option<String>,
    pub rates: Rates,
    /// Since the worker started (kept after it exits).
    pub copied_bytes: u64,
    pub zero_copy_bytes: u64,
    pub exited: bool,
}

/// What the demo reported when it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoResult {
    pub payload_bytes: u64,
    pub throughput_bytes_per_sec: f64,
    pub wall_seconds: f64,
    pub verified: bool,
}

/// The latest run of one variant (scenario × mode).
#[derive(Clone, Debug)]
pub struct DemoRun {
    pub scenario: String,
    pub mode: String,
    pub state: DemoState,
    /// The `zcprof-demo` process (its workers are its children).
    pub pid: Option<u32>,
    pub workers: Vec<DemoWorker>,
    pub result: Option<DemoResult>,
}

impl DemoRun {
    pub fn copied_bytes(&self) -> u64 {
        self.workers.iter().map(|w| w.copied_bytes).sum()
    }

    pub fn zero_copy_bytes(&self) -> u64 {
        self.workers.iter().map(|w| w.zero_copy_bytes).sum()
    }

    /// Bytes copied across the user/kernel boundary per payload byte delivered, once the
    /// demo reported its payload.
    pub fn amplification(&self) -> Option<f64> {
        let payload = self.result.as_ref()?.payload_bytes;
        (payload > 0).then(|| self.copied_bytes() as f64 / payload as f64)
    }

    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            DemoState::Starting | DemoState::Running | DemoState::Stopping
        )
    }
}

/// The demos section's whole state.
#[derive(Clone, Debug)]
pub struct Demos {
    pub scenarios: Vec<DemoScenario>,
    /// Selected scenario and mode (indexes).
    pub scenario: usize,
    pub mode: usize,
    /// How long a started demo runs.
    pub seconds: u32,
    pub runs: Vec<DemoRun>,
}

impl Demos {
    pub fn new(scenarios: Vec<DemoScenario>) -> Self {
        Demos {
            scenarios,
            scenario: 0,
            mode: 0,
            seconds: 30,
            runs: Vec::new(),
        }
    }

    pub fn selected(&self) -> Option<(&DemoScenario, &str)> {
        let s = self.scenarios.get(self.scenario)?;
        Some((s, s.modes.get(self.mode)?.as_str()))
    }

    pub fn run(&self, scenario: &str, mode: &str) -> Option<&DemoRun> {
        self.runs
            .iter()
            .find(|r| r.scenario == scenario && r.mode == mode)
    }

    fn run_mut(&mut self, scenario: &str, mode: &str) -> Option<&mut DemoRun> {
        self.runs
            .iter_mut()
            .find(|r| r.scenario == scenario && r.mode == mode)
    }

    /// Updates the workers of every run from the model: the descendants of its
    /// `zcprof-demo` process. Workers that left the model keep their last figures.
    pub fn apply(&mut self, model: &Model) {
        let seconds = model.interval.map_or(0.0, |d| d.as_secs_f64());
        for run in &mut self.runs {
            let Some(pid) = run.pid else { continue };
            let Some(root) = model.latest_instance(pid) else {
                continue;
            };
            for id in model.tree(root).into_iter().skip(1) {
                let Some(p) = model.process(id) else { continue };
                let totals = p.totals.syscall.figures();
                let worker = DemoWorker {
                    pid: p.tgid,
                    comm: p.comm.clone(),
                    role: None,
                    rates: Rates::of(&p.interval.syscall.figures(), seconds),
                    copied_bytes: totals.copied_bytes(),
                    zero_copy_bytes: totals.zero_copy_bytes,
                    exited: p.exited,
                };
                match run.workers.iter_mut().find(|w| w.pid == p.tgid) {
                    Some(w) => {
                        let role = w.role.take();
                        *w = DemoWorker { role, ..worker };
                    }
                    None => run.workers.push(worker),
                }
            }
        }
    }

    /// The event loop spawned the demo (or could not).
    pub fn spawned(&mut self, scenario: &str, mode: &str, spawned: Result<u32, String>) {
        if let Some(run) = self.run_mut(scenario, mode) {
            match spawned {
                Ok(pid) => {
                    run.pid = Some(pid);
                    if run.state == DemoState::Starting {
                        run.state = DemoState::Running;
                    }
                }
                Err(err) => run.state = DemoState::Failed(err),
            }
        }
    }

    /// The demo process ended: its report (roles, payload, throughput) or why it failed.
    pub fn exited(
        &mut self,
        scenario: &str,
        mode: &str,
        outcome: Result<zcprof_demos::Report, String>,
    ) {
        let Some(run) = self.run_mut(scenario, mode) else {
            return;
        };
        match outcome {
            Ok(report) => {
                for role in &report.roles {
                    if let Some(w) = run.workers.iter_mut().find(|w| w.pid as i32 == role.pid) {
                        w.role = Some(role.role.clone());
                    }
                }
                run.result = Some(DemoResult {
                    payload_bytes: report.payload_bytes,
                    throughput_bytes_per_sec: report.throughput_bytes_per_sec,
                    wall_seconds: report.wall_seconds,
                    verified: report.verified,
                });
                run.state = DemoState::Finished;
            }
            Err(_) if run.state == DemoState::Stopping => run.state = DemoState::Stopped,
            Err(err) => run.state = DemoState::Failed(err),
        }
    }
}
