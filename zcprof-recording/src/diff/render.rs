//! A diff for people (text), for pull requests (Markdown) and for programs (JSON). The
//! verdict line comes first in every form.

use serde::Serialize;

use super::{Change, Diff, Metrics, Scope, Status, threshold::Evaluation};

/// How a value is shown: as bytes, a count, or a ratio.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bytes,
    Count,
    Ratio,
}

/// "copies per delivered byte fell 2.00 → 0.00 (−100%); no new copy path".
pub fn verdict(d: &Diff) -> String {
    let per_byte = d.unit.delivered_bytes.is_some();
    let what = if per_byte {
        "copies per delivered byte"
    } else {
        "copied bytes per second"
    };
    let c = &d.total.metrics.copied;
    // Two decimals per delivered byte: the verdict is read at a glance.
    let v = |x: Option<f64>| match (per_byte, x) {
        (true, Some(x)) => format!("{x:.2}"),
        _ => value(d, x, Kind::Bytes),
    };
    let movement = match c.status {
        Status::Same => format!("unchanged at {}", v(c.after)),
        Status::Fell | Status::Gone => {
            format!("fell {} → {} ({})", v(c.before), v(c.after), percent(c))
        }
        Status::Rose | Status::Appeared => {
            format!("rose {} → {} ({})", v(c.before), v(c.after), percent(c))
        }
    };
    let tail = match d.regressions.len() {
        0 => "no new copy path".to_string(),
        n => {
            let mut listed: Vec<String> = d
                .regressions
                .iter()
                .take(3)
                .map(|r| {
                    let how = match r.bytes.status {
                        Status::Appeared => "new".to_string(),
                        _ => percent(&r.bytes),
                    };
                    format!("{} in {} ({how})", r.name, r.process)
                })
                .collect();
            if n > 3 {
                listed.push(format!("{} more", n - 3));
            }
            format!(
                "REGRESSION: {n} copy path{} grew or appeared: {}",
                if n == 1 { "" } else { "s" },
                listed.join(", ")
            )
        }
    };
    format!("{what} {movement}; {tail}")
}

/// A value in the diff's unit: `2.00` per delivered byte, `12.5 MiB/s` per second.
fn value(d: &Diff, x: Option<f64>, kind: Kind) -> String {
    let Some(x) = x else {
        return "—".into();
    };
    match kind {
        Kind::Ratio => {
            let p = x * 100.0;
            if (p - p.round()).abs() < 0.05 {
                format!("{p:.0}%")
            } else {
                format!("{p:.1}%")
            }
        }
        _ if d.unit.delivered_bytes.is_some() => {
            if x == 0.0 {
                "0.00".into()
            } else if x >= 0.01 {
                format!("{x:.2}")
            } else {
                format!("{x:.2e}")
            }
        }
        Kind::Bytes => format!("{}/s", bytes(x)),
        Kind::Count => format!("{}/s", count(x)),
    }
}

fn bytes(x: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = x;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn count(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.1}G", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x if x >= 10.0 => format!("{x:.0}"),
        x => format!("{x:.1}"),
    }
}

/// `−100%`, `+80%`, `+1.5%`, `0%`, `new`; percentage points for ratios.
fn percent(c: &Change) -> String {
    match c.change_pct {
        None if c.status == Status::Appeared => "new".into(),
        None => "—".into(),
        Some(p) if p.abs() < 0.05 => "0%".into(),
        Some(p) => {
            let sign = if p < 0.0 { "−" } else { "+" };
            let a = p.abs();
            if p >= 1000.0 {
                format!("×{:.0}", 1.0 + p / 100.0)
            } else if a >= 10.0 {
                format!("{sign}{a:.0}%")
            } else {
                format!("{sign}{a:.1}%")
            }
        }
    }
}

fn points(c: &Change) -> String {
    percent(c).replace('%', " pp")
}

fn metric_rows(m: &Metrics) -> Vec<(&'static str, &Change, Kind)> {
    let mut rows = vec![
        ("copied k→u", &m.copy_k2u, Kind::Bytes),
        ("copied u→k", &m.copy_u2k, Kind::Bytes),
        ("zero-copy", &m.zero_copy, Kind::Bytes),
        ("calls", &m.calls, Kind::Count),
        ("errors", &m.errors, Kind::Count),
    ];
    if let Some(a) = &m.copy_amplification {
        rows.push(("copy amplification", a, Kind::Bytes));
    }
    rows.push(("zero-copy ratio", &m.zero_copy_ratio, Kind::Ratio));
    rows
}

fn change_text(c: &Change, kind: Kind) -> String {
    if kind == Kind::Ratio {
        points(c)
    } else {
        percent(c)
    }
}

fn unit_line(d: &Diff) -> String {
    match d.unit.delivered_bytes {
        Some(n) => format!(
            "figures per delivered byte ({n} bytes delivered by each run), from the syscall layer"
        ),
        None => "figures per second of runtime, from the syscall layer".into(),
    }
}

/// Something changed in this scope (worth printing).
fn interesting(s: &Scope) -> bool {
    !s.changed.is_empty()
        || metric_rows(&s.metrics)
            .iter()
            .any(|(_, c, _)| c.status != Status::Same)
}

