//! The header: kernel, probe layers (and what is unavailable), refresh interval, the
//! machine's totals from the syscall layer, lost events (highlighted when non-zero) and
//! zcprof's own CPU use.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph},
};

use super::{App, Theme, per_second};
use crate::{
    report::{Rates, layers_line},
    units,
};

/// Lines the header takes, its bottom rule included.
pub const HEIGHT: u16 = 4;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::of(app);
    let cpu = app
        .self_cpu
        .map_or_else(|| "-".to_string(), |c| format!("{c:.1}%"));
    let lost = if app.lost.total == 0 {
        Span::raw(app.lost.line())
    } else {
        Span::styled(app.lost.line(), theme.alert())
    };
    let mut first = vec![
        Span::styled("zcprof", theme.accent()),
        Span::raw(format!(
            " · kernel {} · refresh {:.1} s · zcprof CPU {cpu} · ",
            app.info.kernel,
            app.info.refresh.as_secs_f64()
        )),
        lost,
    ];
    if app.paused {
        first.push(Span::styled("  PAUSED", theme.alert()));
    }
    let layers = if app.info.layers.is_empty() {
        "probe layers: none attached".to_string()
    } else {
        layers_line(&app.info.layers)
    };
    let m = Rates::of(&app.machine, app.seconds);
    let machine = Line::from(vec![
        Span::styled("machine, syscall layer: ", theme.title()),
        Span::raw("copied k→u "),
        Span::styled(units::rate(m.copy_k2u_bytes_per_s), theme.copied()),
        Span::raw(" · u→k "),
        Span::styled(units::rate(m.copy_u2k_bytes_per_s), theme.copied()),
        Span::raw(" · zero-copy "),
        Span::styled(
            per_second(m.zero_copy_bytes_per_s) + "/s",
            theme.zero_copy(),
        ),
        Span::raw(format!(
            " · zero-copy ratio {}",
            units::percent(m.zero_copy_ratio)
        )),
    ]);
    let text = vec![Line::from(first), Line::from(layers), machine];
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::BOTTOM)),
        area,
    );
}
