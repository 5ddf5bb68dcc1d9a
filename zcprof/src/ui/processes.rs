//! The processes section (tab 1): one row per process that either layer counted, sorted and
//! filtered, with a minute of history per process; Enter opens the detail view of the
//! selected one. This module owns the section's state; `keys.rs` its bindings, [`table`]
//! and `detail.rs` its drawing, `filter.rs` the `/` prompt.
//!
//! State changes only in [`Processes::apply`] (a view of the model after a batch) and
//! [`Processes::handle_key`]. Invariants: `order` indexes `rows` (filtered and sorted),
//! `selected` is a shown row whenever any is shown, and each history holds at most
//! [`HISTORY`](super::shared::HISTORY) samples.

mod detail;
mod filter;
mod groups;
mod keys;
mod rows;
pub mod table;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use ratatui::{Frame, layout::Rect};
use zcprof_common::kernel::Role;

use self::rows::{copy_calls, sort_value};
pub use self::{
    filter::{Filter, FilterInput},
    groups::GroupRow,
    keys::BINDINGS,
    rows::{Column, ProcRow, Sort, ThreadRow, container_label},
};
use super::shared::{History, Shared};
use crate::{
    model::{Model, ProcId, Process, flow_how},
    report::{
        Rates, per_second,
        top::{IoUringRates, KernelRates, Own},
    },
};

/// The section's views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Table,
    /// The table's rows added up per container (or cgroup): `C` toggles it.
    Groups,
    /// The selected process in depth.
    Detail,
}

/// The processes section's whole state.
#[derive(Debug)]
pub struct Processes {
    rows: Vec<ProcRow>,
    /// Indexes into `rows` of the rows shown, in display order.
    order: Vec<usize>,
    history: HashMap<ProcId, History>,
    pub sort: Sort,
    pub filter: Option<Filter>,
    /// `Some` while the `/` prompt is open.
    pub filter_input: Option<FilterInput>,
    pub selected: Option<ProcId>,
    pub view: View,
    /// The groups view's rows (of the processes the filter shows), in display order, and
    /// the selected one's name.
    groups: Vec<GroupRow>,
    pub selected_group: Option<String>,
    /// The detail view shows the threads layer's split instead of the chart (`t`).
    pub show_threads: bool,
    /// With `--stacks`: the selected process's call sites over the last minute, taken at
    /// the last refresh while the detail view was open.
    pub call_sites: Option<CallSites>,
}

/// A process's call sites over the last minute (the stacks layer's estimate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSites {
    pub pid: u32,
    /// Bytes per sample.
    pub period: u64,
    /// Samples the kernel could not send since zcprof started (machine-wide): the
    /// estimate misses them.
    pub lost: u64,
    /// Most bytes first.
    pub rows: Vec<CallSiteRow>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSiteRow {
    /// `read() in copy_file (copy.rs:120) ← run ← main`.
    pub call_site: String,
    pub samples: u64,
}

impl Default for Processes {
    fn default() -> Self {
        Processes {
            rows: Vec::new(),
            order: Vec::new(),
            history: HashMap::new(),
            sort: Sort::default(),
            filter: None,
            filter_input: None,
            selected: None,
            view: View::Table,
            groups: Vec::new(),
            selected_group: None,
            show_threads: false,
            call_sites: None,
        }
    }
}

impl Processes {
    /// Takes the section's view of `model` after the session applied a batch: a row per
    /// process that either layer counted (zcprof itself only when `own` lists it), its
    /// kernel copies from `copy_source` only. `cmdline` is asked once per new process
    /// instance.
    pub fn apply(
        &mut self,
        model: &Model,
        cmdline: &dyn Fn(u32) -> Option<String>,
        copy_source: Option<Role>,
        own: &Own,
    ) {
        let seconds = model.interval.map_or(0.0, |d| d.as_secs_f64());
        let mut known: HashMap<ProcId, String> =
            self.rows.drain(..).map(|r| (r.id, r.cmdline)).collect();
        let mut children: HashMap<ProcId, Vec<(u32, String)>> = HashMap::new();
        for p in model.processes() {
            if let Some(parent) = p.parent {
                children
                    .entry(parent)
                    .or_default()
                    .push((p.tgid, p.comm.clone()));
            }
        }
        for p in model.processes() {
            if p.totals.is_zero() || own.hides(p) {
                continue;
            }
            let interval = p.interval.syscall.figures();
            let cmdline = known
                .remove(&p.id)
                .or_else(|| if p.exited { None } else { cmdline(p.tgid) })
                .unwrap_or_default();
            self.rows.push(ProcRow {
                id: p.id,
                pid: p.tgid,
                ppid: p.ppid,
                comm: p.name().to_string(),
                cmdline,
                cgroup: p.cgroup_path.clone().unwrap_or_default(),
                container: p.container().unwrap_or_default(),
                exited: p.exited,
                rates: Rates::of(&interval, seconds),
                interval,
                copy_calls: copy_calls(&p.interval.syscall),
                totals: p.totals.syscall.clone(),
                kernel_rates: KernelRates::of(&p.interval.kernel, copy_source, seconds),
                kernel: p.totals.kernel.clone(),
                io_uring_rates: IoUringRates::of(&p.interval.io_uring, seconds),
                io_uring: p.totals.io_uring.clone(),
                children: children.remove(&p.id).unwrap_or_default(),
                top_flow: p.interval.flows.biggest().map(|(f, c)| {
                    (
                        format!("{} → {}{}", f.from, f.to, flow_how(&f)),
                        per_second(c.bytes, seconds),
                    )
                }),
                flows: p.totals.flows.clone(),
                threads: thread_rows(p, seconds),
            });
        }
        for row in &self.rows {
            self.history
                .entry(row.id)
                .or_default()
                .push(row.rates.copied_per_s(), row.rates.zero_copy_bytes_per_s);
        }
        // A set, not a scan of the rows per history: that was quadratic, ~100 ms a
        // refresh at 10,000 processes (issue 15).
        let shown: HashSet<ProcId> = self.rows.iter().map(|r| r.id).collect();
        self.history.retain(|id, _| shown.contains(id));
        self.refresh_order();
    }

