//! The `?` overlay: every key binding (from the tables beside each section's key handling,
//! so it cannot drift), and what the figures mean.

use ratatui::{
    Frame,
    layout::{Constraint, Flex, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph},
};

use super::{app, demos, processes, shared::Binding, theme::Theme};

/// Every binding, in the overlay's order: quitting and tabs, the processes tab, pausing,
/// the demos tab.
pub fn bindings() -> impl Iterator<Item = &'static Binding> {
    app::BINDINGS
        .iter()
        .chain(processes::BINDINGS)
        .chain(app::DISPLAY_BINDINGS)
        .chain(demos::BINDINGS)
}

pub fn render(frame: &mut Frame, area: Rect, theme: Theme) {
    let mut lines: Vec<Line> = bindings()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<20}"), theme.accent()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    for line in [
        " Figures come from the syscall layer: bytes returned by read/write-family (copied)",
        " and sendfile/splice-family (zero-copy) syscalls; KERNEL/s and the details' kernel",
        " section from the kernel layer's probes (KERNEL/s: one role's only, never summed with",
        " probes that see the same bytes). With --stacks the details list the process's call",
        " sites of the last minute: estimated bytes (one sample per --stack-period) ± error.",
        " Any key closes this help.",
    ] {
        lines.push(Line::from(line));
    }
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
