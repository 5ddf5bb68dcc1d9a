//! The processes section's keys: a pure function of (state, key) → state, so that every
//! binding is unit-tested without a terminal. An open `/` prompt takes every key (text
//! included); then the current view's bindings. A key bound nowhere here is
//! [`Handled::No`], for the global bindings.

use crossterm::event::{KeyCode, KeyEvent};

use super::{
    Column, Processes, View,
    filter::{FilterInput, Prompt},
};
use crate::ui::shared::{Binding, Handled, Shared};

/// The section's bindings, for the help overlay. Keep in step with `handle_key`.
pub const BINDINGS: &[Binding] = &[
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
    (
        "C",
        "group by container or cgroup (Enter: that group's processes)",
    ),
    (
        "t",
        "in details: the process's threads (--threads) or its chart",
    ),
];

/// Rows a page key moves the selection by.
const PAGE: usize = 10;

impl Processes {
    /// Applies one key; `shared` says which columns the table has (the sort keys).
    pub fn handle_key(&mut self, key: KeyEvent, shared: &Shared) -> Handled {
        if let Some(input) = self.filter_input.as_mut() {
            match input.handle_key(key) {
                Prompt::Open => {}
                Prompt::Cancelled => self.filter_input = None,
                Prompt::Applied(filter) => {
                    self.filter_input = None;
                    self.set_filter(filter);
                }
            }
            return Handled::Yes;
        }
        let used = match self.view {
            View::Table => self.table_key(key, shared),
            View::Groups => self.groups_key(key, shared),
            View::Detail => self.detail_key(key),
        };
        if used { Handled::Yes } else { Handled::No }
    }

    fn table_key(&mut self, key: KeyEvent, shared: &Shared) -> bool {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::PageUp => self.move_selection(-(PAGE as isize)),
            KeyCode::PageDown => self.move_selection(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(isize::MAX / 2),
            KeyCode::Enter => {
                if self.selected_row().is_some() {
                    self.view = View::Detail;
                }
            }
            KeyCode::Char('/') => {
                self.filter_input = Some(FilterInput::editing(self.filter.as_ref()))
            }
            KeyCode::Esc => self.set_filter(None),
            KeyCode::Char('s') => {
                self.sort.column = self.sort.column.next(&Column::of_session(shared));
                self.refresh_order();
            }
            KeyCode::Char('S') => {
                self.sort.column = self.sort.column.prev(&Column::of_session(shared));
                self.refresh_order();
            }
            KeyCode::Char('r') => {
                self.sort.descending = !self.sort.descending;
                self.refresh_order();
            }
            KeyCode::Char('C') => self.view = View::Groups,
            _ => return false,
        }
        true
    }

    /// The groups view: its own selection; the sort keys as in the table; Enter shows the
    /// selected group's processes (as a filter), C or Esc the table again.
    fn groups_key(&mut self, key: KeyEvent, shared: &Shared) -> bool {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_group(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_group(1),
            KeyCode::Home | KeyCode::Char('g') => self.move_group(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_group(isize::MAX / 2),
            KeyCode::Enter => {
                let chosen = self
                    .selected_group_index()
                    .and_then(|i| self.groups().get(i))
                    .map(|g| g.filter_text());
                if let Some(text) = chosen {
                    // The group's own name, escaped: it always parses.
                    if let Ok(filter) = super::Filter::parse(&text) {
                        self.set_filter(filter);
                    }
                    self.view = View::Table;
                }
            }
            KeyCode::Esc | KeyCode::Char('C') => self.view = View::Table,
            KeyCode::Char('/') => {
                self.filter_input = Some(FilterInput::editing(self.filter.as_ref()))
            }
            KeyCode::Char('s' | 'S' | 'r') => return self.table_key(key, shared),
            _ => return false,
        }
        true
    }

    fn move_group(&mut self, by: isize) {
        let next = moved(self.selected_group_index(), by, self.groups().len());
        self.selected_group = next
            .and_then(|i| self.groups().get(i))
            .map(|g| g.name.clone());
    }

    fn detail_key(&mut self, key: KeyEvent) -> bool {
        match key.code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Enter | KeyCode::Left => {
                self.view = View::Table
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Char('t') => self.show_threads = !self.show_threads,
            _ => return false,
        }
        true
    }

    fn move_selection(&mut self, by: isize) {
        let next = moved(self.selected_index(), by, self.visible().count());
        let id = next.and_then(|i| self.visible().nth(i)).map(|r| r.id);
        self.selected = id;
    }
}

/// The position `by` rows from `current` (the first row when none) among `count`, kept in
/// range; `None` when there are no rows.
fn moved(current: Option<usize>, by: isize, count: usize) -> Option<usize> {
    let last = count.checked_sub(1)? as isize;
    Some(
        (current.unwrap_or(0) as isize)
            .saturating_add(by)
            .clamp(0, last) as usize,
    )
}
