//! A diff for people (text), for pull requests (Markdown) and for programs (JSON), with the
//! same content in each: the verdict line first, the two workloads, the unit and the noise
//! threshold, warnings, the total, the command groups that changed above noise (the rest
//! counted in one line), and the `--fail-if` results.
//!
//! Every figure carries its unit, and every normalised figure stands beside the recorded
//! total it came from: `8.0 MiB · 1.00 B/B` per delivered byte, `8.0 MiB · 160.0 MiB/s`
//! per second, `8.0 MiB` alone per run (the total is the figure).

use serde::Serialize;

use super::{
    Change, Diff, EntryChange, Metrics, Per, Scope, SideInfo, Status, call_sites::CallSites,
    threshold::Evaluation,
};

/// How a value is shown: as bytes, a count, or a ratio.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bytes,
    Count,
    Ratio,
}

/// The verdict: the unit it compares by, the headline change, and whether a copy path grew;
/// or, when no unit is sound, `inconclusive` and why.
pub fn verdict(d: &Diff) -> String {
    let c = &d.total.metrics.copied;
    let totals = format!(
        "{} → {} copied",
        total(c.before_total, Kind::Bytes),
        total(c.after_total, Kind::Bytes)
    );
    if let Some(why) = &d.inconclusive {
        return format!("inconclusive: {why}; recorded totals {totals}, not compared");
    }
    let (lead, what, beside) = match d.unit.per {
        Some(Per::DeliveredByte) => (
            match d.unit.measured_delivered_bytes {
                Some([b, a]) => format!(
                    "per delivered byte ({} → {} through sockets, measured by the flows layer)",
                    bytes(b as f64),
                    bytes(a as f64)
                ),
                None => format!(
                    "per delivered byte ({} each)",
                    bytes(d.unit.delivered_bytes.unwrap_or(0) as f64)
                ),
            },
            "copies",
            Some(totals),
        ),
        Some(Per::Second) => (
            "per second (time-bounded recordings of similar runtime; assumes a steady load)"
                .to_string(),
            "copied bytes",
            Some(totals),
        ),
        Some(Per::Run) | None => (
            "per run (totals: both commands ran to completion)".to_string(),
            "copied bytes",
            None,
        ),
    };
    let v = |x: Option<f64>| match d.unit.per {
        Some(Per::DeliveredByte) => x.map_or("—".into(), decimal),
        _ => normalised(d, x, Kind::Bytes),
    };
    let unit_after = if d.unit.per == Some(Per::DeliveredByte) {
        " B copied per B delivered"
    } else {
        ""
    };
    let detail = match beside {
        Some(t) => format!("{}; {t}", percent(c)),
        None => percent(c),
    };
    let movement = match c.status {
        Status::Same => format!("unchanged at {}{unit_after}", v(c.after)),
        Status::Fell | Status::Gone => {
            format!(
                "fell {} → {}{unit_after} ({detail})",
                v(c.before),
                v(c.after)
            )
        }
        Status::Rose | Status::Appeared | Status::NotCompared => {
            format!(
                "rose {} → {}{unit_after} ({detail})",
                v(c.before),
                v(c.after)
            )
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
    format!("{lead}: {what} {movement}; {tail}")
}

/// A recorded count: `8.0 MiB`, `133`.
fn total(x: Option<u64>, kind: Kind) -> String {
    match (x, kind) {
        (None, _) => "—".into(),
        (Some(x), Kind::Bytes) => bytes(x as f64),
        (Some(x), _) => x.to_string(),
    }
}

/// A normalised value with its unit: `160.0 MiB/s`, `2.0k calls/s` per second; `1.00 B/B`
/// (bytes per delivered byte) and `31.7/MiB` (counts per MiB delivered) per delivered byte;
/// the count itself per run.
fn normalised(d: &Diff, x: Option<f64>, kind: Kind) -> String {
    let Some(x) = x else {
        return "—".into();
    };
    match (d.unit.per, kind) {
        (_, Kind::Ratio) => {
            let p = x * 100.0;
            if (p - p.round()).abs() < 0.05 {
                format!("{p:.0}%")
            } else {
                format!("{p:.1}%")
            }
        }
        (Some(Per::DeliveredByte), Kind::Bytes) => format!("{} B/B", decimal(x)),
        (Some(Per::DeliveredByte), _) => format!("{}/MiB", count(x * 1_048_576.0)),
        (Some(Per::Second), Kind::Bytes) => format!("{}/s", bytes(x)),
        (Some(Per::Second), _) => format!("{}/s", count(x)),
        (_, Kind::Bytes) => bytes(x),
        (_, _) => count(x),
    }
}

/// One side of a row: the recorded total, and beside it the normalised figure when it
/// differs from the total (per second, per delivered byte).
fn cell(d: &Diff, total_value: Option<u64>, x: Option<f64>, kind: Kind) -> String {
    let divided = matches!(d.unit.per, Some(Per::Second | Per::DeliveredByte));
    match kind {
        Kind::Ratio => normalised(d, x, kind),
        _ if divided => format!("{} · {}", total(total_value, kind), normalised(d, x, kind)),
        _ => total(total_value, kind),
    }
}

/// `2.00`, `0.17`, `0.00064`: two decimals, or two significant digits below 0.01, never an
/// exponent.
fn decimal(x: f64) -> String {
    if x == 0.0 || x >= 0.01 || !x.is_finite() {
        return format!("{x:.2}");
    }
    let places = (-x.log10()).ceil() as usize + 1;
    format!("{x:.*}", places.min(15))
}

/// Binary units: `512 B`, `4.0 MiB`.
pub(crate) fn bytes(x: f64) -> String {
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

/// `−100%`, `+80%`, `+1.5%`, `0%`, `new`, `—` when not compared.
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

/// The change column: percentage points for a ratio.
fn change_text(c: &Change, kind: Kind) -> String {
    if kind == Kind::Ratio {
        percent(c).replace('%', " pp")
    } else {
        percent(c)
    }
}

fn metric_rows(m: &Metrics) -> Vec<(&'static str, &Change, Kind)> {
    let mut rows = vec![
        ("copied", &m.copied, Kind::Bytes),
        ("copied k→u", &m.copy_k2u, Kind::Bytes),
        ("copied u→k", &m.copy_u2k, Kind::Bytes),
        ("zero-copy", &m.zero_copy, Kind::Bytes),
        ("calls", &m.calls, Kind::Count),
        ("errors (failures)", &m.errors, Kind::Count),
        ("would block / interrupted", &m.would_block, Kind::Count),
    ];
    if let Some(a) = &m.copy_amplification {
        rows.push(("copy amplification", a, Kind::Bytes));
    }
    rows.push(("zero-copy ratio", &m.zero_copy_ratio, Kind::Ratio));
    rows
}

/// The rows of a scope's figures: label, before, after, change.
fn metric_table(d: &Diff, s: &Scope) -> Vec<[String; 4]> {
    metric_rows(&s.metrics)
        .into_iter()
        .map(|(label, c, kind)| {
            let amplification = label == "copy amplification";
            let side = |t: Option<u64>, x: Option<f64>| {
                if amplification {
                    // Copied bytes per delivered byte: the totals are on the copied rows.
                    normalised(d, x, kind)
                } else {
                    cell(d, t, x, kind)
                }
            };
            [
                label.to_string(),
                side(c.before_total, c.before),
                side(c.after_total, c.after),
                change_text(c, kind),
            ]
        })
        .collect()
}

/// `errors by errno: EPIPE 0 → 2; EAGAIN 123 → 80 (would block / interrupted)`, the
/// recorded counts; `None` when neither side had an error.
fn errno_line(m: &Metrics) -> Option<String> {
    if m.errno.is_empty() {
        return None;
    }
    let each: Vec<String> = m
        .errno
        .iter()
        .map(|e| {
            let kind = if e.would_block {
                " (would block / interrupted, not a failure)"
            } else {
                ""
            };
            format!("{} {} → {}{kind}", e.errno, e.before_total, e.after_total)
        })
        .collect();
    Some(format!("errors by errno (recorded): {}", each.join("; ")))
}

/// The rows of a scope's changed entries.
fn entry_table(d: &Diff, entries: &[EntryChange]) -> Vec<[String; 7]> {
    entries
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                format!("{} {}", e.family.as_str(), e.direction.as_str()),
                e.layer.clone(),
                cell(d, e.bytes.before_total, e.bytes.before, Kind::Bytes),
                cell(d, e.bytes.after_total, e.bytes.after, Kind::Bytes),
                percent(&e.bytes),
                format!(
                    "{} → {}",
                    total(e.calls.before_total, Kind::Count),
                    total(e.calls.after_total, Kind::Count)
                ),
            ]
        })
        .collect()
}

