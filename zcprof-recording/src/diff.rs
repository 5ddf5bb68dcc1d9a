//! Before → after: did copying go down, by how much, where, and did any copy path grow?
//!
//! Processes are matched by command, never by pid: by name (`comm`) preceded by the names
//! of their recorded ancestors, and every instance with the same command is summed into
//! one group, so a run with other pids (or more workers) still lines up, while a parent
//! and its same-named workers stay apart. Figures are normalised per second of runtime, or per delivered byte when the
//! user says how many bytes the workload delivered (the same job done two ways).
//!
//! The headline figures come from the syscall layer, the one every machine has; entries of
//! other layers (e.g. `kernel` probes) are compared and flagged too, but never added to the
//! syscall figures (the layers see the same bytes at different depths).
//!
//! A *regression* is a copy-family entry that appeared or grew in some process group by more
//! than [`MATERIAL`] of everything the workload moved: small fixed costs (the dynamic loader
//! reading libc) look larger per second in a faster run and must not fail a CI gate.

pub mod render;
pub mod threshold;

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::format::{
    Direction, Entry, Family, Layer, LayerTotals, Layers, ProbeLayer, ProcessRecord, Recording,
    ratio,
};

/// Schema name of `zcprof diff --json`.
pub const SCHEMA: &str = "zcprof.diff/v1";
/// The layer whose totals make the headline figures and the verdict.
pub const PRIMARY_LAYER: &str = "syscall";
/// A copy path is a regression when it grew by more than this share of the bytes the
/// workload moved (the larger of before and after, normalised).
pub const MATERIAL: f64 = 0.01;
/// Relative changes below this are "unchanged" (floating-point noise, rounding).
const SAME: f64 = 0.005;

/// What the figures are divided by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    /// Per second of runtime (each recording's own `duration_s`).
    PerSecond,
    /// Per byte delivered: both workloads delivered this many bytes.
    PerBytesDelivered(u64),
}

#[derive(Debug, Error, PartialEq)]
pub enum DiffError {
    #[error(
        "BEFORE records {} and AFTER {}: record both the same way to compare them",
        .before.describe(), .after.describe()
    )]
    DifferentKinds {
        before: crate::WorkloadKind,
        after: crate::WorkloadKind,
    },
    #[error(
        "{side} lasted {seconds} s, so it cannot be normalised per second (pass --per-bytes-delivered N)"
    )]
    NoDuration { side: &'static str, seconds: f64 },
}

/// The comparison, as printed and as `--json` (schema `zcprof.diff/v1`).
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    /// One line: the headline change and whether any copy path grew.
    pub verdict: String,
    pub unit: UnitInfo,
    pub before: SideInfo,
    pub after: SideInfo,
    pub total: Scope,
    /// One group per command (`parent > child` names), most copied bytes first.
    pub processes: Vec<Scope>,
    pub regressions: Vec<Regression>,
    /// Reasons to trust the numbers less (interrupted recordings, lost events, …).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnitInfo {
    /// `second` or `delivered_byte`.
    pub per: &'static str,
    pub delivered_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SideInfo {
    pub workload: String,
    pub duration_s: f64,
    pub interrupted: bool,
    pub lost_events: u64,
    pub processes: usize,
}

/// The total, or one group of processes with the same name.
#[derive(Clone, Debug, Serialize)]
pub struct Scope {
    /// `total`, or the command name.
    pub name: String,
    pub processes_before: usize,
    pub processes_after: usize,
    pub metrics: Metrics,
    /// Entries (syscalls, probes) that changed, in every layer.
    pub changed: Vec<EntryChange>,
}

/// Headline figures of the syscall layer, normalised.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    pub copied: Change,
    pub copy_k2u: Change,
    pub copy_u2k: Change,
    pub zero_copy: Change,
    pub calls: Change,
    pub errors: Change,
    /// Copied bytes per delivered byte (only with `--per-bytes-delivered`).
    pub copy_amplification: Option<Change>,
    /// Not normalised; `change_pct` is the difference in percentage points.
    pub zero_copy_ratio: Change,
}

/// One figure before and after. `change_pct` is `null` when it appeared from zero (or a
/// side has no value).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Change {
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub change_pct: Option<f64>,
    pub status: Status,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Same,
    Fell,
    Rose,
    Appeared,
    Gone,
}

#[derive(Clone, Debug, Serialize)]
pub struct EntryChange {
    pub layer: String,
    pub name: String,
    pub family: Family,
    pub direction: Direction,
    pub bytes: Change,
    pub calls: Change,
    pub status: Status,
}

