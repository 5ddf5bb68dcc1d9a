//! The detail view of the selected process: its command line and children; the syscall
//! layer's per-syscall breakdown (bytes, calls, errors since the probes attached) and size
//! histogram; the kernel layer's probes ([`kernel`]); the flows layer's flows ([`flows`]);
//! the stacks layer's call sites of the last minute ([`call_sites`]); a chart of copied
//! versus zero-copy bytes per second, or (`t`) the threads layer's split ([`threads`]). Each section names its layer: they count the same bytes at different
//! places, and a figure read under the wrong layer would be wrong.

mod call_sites;
mod flows;
mod kernel;
mod threads;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    symbols::Marker,
    text::{Line, Span},
    widgets::{Axis, Block, Borders, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table},
};
use zcprof_common::{
    Counts, HIST_BUCKETS,
    syscalls::{Direction, Family},
};

use super::{ProcRow, Processes};
use crate::{
    model::errno_names,
    probes::Layer,
    report::{figures::used, run::bucket_label},
    ui::{
        format::per_second,
        shared::{HISTORY, History, Shared},
    },
    units,
};

pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, processes: &Processes) {
    let theme = shared.theme();
    let Some(row) = processes.selected_row() else {
        frame.render_widget(
            Paragraph::new("no process selected (Esc goes back)").style(theme.dim()),
            area,
        );
        return;
    };
    let title = format!(
        " pid {} · {}{} ",
        row.pid,
        row.comm,
        if row.exited { " (exited)" } else { "" }
    );
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let (middle_height, kernel_height) = heights(shared, row, inner);
    let flows_height = flows::height(shared, row).min(
        inner
            .height
            .saturating_sub(ABOUT_HEIGHT + middle_height + kernel_height)
            / 2,
    );
    let sites = processes.call_sites.as_ref();
    let sites_height = call_sites::height(sites, row.pid).min(
        inner
            .height
            .saturating_sub(ABOUT_HEIGHT + middle_height + kernel_height + flows_height)
            / 2,
    );
    let [about, middle, kernel_area, flows_area, sites_area, chart] = Layout::vertical([
        Constraint::Length(ABOUT_HEIGHT),
        Constraint::Length(middle_height),
        Constraint::Length(kernel_height),
        Constraint::Length(flows_height),
        Constraint::Length(sites_height),
        Constraint::Fill(1),
    ])
    .areas(inner);

    let children = if row.children.is_empty() {
        "none seen".to_string()
    } else {
        let mut list: Vec<String> = row
            .children
            .iter()
            .take(8)
            .map(|(pid, comm)| format!("{pid} {comm}"))
            .collect();
        if row.children.len() > 8 {
            list.push(format!("… {} more", row.children.len() - 8));
        }
        list.join(", ")
    };
    let cmdline = if row.cmdline.is_empty() {
        "(unknown)"
    } else {
        &row.cmdline
    };
    let parent = row.ppid.map_or_else(|| "?".into(), |p| p.to_string());
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled("command line: ", theme.title()),
                Span::raw(cmdline),
            ]),
            Line::from(vec![
                Span::styled("parent: ", theme.title()),
                Span::raw(parent),
                Span::styled(" · cgroup: ", theme.title()),
                Span::raw(cgroup_text(row)),
                Span::styled(" · children: ", theme.title()),
                Span::raw(children),
            ]),
        ]),
        about,
    );

    let [breakdown, histogram] =
        Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(middle);
    render_breakdown(frame, breakdown, shared, row);
    render_histogram(frame, histogram, shared, row);
    kernel::render(frame, kernel_area, shared, row);
    flows::render(frame, flows_area, shared, row);
    call_sites::render(frame, sites_area, shared, sites);
    if processes.show_threads {
        threads::render(frame, chart, shared, row);
    } else {
        render_chart(frame, chart, shared, processes.history(row.id));
    }
}

/// The command line, and the parent's line (with the cgroup and the children).
const ABOUT_HEIGHT: u16 = 2;

