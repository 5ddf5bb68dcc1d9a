//! The groups view (`C`): the table's rows added up per container or unit, or per cgroup
//! where the path names none, so that "which container copies" is one glance. It shows the
//! processes the filter shows; Enter filters the table to the selected group.

use std::collections::BTreeMap;

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Row, Table, TableState},
};

use super::{Column, ProcRow, Processes, Sort};
use crate::{
    ui::{format::per_second, shared::Shared},
    units,
};

/// One container, unit or cgroup: its processes' syscall-layer rates added up.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRow {
    /// The container or unit, else the cgroup path; `?` for processes whose cgroup is not
    /// known.
    pub name: String,
    /// Its cgroup paths (one, unless several cgroups name the same container).
    pub cgroups: Vec<String>,
    pub processes: usize,
    pub copy_k2u_bytes_per_s: f64,
    pub copy_u2k_bytes_per_s: f64,
    pub zero_copy_bytes_per_s: f64,
    pub calls_per_s: f64,
}

impl GroupRow {
    pub fn copied_per_s(&self) -> f64 {
        self.copy_k2u_bytes_per_s + self.copy_u2k_bytes_per_s
    }

    /// Share of moved bytes that were not copied; `None` when nothing moved.
    pub fn zero_copy_ratio(&self) -> Option<f64> {
        let moved = self.copied_per_s() + self.zero_copy_bytes_per_s;
        (moved > 0.0).then(|| self.zero_copy_bytes_per_s / moved)
    }

    /// The filter that shows this group's processes in the table: its name, whole (it is
    /// matched against the container and the cgroup path).
    pub fn filter_text(&self) -> String {
        format!("^{}$", regex::escape(&self.name))
    }
}

/// The group a process is in.
fn group_of(row: &ProcRow) -> &str {
    match (row.container.as_str(), row.cgroup.as_str()) {
        ("", "") => "?",
        ("", path) => path,
        (container, _) => container,
    }
}

/// `rows` added up per group, sorted as the table is where the column applies (PID sorts
/// by the number of processes, COMM and CONTAINER by name, a column the groups do not have
/// by copied bytes).
pub fn of<'a>(rows: impl Iterator<Item = &'a ProcRow>, sort: Sort) -> Vec<GroupRow> {
    let mut groups: BTreeMap<String, GroupRow> = BTreeMap::new();
    for row in rows {
        let name = group_of(row);
        let g = groups.entry(name.to_string()).or_insert_with(|| GroupRow {
            name: name.to_string(),
            cgroups: Vec::new(),
            processes: 0,
            copy_k2u_bytes_per_s: 0.0,
            copy_u2k_bytes_per_s: 0.0,
            zero_copy_bytes_per_s: 0.0,
            calls_per_s: 0.0,
        });
        if !row.cgroup.is_empty() && !g.cgroups.contains(&row.cgroup) {
            g.cgroups.push(row.cgroup.clone());
        }
        g.processes += 1;
        g.copy_k2u_bytes_per_s += row.rates.copy_k2u_bytes_per_s;
        g.copy_u2k_bytes_per_s += row.rates.copy_u2k_bytes_per_s;
        g.zero_copy_bytes_per_s += row.rates.zero_copy_bytes_per_s;
        g.calls_per_s += row.rates.calls_per_s;
    }
    let mut groups: Vec<GroupRow> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        let key = match sort.column {
            Column::Comm | Column::Container => a.name.cmp(&b.name),
            Column::Pid => a.processes.cmp(&b.processes),
            column => value(a, column).total_cmp(&value(b, column)),
        };
        let key = if sort.descending { key.reverse() } else { key };
        key.then(a.name.cmp(&b.name))
    });
    groups
}

/// The figure `column` sorts the groups by.
fn value(g: &GroupRow, column: Column) -> f64 {
    match column {
        Column::CopyK2u => g.copy_k2u_bytes_per_s,
        Column::CopyU2k => g.copy_u2k_bytes_per_s,
        Column::ZeroCopy => g.zero_copy_bytes_per_s,
        Column::Ratio => g.zero_copy_ratio().unwrap_or(-1.0),
        Column::Calls => g.calls_per_s,
        _ => g.copied_per_s(),
    }
}

/// Draws the groups table.
pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, processes: &Processes) {
    let theme = shared.theme();
    let header = Row::new([
        "CONTAINER / CGROUP",
        "PROCS",
        "COPIED/s",
        "K→U/s",
        "U→K/s",
        "ZERO-COPY/s",
        "ZC%",
        "CALLS/s",
    ])
    .style(theme.title());
    let rows: Vec<Row> = processes
        .groups()
        .iter()
        .map(|g| {
            Row::new(vec![
                Cell::from(g.name.clone()),
                Cell::from(g.processes.to_string()),
                Cell::from(Span::styled(per_second(g.copied_per_s()), theme.copied())),
                Cell::from(per_second(g.copy_k2u_bytes_per_s)),
                Cell::from(per_second(g.copy_u2k_bytes_per_s)),
                Cell::from(Span::styled(
                    per_second(g.zero_copy_bytes_per_s),
                    theme.zero_copy(),
                )),
                Cell::from(units::percent(g.zero_copy_ratio())),
                Cell::from(format!("{:.0}", g.calls_per_s)),
            ])
        })
        .collect();
    let mut title = vec![Span::styled(
        " containers and cgroups · syscall layer · per second, last interval ",
        theme.title(),
    )];
    if let Some(why) = &shared.info.cgroups_unavailable {
        title.push(Span::styled(
            format!("· cgroups unavailable: {why} "),
            theme.alert(),
        ));
    }
    if let Some(filter) = &processes.filter {
        title.push(Span::styled(
            format!("· filter \"{}\" ", filter.text()),
            theme.accent(),
        ));
    }
    title.push(Span::raw("· Enter: its processes · C: back "));
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Min(20),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(11),
            Constraint::Length(6),
            Constraint::Length(8),
        ],
    )
    .header(header)
    .block(
        Block::default()
            .borders(Borders::TOP)
            .title(Line::from(title)),
    )
    .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(processes.selected_group_index());
    frame.render_stateful_widget(table, area, &mut state);
    if empty && area.height > 3 {
        let line = Rect {
            y: area.y + 2,
            height: 1,
            ..area
        };
        frame.render_widget(
            Line::styled("  no process has made a counted syscall yet", theme.dim()),
            line,
        );
    }
}