/// `call sites (stacks layer, estimated: one sample per 1.0 MiB; a change counts beyond 2
/// sampling errors)`.
fn call_sites_title(sites: &CallSites) -> String {
    let [b, a] = sites.period_bytes;
    let period = if b == a {
        bytes(b as f64)
    } else {
        format!("{} before, {} after", bytes(b as f64), bytes(a as f64))
    };
    format!(
        "call sites (stacks layer, estimated: one sample per {period}; a change counts beyond {} sampling errors):",
        super::call_sites::SIGMAS
    )
}

fn site_table(d: &Diff, sites: &CallSites) -> Vec<[String; 6]> {
    sites
        .changed
        .iter()
        .map(|c| {
            [
                c.process.clone(),
                c.call_site.clone(),
                format!("{} {}", c.family.as_str(), c.direction.as_str()),
                cell(d, c.bytes.before_total, c.bytes.before, Kind::Bytes),
                cell(d, c.bytes.after_total, c.bytes.after, Kind::Bytes),
                percent(&c.bytes),
            ]
        })
        .collect()
}

const SITE_HEADER: [&str; 6] = [
    "process",
    "call site",
    "kind",
    "bytes before",
    "bytes after",
    "change",
];

const GROUP: &str = "other process group";
const GROUPS: &str = "other process groups";

