//! The header: kernel, each probe layer's state, refresh interval, the machine's rates from
//! the syscall layer and, on a line of its own, from the kernel layer (followed, when the
//! interval had any, by the zero-copy sends with what their notifications said and the
//! mapped layer's file pages), lost events
//! (highlighted when non-zero) and zcprof's own cost (CPU and the bytes it moved, which the
//! machine figures leave out unless `--include-self`; with `--probe-stats`, its probes' ns
//! per call and share of one CPU). [`Machine`] is what it draws, taken
//! from the model after each batch; every section shows below it.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph},
};
use zcprof_common::kernel::Role;

use super::{
    format::per_second,
    shared::{History, Shared},
    theme::Theme,
};
use crate::{
    model::{Figures, Model, Totals},
    probes::{Layer, LayerSummary, State},
    report::{
        Lost, Rates, ZeroCopySendRates, role_bound,
        top::{self, IoUringRates, KernelRates, MappedRates, Own},
    },
    units,
};

/// Lines the header takes, its bottom rule included.
pub const HEIGHT: u16 = 5;

/// The machine as the header shows it: the last interval, machine-wide.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Length of the last interval, seconds (0 before the first batch).
    pub seconds: f64,
    /// The syscall layer's figures over the last interval, every process together (zcprof
    /// itself only with `--include-self`).
    pub figures: Figures,
    /// The kernel layer's machine-wide rates over the last interval.
    pub kernel: KernelRates,
    /// The io_uring layer's machine-wide rates over the last interval.
    pub io_uring: IoUringRates,
    /// Zero-copy sends of both layers (MSG_ZEROCOPY, SEND_ZC) over the last interval, if any.
    pub zero_copy_sends: Option<ZeroCopySendRates>,
    /// The mapped layer's machine-wide pages over the last interval.
    pub mapped: MappedRates,
    pub history: History,
    pub lost: Lost,
    /// What zcprof itself moved over the last interval (syscall layer).
    pub own: Figures,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            seconds: 0.0,
            figures: Figures::default(),
            kernel: KernelRates::of(&Totals::zero(), None, 0.0),
            io_uring: IoUringRates::of(&Totals::zero(), 0.0),
            zero_copy_sends: None,
            mapped: MappedRates::of(&Totals::zero(), 0.0),
            history: History::default(),
            lost: Lost {
                kernel: Default::default(),
                malformed_records: 0,
                total: 0,
            },
            own: Figures::default(),
        }
    }
}

impl Machine {
    /// Takes the machine-wide figures of the interval the session just applied; the kernel
    /// copies from `copy_source`'s counters only; zcprof itself apart unless `own` lists it.
    pub fn apply(&mut self, model: &Model, copy_source: Option<Role>, own: &Own) {
        let seconds = model.interval.map_or(0.0, |d| d.as_secs_f64());
        self.seconds = seconds;
        self.lost = Lost::of(model);
        self.figures = top::machine(model, own);
        self.kernel = KernelRates::of(&top::machine_kernel(model, own), copy_source, seconds);
        let uring = top::machine_io_uring(model, own);
        self.io_uring = IoUringRates::of(&uring, seconds);
        self.zero_copy_sends = ZeroCopySendRates::of_both(&self.figures, &uring.figures(), seconds);
        self.mapped = MappedRates::of(&top::machine_mapped(model, own), seconds);
        self.own = own.figures(model).unwrap_or_default();
        let m = Rates::of(&self.figures, seconds);
        self.history.push(m.copied_per_s(), m.zero_copy_bytes_per_s);
    }
}

