//! `zcprof top` frames: processes ranked by copied bytes per second over the last interval.

use serde::Serialize;

use super::{Lost, Rates, clock, layers_line, unix_time};
use crate::{
    model::{Figures, Model, Process},
    probes::LayerSummary,
    units,
};

/// Which processes a frame shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these PIDs (empty: all).
    pub pids: Vec<u32>,
    /// Only processes whose comm contains this.
    pub comm: Option<String>,
}

impl Filter {
    pub fn matches(&self, p: &Process) -> bool {
        (self.pids.is_empty() || self.pids.contains(&p.tgid))
            && self
                .comm
                .as_ref()
                .is_none_or(|c| p.comm.contains(c.as_str()))
    }
}

/// One row: a process and what it did in the interval.
pub struct Row<'a> {
    pub process: &'a Process,
    pub figures: Figures,
}

/// Processes active in the last interval that pass `filter`, most copied bytes first (then
/// most zero-copied bytes, then PID, so the order is stable between frames).
pub fn rows<'a>(model: &'a Model, filter: &Filter) -> Vec<Row<'a>> {
    let mut rows: Vec<Row> = model
        .processes()
        .filter(|p| !p.interval.is_zero() && filter.matches(p))
        .map(|p| Row {
            process: p,
            figures: p.interval.figures(),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.figures
            .copied_bytes()
            .cmp(&a.figures.copied_bytes())
            .then(b.figures.zero_copy_bytes.cmp(&a.figures.zero_copy_bytes))
            .then(a.process.tgid.cmp(&b.process.tgid))
    });
    rows
}

/// Machine-wide figures for the interval (every process, filtered or not).
pub fn machine(model: &Model) -> Figures {
    let mut total = Figures::default();
    for p in model.processes() {
        total.add(&p.interval.figures());
    }
    total
}

#[derive(Serialize)]
struct JsonFrame<'a> {
    schema: &'static str,
    unix_time: f64,
    interval_s: f64,
    /// The frame was cut short by Ctrl-C/SIGTERM.
    partial: bool,
    layers: &'a [LayerSummary],
    lost: Lost,
    machine: JsonFigures,
    processes: Vec<JsonProcess<'a>>,
}

#[derive(Serialize)]
struct JsonFigures {
    syscall: Rates,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
    pid: u32,
    ppid: Option<u32>,
    comm: &'a str,
    exited: bool,
    syscall: Rates,
}

/// Schema name of `top --json` lines.
pub const SCHEMA: &str = "zcprof.top/v1";

/// One JSON object (one line) for the last interval.
pub fn json(model: &Model, layers: &[LayerSummary], filter: &Filter, partial: bool) -> String {
    let seconds = interval_seconds(model);
    let frame = JsonFrame {
        schema: SCHEMA,
        unix_time: unix_time(),
        interval_s: seconds,
        partial,
        layers,
        lost: Lost::of(model),
        machine: JsonFigures {
            syscall: Rates::of(&machine(model), seconds),
        },
        processes: rows(model, filter)
            .into_iter()
            .map(|r| JsonProcess {
                pid: r.process.tgid,
                ppid: r.process.ppid,
                comm: &r.process.comm,
                exited: r.process.exited,
                syscall: Rates::of(&r.figures, seconds),
            })
            .collect(),
    };
    serde_json::to_string(&frame).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}

fn interval_seconds(model: &Model) -> f64 {
    model.interval.map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A text frame: header, column titles, at most `limit` rows, machine total.
pub fn text(
    model: &Model,
    layers: &[LayerSummary],
    filter: &Filter,
    limit: usize,
    partial: bool,
) -> String {
    let seconds = interval_seconds(model);
    let mut out = String::new();
    out.push_str(&format!(
        "zcprof top · {} · interval {seconds:.2} s{} · {}\n{}\n",
        clock(),
        if partial { " (partial)" } else { "" },
        Lost::of(model).line(),
        layers_line(layers),
    ));
    out.push_str("figures per second from the syscall layer\n");
    out.push_str(&format!(
        "{:>8} {:<16} {:>13} {:>13} {:>13} {:>10} {:>8}\n",
        "PID", "COMM", "COPY K→U", "COPY U→K", "ZERO-COPY", "CALLS", "ZC RATIO"
    ));
    let rows = rows(model, filter);
    for r in rows.iter().take(limit) {
        out.push_str(&line(
            &r.process.tgid.to_string(),
            &r.process.comm,
            &r.figures,
            seconds,
        ));
    }
    if rows.len() > limit {
        out.push_str(&format!("{:>8} … {} more\n", "", rows.len() - limit));
    }
    out.push_str(&line(
        "machine",
        "(all processes)",
        &machine(model),
        seconds,
    ));
    out
}

fn line(pid: &str, comm: &str, f: &Figures, seconds: f64) -> String {
    let r = Rates::of(f, seconds);
    format!(
        "{:>8} {:<16} {:>13} {:>13} {:>13} {:>10} {:>8}\n",
        pid,
        truncate(comm, 16),
        units::rate(r.copy_k2u_bytes_per_s),
        units::rate(r.copy_u2k_bytes_per_s),
        units::rate(r.zero_copy_bytes_per_s),
        format!("{:.0}", r.calls_per_s),
        units::percent(r.zero_copy_ratio),
    )
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