/// A copy path that appeared or grew materially.
#[derive(Clone, Debug, Serialize)]
pub struct Regression {
    pub process: String,
    pub layer: String,
    pub name: String,
    pub direction: Direction,
    pub bytes: Change,
}

impl Change {
    /// Two normalised counts.
    fn of(before: f64, after: f64) -> Change {
        let status = status(before, after);
        let change_pct = match status {
            Status::Appeared => None,
            _ if before == 0.0 => Some(0.0),
            _ => Some((after - before) / before * 100.0),
        };
        Change {
            before: Some(before),
            after: Some(after),
            change_pct,
            status,
        }
    }

    fn of_ratio(before: Option<f64>, after: Option<f64>) -> Change {
        let (change_pct, status) = match (before, after) {
            (Some(b), Some(a)) => {
                let pp = (a - b) * 100.0;
                let status = if pp.abs() < SAME * 100.0 {
                    Status::Same
                } else if pp > 0.0 {
                    Status::Rose
                } else {
                    Status::Fell
                };
                (Some(pp), status)
            }
            (None, Some(_)) => (None, Status::Appeared),
            (Some(_), None) => (None, Status::Gone),
            (None, None) => (None, Status::Same),
        };
        Change {
            before,
            after,
            change_pct,
            status,
        }
    }
}

fn status(before: f64, after: f64) -> Status {
    if before == 0.0 && after == 0.0 {
        Status::Same
    } else if before == 0.0 {
        Status::Appeared
    } else if after == 0.0 {
        Status::Gone
    } else if ((after - before) / before).abs() < SAME {
        Status::Same
    } else if after > before {
        Status::Rose
    } else {
        Status::Fell
    }
}

/// A recording summed by command: a process's name preceded by the names of its recorded
/// ancestors (`nginx > nginx` for a worker of `nginx`), so a parent and its same-named
/// workers stay apart while pids are ignored.
struct Groups {
    /// command → (instances, layers summed over them)
    by_command: BTreeMap<String, (usize, Layers)>,
}

/// Ancestors deeper than this are left out of a command (and cycles end).
const MAX_DEPTH: usize = 8;

impl Groups {
    fn of(r: &Recording) -> Groups {
        let mut by_pid: BTreeMap<u32, &ProcessRecord> = BTreeMap::new();
        for p in &r.processes {
            by_pid.entry(p.pid).or_insert(p);
        }
        let mut by_command: BTreeMap<String, (usize, Layers)> = BTreeMap::new();
        for p in &r.processes {
            let mut chain = vec![p.comm.as_str()];
            let mut at = p;
            while chain.len() < MAX_DEPTH {
                match at.ppid.and_then(|pp| by_pid.get(&pp)) {
                    Some(parent) if parent.pid != at.pid => {
                        chain.push(parent.comm.as_str());
                        at = parent;
                    }
                    _ => break,
                }
            }
            chain.reverse();
            let slot = by_command.entry(chain.join(" > ")).or_default();
            slot.0 += 1;
            add_layers(&mut slot.1, &p.layers);
        }
        Groups { by_command }
    }
}

fn add_layers(into: &mut Layers, from: &Layers) {
    for (name, layer) in from {
        let target = into.entry(name.clone()).or_default();
        target.totals.add(&layer.totals);
        if target.copy_source.is_none() {
            target.copy_source.clone_from(&layer.copy_source);
        }
        for (map, src) in [
            (&mut target.syscalls, &layer.syscalls),
            (&mut target.probes, &layer.probes),
        ] {
            for (k, e) in src {
                map.entry(k.clone())
                    .and_modify(|t: &mut Entry| t.add(e))
                    .or_insert_with(|| e.clone());
            }
        }
    }
}

/// Divides counts by the unit of work.
#[derive(Clone, Copy)]
struct Norm {
    before: f64,
    after: f64,
}

impl Norm {
    fn pair(&self, before: u64, after: u64) -> Change {
        Change::of(before as f64 / self.before, after as f64 / self.after)
    }
}

