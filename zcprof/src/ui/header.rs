//! The header: kernel, each probe layer's state, refresh interval, the machine's rates from
//! the syscall layer and, on a line of its own, from the kernel layer, lost events
//! (highlighted when non-zero) and zcprof's own CPU use.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph},
};

use super::{App, Theme, per_second};
use crate::{
    probes::LayerSummary,
    report::{Rates, role_bound},
    units,
};

/// Lines the header takes, its bottom rule included.
pub const HEIGHT: u16 = 5;

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
        Line::from("probe layers: none attached")
    } else {
        layers_line(&app.info.layers, &theme)
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
    let text = vec![Line::from(first), layers, machine, kernel_line(app, &theme)];
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::BOTTOM)),
        area,
    );
}

/// The machine's kernel copies from the one copy role that attached, or why there are none.
fn kernel_line<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let k = &app.machine_kernel;
    match (
        app.copy_source,
        k.copy_k2u_bytes_per_s,
        k.copy_u2k_bytes_per_s,
    ) {
        (Some(role), Some(k2u), Some(u2k)) => Line::from(vec![
            Span::styled(
                format!(
                    "machine, kernel layer, {}{}: ",
                    role.name(),
                    role_bound(role)
                ),
                theme.title(),
            ),
            Span::raw("k→u "),
            Span::styled(units::rate(k2u), theme.copied()),
            Span::raw(" · u→k "),
            Span::styled(units::rate(u2k), theme.copied()),
        ]),
        _ => Line::from(vec![
            Span::styled("machine, kernel layer: ", theme.title()),
            Span::raw("no kernel copy probe attached (see zcprof doctor)"),
        ]),
    }
}

/// The layers' states, short enough for 80 columns (`top`'s text header lists each
/// unavailable probe; here the count must do, and doctor and the detail view say more):
/// `layers: syscall live · lifecycle live · kernel 5/17 probes (see zcprof doctor)`.
fn layers_line<'a>(layers: &'a [LayerSummary], theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::raw("layers: ")];
    for (i, l) in layers.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · "));
        }
        let total = l.attached + l.unavailable.len();
        match l.state {
            "live" => spans.push(Span::raw(format!("{} live", l.layer))),
            "partial" => spans.push(Span::styled(
                format!("{} {}/{total} probes", l.layer, l.attached),
                theme.alert(),
            )),
            _ => spans.push(Span::styled(
                format!("{} unavailable", l.layer),
                theme.alert(),
            )),
        }
    }
    if layers.iter().any(|l| l.state != "live") {
        spans.push(Span::raw(" (see zcprof doctor)"));
    }
    Line::from(spans)
}