    /// Recomputes which rows are shown and in what order; keeps the selection on the same
    /// process if it is still shown, else on the first row.
    pub fn refresh_order(&mut self) {
        let mut order: Vec<usize> = (0..self.rows.len())
            .filter(|&i| {
                self.filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&self.rows[i]))
            })
            .collect();
        let rows = &self.rows;
        let sort = self.sort;
        order.sort_by(|&a, &b| {
            let (a, b) = (&rows[a], &rows[b]);
            let key = match sort.column {
                Column::Comm => a.comm.cmp(&b.comm),
                Column::Pid => a.pid.cmp(&b.pid),
                Column::Container => container_label(a).cmp(container_label(b)),
                column => sort_value(a, column).total_cmp(&sort_value(b, column)),
            };
            let key = if sort.descending { key.reverse() } else { key };
            key.then(a.pid.cmp(&b.pid)).then(a.id.cmp(&b.id))
        });
        self.order = order;
        self.groups = groups::of(self.visible(), self.sort);
        if !self
            .selected_group
            .as_ref()
            .is_some_and(|name| self.groups.iter().any(|g| &g.name == name))
        {
            self.selected_group = self.groups.first().map(|g| g.name.clone());
        }
        let still_shown = self
            .selected
            .is_some_and(|id| self.visible().any(|r| r.id == id));
        if !still_shown {
            let first = self.visible().next().map(|r| r.id);
            self.selected = first;
        }
    }

    /// The rows shown, in display order.
    pub fn visible(&self) -> impl Iterator<Item = &ProcRow> {
        self.order.iter().filter_map(|&i| self.rows.get(i))
    }

    /// Number of processes with counts (before filtering).
    pub fn total_rows(&self) -> usize {
        self.rows.len()
    }

    /// Position of the selection among the visible rows.
    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected?;
        self.visible().position(|r| r.id == id)
    }

    /// The process whose call sites the detail view shows, while it is open.
    pub fn wants_call_sites(&self) -> Option<u32> {
        (self.view == View::Detail)
            .then(|| self.selected_row().map(|r| r.pid))
            .flatten()
    }

    pub fn selected_row(&self) -> Option<&ProcRow> {
        let id = self.selected?;
        self.rows.iter().find(|r| r.id == id)
    }

    pub fn history(&self, id: ProcId) -> Option<&History> {
        self.history.get(&id)
    }

    pub fn set_filter(&mut self, filter: Option<Filter>) {
        self.filter = filter;
        self.refresh_order();
    }

    /// The section is shown again from another tab: always its table.
    pub fn show_table(&mut self) {
        self.view = View::Table;
    }

    /// The groups view's rows, in display order.
    pub fn groups(&self) -> &[GroupRow] {
        &self.groups
    }

    /// Position of the selected group.
    pub fn selected_group_index(&self) -> Option<usize> {
        let name = self.selected_group.as_ref()?;
        self.groups.iter().position(|g| &g.name == name)
    }
}

/// The threads layer's split of `p`, most bytes first.
fn thread_rows(p: &Process, seconds: f64) -> Vec<ThreadRow> {
    let mut rows: Vec<ThreadRow> = p
        .threads
        .iter()
        .map(|t| {
            let f = t.totals.figures();
            ThreadRow {
                tid: t.tid,
                name: t.name().to_string(),
                exited: t.exited,
                calls: t.totals.slots().iter().map(|s| s.calls).sum(),
                copied: f.copied_bytes(),
                zero_copy: f.zero_copy_bytes,
                copied_per_s: per_second(t.interval.figures().copied_bytes(), seconds),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.copied + b.zero_copy)
            .cmp(&(a.copied + a.zero_copy))
            .then(a.tid.cmp(&b.tid))
    });
    rows
}

/// Draws the section's current view.
pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, processes: &Processes) {
    match processes.view {
        View::Table => table::render(frame, area, shared, processes),
        View::Groups => groups::render(frame, area, shared, processes),
        View::Detail => detail::render(frame, area, shared, processes),
    }
}
