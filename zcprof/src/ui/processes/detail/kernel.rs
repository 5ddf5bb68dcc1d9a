//! The detail view's kernel-layer section: each kernel probe that fired for the process,
//! with its role, what it counted since the probes attached and per second over the last
//! interval; then the kernel-copy figure, from the one role that makes it. The role is
//! shown on every row because the rows overlap (a breakdown probe sees bytes the copy
//! role already counted), so no reader should add them up.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap},
};
use zcprof_common::{Counts, kernel::KernelProbe, syscalls::Direction};

use crate::{
    report::role_label,
    ui::{format::per_second, processes::ProcRow, shared::Shared, theme::Theme},
    units,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Probe,
    Role,
    Dir,
    Calls,
    Bytes,
    CallsPerS,
    BytesPerS,
}

/// Every column with its title and width: PROBE fits `__check_object_size:from_user`, ROLE
/// `zero_copy_internal`, so that no two rows read alike.
const COLUMNS: [(Col, &str, u16); 7] = [
    (Col::Probe, "PROBE", 29),
    (Col::Role, "ROLE", 18),
    (Col::Dir, "DIR", 3),
    (Col::Calls, "CALLS", 10),
    (Col::Bytes, "BYTES", 10),
    (Col::CallsPerS, "CALLS/s", 8),
    (Col::BytesPerS, "BYTES/s", 10),
];

/// Lines the section takes in `width` cells, its title rule included.
pub fn height(shared: &Shared, row: &ProcRow, width: u16) -> u16 {
    let probes = row.kernel.fired().count() as u16;
    if probes == 0 {
        return 2;
    }
    // The copies line wraps rather than lose its u→k figure on a narrow terminal.
    let copies = copies(shared, row, shared.theme())
        .width()
        .div_ceil(usize::from(width.max(1)))
        .max(1) as u16;
    // Title rule and column titles, then one line per probe.
    2 + probes + copies
}

pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, row: &ProcRow) {
    let theme = shared.theme();
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title(shared), theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let probes = fired(shared, row);
    if probes.is_empty() {
        frame.render_widget(Line::styled(nothing_counted(shared), theme.dim()), inner);
        return;
    }
    let [table, copies_area] = Layout::vertical([
        Constraint::Length(1 + probes.len() as u16),
        Constraint::Fill(1),
    ])
    .areas(inner);
    render_probes(frame, table, shared, row, &probes);
    frame.render_widget(
        Paragraph::new(copies(shared, row, theme)).wrap(Wrap { trim: true }),
        copies_area,
    );
}

fn title(shared: &Shared) -> String {
    match shared.kernel_layer().filter(|l| l.attached > 0) {
        Some(layer) => format!(
            " kernel layer via {} · totals since the probes attached; /s: last interval ",
            layer.via
        ),
        None => " kernel layer ".into(),
    }
}

/// The one line for a process the kernel layer has nothing for, saying whether it could
/// have counted anything at all.
fn nothing_counted(shared: &Shared) -> &'static str {
    match (
        shared.kernel_layer().filter(|l| l.attached > 0),
        shared.copy_source,
    ) {
        (None, _) => "no kernel probe attached (`zcprof doctor` says why)",
        (Some(_), None) => {
            "the kernel layer counted nothing for this process (no kernel copy probe attached: `zcprof doctor` says why)"
        }
        (Some(_), Some(_)) => "the kernel layer counted nothing for this process",
    }
}

/// The probes that fired for the process, those that make the kernel-copy figure first.
fn fired<'a>(shared: &Shared, row: &'a ProcRow) -> Vec<(&'static KernelProbe, &'a Counts)> {
    let mut fired: Vec<_> = row.kernel.fired().collect();
    fired.sort_by_key(|(p, _)| shared.copy_source != Some(p.role));
    fired
}

fn render_probes(
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    row: &ProcRow,
    probes: &[(&'static KernelProbe, &Counts)],
) {
    let theme = shared.theme();
    let full: u16 = COLUMNS.iter().map(|(_, _, w)| w + 1).sum::<u16>() - 1;
    // Bytes are the figure; calls are what gives way on a narrow terminal.
    let columns: Vec<_> = COLUMNS
        .iter()
        .filter(|(c, _, _)| area.width >= full || !matches!(c, Col::Calls | Col::CallsPerS))
        .collect();
    let rows: Vec<Row> = probes
        .iter()
        .map(|&probe| {
            Row::new(
                columns
                    .iter()
                    .map(|(c, _, _)| cell(*c, shared, row, probe, theme)),
            )
        })
        .collect();
    let table = Table::new(rows, columns.iter().map(|(_, _, w)| Constraint::Length(*w)))
        .header(Row::new(columns.iter().map(|(_, t, _)| *t)).style(theme.title()));
    frame.render_widget(table, area);
}

fn cell(
    column: Col,
    shared: &Shared,
    row: &ProcRow,
    (probe, total): (&'static KernelProbe, &Counts),
    theme: Theme,
) -> Cell<'static> {
    let rate = row.kernel_rates.probes.get(probe.name);
    match column {
        Col::Probe => Cell::from(probe.name),
        // The rows that make the kernel-copy figure stand out from those it overlaps.
        Col::Role if shared.copy_source == Some(probe.role) => {
            Cell::from(Span::styled(probe.role.name(), theme.copied()))
        }
        Col::Role => Cell::from(probe.role.name()),
        Col::Dir => Cell::from(arrow(probe.direction)),
        Col::Calls => Cell::from(units::count(total.calls)),
        Col::Bytes => Cell::from(units::bytes(total.bytes as f64)),
        Col::CallsPerS => Cell::from(format!("{:.0}", rate.map_or(0.0, |r| r.calls_per_s))),
        Col::BytesPerS => Cell::from(per_second(rate.map_or(0.0, |r| r.bytes_per_s))),
    }
}

fn arrow(direction: Direction) -> &'static str {
    match direction {
        Direction::KernelToUser => "k→u",
        Direction::UserToKernel => "u→k",
        Direction::KernelToKernel => "k→k",
    }
}

/// The kernel-copy figure of this process, or why there is none.
fn copies(shared: &Shared, row: &ProcRow, theme: Theme) -> Line<'static> {
    let Some(role) = shared.copy_source else {
        return Line::from(vec![
            Span::styled("kernel copies: ", theme.title()),
            Span::raw("no kernel copy probe attached (`zcprof doctor` says why)"),
        ]);
    };
    let (k2u, u2k) = row.kernel.copied(role);
    let r = &row.kernel_rates;
    let figure = |bytes: u64, per_s: Option<f64>| {
        Span::styled(
            format!(
                "{} ({})",
                units::bytes(bytes as f64),
                units::rate(per_s.unwrap_or(0.0))
            ),
            theme.copied(),
        )
    };
    Line::from(vec![
        Span::styled(
            format!("kernel copies, {}: ", role_label(role)),
            theme.title(),
        ),
        Span::raw("k→u "),
        figure(k2u, r.copy_k2u_bytes_per_s),
        Span::raw(", u→k "),
        figure(u2k, r.copy_u2k_bytes_per_s),
    ])
}
