//! The demos section's keys: a pure function of (state, key) → state plus what the event
//! loop must do (start or stop `zcprof-demo` processes), so that every binding is
//! unit-tested without a terminal or a process. A key bound nowhere here is
//! [`Handled::No`], for the global bindings.

use crossterm::event::{KeyCode, KeyEvent};

use super::{DemoRun, DemoState, Demos};
use crate::ui::shared::{Binding, Command, Handled};

/// The section's bindings, for the help overlay (↑ ↓ are the processes' line, which says
/// what they do here). Keep in step with `handle_key`.
pub const BINDINGS: &[Binding] = &[
    ("← →, h l", "demos: choose the mode"),
    ("Enter", "demos: start the selected variant"),
    ("a", "demos: start every mode of the scenario, side by side"),
    ("x", "demos: stop the selected variant"),
    ("+ -", "demos: run length ±10 s"),
];

/// Run lengths `+`/`-` move between, seconds.
const SECONDS: std::ops::RangeInclusive<u32> = 10..=600;
const STEP: u32 = 10;

impl Demos {
    /// Applies one key; a command when demos must start or stop.
    pub fn handle_key(&mut self, key: KeyEvent) -> Handled {
        let scenarios = self.scenarios.len();
        match key.code {
            KeyCode::Up | KeyCode::Char('k') if scenarios > 0 => {
                self.scenario = self.scenario.saturating_sub(1);
                self.mode = 0;
            }
            KeyCode::Down | KeyCode::Char('j') if scenarios > 0 => {
                self.scenario = (self.scenario + 1).min(scenarios - 1);
                self.mode = 0;
            }
            KeyCode::Left | KeyCode::Char('h') => self.mode = self.mode.saturating_sub(1),
            KeyCode::Right | KeyCode::Char('l') => {
                let modes = self.selected().map_or(1, |(s, _)| s.modes.len());
                self.mode = (self.mode + 1).min(modes.saturating_sub(1));
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.seconds = (self.seconds + STEP).min(*SECONDS.end())
            }
            KeyCode::Char('-') => {
                self.seconds = self.seconds.saturating_sub(STEP).max(*SECONDS.start())
            }
            KeyCode::Enter | KeyCode::Char('s') | KeyCode::Char('a') => {
                let Some((scenario, mode)) = self.selected() else {
                    return Handled::Yes;
                };
                let name = scenario.name.clone();
                let modes = if key.code == KeyCode::Char('a') {
                    scenario.modes.clone()
                } else {
                    vec![mode.to_string()]
                };
                return match self.start(&name, &modes) {
                    Some(cmd) => Handled::Command(cmd),
                    None => Handled::Yes,
                };
            }
            KeyCode::Char('x') => {
                let Some((scenario, mode)) = self.selected() else {
                    return Handled::Yes;
                };
                let (scenario, mode) = (scenario.name.clone(), mode.to_string());
                if let Some(run) = self.run_mut(&scenario, &mode)
                    && run.is_active()
                {
                    match run.pid {
                        Some(pid) => {
                            run.state = DemoState::Stopping;
                            return Handled::Command(Command::StopDemo { pid });
                        }
                        None => run.state = DemoState::Failed("stopped before it started".into()),
                    }
                }
            }
            _ => return Handled::No,
        }
        Handled::Yes
    }

    /// Marks the variants that are not already running as starting, and returns the
    /// command to start them (`None` when all are running).
    fn start(&mut self, scenario: &str, modes: &[String]) -> Option<Command> {
        let mut starting = Vec::new();
        for mode in modes {
            let fresh = DemoRun {
                scenario: scenario.to_string(),
                mode: mode.clone(),
                state: DemoState::Starting,
                pid: None,
                workers: Vec::new(),
                result: None,
            };
            match self.run_mut(scenario, mode) {
                Some(run) if run.is_active() => continue,
                Some(run) => *run = fresh,
                None => self.runs.push(fresh),
            }
            starting.push(mode.clone());
        }
        (!starting.is_empty()).then(|| Command::StartDemos {
            scenario: scenario.to_string(),
            modes: starting,
            seconds: self.seconds,
        })
    }
}