const ENTRY_HEADER: [&str; 7] = [
    "syscall/probe",
    "kind",
    "layer",
    "bytes before",
    "bytes after",
    "change",
    "calls",
];

/// `command, ran to completion`, `command, ended by --duration`, `--pid`.
fn how(s: &SideInfo) -> String {
    match s.time_bound {
        None => "command, ran to completion".into(),
        Some(b) if b.starts_with("--") && s.kind == crate::WorkloadKind::Command => {
            format!("command, ended by {b}")
        }
        Some(b) => b.to_string(),
    }
}

/// `` `CMD` · command, ran to completion · 0.05 s · 2 processes `` (`workload` already
/// quoted for the form).
fn side_line(s: &SideInfo, workload: &str) -> String {
    format!(
        "{workload} · {} · {:.2} s · {} process{}",
        how(s),
        s.duration_s,
        s.processes,
        if s.processes == 1 { "" } else { "es" },
    )
}

/// The unit and why, then what each figure shows.
fn unit_lines(d: &Diff) -> [String; 2] {
    let (unit, figures) = match d.unit.per {
        Some(Per::Run) => ("per run", "recorded totals"),
        Some(Per::DeliveredByte) => (
            "per delivered byte",
            "recorded total · per delivered byte (B/B: bytes per byte delivered; /MiB: per MiB delivered)",
        ),
        Some(Per::Second) => ("per second", "recorded total · per second"),
        None => ("none", "recorded totals, not compared"),
    };
    [
        format!("unit: {unit} — {}", d.unit.basis),
        format!(
            "figures: {figures}, from the syscall layer (other layers' entries are listed, never added to them)"
        ),
    ]
}

