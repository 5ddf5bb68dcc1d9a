//! Key handling: a pure function of (state, key) → state, plus what the event loop must do
//! (quit, start or stop a demo). No I/O here, so every binding is unit-tested.
//!
//! Precedence: Ctrl-C always quits; an open help overlay takes the next key; an open `/`
//! prompt takes text keys; then the current view's bindings; then the global ones. Keys
//! bound nowhere do nothing.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, Command, DemoRun, DemoState, Filter, FilterInput, View};

/// Every binding, for the help overlay: (keys, what they do). Keep in step with `handle`.
pub const BINDINGS: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit (stops running demos)"),
    ("?", "show or hide this help"),
    ("Tab, 1, 2", "switch tab: processes / demos"),
    ("↑ ↓, k j", "select a process (demos tab: a scenario)"),
    (
        "PgUp PgDn, Home End",
        "move the selection by a page / to the ends",
    ),
    ("Enter", "details of the selected process (Esc goes back)"),
    (
        "/",
        "filter: a word, a regex (comm or command line) or a pid",
    ),
    (
        "Esc",
        "close the prompt, leave details, or clear the filter",
    ),
    ("s, S", "sort by the next / previous column"),
    ("r", "reverse the sort order"),
    ("space", "pause or resume the display (collection goes on)"),
    ("← →, h l", "demos: choose the mode"),
    ("Enter", "demos: start the selected variant"),
    ("a", "demos: start every mode of the scenario, side by side"),
    ("x", "demos: stop the selected variant"),
    ("+ -", "demos: run length ±10 s"),
];

const PAGE: usize = 10;

impl App {
    /// Applies one key; returns what the event loop must do, if anything.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Command> {
        handle(self, key)
    }
}

pub fn handle(app: &mut App, key: KeyEvent) -> Option<Command> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
        return Some(Command::Quit);
    }
    if app.help {
        // Any key closes the overlay; it is not passed on.
        app.help = false;
        return None;
    }
    if app.filter_input.is_some() {
        filter_prompt(app, key);
        return None;
    }
    let handled = match app.view {
        View::Processes => processes(app, key),
        View::Detail => detail(app, key),
        View::Demos => demos(app, key),
    };
    match handled {
        Handled::Yes => None,
        Handled::Command(cmd) => Some(cmd),
        Handled::No => global(app, key),
    }
}

enum Handled {
    Yes,
    No,
    Command(Command),
}

fn global(app: &mut App, key: KeyEvent) -> Option<Command> {
    match key.code {
        KeyCode::Char('q') => return Some(Command::Quit),
        KeyCode::Char('?') => app.help = true,
        KeyCode::Char(' ') => app.paused = !app.paused,
        KeyCode::Tab | KeyCode::BackTab => {
            app.view = match app.view {
                View::Demos => View::Processes,
                View::Processes | View::Detail => View::Demos,
            }
        }
        KeyCode::Char('1') => app.view = View::Processes,
        KeyCode::Char('2') => app.view = View::Demos,
        _ => {}
    }
    None
}

fn filter_prompt(app: &mut App, key: KeyEvent) {
    let Some(input) = app.filter_input.as_mut() else {
        return;
    };
    match key.code {
        KeyCode::Esc => app.filter_input = None,
        KeyCode::Enter => match Filter::parse(&input.text) {
            Ok(filter) => {
                app.filter_input = None;
                app.set_filter(filter);
            }
            // The old filter stays; the prompt stays open with the message.
            Err(err) => input.error = Some(err),
        },
        KeyCode::Backspace => {
            input.text.pop();
            input.error = None;
        }
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            if input.text.chars().count() < 200 {
                input.text.push(c);
            }
            input.error = None;
        }
        _ => {}
    }
}

