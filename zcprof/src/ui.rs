//! The terminal dashboard (`zcprof` / `zcprof top` on a terminal).
//!
//! Laid out by section, as oryx's TUI is: [`processes`] (tab 1) and [`demos`] (tab 2) each
//! own their state, their keys and their drawing; [`app::App`] holds only what they share
//! ([`shared`], the [`header`]'s machine figures, the tab, help and pause) and dispatches
//! batches and keys to them. Every view draws from `&` state and never locks, blocks or
//! does I/O; styles come from [`theme`] (all plain under `NO_COLOR`). [`run`] is the event
//! loop, and takes the terminal over with ratatui's `try_init` (whose panic hook gives it
//! back before a panic message prints) and gives it back with `restore`.
//!
//! Module dependencies point one way: this module and [`app`] use the sections; the
//! sections use [`shared`], [`theme`] and [`format`], which use neither a section nor
//! [`app`] (`shared` only the theme).

pub mod app;
pub mod demos;
pub mod format;
pub mod header;
pub mod help;
pub mod processes;
pub mod run;
pub mod shared;
pub mod theme;

#[cfg(test)]
mod tests;

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::Paragraph,
};

use self::processes::table;
pub use self::{
    app::{App, Tab},
    run::{on_terminal, run},
    shared::{Command, HostInfo},
};

/// Smallest terminal the layout fits in; below it a message is shown instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 14;

/// Draws the whole screen: the header, the current tab's section, the footer, and the help
/// overlay over them when it is open.
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
    header::render(frame, header_area, &app.shared, &app.machine, app.paused);
    match app.tab {
        Tab::Processes => processes::render(frame, body, &app.shared, &app.processes),
        Tab::Demos => {
            // The demos' workers are processes too: the table stays in view below.
            let [panel, procs] =
                Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                    .areas(body);
            demos::render(frame, panel, &app.shared, &app.demos);
            table::render(frame, procs, &app.shared, &app.processes);
        }
    }
    footer(frame, footer_area, app);
    if app.help {
        help::render(frame, area, app.shared.theme());
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
    let theme = app.shared.theme();
    let line = if let Some(input) = &app.processes.filter_input {
        input.line(theme)
    } else {
        let tab = |label: &'static str, on: bool| {
            if on {
                Span::styled(label, theme.selected())
            } else {
                Span::raw(label)
            }
        };
        Line::from(vec![
            tab(" 1 processes ", app.tab == Tab::Processes),
            Span::raw(" "),
            tab(" 2 demos ", app.tab == Tab::Demos),
            Span::styled(
                "  ? help · q quit · / filter · s sort · space pause · Enter details",
                theme.dim(),
            ),
        ])
    };
    frame.render_widget(Paragraph::new(line), area);
}