fn noise_line(d: &Diff) -> Option<String> {
    let n = d.noise?;
    let scaled = match d.unit.per {
        Some(Per::DeliveredByte) => format!("{} B/B", decimal(n.bytes)),
        Some(Per::Second) => format!("{}/s", bytes(n.bytes)),
        _ => bytes(n.bytes),
    };
    Some(format!(
        "noise: a change of at most {:.0} % of the bytes moved ({scaled}) counts as unchanged",
        n.share * 100.0
    ))
}

fn scope_title(s: &Scope, total: bool) -> String {
    let noun = |n: usize| if n == 1 { "process" } else { "processes" };
    if total {
        format!(
            "total ({} → {} {})",
            s.processes_before,
            s.processes_after,
            noun(s.processes_after)
        )
    } else {
        format!(
            "process {} ({} → {} {})",
            s.name,
            s.processes_before,
            s.processes_after,
            if s.processes_after == 1 {
                "instance"
            } else {
                "instances"
            }
        )
    }
}

/// `3 entries unchanged (within noise)`; nothing when there are none.
fn unchanged_line(n: usize, one: &str, many: &str) -> Option<String> {
    (n > 0).then(|| {
        format!(
            "{n} {} unchanged (within noise)",
            if n == 1 { one } else { many }
        )
    })
}