/// The diff for a terminal.
pub fn text(d: &Diff, thresholds: &[Evaluation]) -> String {
    let mut out = format!("{}\n", d.verdict);
    for (label, s) in [("before:", &d.before), ("after: ", &d.after)] {
        out.push_str(&format!(
            "{label} `{}` · {:.2} s · {} process{}{}\n",
            s.workload,
            s.duration_s,
            s.processes,
            if s.processes == 1 { "" } else { "es" },
            if s.interrupted { " · interrupted" } else { "" },
        ));
    }
    out.push_str(&format!("{}\n", unit_line(d)));
    for w in &d.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let scopes = std::iter::once(&d.total).chain(d.processes.iter().filter(|s| interesting(s)));
    for s in scopes {
        if std::ptr::eq(s, &d.total) {
            out.push_str(&format!(
                "\n{:<24} {:>14} {:>14} {:>8}\ntotal\n",
                "", "BEFORE", "AFTER", "CHANGE"
            ));
        } else {
            out.push_str(&format!(
                "\nprocess {} ({} → {} instances)\n",
                s.name, s.processes_before, s.processes_after
            ));
        }
        for (label, c, kind) in metric_rows(&s.metrics) {
            out.push_str(&format!(
                "  {label:<22} {:>14} {:>14} {:>8}\n",
                value(d, c.before, kind),
                value(d, c.after, kind),
                change_text(c, kind),
            ));
        }
        if !s.changed.is_empty() {
            out.push_str("  changed:\n");
            for e in &s.changed {
                out.push_str(&format!(
                    "    {:<16} {} {} ({} layer): bytes {} → {} ({}), calls {} → {} ({})\n",
                    e.name,
                    e.family.as_str(),
                    e.direction.as_str(),
                    e.layer,
                    value(d, e.bytes.before, Kind::Bytes),
                    value(d, e.bytes.after, Kind::Bytes),
                    percent(&e.bytes),
                    value(d, e.calls.before, Kind::Count),
                    value(d, e.calls.after, Kind::Count),
                    percent(&e.calls),
                ));
            }
        }
    }
    if !thresholds.is_empty() {
        out.push('\n');
        for t in thresholds {
            out.push_str(&format!(
                "--fail-if {}: {} (value {})\n",
                t.condition,
                if t.held { "FAILED" } else { "ok" },
                show(t.value)
            ));
        }
    }
    out
}

fn show(v: f64) -> String {
    if v.is_infinite() {
        "∞".into()
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The diff for a pull-request comment.
pub fn markdown(d: &Diff, thresholds: &[Evaluation]) -> String {
    let esc = |s: &str| s.replace('|', "\\|").replace('`', "'");
    let mut out = format!("**{}**\n\n", esc(&d.verdict));
    out.push_str(&format!(
        "Before: `{}` ({:.2} s) · after: `{}` ({:.2} s) · {}.\n\n",
        esc(&d.before.workload),
        d.before.duration_s,
        esc(&d.after.workload),
        d.after.duration_s,
        unit_line(d)
    ));
    for w in &d.warnings {
        out.push_str(&format!("> ⚠ {}\n\n", esc(w)));
    }
    out.push_str("| total | before | after | change |\n|---|---:|---:|---:|\n");
    for (label, c, kind) in metric_rows(&d.total.metrics) {
        out.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            value(d, c.before, kind),
            value(d, c.after, kind),
            change_text(c, kind)
        ));
    }
    let rows: Vec<String> = d
        .processes
        .iter()
        .flat_map(|s| {
            s.changed.iter().map(move |e| {
                format!(
                    "| {} | {} | {} {} | {} | {} | {} | {} | {} |\n",
                    esc(&s.name),
                    esc(&e.name),
                    e.family.as_str(),
                    e.direction.as_str(),
                    value(d, e.bytes.before, Kind::Bytes),
                    value(d, e.bytes.after, Kind::Bytes),
                    percent(&e.bytes),
                    value(d, e.calls.before, Kind::Count),
                    value(d, e.calls.after, Kind::Count),
                )
            })
        })
        .collect();
    if !rows.is_empty() {
        out.push_str("\n| process | syscall/probe | kind | bytes before | bytes after | change | calls before | calls after |\n|---|---|---|---:|---:|---:|---:|---:|\n");
        for r in rows {
            out.push_str(&r);
        }
    }
    if !thresholds.is_empty() {
        out.push('\n');
        for t in thresholds {
            out.push_str(&format!(
                "- `--fail-if {}`: {} (value {})\n",
                esc(&t.condition),
                if t.held { "❌ failed" } else { "✅ ok" },
                show(t.value)
            ));
        }
    }
    out
}

#[derive(Serialize)]
struct JsonDiff<'a> {
    #[serde(flatten)]
    diff: &'a Diff,
    thresholds: &'a [Evaluation],
}

/// The diff as one JSON document (schema `zcprof.diff/v1`).
pub fn json(d: &Diff, thresholds: &[Evaluation]) -> String {
    serde_json::to_string_pretty(&JsonDiff {
        diff: d,
        thresholds,
    })
    .unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}
