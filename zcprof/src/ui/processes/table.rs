//! The process table: per process, what the syscall layer counted in the last interval,
//! per second, with a trend of copied bytes over the last minute; and, when a kernel copy
//! probe attached, the kernel layer's copies beside them (`KERNEL/s`).

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Row, Table, TableState},
};

use super::{Column, ProcRow, Processes, container_label};
use crate::{
    report::role_label,
    ui::{
        format::{per_second, sparkline},
        shared::Shared,
        theme::Theme,
    },
    units,
};

/// COMM's width when there is room; it never gets less than [`width`] says.
const COMM_WIDTH: u16 = 16;
/// The trend's widest.
const TREND_WIDTH: u16 = 30;

/// Draws the table of `processes` (under the demos panel too, where it takes no keys).
pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, processes: &Processes) {
    let theme = shared.theme();
    let columns = fitting(Column::of_session(shared), area.width);
    let trend_width = trend_width(&columns, area.width);
    let header = Row::new(
        columns
            .iter()
            .map(|c| Cell::from(header_title(processes, *c)))
            .chain((trend_width > 0).then(|| Cell::from("COPIED, LAST MINUTE"))),
    )
    .style(theme.title());
    // Only the rows that fit are built, the window ratatui itself would show (from the
    // top, or scrolled just enough to show the selection): building every row's cells
    // made a frame of 10,000 processes take ~55 ms (issue 15, `bench/README.md`).
    let fits = usize::from(area.height.saturating_sub(2)).max(1); // the border, the header
    let selected = processes.selected_index();
    let first = selected.map_or(0, |s| (s + 1).saturating_sub(fits));
    let rows: Vec<Row> = processes
        .visible()
        .skip(first)
        .take(fits)
        .map(|r| {
            let trend = (trend_width > 0).then(|| {
                let trend = processes
                    .history(r.id)
                    .map(|h| sparkline(h.copied.iter().copied(), usize::from(trend_width)))
                    .unwrap_or_default();
                Cell::from(Span::styled(trend, theme.copied()))
            });
            Row::new(
                columns
                    .iter()
                    .map(|c| cell(*c, r, shared, theme))
                    .chain(trend),
            )
        })
        .collect();
    let widths = columns
        .iter()
        .map(|c| match c {
            Column::Comm => Constraint::Min(width(*c)),
            _ => Constraint::Length(width(*c)),
        })
        .chain((trend_width > 0).then_some(Constraint::Length(trend_width)));
    let empty = processes.visible().next().is_none();
    let table = Table::new(rows, widths)
        .header(header)
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title(title(shared, processes, theme)),
        )
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(selected.map(|s| s - first));
    frame.render_stateful_widget(table, area, &mut state);
    if empty && area.height > 3 {
        let msg = if processes.filter.is_some() {
            "  no process matches the filter (Esc clears it)"
        } else if shared.batches == 0 {
            "  waiting for the first interval…"
        } else {
            "  no process has made a counted syscall yet"
        };
        let line = Rect {
            y: area.y + 2,
            height: 1,
            ..area
        };
        frame.render_widget(Line::styled(msg, theme.dim()), line);
    }
}

/// Names the layer behind each column, and says why `KERNEL/s` is missing when it is: a
/// column that silently is not there reads as "the kernel copied nothing".
fn title(shared: &Shared, processes: &Processes, theme: Theme) -> Line<'static> {
    let mut title = vec![Span::styled(" processes · syscall layer ", theme.title())];
    title.push(match shared.copy_source {
        Some(role) => Span::styled(
            format!("· KERNEL/s: kernel layer, {} ", role_label(role)),
            theme.title(),
        ),
        None => Span::raw("· no KERNEL/s: no kernel copy probe (zcprof doctor) "),
    });
    if let Some(why) = &shared.info.cgroups_unavailable {
        title.push(Span::styled(
            format!("· CONTAINER unavailable: {why} "),
            theme.alert(),
        ));
    }
    if shared.flows_counted() {
        title.push(Span::styled("· TOP FLOW/s: flows layer ", theme.title()));
    }
    if let Some(filter) = &processes.filter {
        title.push(Span::styled(
            format!(
                "· filter \"{}\": {} of {} ",
                filter.text(),
                processes.visible().count(),
                processes.total_rows()
            ),
            theme.accent(),
        ));
    }
    title.push(Span::raw(format!(
        "· per second, last interval · sort {} {} ",
        processes.sort.column.title(),
        if processes.sort.descending {
            "↓"
        } else {
            "↑"
        }
    )));
    Line::from(title)
}

