//! The terminal dashboard (`zcprof` / `zcprof top` on a terminal).
//!
//! State lives in [`app::App`] and changes only through `App::apply` (a view of the model
//! after each batch), `App::handle_key` ([`keys`]) and the demo callbacks; every view
//! module renders from `&App` and never locks, blocks or does I/O. [`run`] is the event
//! loop; [`terminal`] sets the terminal up and restores it, also after a panic.

pub mod app;
pub mod demos;
pub mod detail;
pub mod header;
pub mod help;
pub mod keys;
pub mod run;
pub mod table;
pub mod terminal;

#[cfg(test)]
mod tests;

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

pub use app::{App, Command};
pub use run::run;

use self::app::View;

/// Smallest terminal the layout fits in; below it a message is shown instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 14;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let [header_area, body, footer_area] = Layout::vertical([
        Constraint::Length(header::HEIGHT),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame, header_area, app);
    match app.view {
        View::Processes => table::render(frame, body, app),
        View::Detail => detail::render(frame, body, app),
        View::Demos => {
            let [panel, procs] =
                Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                    .areas(body);
            demos::render(frame, panel, app);
            table::render(frame, procs, app);
        }
    }
    footer(frame, footer_area, app);
    if app.help {
        help::render(frame, area, app);
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from("zcprof: terminal too small"),
        Line::from(format!(
            "need {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}",
            area.width, area.height
        )),
        Line::from("enlarge it, or q to quit"),
    ];
    let top = area.height.saturating_sub(3) / 2;
    let [_, middle] = Layout::vertical([Constraint::Length(top), Constraint::Fill(1)]).areas(area);
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center), middle);
}

/// The bottom line: tabs and key hints, or the `/` prompt with its error.
fn footer(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::of(app);
    let line = if let Some(input) = &app.filter_input {
        let mut spans = vec![
            Span::styled(" filter / ", theme.accent()),
            Span::raw(input.text.clone()),
            Span::styled("▏", theme.accent()),
        ];
        match &input.error {
            Some(err) => spans.push(Span::styled(format!("  {err}"), theme.alert())),
            None => spans.push(Span::styled(
                "  Enter apply · Esc cancel · word, regex or pid",
                theme.dim(),
            )),
        }
        Line::from(spans)
    } else {
        let tab = |label: &'static str, on: bool| {
            if on {
                Span::styled(label, theme.selected())
            } else {
                Span::raw(label)
            }
        };
        let procs = matches!(app.view, View::Processes | View::Detail);
        Line::from(vec![
            tab(" 1 processes ", procs),
            Span::raw(" "),
            tab(" 2 demos ", app.view == View::Demos),
            Span::styled(
                "  ? help · q quit · / filter · s sort · space pause · Enter details",
                theme.dim(),
            ),
        ])
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// Styles, all plain when `NO_COLOR` is set (bold and reverse video stay: they carry
/// meaning without color).
#[derive(Clone, Copy)]
pub(crate) struct Theme {
    color: bool,
}

impl Theme {
    pub(crate) fn of(app: &App) -> Theme {
        Theme { color: app.color }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub(crate) fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn copied(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub(crate) fn zero_copy(self) -> Style {
        self.fg(Color::Green)
    }

    pub(crate) fn alert(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub(crate) fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub(crate) fn title(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

/// `NO_COLOR` set to anything non-empty turns color off (<https://no-color.org>).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Bytes per second without the `/s` (the column titles carry it).
pub(crate) fn per_second(value: f64) -> String {
    crate::units::bytes(value)
}

/// A trend of the last samples as block characters, right-aligned in `width`.
pub(crate) fn sparkline(samples: impl ExactSizeIterator<Item = f64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<f64> = samples.collect();
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().fold(0.0_f64, f64::max);
    let mut out = String::with_capacity(width * 3);
    for _ in tail.len()..width {
        out.push(' ');
    }
    for &v in tail {
        if max <= 0.0 || v <= 0.0 {
            out.push(' ');
        } else {
            let level = ((v / max) * 7.0).round() as usize;
            out.push(BARS[level.min(7)]);
        }
    }
    out
}
