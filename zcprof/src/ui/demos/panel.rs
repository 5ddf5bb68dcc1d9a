//! The demos panel: the bundled scenarios on the left; on the right, the modes of the
//! selected one side by side (the copying baseline first), each with its state, its worker
//! processes' rates as the syscall layer measured them, copy amplification (bytes copied
//! per payload byte) and throughput once the run reports.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Wrap},
};

use super::{DemoRun, DemoState, Demos};
use crate::{
    ui::{format::per_second, shared::Shared, theme::Theme},
    units,
};

pub fn render(frame: &mut Frame, area: Rect, shared: &Shared, panel: &Demos) {
    let theme = shared.theme();
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(
            " demos · zcprof-demo runs {} s · Enter start · a start all modes · x stop · ←→ mode · +/- length ",
            panel.seconds
        ),
        theme.title(),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if panel.scenarios.is_empty() {
        frame.render_widget(Paragraph::new("no bundled demos").style(theme.dim()), inner);
        return;
    }
    let [list, detail] =
        Layout::horizontal([Constraint::Length(16), Constraint::Fill(1)]).areas(inner);

    let items: Vec<Line> = panel
        .scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let running = panel
                .runs
                .iter()
                .any(|r| r.scenario == s.name && r.is_active());
            let text = format!("{}{}", s.name, if running { " ●" } else { "" });
            if i == panel.scenario {
                Line::styled(format!("▶ {text}"), theme.selected())
            } else {
                Line::from(format!("  {text}"))
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(items).block(Block::default().borders(Borders::RIGHT)),
        list,
    );

    let Some((scenario, _)) = panel.selected() else {
        return;
    };
    let [about, columns] =
        Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(detail);
    frame.render_widget(
        Paragraph::new(format!(" {}", scenario.description))
            .wrap(Wrap { trim: true })
            .style(theme.dim()),
        about,
    );
    let n = scenario.modes.len().max(1) as u32;
    let areas = Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n))).split(columns);
    for (i, (mode, col)) in scenario.modes.iter().zip(areas.iter()).enumerate() {
        let run = panel.run(&scenario.name, mode);
        let mut title = format!(" {mode}");
        if *mode == scenario.baseline {
            title.push_str(" (baseline)");
        }
        title.push(' ');
        let title_style = if i == panel.mode {
            theme.selected()
        } else {
            theme.title()
        };
        // The scenario list's border already separates the first column.
        let borders = if i == 0 { Borders::NONE } else { Borders::LEFT };
        let block = Block::default()
            .borders(borders)
            .title(Span::styled(title, title_style));
        // Wrapped: a failure's message (e.g. how to build a missing `zcprof-demo`) is read
        // to its end, not cut at the column's edge.
        let lines = Paragraph::new(mode_lines(theme, run)).wrap(Wrap { trim: false });
        frame.render_widget(lines.block(block), *col);
    }
}

fn mode_lines(theme: Theme, run: Option<&DemoRun>) -> Vec<Line<'_>> {
    let Some(run) = run else {
        return vec![Line::styled("not started", theme.dim())];
    };
    let state = match &run.state {
        DemoState::Starting => Line::from("starting…"),
        DemoState::Running => Line::from(format!(
            "running, pid {}",
            run.pid.map_or_else(|| "?".into(), |p| p.to_string())
        )),
        DemoState::Stopping => Line::from("stopping…"),
        DemoState::Stopped => Line::from("stopped"),
        DemoState::Finished => match &run.result {
            Some(r) if !r.verified => Line::styled("finished, NOT verified", theme.alert()),
            _ => Line::from("finished, verified"),
        },
        DemoState::Failed(err) => Line::styled(format!("failed: {err}"), theme.alert()),
    };
    let mut lines = vec![state];
    if !run.workers.is_empty() {
        lines.push(Line::styled("workers, syscall layer:", theme.title()));
    }
    for w in &run.workers {
        let name = w.role.as_deref().unwrap_or(&w.comm);
        lines.push(Line::from(format!(
            "{} {name}{}",
            w.pid,
            if w.exited { " (exited)" } else { "" }
        )));
        let copied = w.rates.copied_per_s();
        lines.push(Line::from(vec![
            Span::raw(" copy "),
            Span::styled(per_second(copied) + "/s", theme.copied()),
            Span::raw(" zc "),
            Span::styled(
                per_second(w.rates.zero_copy_bytes_per_s) + "/s",
                theme.zero_copy(),
            ),
        ]));
    }
    if !run.workers.is_empty() {
        lines.push(Line::from(vec![
            Span::raw("total copied "),
            Span::styled(units::bytes(run.copied_bytes() as f64), theme.copied()),
            Span::raw(", zero-copy "),
            Span::styled(
                units::bytes(run.zero_copy_bytes() as f64),
                theme.zero_copy(),
            ),
        ]));
    }
    match (&run.result, run.amplification()) {
        (Some(result), amplification) => {
            lines.push(Line::from(format!(
                "copy amplification {}",
                amplification.map_or_else(|| "-".into(), |a| format!("{a:.2}×"))
            )));
            lines.push(Line::from(format!(
                "throughput {} ({:.1} s)",
                units::rate(result.throughput_bytes_per_sec),
                result.wall_seconds
            )));
        }
        (None, _) if run.is_active() => lines.push(Line::styled(
            "amplification, throughput: at the end",
            theme.dim(),
        )),
        (None, _) => {}
    }
    lines
}