fn header_title(processes: &Processes, column: Column) -> String {
    let mut title = column.title().to_string();
    if column == processes.sort.column {
        title.push(if processes.sort.descending {
            '↓'
        } else {
            '↑'
        });
    }
    title
}

fn cell(column: Column, r: &ProcRow, shared: &Shared, theme: Theme) -> Cell<'static> {
    let rates = &r.rates;
    match column {
        // Why is in the table's title.
        Column::Container if shared.info.cgroups_unavailable.is_some() => {
            Cell::from(Span::styled("unavailable", theme.dim()))
        }
        Column::Container => Cell::from(container_label(r).to_string()),
        Column::TopFlow => Cell::from(r.top_flow.as_ref().map_or_else(
            || "-".into(),
            |(flow, rate)| format!("{flow} {}", per_second(*rate)),
        )),
        Column::Pid => Cell::from(r.pid.to_string()),
        Column::Comm if r.exited => Cell::from(format!("{} (exited)", r.comm)),
        Column::Comm => Cell::from(r.comm.clone()),
        Column::Copied => Cell::from(Span::styled(
            per_second(rates.copied_per_s()),
            theme.copied(),
        )),
        Column::CopyK2u => Cell::from(per_second(rates.copy_k2u_bytes_per_s)),
        Column::CopyU2k => Cell::from(per_second(rates.copy_u2k_bytes_per_s)),
        Column::ZeroCopy => Cell::from(Span::styled(
            per_second(rates.zero_copy_bytes_per_s),
            theme.zero_copy(),
        )),
        Column::Ratio => Cell::from(units::percent(rates.zero_copy_ratio)),
        Column::Calls => Cell::from(format!("{:.0}", rates.calls_per_s)),
        Column::AvgCopy => Cell::from(r.avg_copy().map_or_else(|| "-".into(), units::bytes)),
        Column::IoUringCopied => Cell::from(Span::styled(
            per_second(r.io_uring_rates.rates.copied_per_s()),
            theme.copied(),
        )),
        Column::KernelCopied => Cell::from(Span::styled(
            r.kernel_rates
                .copied_per_s()
                .map_or_else(|| "-".into(), per_second),
            theme.copied(),
        )),
    }
}

/// Cells a column takes (COMM: at least).
fn width(column: Column) -> u16 {
    match column {
        Column::Pid => 7,
        Column::Comm => 12,
        Column::Copied
        | Column::CopyK2u
        | Column::CopyU2k
        | Column::IoUringCopied
        | Column::KernelCopied => 10,
        Column::ZeroCopy => 11,
        Column::Ratio => 6,
        Column::Calls => 8,
        Column::AvgCopy => 9,
        Column::Container => 20,
        Column::TopFlow => 30,
    }
}

/// Cells `columns` take with COMM `comm` wide, one-cell gaps included.
fn needed(columns: &[Column], comm: u16) -> u16 {
    let cells: u16 = columns
        .iter()
        .map(|c| if *c == Column::Comm { comm } else { width(*c) })
        .sum();
    cells + columns.len().saturating_sub(1) as u16
}

/// `columns` less what does not fit `width`, in this order: CONTAINER (the groups view, `C`,
/// and the detail view show it too), the K→U and U→K split of COPIED/s (the one column pair
/// whose figure another column already shows; the header has the machine's split), then the
/// biggest flow. Squeezing every column instead would cut all their numbers.
fn fitting(mut columns: Vec<Column>, width: u16) -> Vec<Column> {
    let drops: [&[Column]; 3] = [
        &[Column::Container],
        &[Column::CopyK2u, Column::CopyU2k],
        &[Column::TopFlow],
    ];
    for drop in drops {
        // CONTAINER only where COMM keeps its preferred width: it is the one column that
        // other views show too.
        let comm = if columns.contains(&Column::Container) {
            COMM_WIDTH
        } else {
            self::width(Column::Comm)
        };
        if needed(&columns, comm) <= width {
            break;
        }
        columns.retain(|c| !drop.contains(c));
    }
    columns
}

/// What is left for the trend once COMM has its preferred width; 0 hides it.
fn trend_width(columns: &[Column], width: u16) -> u16 {
    width
        .saturating_sub(needed(columns, COMM_WIDTH) + 1)
        .min(TREND_WIDTH)
}