/// `PATH (CONTAINER)`, or `(unknown)`.
fn cgroup_text(row: &ProcRow) -> String {
    match (row.cgroup.as_str(), row.container.as_str()) {
        ("", _) => "?".into(),
        (path, "") => path.to_string(),
        (path, container) => format!("{path} ({container})"),
    }
}

/// Heights of the syscall-layer and kernel-layer sections: each what it needs, at most a
/// fair share of what is left, so that a long list in one squeezes out neither the other
/// nor the chart.
fn heights(shared: &Shared, row: &ProcRow, inner: Rect) -> (u16, u16) {
    let rest = inner.height.saturating_sub(ABOUT_HEIGHT);
    let kernel = kernel::height(shared, row, inner.width).min(rest / 2);
    let syscalls = (used(&row.totals).count() + row.io_uring.fired().count()).max(1) as u16
        + errors(row).is_some() as u16;
    let sizes = buckets(row).iter().filter(|n| **n > 0).count().max(1) as u16;
    // Title and header above the syscalls; title above the sizes.
    let middle = (2 + syscalls).max(1 + sizes).min((rest - kernel) / 2);
    (middle, kernel)
}

fn render_breakdown(frame: &mut Frame, area: Rect, shared: &Shared, row: &ProcRow) {
    let theme = shared.theme();
    let header = Row::new(["SYSCALL", "KIND", "CALLS", "BYTES", "ERRORS"]).style(theme.title());
    let line = |name: String, (family, direction): (Family, Direction), s: &Counts| {
        let kind = match (family, direction) {
            (Family::ZeroCopy, _) => "zero-copy",
            (Family::Copy, Direction::KernelToUser) => "copy k→u",
            (Family::Copy, _) => "copy u→k",
            (Family::ZeroCopyRequested, _) => "zc asked",
            (Family::Notice, _) => "zc notice",
            (Family::Control, _) => "calls",
        };
        let style = if family == Family::ZeroCopy {
            theme.zero_copy()
        } else {
            theme.copied()
        };
        Row::new(vec![
            Cell::from(name),
            Cell::from(Span::styled(kind, style)),
            Cell::from(units::count(s.calls)),
            Cell::from(units::bytes(s.bytes as f64)),
            Cell::from(units::count(s.errors)),
        ])
    };
    let mut rows: Vec<Row> = used(&row.totals)
        .map(|(sc, s)| line(sc.name.to_string(), (sc.family, sc.direction), s))
        .collect();
    // The io_uring layer's opcodes below the syscalls, each named with its layer; the
    // detector's slot (io_uring used while the layer was unavailable) as the caveat it is.
    let uring = row.io_uring.fired().count();
    rows.extend(row.io_uring.requests().map(|(op, s)| {
        line(
            format!("io_uring {}", op.name),
            (op.family, op.direction),
            s,
        )
    }));
    if row.io_uring.unseen_calls() > 0 {
        rows.push(
            Row::new(vec![
                Cell::from("io_uring_enter"),
                // The layer was unavailable: its requests' bytes are unknown, not 0.
                Cell::from("UNCOUNTED"),
                Cell::from(units::count(row.io_uring.unseen_calls())),
                Cell::from("unknown"),
            ])
            .style(theme.alert()),
        );
    }
    let empty = rows.is_empty();
    let title = if uring > 0 {
        format!("syscall layer{} + io_uring layer · totals", via(shared))
    } else {
        format!("syscall layer{} · totals", via(shared))
    };
    let table = Table::new(
        rows,
        [
            // `io_uring SENDMSG_ZC` needs 19 cells; plain syscall names fit 16.
            Constraint::Length(if uring > 0 { 20 } else { 16 }),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(11),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .block(
        Block::default()
            .borders(Borders::RIGHT)
            .title(Span::styled(title, theme.title())),
    );
    let (area, errors_line) = match errors(row) {
        // Below the table, when there is room for it and one syscall.
        Some(errors) if area.height > 3 => (
            Rect {
                height: area.height - 1,
                ..area
            },
            Some((errors, area.y + area.height - 1)),
        ),
        _ => (area, None),
    };
    frame.render_widget(table, area);
    if let Some((errors, y)) = errors_line {
        frame.render_widget(
            Line::styled(format!(" errors: {errors}"), theme.dim()),
            Rect {
                y,
                height: 1,
                ..area
            },
        );
    }
    if empty && area.height > 2 {
        frame.render_widget(
            Line::styled("  no counted syscall", theme.dim()),
            Rect {
                y: area.y + 2,
                height: 1,
                ..area
            },
        );
    }
}

/// The process's errors by errno, failures apart from would-block ones; `None` without
/// errors.
fn errors(row: &ProcRow) -> Option<String> {
    zcprof_recording::errno_summary(&errno_names(&row.totals.figures().errno))
}

/// ` via raw_tracepoint`: how the syscall layer attached.
fn via(shared: &Shared) -> String {
    shared
        .info
        .layers
        .iter()
        .find(|l| l.layer == Layer::Syscall)
        .map_or_else(String::new, |l| format!(" via {}", l.via))
}

/// Calls per log2 size bucket, all syscalls together.
fn buckets(row: &ProcRow) -> [u64; HIST_BUCKETS] {
    let mut buckets = [0u64; HIST_BUCKETS];
    for s in row.totals.slots().iter() {
        for (b, n) in buckets.iter_mut().zip(s.hist.iter()) {
            *b += n;
        }
    }
    buckets
}

/// Calls by size, all syscalls together: one line per non-empty log2 bucket.
fn render_histogram(frame: &mut Frame, area: Rect, shared: &Shared, row: &ProcRow) {
    let theme = shared.theme();
    let buckets = buckets(row);
    let max = buckets.iter().copied().max().unwrap_or(0);
    let bar_width = area.width.saturating_sub(22) as u64;
    let mut lines = vec![Line::styled(
        " calls by bytes moved (syscall layer)",
        theme.title(),
    )];
    for (k, &n) in buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
        let len = if max > 0 {
            (n * bar_width).div_ceil(max)
        } else {
            0
        };
        lines.push(Line::from(vec![
            Span::raw(format!(" {:>9} {:>8} ", bucket_label(k), units::count(n))),
            Span::styled("■".repeat(len as usize), theme.copied()),
        ]));
    }
    if lines.len() == 1 {
        lines.push(Line::styled(" no calls", theme.dim()));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// Copied and zero-copy bytes per second over the last [`HISTORY`] intervals.
fn render_chart(frame: &mut Frame, area: Rect, shared: &Shared, history: Option<&History>) {
    let theme = shared.theme();
    let (copied, zero) = history.map_or_else(
        || (Vec::new(), Vec::new()),
        |h| (points(&h.copied), points(&h.zero_copy)),
    );
    let max = copied
        .iter()
        .chain(zero.iter())
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let datasets = vec![
        Dataset::default()
            .name("copied (k→u + u→k)")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.copied())
            .data(&copied),
        Dataset::default()
            .name("zero-copy")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.zero_copy())
            .data(&zero),
    ];
    let chart = Chart::new(datasets)
        .block(Block::default().borders(Borders::TOP).title(Span::styled(
            " bytes/s, last minute (syscall layer) ",
            theme.title(),
        )))
        .x_axis(
            Axis::default()
                .bounds([0.0, (HISTORY - 1) as f64])
                .labels(vec![
                    Line::from(format!("-{}", HISTORY - 1)),
                    Line::from("now"),
                ]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, max])
                .labels(vec![Line::from("0"), Line::from(per_second(max) + "/s")]),
        );
    frame.render_widget(chart, area);
}

/// Samples as chart points, the newest at x = HISTORY - 1.
fn points(series: &std::collections::VecDeque<f64>) -> Vec<(f64, f64)> {
    let offset = HISTORY - series.len().min(HISTORY);
    series
        .iter()
        .enumerate()
        .map(|(i, v)| ((offset + i) as f64, *v))
        .collect()
}