fn processes(app: &mut App, key: KeyEvent) -> Handled {
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => move_selection(app, -1),
        KeyCode::Down | KeyCode::Char('j') => move_selection(app, 1),
        KeyCode::PageUp => move_selection(app, -(PAGE as isize)),
        KeyCode::PageDown => move_selection(app, PAGE as isize),
        KeyCode::Home | KeyCode::Char('g') => move_selection(app, isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => move_selection(app, isize::MAX / 2),
        KeyCode::Enter => {
            if app.selected_row().is_some() {
                app.view = View::Detail;
            }
        }
        KeyCode::Char('/') => {
            app.filter_input = Some(FilterInput {
                text: app.filter.as_ref().map(Filter::text).unwrap_or_default(),
                error: None,
            })
        }
        KeyCode::Esc => app.set_filter(None),
        KeyCode::Char('s') => {
            app.sort.column = app.sort.column.next(&app.columns());
            app.refresh_order();
        }
        KeyCode::Char('S') => {
            app.sort.column = app.sort.column.prev(&app.columns());
            app.refresh_order();
        }
        KeyCode::Char('r') => {
            app.sort.descending = !app.sort.descending;
            app.refresh_order();
        }
        _ => return Handled::No,
    }
    Handled::Yes
}

fn detail(app: &mut App, key: KeyEvent) -> Handled {
    match key.code {
        KeyCode::Esc | KeyCode::Backspace | KeyCode::Enter | KeyCode::Left => {
            app.view = View::Processes
        }
        KeyCode::Up | KeyCode::Char('k') => move_selection(app, -1),
        KeyCode::Down | KeyCode::Char('j') => move_selection(app, 1),
        _ => return Handled::No,
    }
    Handled::Yes
}

fn move_selection(app: &mut App, by: isize) {
    let count = app.visible().count();
    if count == 0 {
        app.selected = None;
        return;
    }
    let current = app.selected_index().unwrap_or(0) as isize;
    let next = current.saturating_add(by).clamp(0, count as isize - 1) as usize;
    let id = app.visible().nth(next).map(|r| r.id);
    app.selected = id;
}

fn demos(app: &mut App, key: KeyEvent) -> Handled {
    let panel = &mut app.demos;
    let scenarios = panel.scenarios.len();
    match key.code {
        KeyCode::Up | KeyCode::Char('k') if scenarios > 0 => {
            panel.scenario = panel.scenario.saturating_sub(1);
            panel.mode = 0;
        }
        KeyCode::Down | KeyCode::Char('j') if scenarios > 0 => {
            panel.scenario = (panel.scenario + 1).min(scenarios - 1);
            panel.mode = 0;
        }
        KeyCode::Left | KeyCode::Char('h') => panel.mode = panel.mode.saturating_sub(1),
        KeyCode::Right | KeyCode::Char('l') => {
            let modes = panel.selected().map_or(1, |(s, _)| s.modes.len());
            panel.mode = (panel.mode + 1).min(modes.saturating_sub(1));
        }
        KeyCode::Char('+') | KeyCode::Char('=') => panel.seconds = (panel.seconds + 10).min(600),
        KeyCode::Char('-') => panel.seconds = panel.seconds.saturating_sub(10).max(10),
        KeyCode::Enter | KeyCode::Char('s') | KeyCode::Char('a') => {
            let Some((scenario, mode)) = panel.selected() else {
                return Handled::Yes;
            };
            let name = scenario.name.clone();
            let modes = if key.code == KeyCode::Char('a') {
                scenario.modes.clone()
            } else {
                vec![mode.to_string()]
            };
            return match start(app, &name, &modes) {
                Some(cmd) => Handled::Command(cmd),
                None => Handled::Yes,
            };
        }
        KeyCode::Char('x') => {
            let Some((scenario, mode)) = panel.selected() else {
                return Handled::Yes;
            };
            let (scenario, mode) = (scenario.name.clone(), mode.to_string());
            if let Some(run) = app.demos.run_mut(&scenario, &mode)
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

/// Marks the variants that are not already running as starting, and returns the command
/// to start them (`None` when all are running).
fn start(app: &mut App, scenario: &str, modes: &[String]) -> Option<Command> {
    let seconds = app.demos.seconds;
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
        match app.demos.run_mut(scenario, mode) {
            Some(run) if run.is_active() => continue,
            Some(run) => *run = fresh,
            None => app.demos.runs.push(fresh),
        }
        starting.push(mode.clone());
    }
    (!starting.is_empty()).then(|| Command::StartDemos {
        scenario: scenario.to_string(),
        modes: starting,
        seconds,
    })
}
