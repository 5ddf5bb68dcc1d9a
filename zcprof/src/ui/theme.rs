//! The dashboard's styles, in one place so that `NO_COLOR` turns every color off at once:
//! with it set, bold and reverse video stay (they carry meaning without color) and nothing
//! is colored.

use ratatui::style::{Color, Modifier, Style};

/// `NO_COLOR` set to anything non-empty turns color off (<https://no-color.org>).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[derive(Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// `color` false: plain styles only (see [`color_enabled`]).
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn copied(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn zero_copy(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn alert(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn title(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
}
