//! The detail view's threads-layer panel (`t`, with `--threads`): the process's syscall-layer
//! figures split by thread (tid, name), most bytes first. Without the layer it says how to
//! get it, rather than show an empty table that reads as "no threads".

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Row, Table},
};

use crate::{
    ui::{format::per_second, processes::ProcRow, shared::Shared},
    units,
};

pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, row: &ProcRow) {
    let theme = shared.theme();
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(
            " threads layer · {} threads · totals, copied/s last interval · t: the chart ",
            row.threads.len()
        ),
        theme.title(),
    ));
    if !shared.threads_counted() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Line::styled(
                "  no thread split: start zcprof with --threads (it costs more per syscall)",
                theme.dim(),
            ),
            inner,
        );
        return;
    }
    let rows: Vec<Row> = row
        .threads
        .iter()
        .map(|t| {
            let name = if t.exited {
                format!("{} (exited)", t.name)
            } else {
                t.name.clone()
            };
            Row::new(vec![
                Cell::from(t.tid.to_string()),
                Cell::from(name),
                Cell::from(units::count(t.calls)),
                Cell::from(Span::styled(units::bytes(t.copied as f64), theme.copied())),
                Cell::from(Span::styled(
                    units::bytes(t.zero_copy as f64),
                    theme.zero_copy(),
                )),
                Cell::from(per_second(t.copied_per_s)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Min(16),
            Constraint::Length(12),
            Constraint::Length(11),
            Constraint::Length(11),
            Constraint::Length(10),
        ],
    )
    .header(
        Row::new(["TID", "NAME", "CALLS", "COPIED", "ZERO-COPY", "COPIED/s"]).style(theme.title()),
    )
    .block(block);
    frame.render_widget(table, area);
}
