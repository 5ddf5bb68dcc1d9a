//! The dashboard's state as a whole: what the sections share ([`Shared`], the header's
//! [`Machine`], the tab, help and pause) and the two sections, each owning its own state
//! ([`Processes`], [`Demos`]). `App` changes only in [`App::apply`] (after the session
//! applied a batch) and [`App::handle_key`], and in both it only dispatches: to every
//! section for a batch, to the current tab's section for a key.
//!
//! Key precedence: Ctrl-C always quits; an open help overlay takes the next key; then the
//! current section (the processes' `/` prompt, which opens only there, takes every key while
//! open, so no tab switch can leave it open elsewhere); then the global bindings below.
//! Keys bound nowhere do nothing.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{
    demos::{DemoScenario, Demos},
    header::Machine,
    processes::Processes,
    shared::{Binding, Command, Handled, HostInfo, Shared},
};
use crate::model::Model;

/// The global bindings the help overlay lists before the processes tab's…
pub const BINDINGS: &[Binding] = &[
    ("q, Ctrl-C", "quit (stops running demos)"),
    ("?", "show or hide this help"),
    ("Tab, 1, 2", "switch tab: processes / demos"),
];
/// …and after them. Keep both in step with `global`.
pub const DISPLAY_BINDINGS: &[Binding] =
    &[("space", "pause or resume the display (collection goes on)")];

/// The sections, one per tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Processes,
    Demos,
}

/// The dashboard's whole state.
pub struct App {
    pub shared: Shared,
    pub machine: Machine,
    pub tab: Tab,
    pub help: bool,
    /// While paused the header and the processes stay frozen; demo runs are still followed,
    /// so that none is lost.
    pub paused: bool,
    pub processes: Processes,
    pub demos: Demos,
}

impl App {
    pub fn new(info: HostInfo, demos: Vec<DemoScenario>) -> Self {
        App {
            shared: Shared::new(info),
            machine: Machine::default(),
            tab: Tab::Processes,
            help: false,
            paused: false,
            processes: Processes::default(),
            demos: Demos::new(demos),
        }
    }

    /// Takes the dashboard's view of `model` after the session applied a batch. `cmdline`
    /// is asked once per new process instance.
    pub fn apply(&mut self, model: &Model, cmdline: &dyn Fn(u32) -> Option<String>) {
        self.shared.batches += 1;
        self.demos.apply(model);
        if self.paused {
            return;
        }
        let copy_source = self.shared.copy_source;
        let own = self.shared.own;
        self.machine.apply(model, copy_source, &own);
        self.processes.apply(model, cmdline, copy_source, &own);
    }

    /// Applies one key; returns what the event loop must do, if anything.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Command> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
            return Some(Command::Quit);
        }
        if self.help {
            // Any key closes the overlay; it is not passed on.
            self.help = false;
            return None;
        }
        let handled = match self.tab {
            Tab::Processes => self.processes.handle_key(key, &self.shared),
            Tab::Demos => self.demos.handle_key(key),
        };
        match handled {
            Handled::Yes => None,
            Handled::Command(cmd) => Some(cmd),
            Handled::No => self.global(key),
        }
    }

    fn global(&mut self, key: KeyEvent) -> Option<Command> {
        match key.code {
            KeyCode::Char('q') => return Some(Command::Quit),
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char(' ') => self.paused = !self.paused,
            KeyCode::Tab | KeyCode::BackTab => match self.tab {
                Tab::Demos => self.show(Tab::Processes),
                Tab::Processes => self.show(Tab::Demos),
            },
            KeyCode::Char('1') => self.show(Tab::Processes),
            KeyCode::Char('2') => self.show(Tab::Demos),
            _ => {}
        }
        None
    }

    /// Switches to `tab`; the processes tab always opens on its table.
    fn show(&mut self, tab: Tab) {
        self.tab = tab;
        self.processes.show_table();
    }
}