/// Compares two recordings.
pub fn diff(before: &Recording, after: &Recording, unit: Unit) -> Result<Diff, DiffError> {
    if before.workload.kind != after.workload.kind {
        return Err(DiffError::DifferentKinds {
            before: before.workload.kind,
            after: after.workload.kind,
        });
    }
    let norm = match unit {
        Unit::PerBytesDelivered(n) => Norm {
            before: n.max(1) as f64,
            after: n.max(1) as f64,
        },
        Unit::PerSecond => {
            for (side, r) in [("BEFORE", before), ("AFTER", after)] {
                if r.duration_s <= 0.0 || !r.duration_s.is_finite() {
                    return Err(DiffError::NoDuration {
                        side,
                        seconds: r.duration_s,
                    });
                }
            }
            Norm {
                before: before.duration_s,
                after: after.duration_s,
            }
        }
    };
    let with_n = matches!(unit, Unit::PerBytesDelivered(_));
    let moved = |r: &Recording, n: f64| {
        let t = primary(&r.total.layers);
        (t.copied_bytes() as f64 + t.zero_copy_bytes as f64) / n
    };
    let reference = moved(before, norm.before).max(moved(after, norm.after));

    let total = scope(
        "total",
        (before.processes.len(), &before.total.layers),
        (after.processes.len(), &after.total.layers),
        norm,
        with_n,
    );
    let (gb, ga) = (Groups::of(before), Groups::of(after));
    let empty = Layers::new();
    let mut names: Vec<&String> = gb.by_command.keys().chain(ga.by_command.keys()).collect();
    names.sort();
    names.dedup();
    let mut processes: Vec<Scope> = names
        .into_iter()
        .map(|name| {
            let b = gb
                .by_command
                .get(name)
                .map_or((0, &empty), |(n, l)| (*n, l));
            let a = ga
                .by_command
                .get(name)
                .map_or((0, &empty), |(n, l)| (*n, l));
            scope(name, b, a, norm, with_n)
        })
        .collect();
    let weight =
        |s: &Scope| s.metrics.copied.before.unwrap_or(0.0) + s.metrics.copied.after.unwrap_or(0.0);
    processes.sort_by(|a, b| weight(b).total_cmp(&weight(a)).then(a.name.cmp(&b.name)));

    let regressions: Vec<Regression> = processes
        .iter()
        .flat_map(|s| {
            s.changed.iter().filter_map(move |e| {
                let grew = e.bytes.after.unwrap_or(0.0) - e.bytes.before.unwrap_or(0.0);
                let copy = e.family == Family::Copy;
                let up = matches!(e.status, Status::Appeared | Status::Rose);
                (copy && up && grew > MATERIAL * reference).then(|| Regression {
                    process: s.name.clone(),
                    layer: e.layer.clone(),
                    name: e.name.clone(),
                    direction: e.direction,
                    bytes: e.bytes,
                })
            })
        })
        .collect();

    let mut warnings = Vec::new();
    for (side, r) in [("BEFORE", before), ("AFTER", after)] {
        if r.interrupted {
            warnings.push(format!("{side} was interrupted: its figures are partial"));
        }
        if r.lost.total > 0 {
            warnings.push(format!(
                "{side} lost {} events: its figures are low",
                r.lost.total
            ));
        }
        if r.processes.is_empty() {
            warnings.push(format!("{side} recorded no process"));
        }
    }
    let (short, long) = (
        before.duration_s.min(after.duration_s),
        before.duration_s.max(after.duration_s),
    );
    if unit == Unit::PerSecond && short > 0.0 && long / short > 1.25 {
        warnings.push(format!(
            "the runtimes differ ({:.2} s and {:.2} s): per second, a faster run's fixed costs look larger; pass --per-bytes-delivered N to compare per unit of work",
            before.duration_s, after.duration_s
        ));
    }
    if before.kernel != after.kernel {
        warnings.push(format!(
            "recorded on different kernels ({} and {})",
            before.kernel, after.kernel
        ));
    }
    warnings.extend(probe_differences(before, after));

    let mut d = Diff {
        schema: SCHEMA,
        verdict: String::new(),
        unit: UnitInfo {
            per: if with_n { "delivered_byte" } else { "second" },
            delivered_bytes: match unit {
                Unit::PerBytesDelivered(n) => Some(n),
                Unit::PerSecond => None,
            },
        },
        before: side_info(before),
        after: side_info(after),
        total,
        processes,
        regressions,
        warnings,
    };
    d.verdict = render::verdict(&d);
    Ok(d)
}

