//! The process table: per process, what the syscall layer counted in the last interval,
//! per second, with a trend of copied bytes over the last minute.

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Row, Table, TableState},
};

use super::{App, Theme, app::Column, per_second, sparkline};
use crate::units;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::of(app);
    let shown = app.visible().count();
    let mut title = vec![Span::styled(
        " processes · syscall layer · per second over the last interval ",
        theme.title(),
    )];
    title.push(Span::raw(format!(
        "· sort {} {} ",
        app.sort.column.title(),
        if app.sort.descending { "↓" } else { "↑" }
    )));
    if let Some(filter) = &app.filter {
        title.push(Span::styled(
            format!(
                "· filter \"{}\": {shown} of {} ",
                filter.text(),
                app.total_rows()
            ),
            theme.accent(),
        ));
    }
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Line::from(title));

    let header = Row::new(
        Column::ALL
            .iter()
            .map(|c| {
                let mut title = c.title().to_string();
                if *c == app.sort.column {
                    title.push(if app.sort.descending { '↓' } else { '↑' });
                }
                Cell::from(title)
            })
            .chain(std::iter::once(Cell::from("COPIED, LAST MINUTE"))),
    )
    .style(theme.title());

    // Fixed columns take 80 cells with their gaps; COMM gets 16, the trend what is left
    // (up to 30), COMM the rest.
    let trend_width = usize::from(area.width.saturating_sub(80 + 16)).min(30);
    let rows: Vec<Row> = app
        .visible()
        .map(|r| {
            let copied = r.rates.copy_k2u_bytes_per_s + r.rates.copy_u2k_bytes_per_s;
            let trend = app
                .history(r.id)
                .map(|h| sparkline(h.copied.iter().copied(), trend_width))
                .unwrap_or_default();
            let mut comm = r.comm.clone();
            if r.exited {
                comm.push_str(" (exited)");
            }
            Row::new(vec![
                Cell::from(r.pid.to_string()),
                Cell::from(comm),
                Cell::from(Span::styled(per_second(copied), theme.copied())),
                Cell::from(per_second(r.rates.copy_k2u_bytes_per_s)),
                Cell::from(per_second(r.rates.copy_u2k_bytes_per_s)),
                Cell::from(Span::styled(
                    per_second(r.rates.zero_copy_bytes_per_s),
                    theme.zero_copy(),
                )),
                Cell::from(units::percent(r.rates.zero_copy_ratio)),
                Cell::from(format!("{:.0}", r.rates.calls_per_s)),
                Cell::from(r.avg_copy().map_or_else(|| "-".into(), units::bytes)),
                Cell::from(Span::styled(trend, theme.copied())),
            ])
        })
        .collect();

    let widths = [
        Constraint::Length(7),
        Constraint::Min(12),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(11),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(trend_width as u16),
    ];
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(app.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
    if empty && area.height > 3 {
        let msg = if app.filter.is_some() {
            "  no process matches the filter (Esc clears it)"
        } else if app.batches == 0 {
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
