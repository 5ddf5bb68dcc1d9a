//! The `?` overlay: every key binding (from `keys::BINDINGS`, so it cannot drift), and
//! what the figures mean.

use ratatui::{
    Frame,
    layout::{Constraint, Flex, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph},
};

use super::{App, Theme, keys::BINDINGS};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::of(app);
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<20}"), theme.accent()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(
        " Figures come from the syscall layer: bytes returned by read/write-family (copied)",
    ));
    lines.push(Line::from(
        " and sendfile/splice-family (zero-copy) syscalls. Any key closes this help.",
    ));
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = 90.min(area.width);
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" zcprof keys ", theme.title())),
        ),
        popup,
    );
}