/// Draws `machine` under the session's facts; `paused` says the display is frozen.
pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, machine: &Machine, paused: bool) {
    let theme = shared.theme();
    let cpu = shared
        .own
        .cpu_percent
        .map_or_else(|| "-".to_string(), |c| format!("{c:.1}%"));
    let own = Rates::of(&machine.own, machine.seconds);
    let lost = if machine.lost.total == 0 {
        Span::raw(machine.lost.line())
    } else {
        Span::styled(machine.lost.line(), theme.alert())
    };
    let mut first = vec![
        Span::styled("zcprof", theme.accent()),
        Span::raw(format!(
            " · kernel {} · refresh {:.1} s · ",
            shared.info.kernel,
            shared.info.refresh.as_secs_f64()
        )),
        lost,
        // Lost events first: on a narrow terminal the line is cut at the right.
        Span::raw(format!(
            " · zcprof itself{}: CPU {cpu}, moved {}",
            if shared.own.listed {
                ""
            } else {
                " (not listed)"
            },
            units::rate(
                own.copy_k2u_bytes_per_s + own.copy_u2k_bytes_per_s + own.zero_copy_bytes_per_s
            )
        )),
    ];
    // Only with BPF statistics on (`--probe-stats`): without them the kernel has no figure.
    if let Some(cost) = &shared.own.probes {
        first.push(Span::raw(format!(" · probes: {}", cost.line())));
    }
    if paused {
        first.push(Span::styled("  PAUSED", theme.alert()));
    }
    let mut layers = if shared.info.layers.is_empty() {
        Line::from("probe layers: none attached")
    } else {
        layers_line(&shared.info.layers, &theme)
    };
    if machine.io_uring.unseen_calls_per_s > 0.0 {
        // First on the line: a narrow terminal cuts at the right, and this one must show.
        layers.spans.insert(
            0,
            Span::styled(
                "io_uring used, io_uring layer unavailable: not counted · ",
                theme.alert(),
            ),
        );
    }
    let m = Rates::of(&machine.figures, machine.seconds);
    let mut syscall_line = vec![
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
    ];
    syscall_line.extend(io_uring_spans(&machine.io_uring, &theme));
    let mut kernel = kernel_line(shared.copy_source, &machine.kernel, &theme);
    kernel.spans.extend(sends_and_mapped_spans(machine, &theme));
    let text = vec![Line::from(first), layers, Line::from(syscall_line), kernel];
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::BOTTOM)),
        area,
    );
}

/// The io_uring layer's machine figures when io_uring moved anything in the interval (most
/// machines use none: then nothing, and the line keeps its 80 columns). The caveat for
/// io_uring used unseen heads the layers line.
fn io_uring_spans<'a>(u: &IoUringRates, theme: &Theme) -> Vec<Span<'a>> {
    let r = &u.rates;
    let mut spans = Vec::new();
    if r.calls_per_s > 0.0 {
        spans.extend([
            Span::styled(" · io_uring layer: ", theme.title()),
            Span::raw("copied "),
            Span::styled(units::rate(r.copied_per_s()), theme.copied()),
            Span::raw(" · zero-copy "),
            Span::styled(units::rate(r.zero_copy_bytes_per_s), theme.zero_copy()),
        ]);
    }
    spans
}

/// The zero-copy sends and the mapped pages, each only when the interval had some (most
/// machines have neither: the line keeps its width).
fn sends_and_mapped_spans<'a>(machine: &Machine, theme: &Theme) -> Vec<Span<'a>> {
    let mut spans = Vec::new();
    if let Some(z) = &machine.zero_copy_sends {
        spans.extend([
            Span::styled(" · zero-copy sends: ", theme.title()),
            Span::raw(format!("{:.0}/s, ", z.requested_sends_per_s)),
            Span::styled(
                format!("{:.0}/s copied anyway", z.copied_sends_per_s),
                theme.copied(),
            ),
            Span::raw(format!(", {:.0}/s not", z.done_sends_per_s)),
        ]);
    }
    if machine.mapped.pages_per_s > 0.0 {
        spans.extend([
            Span::styled(" · mapped: ", theme.title()),
            Span::raw(format!(
                "{:.0} pages/s ({})",
                machine.mapped.pages_per_s,
                units::rate(machine.mapped.bytes_per_s)
            )),
        ]);
    }
    spans
}

/// The machine's kernel copies from the one copy role that attached, or why there are none.
fn kernel_line<'a>(copy_source: Option<Role>, k: &KernelRates, theme: &Theme) -> Line<'a> {
    match (copy_source, k.copy_k2u_bytes_per_s, k.copy_u2k_bytes_per_s) {
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
            State::Live => spans.push(Span::raw(format!("{} live", l.layer))),
            State::Partial => spans.push(Span::styled(
                format!("{} {}/{total} probes", l.layer, l.attached),
                theme.alert(),
            )),
            State::Unavailable => spans.push(Span::styled(
                format!("{} unavailable", l.layer),
                theme.alert(),
            )),
        }
    }
    if layers.iter().any(|l| l.state != State::Live) {
        spans.push(Span::raw(" (see zcprof doctor)"));
    }
    if layers.iter().any(|l| l.layer == Layer::User) {
        spans.push(Span::styled(
            format!(" · user-space copies: {}", crate::probes::user::COST),
            theme.alert(),
        ));
    }
    Line::from(spans)
}