fn threshold_line(t: &Evaluation) -> String {
    let outcome = match t.held {
        Some(true) => "FAILED",
        Some(false) => "ok",
        None => "cannot judge (the diff is inconclusive)",
    };
    match t.value {
        Some(v) if t.held.is_some() => format!("{outcome} (value {})", show(v)),
        _ => outcome.to_string(),
    }
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

/// Lays out rows as aligned columns: the first left-aligned, the rest right-aligned.
fn columns<const N: usize>(indent: &str, rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = indent.to_string();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            if i == 0 {
                line.push_str(c);
                line.push_str(&pad);
            } else {
                line.push_str("  ");
                line.push_str(&pad);
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn scopes(d: &Diff) -> impl Iterator<Item = (&Scope, bool)> {
    std::iter::once((&d.total, true)).chain(d.processes.iter().map(|s| (s, false)))
}

/// The diff for a terminal.
pub fn text(d: &Diff, thresholds: &[Evaluation]) -> String {
    let mut out = format!("{}\n", d.verdict);
    for (label, s) in [("before:", &d.before), ("after: ", &d.after)] {
        let workload = format!("`{}`", s.workload);
        out.push_str(&format!("{label} {}\n", side_line(s, &workload)));
    }
    for line in unit_lines(d) {
        out.push_str(&format!("{line}\n"));
    }
    if let Some(n) = noise_line(d) {
        out.push_str(&format!("{n}\n"));
    }
    for w in &d.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for (s, is_total) in scopes(d) {
        let mut rows = vec![[
            scope_title(s, is_total),
            "BEFORE".to_string(),
            "AFTER".to_string(),
            "CHANGE".to_string(),
        ]];
        rows.extend(metric_table(d, s).into_iter().map(|mut r| {
            r[0] = format!("  {}", r[0]);
            r
        }));
        out.push('\n');
        out.push_str(&columns("", &rows));
        if let Some(line) = errno_line(&s.metrics) {
            out.push_str(&format!("  {line}\n"));
        }
        if !s.changed.is_empty() {
            let mut rows = vec![ENTRY_HEADER.map(str::to_uppercase)];
            rows.extend(entry_table(d, &s.changed));
            out.push_str("  changed above noise:\n");
            out.push_str(&columns("    ", &rows));
        }
        if let Some(line) = unchanged_line(s.unchanged, "entry", "entries") {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(line) = unchanged_line(d.unchanged_processes, GROUP, GROUPS) {
        out.push_str(&format!("\n{line}\n"));
    }
    if let Some(sites) = &d.call_sites {
        out.push_str(&format!("\n{}\n", call_sites_title(sites)));
        if !sites.changed.is_empty() {
            let mut rows = vec![SITE_HEADER.map(str::to_uppercase)];
            rows.extend(site_table(d, sites));
            out.push_str(&columns("  ", &rows));
        }
        if let Some(line) = unchanged_line(sites.unchanged, "call site", "call sites") {
            out.push_str(&format!("  {}\n", line.replace("noise", "sampling error")));
        }
    }
    if !thresholds.is_empty() {
        out.push('\n');
        for t in thresholds {
            out.push_str(&format!(
                "--fail-if {}: {}\n",
                t.condition,
                threshold_line(t)
            ));
        }
    }
    out
}

/// The diff for a pull-request comment.
pub fn markdown(d: &Diff, thresholds: &[Evaluation]) -> String {
    let esc = |s: &str| s.replace('|', "\\|").replace('`', "'");
    let mut out = format!("**{}**\n\n", esc(&d.verdict));
    for (label, s) in [("before", &d.before), ("after", &d.after)] {
        // A code span cannot hold a backtick; the workload is shown, not run.
        let workload = format!("`{}`", s.workload.replace('`', "'"));
        out.push_str(&format!("- {label}: {}\n", side_line(s, &workload)));
    }
    for line in unit_lines(d) {
        out.push_str(&format!("- {line}\n"));
    }
    if let Some(n) = noise_line(d) {
        out.push_str(&format!("- {n}\n"));
    }
    out.push('\n');
    for w in &d.warnings {
        out.push_str(&format!("> ⚠ {}\n\n", esc(w)));
    }
    let row = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| esc(c)).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    for (s, is_total) in scopes(d) {
        out.push_str(&row(&[
            scope_title(s, is_total),
            "before".into(),
            "after".into(),
            "change".into(),
        ]));
        out.push_str("|---|---:|---:|---:|\n");
        for r in metric_table(d, s) {
            out.push_str(&row(&r));
        }
        out.push('\n');
        if let Some(line) = errno_line(&s.metrics) {
            out.push_str(&format!("{}.\n\n", esc(&line)));
        }
        if !s.changed.is_empty() {
            out.push_str(&row(&ENTRY_HEADER.map(String::from)));
            out.push_str("|---|---|---|---:|---:|---:|---:|\n");
            for r in entry_table(d, &s.changed) {
                out.push_str(&row(&r));
            }
            out.push('\n');
        }
        if let Some(line) = unchanged_line(s.unchanged, "entry", "entries") {
            out.push_str(&format!("{line}.\n\n"));
        }
    }
    if let Some(line) = unchanged_line(d.unchanged_processes, GROUP, GROUPS) {
        out.push_str(&format!("{line}.\n\n"));
    }
    if let Some(sites) = &d.call_sites {
        out.push_str(&format!("**{}**\n\n", esc(&call_sites_title(sites))));
        if !sites.changed.is_empty() {
            out.push_str(&row(&SITE_HEADER.map(String::from)));
            out.push_str("|---|---|---|---:|---:|---:|\n");
            for r in site_table(d, sites) {
                out.push_str(&row(&r));
            }
            out.push('\n');
        }
        if let Some(line) = unchanged_line(sites.unchanged, "call site", "call sites") {
            out.push_str(&format!("{}.\n\n", line.replace("noise", "sampling error")));
        }
    }
    for t in thresholds {
        let mark = match t.held {
            Some(true) => "❌",
            Some(false) => "✅",
            None => "⚠",
        };
        out.push_str(&format!(
            "- {mark} --fail-if {}: {}\n",
            esc(&t.condition),
            threshold_line(t)
        ));
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
