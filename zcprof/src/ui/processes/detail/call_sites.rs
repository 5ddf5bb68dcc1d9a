//! The detail view's stacks-layer section (`--stacks`): the selected process's call sites
//! over the last minute, estimated bytes (samples × period) with their sampling error. An
//! estimate that apportions the syscall layer's bytes, never added to them.

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    text::Span,
    widgets::{Block, Borders, Cell, Row, Table},
};
use zcprof_recording::sampling_error;

use crate::{
    ui::{processes::CallSites, shared::Shared},
    units,
};

/// Call sites listed at most.
const SHOWN: usize = 5;

/// Lines the section takes: none without the layer (or for another process); its title,
/// header and one line per call site (one saying none when none).
pub fn height(sites: Option<&CallSites>, pid: u32) -> u16 {
    match sites {
        Some(s) if s.pid == pid => 2 + s.rows.len().clamp(1, SHOWN) as u16,
        _ => 0,
    }
}

pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, sites: Option<&CallSites>) {
    let Some(sites) = sites.filter(|_| area.height > 0) else {
        return;
    };
    let theme = shared.theme();
    let mut rows: Vec<Row> = sites
        .rows
        .iter()
        .take(SHOWN)
        .map(|site| {
            Row::new(vec![
                Cell::from(units::bytes((site.samples * sites.period) as f64)),
                Cell::from(format!(
                    "± {}",
                    units::bytes(sampling_error(site.samples, sites.period) as f64)
                )),
                Cell::from(Span::styled(site.call_site.clone(), theme.copied())),
            ])
        })
        .collect();
    if rows.is_empty() {
        rows.push(Row::new(vec![Cell::from(Span::styled(
            "no sample in the last minute",
            theme.dim(),
        ))]));
    }
    let more = sites.rows.len().saturating_sub(SHOWN);
    let title = format!(
        " stacks layer · call sites, last minute · estimated: one sample per {}{}{} ",
        units::bytes(sites.period as f64),
        if sites.lost > 0 {
            format!(" · {} samples lost (low)", units::count(sites.lost))
        } else {
            String::new()
        },
        if more > 0 {
            format!(" · {more} more")
        } else {
            String::new()
        }
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(13),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["BYTES", "ERROR", "CALL SITE"]).style(theme.title()))
    .block(
        Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(title, theme.title())),
    );
    frame.render_widget(table, area);
}
