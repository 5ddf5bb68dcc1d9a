//! The detail view's flows-layer section (`--flows`): the process's bytes by descriptor kind
//! since the probes attached, most first ("file → user", "file → tcp (sendfile)"), and what
//! it delivered through sockets. A breakdown of the syscall layer's bytes, never added to
//! them.

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    text::Span,
    widgets::{Block, Borders, Cell, Row, Table},
};
use zcprof_common::syscalls::Family;

use crate::{
    model::flow_how,
    ui::{processes::ProcRow, shared::Shared},
    units,
};

/// Flows listed at most.
const SHOWN: usize = 6;

/// Lines the section takes: none without the layer; its title and one line per flow
/// (one saying none moved bytes when none did).
pub fn height(shared: &Shared, row: &ProcRow) -> u16 {
    if !shared.flows_counted() {
        return 0;
    }
    2 + row.flows.fired().count().clamp(1, SHOWN) as u16
}

pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, row: &ProcRow) {
    if area.height == 0 {
        return;
    }
    let theme = shared.theme();
    let mut flows: Vec<_> = row.flows.fired().collect();
    flows.sort_by(|a, b| b.2.bytes.cmp(&a.2.bytes).then(a.0.cmp(&b.0)));
    let more = flows.len().saturating_sub(SHOWN);
    let rows: Vec<Row> = flows
        .iter()
        .take(SHOWN)
        .map(|(_, f, s)| {
            let style = if f.family == Family::ZeroCopy {
                theme.zero_copy()
            } else {
                theme.copied()
            };
            Row::new(vec![
                Cell::from(Span::styled(
                    format!("{} → {}{}", f.from, f.to, flow_how(f)),
                    style,
                )),
                Cell::from(units::count(s.calls)),
                Cell::from(units::bytes(s.bytes as f64)),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let rows = if empty {
        vec![Row::new(vec![Cell::from(Span::styled(
            "no flow moved bytes",
            theme.dim(),
        ))])]
    } else {
        rows
    };
    let more = if more > 0 {
        format!(" · {more} more")
    } else {
        String::new()
    };
    let title = format!(
        " flows layer · totals by descriptor kind · {} delivered through sockets{more} ",
        units::bytes(row.flows.delivered_bytes() as f64)
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(34),
            Constraint::Length(12),
            Constraint::Length(11),
        ],
    )
    .header(Row::new(["FLOW", "CALLS", "BYTES"]).style(theme.title()))
    .block(
        Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(title, theme.title())),
    );
    frame.render_widget(table, area);
}