/// A probe that attached in one recording only makes its entries look like they appeared or
/// vanished: one warning per layer whose probes differ.
fn probe_differences(before: &Recording, after: &Recording) -> Vec<String> {
    let mut layers: Vec<&str> = before
        .probe_layers
        .iter()
        .chain(&after.probe_layers)
        .map(|l| l.layer.as_str())
        .collect();
    layers.sort_unstable();
    layers.dedup();
    let mut out = Vec::new();
    for layer in layers {
        let differ = match (probe_layer(before, layer), probe_layer(after, layer)) {
            (Some(b), Some(a)) => {
                let mut parts = Vec::new();
                for (side, probes) in [("BEFORE", only_in(b, a)), ("AFTER", only_in(a, b))] {
                    if !probes.is_empty() {
                        parts.push(format!("attached only in {side}: {}", probes.join(", ")));
                    }
                }
                parts.join("; ")
            }
            (Some(_), None) => "recorded only in BEFORE".to_string(),
            (None, Some(_)) => "recorded only in AFTER".to_string(),
            (None, None) => String::new(),
        };
        if !differ.is_empty() {
            out.push(format!(
                "the {layer} layer's probes differ ({differ}): their entries cannot be compared"
            ));
        }
    }
    out
}

fn probe_layer<'a>(r: &'a Recording, layer: &str) -> Option<&'a ProbeLayer> {
    r.probe_layers.iter().find(|l| l.layer == layer)
}

/// Probes that attached in `side` but not in `other` (unavailable only there).
fn only_in<'a>(side: &ProbeLayer, other: &'a ProbeLayer) -> Vec<&'a str> {
    other
        .unavailable
        .iter()
        .filter(|p| !side.unavailable.contains(p))
        .map(String::as_str)
        .collect()
}

fn side_info(r: &Recording) -> SideInfo {
    SideInfo {
        workload: r.workload_label(),
        duration_s: r.duration_s,
        interrupted: r.interrupted,
        lost_events: r.lost.total,
        processes: r.processes.len(),
    }
}

fn primary(layers: &Layers) -> LayerTotals {
    layers
        .get(PRIMARY_LAYER)
        .map(|l| l.totals)
        .unwrap_or_default()
}

fn scope(
    name: &str,
    (nb, before): (usize, &Layers),
    (na, after): (usize, &Layers),
    norm: Norm,
    with_n: bool,
) -> Scope {
    let (b, a) = (primary(before), primary(after));
    let copied = norm.pair(b.copied_bytes(), a.copied_bytes());
    let metrics = Metrics {
        copied,
        copy_k2u: norm.pair(b.copy_k2u_bytes, a.copy_k2u_bytes),
        copy_u2k: norm.pair(b.copy_u2k_bytes, a.copy_u2k_bytes),
        zero_copy: norm.pair(b.zero_copy_bytes, a.zero_copy_bytes),
        calls: norm.pair(b.calls, a.calls),
        errors: norm.pair(b.errors, a.errors),
        copy_amplification: with_n.then_some(copied),
        zero_copy_ratio: Change::of_ratio(
            ratio(b.zero_copy_bytes, b.copied_bytes()),
            ratio(a.zero_copy_bytes, a.copied_bytes()),
        ),
    };
    Scope {
        name: name.to_string(),
        processes_before: nb,
        processes_after: na,
        metrics,
        changed: changed_entries(before, after, norm),
    }
}

/// Every entry of every layer whose bytes (or, when it moves no bytes, calls) changed.
fn changed_entries(before: &Layers, after: &Layers, norm: Norm) -> Vec<EntryChange> {
    let empty = Layer::default();
    let mut layers: Vec<&String> = before.keys().chain(after.keys()).collect();
    layers.sort();
    layers.dedup();
    let mut out = Vec::new();
    for layer in layers {
        let lb = before.get(layer).unwrap_or(&empty);
        let la = after.get(layer).unwrap_or(&empty);
        let mut names: Vec<&String> = lb
            .entries()
            .map(|(k, _)| k)
            .chain(la.entries().map(|(k, _)| k))
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let find = |l: &Layer| l.syscalls.get(name).or_else(|| l.probes.get(name)).cloned();
            let (eb, ea) = (find(lb), find(la));
            let Some(shape) = ea.as_ref().or(eb.as_ref()) else {
                continue;
            };
            let (family, direction) = (shape.family, shape.direction);
            let get = |e: &Option<Entry>| e.as_ref().map_or((0, 0), |e| (e.bytes, e.calls));
            let ((bb, bc), (ab, ac)) = (get(&eb), get(&ea));
            let bytes = norm.pair(bb, ab);
            let calls = norm.pair(bc, ac);
            let status = match (eb.is_some(), ea.is_some()) {
                (false, true) => Status::Appeared,
                (true, false) => Status::Gone,
                _ if bb == 0 && ab == 0 => calls.status,
                _ => bytes.status,
            };
            if status != Status::Same {
                out.push(EntryChange {
                    layer: layer.clone(),
                    name: name.clone(),
                    family,
                    direction,
                    bytes,
                    calls,
                    status,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
