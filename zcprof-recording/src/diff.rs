//! Before → after: did copying go down, by how much, where, and did any copy path grow?
//!
//! Processes are matched by command, never by pid: by name (`comm`) preceded by the names
//! of their recorded ancestors, and every instance with the same command is summed into
//! one group, so a run with other pids (or more workers) still lines up, while a parent
//! and its same-named workers stay apart.
//!
//! Figures are compared per unit of work, chosen by [`normalise`] (the verdict names it):
//! - `--per-bytes-delivered N`: per delivered byte (both runs delivered N bytes);
//! - two commands that ran to completion did the same job: their **totals**;
//! - otherwise a recording is bounded by time (`--duration`, Ctrl-C, `--pid`, `--comm`, the
//!   machine) and saw an unknown share of the work: per second only when both runtimes are
//!   within [`SIMILAR_RUNTIME`] of each other (a steady load is assumed, and the verdict
//!   says so); else the diff is **inconclusive**: it shows the recorded totals, names no
//!   change and no regression, and `--fail-if` cannot judge it. When both recordings
//!   have the flows layer (`--flows`) and delivered bytes through sockets, those bytes
//!   are the unit instead, measured per recording (the verdict says so): a server's
//!   copies per byte it served, whatever the load and the runtime.
//!
//! The headline figures come from the syscall layer, the one every machine has; entries of
//! other layers (e.g. `kernel` probes) are compared and flagged too, but never added to the
//! syscall figures (the layers see the same bytes at different depths).
//!
//! Noise: a change is listed only when it exceeds [`MATERIAL`] of everything the workload
//! moved (normalised, the larger of before and after); the rest are counted as unchanged.
//! A *regression* is a copy-family entry that appeared or grew by more than that in some
//! process group: small fixed costs (the dynamic loader reading libc) must not fail a CI
//! gate.

pub mod call_sites;
pub mod cpu;
pub mod render;
pub mod threshold;

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::format::{
    Direction, Entry, Family, Layer, LayerTotals, Layers, ProbeLayer, ProcessRecord, Recording,
    WorkloadKind, ratio,
};

/// Schema name of `zcprof diff --json`.
pub const SCHEMA: &str = "zcprof.diff/v1";
/// The layer every headline figure starts from.
pub const PRIMARY_LAYER: &str = "syscall";
/// The layers whose totals add up to the headline figures and the verdict: what the
/// application asked the kernel to move, by syscall or by io_uring request (the two never
/// see the same byte: an io_uring request is not a syscall). A move from read/write to
/// io_uring moves its copies from one to the other; it does not make them fall. The kernel
/// layer is a breakdown of the same bytes and is never added.
pub const COUNTED_LAYERS: [&str; 2] = [PRIMARY_LAYER, IO_URING_LAYER];
/// The io_uring layer's name under `layers`.
pub const IO_URING_LAYER: &str = "io_uring";
/// The io_uring layer's entry for processes seen calling `io_uring_enter`/`io_uring_setup`
/// while the layer itself was unavailable: their io_uring bytes are not counted.
pub const IO_URING_UNSEEN: &str = "io_uring_enter (layer unavailable)";
/// The caveat every view gives such a process.
pub const IO_URING_CAVEAT: &str =
    "io_uring_enter seen, io_uring layer unavailable: its bytes are not counted";
/// The flows layer's name under `layers` (`--flows`): its totals carry the bytes delivered
/// through sockets, the unit of work of time-bounded recordings that both have it.
pub const FLOWS_LAYER: &str = "flows";
/// The mapped layer's name under `layers`: file pages mapped in through mmap, a figure of
/// their own (never added to copies).
pub const MAPPED_LAYER: &str = "mapped";
/// The user layer's name in recordings.
pub const USER_LAYER: &str = "user";
/// The verdict's note when copies fell and mapped file pages rose: the copy did not vanish
/// into thin air, the program reads the file through mmap now.
pub const MAPPED_NOTE: &str =
    "mapped file pages appeared where copies vanished: the bytes are read through mmap now";
/// A change is above noise (and a grown copy path a regression) when it exceeds this share
/// of the bytes the workload moved (the larger of before and after, normalised).
pub const MATERIAL: f64 = 0.01;
/// Time-bounded recordings compare per second only when the longer runtime is at most this
/// much longer than the shorter (25 %).
pub const SIMILAR_RUNTIME: f64 = 1.25;
/// Relative changes below this are "same" (floating-point noise, rounding).
const SAME: f64 = 0.005;

/// The unit of work the user gave, if any.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    /// None given: totals, per second, or inconclusive, from the recordings ([`normalise`]).
    FromRecordings,
    /// Per byte delivered: both workloads delivered this many bytes.
    PerBytesDelivered(u64),
}

#[derive(Debug, Error, PartialEq)]
pub enum DiffError {
    #[error(
        "BEFORE records {} and AFTER {}: the whole machine compares only with the whole machine (record both the same way)",
        .before.describe(), .after.describe()
    )]
    DifferentKinds {
        before: WorkloadKind,
        after: WorkloadKind,
    },
}

/// The comparison, as printed and as `--json` (schema `zcprof.diff/v1`).
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    /// One line: the normalisation, the headline change and whether any copy path grew
    /// (or, when inconclusive, why nothing can be said).
    pub verdict: String,
    /// What the figures are divided by, and why.
    pub unit: UnitInfo,
    /// Why no sound normalisation exists; `null` when the diff is conclusive.
    pub inconclusive: Option<String>,
    pub before: SideInfo,
    pub after: SideInfo,
    /// The noise threshold: a change of at most this many normalised bytes is unchanged
    /// (`null` when inconclusive: nothing is compared).
    pub noise: Option<Noise>,
    pub total: Scope,
    /// The command groups (`parent > child` names) with a change above noise, most copied
    /// bytes first.
    pub processes: Vec<Scope>,
    /// Groups whose changes are all within noise (and every group when inconclusive).
    pub unchanged_processes: usize,
    pub regressions: Vec<Regression>,
    /// The call sites that changed, when both recordings have stacks (`--stacks`);
    /// absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_sites: Option<call_sites::CallSites>,
    /// Reasons to trust the numbers less (interrupted recordings, lost events, …).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnitInfo {
    /// `run` (totals), `delivered_byte`, `second`, or `null` when inconclusive.
    pub per: Option<Per>,
    /// `--per-bytes-delivered N`: what both runs delivered.
    pub delivered_bytes: Option<u64>,
    /// Per delivered byte without `--per-bytes-delivered`: what each recording's flows
    /// layer measured, `[before, after]` (bytes sent out through sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_delivered_bytes: Option<[u64; 2]>,
    /// Why this unit (or why none): a sentence for the reader.
    pub basis: String,
}

/// What the figures are divided by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// Not divided: both runs did the whole job.
    Run,
    DeliveredByte,
    Second,
}

#[derive(Clone, Debug, Serialize)]
pub struct SideInfo {
    /// The command line(s), shell-quoted, or what was selected.
    pub workload: String,
    pub kind: WorkloadKind,
    pub ended_by: String,
    /// A command that exited by itself, uninterrupted: its totals are the whole job.
    pub ran_to_completion: bool,
    /// What bounded it otherwise: `--duration`, `interrupted`, `--pid`, `--comm` or
    /// `the whole machine`; `null` when it ran to completion.
    pub time_bound: Option<&'static str>,
    pub duration_s: f64,
    pub interrupted: bool,
    pub lost_events: u64,
    pub processes: usize,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Noise {
    /// [`MATERIAL`] as a share.
    pub share: f64,
    /// Bytes the workload moved (copied + zero-copy), normalised: the larger side.
    pub moved: f64,
    /// `share × moved`.
    pub bytes: f64,
}

/// The total, or one group of processes with the same command.
#[derive(Clone, Debug, Serialize)]
pub struct Scope {
    /// `total`, or the command (`nginx > nginx`).
    pub name: String,
    pub processes_before: usize,
    pub processes_after: usize,
    pub metrics: Metrics,
    /// Entries (syscalls, probes) of every layer whose bytes changed above noise.
    pub changed: Vec<EntryChange>,
    /// Entries whose change is within noise.
    pub unchanged: usize,
}

/// Headline figures of the syscall layer.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    pub copied: Change,
    pub copy_k2u: Change,
    pub copy_u2k: Change,
    pub zero_copy: Change,
    pub calls: Change,
    /// Calls that failed: errors other than EAGAIN/EWOULDBLOCK and EINTR (what `--fail-if
    /// errors` judges).
    pub errors: Change,
    /// Calls that returned EAGAIN/EWOULDBLOCK or EINTR: would block / interrupted, never a
    /// failure nor a regression.
    pub would_block: Change,
    /// Both kinds of errors by errno name, as recorded (not normalised), by name.
    pub errno: Vec<ErrnoCount>,
    /// Copied bytes per delivered byte (only with `--per-bytes-delivered`).
    pub copy_amplification: Option<Change>,
    /// Not normalised; `change_pct` is the difference in percentage points.
    pub zero_copy_ratio: Change,
}

/// One figure before and after: as recorded (`*_total`) and normalised. `change_pct` is
/// `null` when it appeared from zero, or when nothing is compared.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Change {
    /// The recorded count (`null` for a ratio).
    pub before_total: Option<u64>,
    pub after_total: Option<u64>,
    /// Normalised by the unit (equal to the totals per run); `null` when inconclusive (and
    /// for a ratio of nothing).
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
    /// No sound normalisation: the recorded totals are shown, not compared.
    NotCompared,
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

/// One errno's recorded count before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrnoCount {
    pub errno: String,
    /// EAGAIN/EWOULDBLOCK or EINTR: would block / interrupted, not a failure.
    pub would_block: bool,
    pub before_total: u64,
    pub after_total: u64,
}

/// Every errno either side recorded, failures first, then by name.
fn errno_counts(before: &LayerTotals, after: &LayerTotals) -> Vec<ErrnoCount> {
    let names: std::collections::BTreeSet<&String> =
        before.errno.keys().chain(after.errno.keys()).collect();
    let mut out: Vec<ErrnoCount> = names
        .into_iter()
        .map(|name| ErrnoCount {
            errno: name.clone(),
            would_block: crate::WOULD_BLOCK.contains(&name.as_str()),
            before_total: before.errno.get(name).copied().unwrap_or(0),
            after_total: after.errno.get(name).copied().unwrap_or(0),
        })
        .collect();
    out.sort_by(|a, b| {
        a.would_block
            .cmp(&b.would_block)
            .then(a.errno.cmp(&b.errno))
    });
    out
}

/// A copy path that appeared or grew above noise.
#[derive(Clone, Debug, Serialize)]
pub struct Regression {
    pub process: String,
    pub layer: String,
    pub name: String,
    pub direction: Direction,
    pub bytes: Change,
}

impl Change {
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
            before_total: None,
            after_total: None,
            before,
            after,
            change_pct,
            status,
        }
    }

    /// How far the normalised figure moved (0 when not compared).
    fn delta(&self) -> f64 {
        self.after.unwrap_or(0.0) - self.before.unwrap_or(0.0)
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
        let mut by_command: BTreeMap<String, (usize, Layers)> = BTreeMap::new();
        for (p, command) in r.processes.iter().zip(commands(r)) {
            let slot = by_command.entry(command).or_default();
            slot.0 += 1;
            add_layers(&mut slot.1, &p.layers);
        }
        Groups { by_command }
    }
}

/// Each process's command: its name preceded by the names of its recorded ancestors
/// (`nginx > nginx`), in `r.processes` order.
fn commands(r: &Recording) -> Vec<String> {
    let mut by_pid: BTreeMap<u32, &ProcessRecord> = BTreeMap::new();
    for p in &r.processes {
        by_pid.entry(p.pid).or_insert(p);
    }
    r.processes
        .iter()
        .map(|p| {
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
            chain.join(" > ")
        })
        .collect()
}

/// `r` restricted to the processes `selector` names (`diff --only`): a cgroup path (it
/// starts with `/`: the processes in that cgroup or below), else a command (`nginx >
/// nginx`, as the diff names groups) or a process name (every instance so named). Its
/// total is summed again from those processes.
pub fn only(r: &Recording, selector: &str) -> Recording {
    let keep: Vec<bool> = if selector.starts_with('/') {
        let under = selector.trim_end_matches('/');
        r.processes
            .iter()
            .map(|p| {
                p.cgroup.as_deref().is_some_and(|c| {
                    under.is_empty()
                        || c == under
                        || c.strip_prefix(under)
                            .is_some_and(|rest| rest.starts_with('/'))
                })
            })
            .collect()
    } else {
        r.processes
            .iter()
            .zip(commands(r))
            .map(|(p, command)| command == selector || p.comm == selector)
            .collect()
    };
    let mut out = r.clone();
    out.processes = r
        .processes
        .iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|(p, _)| p.clone())
        .collect();
    let mut layers = Layers::new();
    for p in &out.processes {
        add_layers(&mut layers, &p.layers);
    }
    layers.entry(PRIMARY_LAYER.to_string()).or_default();
    out.total.layers = layers;
    out
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

/// Divides counts by the unit of work; `None` when no sound unit exists.
#[derive(Clone, Copy)]
struct Norm(Option<(f64, f64)>);

impl Norm {
    fn pair(&self, before: u64, after: u64) -> Change {
        let (before_total, after_total) = (Some(before), Some(after));
        let Some((nb, na)) = self.0 else {
            return Change {
                before_total,
                after_total,
                before: None,
                after: None,
                change_pct: None,
                status: Status::NotCompared,
            };
        };
        let (b, a) = (before as f64 / nb, after as f64 / na);
        let status = status(b, a);
        let change_pct = match status {
            Status::Appeared => None,
            _ if b == 0.0 => Some(0.0),
            _ => Some((a - b) / b * 100.0),
        };
        Change {
            before_total,
            after_total,
            before: Some(b),
            after: Some(a),
            change_pct,
            status,
        }
    }
}

/// The unit of the comparison and why, or why there is none (the module comment has the
/// rules).
pub fn normalise(
    before: &Recording,
    after: &Recording,
    unit: Unit,
) -> Result<(Per, UnitInfo), String> {
    if let Unit::PerBytesDelivered(n) = unit {
        return Ok((
            Per::DeliveredByte,
            UnitInfo {
                per: Some(Per::DeliveredByte),
                delivered_bytes: Some(n),
                measured_delivered_bytes: None,
                basis: format!(
                    "each run delivered {} (--per-bytes-delivered {n})",
                    render::bytes(n as f64)
                ),
            },
        ));
    }
    let info = |per: Per, basis: String| {
        Ok((
            per,
            UnitInfo {
                per: Some(per),
                delivered_bytes: None,
                measured_delivered_bytes: None,
                basis,
            },
        ))
    };
    if before.ran_to_completion() && after.ran_to_completion() {
        return info(
            Per::Run,
            "totals: both commands ran to completion, so each did the whole job".into(),
        );
    }
    let bounds: Vec<String> = [("BEFORE", before), ("AFTER", after)]
        .iter()
        .filter_map(|(side, r)| r.time_bound().map(|b| format!("{side} {b}")))
        .collect();
    let bounded = format!("time-bounded ({})", bounds.join(", "));
    if let (Some(b), Some(a)) = (delivered(before), delivered(after)) {
        return Ok((
            Per::DeliveredByte,
            UnitInfo {
                per: Some(Per::DeliveredByte),
                delivered_bytes: None,
                measured_delivered_bytes: Some([b, a]),
                basis: format!(
                    "{bounded}: per byte delivered through sockets, as the flows layer measured it ({} before, {} after)",
                    render::bytes(b as f64),
                    render::bytes(a as f64)
                ),
            },
        ));
    }
    let (b, a) = (before.duration_s, after.duration_s);
    let no_unit = "and no unit of work: pass --per-bytes-delivered N, or record both with --flows so that zcprof measures the bytes delivered through sockets";
    if !(b > 0.0 && a > 0.0 && b.is_finite() && a.is_finite()) {
        return Err(format!(
            "{bounded}, a runtime of {b:.2} s or {a:.2} s, {no_unit}"
        ));
    }
    if b.max(a) / b.min(a) <= SIMILAR_RUNTIME {
        return info(
            Per::Second,
            format!(
                "{bounded} with runtimes within 25 % ({b:.2} s and {a:.2} s): per second holds if the load was steady in both"
            ),
        );
    }
    Err(format!(
        "{bounded}, runtimes that differ by more than 25 % ({b:.2} s and {a:.2} s) {no_unit}"
    ))
}

/// The bytes a recording's processes delivered through sockets, when it has the flows
/// layer and they delivered any.
fn delivered(r: &Recording) -> Option<u64> {
    r.total
        .layers
        .get(FLOWS_LAYER)
        .and_then(|l| l.totals.delivered_bytes)
        .filter(|&n| n > 0)
}

/// Kinds that may be compared: everything but the whole machine selects one program's
/// processes (by command, pid or name), so a `--pid` and a `-- CMD` recording of the same
/// program compare, with a warning.
fn comparable(a: WorkloadKind, b: WorkloadKind) -> bool {
    a == b || (a != WorkloadKind::Machine && b != WorkloadKind::Machine)
}

/// Compares two recordings.
pub fn diff(before: &Recording, after: &Recording, unit: Unit) -> Result<Diff, DiffError> {
    let (kb, ka) = (before.workload.kind, after.workload.kind);
    if !comparable(kb, ka) {
        return Err(DiffError::DifferentKinds {
            before: kb,
            after: ka,
        });
    }
    let (unit, inconclusive, norm) = match normalise(before, after, unit) {
        Ok((per, info)) => {
            // `side`: 0 before, 1 after (what the flows layer measured on each).
            let by = |r: &Recording, side: usize| match per {
                Per::Run => 1.0,
                Per::Second => r.duration_s,
                Per::DeliveredByte => match info.measured_delivered_bytes {
                    Some(measured) => measured[side] as f64,
                    None => info.delivered_bytes.unwrap_or(1).max(1) as f64,
                },
            };
            let norm = Norm(Some((by(before, 0), by(after, 1))));
            (info, None, norm)
        }
        Err(why) => (
            UnitInfo {
                per: None,
                delivered_bytes: None,
                measured_delivered_bytes: None,
                basis: "no sound unit of work (see the verdict): recorded totals are shown, not compared".into(),
            },
            Some(why),
            Norm(None),
        ),
    };
    let with_n = unit.per == Some(Per::DeliveredByte);
    let moved = |r: &Recording, n: f64| {
        let t = primary(&r.total.layers);
        (t.copied_bytes() as f64 + t.zero_copy_bytes as f64) / n
    };
    let noise = norm.0.map(|(nb, na)| {
        let reference = moved(before, nb).max(moved(after, na));
        Noise {
            share: MATERIAL,
            moved: reference,
            bytes: MATERIAL * reference,
        }
    });
    let compare = Compare {
        norm,
        with_n,
        noise: noise.map_or(f64::INFINITY, |n| n.bytes),
    };

    let total = compare.scope(
        "total",
        (before.processes.len(), &before.total.layers),
        (after.processes.len(), &after.total.layers),
    );
    let (gb, ga) = (Groups::of(before), Groups::of(after));
    let empty = Layers::new();
    let mut names: Vec<&String> = gb.by_command.keys().chain(ga.by_command.keys()).collect();
    names.sort();
    names.dedup();
    let mut all: Vec<Scope> = names
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
            compare.scope(name, b, a)
        })
        .collect();
    let weight = |s: &Scope| {
        s.metrics.copied.before_total.unwrap_or(0) as f64
            + s.metrics.copied.after_total.unwrap_or(0) as f64
    };
    all.sort_by(|a, b| weight(b).total_cmp(&weight(a)).then(a.name.cmp(&b.name)));
    let (processes, quiet): (Vec<Scope>, Vec<Scope>) =
        all.into_iter().partition(|s| compare.above_noise(s));

    let regressions: Vec<Regression> = processes
        .iter()
        .flat_map(|s| {
            s.changed.iter().filter_map(move |e| {
                let copy = matches!(e.family, Family::Copy | Family::ZeroCopyRequested);
                let up = matches!(e.status, Status::Appeared | Status::Rose);
                (copy && up && e.bytes.delta() > compare.noise).then(|| Regression {
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
    if kb != ka {
        warnings.push(format!(
            "BEFORE records {} and AFTER {}: compare them only if both ran the same program doing the same work (a recording of chosen pids or names misses what ran before it attached)",
            kb.describe(),
            ka.describe(),
        ));
    }
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
        if io_uring_unseen(&r.total.layers) {
            warnings.push(format!("{side}: {IO_URING_CAVEAT}"));
        }
    }
    if before.kernel != after.kernel {
        warnings.push(format!(
            "recorded on different kernels ({} and {})",
            before.kernel, after.kernel
        ));
    }
    warnings.extend(probe_differences(before, after));
    // MSG_ZEROCOPY bytes are counted as copied until notifications confirm them: say so
    // where the verdict depends on it.
    let mut zerocopy = Vec::new();
    for (side, r) in [("BEFORE", before), ("AFTER", after)] {
        let z = primary(&r.total.layers).msg_zerocopy;
        if !z.is_zero() {
            zerocopy.push(format!(
                "{side} sent {}",
                z.summary("MSG_ZEROCOPY or io_uring SEND_ZC", |b| render::bytes(
                    b as f64
                ))
            ));
        }
    }
    warnings.extend(zerocopy.iter().cloned());
    match (before.stacks.is_some(), after.stacks.is_some()) {
        (true, false) | (false, true) => warnings.push(format!(
            "only {} was recorded with --stacks: call sites are not compared",
            if before.stacks.is_some() {
                "BEFORE"
            } else {
                "AFTER"
            }
        )),
        _ => {}
    }
    for (side, r) in [("BEFORE", before), ("AFTER", after)] {
        if let Some(s) = r.stacks.as_ref().filter(|s| s.lost_samples > 0) {
            warnings.push(format!(
                "{side} lost {} stack samples: its call sites are low",
                s.lost_samples
            ));
        }
    }

    let mut d = Diff {
        schema: SCHEMA,
        verdict: String::new(),
        unit,
        inconclusive,
        before: side_info(before),
        after: side_info(after),
        noise,
        total,
        processes,
        unchanged_processes: quiet.len(),
        regressions,
        call_sites: call_sites::compare(before, after, norm),
        warnings,
    };
    d.verdict = render::verdict(&d);
    if !zerocopy.is_empty() {
        d.verdict = format!("{} ({})", d.verdict, zerocopy.join("; "));
    }
    // Never silence: a side whose io_uring bytes could not be counted makes every copy
    // figure of the verdict a lower bound.
    let unseen: Vec<&str> = [("BEFORE", before), ("AFTER", after)]
        .into_iter()
        .filter(|(_, r)| io_uring_unseen(&r.total.layers))
        .map(|(side, _)| side)
        .collect();
    if !unseen.is_empty() {
        d.verdict.push_str(&format!(
            " — CAVEAT ({}): {IO_URING_CAVEAT}",
            unseen.join(", ")
        ));
    }
    if let Some(note) = mapped_note(before, after) {
        d.verdict.push_str(&format!(" — {note}"));
    }
    if let Some(note) = user_note(before, after) {
        d.verdict.push_str(&format!(" — {note}"));
    }
    if let Some(note) = cpu::note(before, after) {
        d.verdict.push_str(&format!(" — {note}"));
    }
    Ok(d)
}

/// File bytes mapped in (the mapped layer's pages × page size) over a recording's processes.
pub fn mapped_bytes(layers: &Layers) -> u64 {
    layers
        .get(MAPPED_LAYER)
        .map_or(0, |l| l.probes.values().map(|e| e.bytes).sum())
}

/// Bytes copied inside the processes through their copy routines (the user layer, `record
/// --user-copies`).
pub fn user_copy_bytes(layers: &Layers) -> Option<u64> {
    layers
        .get(USER_LAYER)
        .map(|l| l.probes.values().map(|e| e.bytes).sum())
}

/// The user layer's bytes on both sides, when either side recorded them (`record
/// --user-copies`): their own figure, beside the verdict on the syscall layer's copies.
fn user_note(before: &Recording, after: &Recording) -> Option<String> {
    let (was, now) = (
        user_copy_bytes(&before.total.layers),
        user_copy_bytes(&after.total.layers),
    );
    if was.is_none() && now.is_none() {
        return None;
    }
    let (was, now) = (was.unwrap_or(0), now.unwrap_or(0));
    Some(format!(
        "user-space copies (user layer, recorded totals): {} before, {} after ({})",
        render::bytes(was as f64),
        render::bytes(now as f64),
        change(was, now)
    ))
}

/// `-75 %`, `+12 %`, `unchanged`, `new`.
fn change(was: u64, now: u64) -> String {
    if was == now {
        "unchanged".into()
    } else if was == 0 {
        "new".into()
    } else {
        format!("{:+.0} %", (now as f64 - was as f64) * 100.0 / was as f64)
    }
}

/// [`MAPPED_NOTE`] with both sides' mapped bytes, when the kernel-to-user copies fell by
/// more than noise and the mapped bytes rose by at least half of that fall. Every process
/// maps its program's and libraries' code pages too, and a different code path maps a few
/// more of them: a rise that small next to the fall is no sign that the file is read
/// through mmap now, and the note would be a false claim.
fn mapped_note(before: &Recording, after: &Recording) -> Option<String> {
    let read = |r: &Recording| primary(&r.total.layers).copy_k2u_bytes;
    let (was, now) = (read(before), read(after));
    let (mapped_was, mapped_now) = (
        mapped_bytes(&before.total.layers),
        mapped_bytes(&after.total.layers),
    );
    let fall = was.saturating_sub(now);
    let material = fall as f64 > MATERIAL * was as f64;
    let rise = mapped_now.saturating_sub(mapped_was);
    (material && fall > 0 && 2 * rise >= fall).then(|| {
        format!(
            "{MAPPED_NOTE} (mapped {} before, {} after)",
            render::bytes(mapped_was as f64),
            render::bytes(mapped_now as f64)
        )
    })
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
        kind: r.workload.kind,
        ended_by: r.ended_by.clone(),
        ran_to_completion: r.ran_to_completion(),
        time_bound: r.time_bound(),
        duration_s: r.duration_s,
        interrupted: r.interrupted,
        lost_events: r.lost.total,
        processes: r.processes.len(),
    }
}

/// The headline totals: the [`COUNTED_LAYERS`]' totals added up.
fn primary(layers: &Layers) -> LayerTotals {
    let mut sum = LayerTotals::default();
    for name in COUNTED_LAYERS {
        if let Some(l) = layers.get(name) {
            sum.add(&l.totals);
        }
    }
    sum
}

/// Whether a process (or a total) used io_uring while the io_uring layer was unavailable.
pub fn io_uring_unseen(layers: &Layers) -> bool {
    layers
        .get(IO_URING_LAYER)
        .and_then(|l| l.probes.get(IO_URING_UNSEEN))
        .is_some_and(|e| e.calls > 0)
}

/// How two scopes are compared: the normalisation and the noise threshold.
struct Compare {
    norm: Norm,
    with_n: bool,
    /// Normalised bytes at or below which a change is noise.
    noise: f64,
}

impl Compare {
    fn scope(
        &self,
        name: &str,
        (nb, before): (usize, &Layers),
        (na, after): (usize, &Layers),
    ) -> Scope {
        let norm = self.norm;
        let (b, a) = (primary(before), primary(after));
        let copied = norm.pair(b.copied_bytes(), a.copied_bytes());
        let metrics = Metrics {
            copied,
            copy_k2u: norm.pair(b.copy_k2u_bytes, a.copy_k2u_bytes),
            copy_u2k: norm.pair(b.copy_u2k_bytes, a.copy_u2k_bytes),
            zero_copy: norm.pair(b.zero_copy_bytes, a.zero_copy_bytes),
            calls: norm.pair(b.calls, a.calls),
            errors: norm.pair(b.failures(), a.failures()),
            would_block: norm.pair(b.would_block, a.would_block),
            errno: errno_counts(&b, &a),
            copy_amplification: self.with_n.then_some(copied),
            zero_copy_ratio: Change::of_ratio(
                ratio(b.zero_copy_bytes, b.copied_bytes()),
                ratio(a.zero_copy_bytes, a.copied_bytes()),
            ),
        };
        let mut metrics = metrics;
        if norm.0.is_none() {
            // Nothing is compared in an inconclusive diff, not even the ratios (whose
            // share of idle time is as unknown as the rest).
            metrics.zero_copy_ratio.change_pct = None;
            metrics.zero_copy_ratio.status = Status::NotCompared;
        }
        let (changed, unchanged) = self.entries(before, after);
        Scope {
            name: name.to_string(),
            processes_before: nb,
            processes_after: na,
            metrics,
            changed,
            unchanged,
        }
    }

    /// A byte figure moved by more than the noise (never when nothing is compared).
    fn material(&self, c: &Change) -> bool {
        c.status != Status::NotCompared && c.delta().abs() > self.noise
    }

    /// A group worth listing: its copied or zero-copy bytes, or one of its entries, moved
    /// above noise.
    fn above_noise(&self, s: &Scope) -> bool {
        !s.changed.is_empty()
            || self.material(&s.metrics.copied)
            || self.material(&s.metrics.zero_copy)
    }

    /// The entries of every layer whose bytes changed above noise, and how many others
    /// there were.
    fn entries(&self, before: &Layers, after: &Layers) -> (Vec<EntryChange>, usize) {
        let empty = Layer::default();
        let mut layers: Vec<&String> = before.keys().chain(after.keys()).collect();
        layers.sort();
        layers.dedup();
        let (mut changed, mut unchanged) = (Vec::new(), 0);
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
                let bytes = self.norm.pair(bb, ab);
                let calls = self.norm.pair(bc, ac);
                if !self.material(&bytes) || bytes.status == Status::Same {
                    unchanged += 1;
                    continue;
                }
                let status = match (eb.is_some(), ea.is_some()) {
                    (false, true) => Status::Appeared,
                    (true, false) => Status::Gone,
                    _ => bytes.status,
                };
                changed.push(EntryChange {
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
        (changed, unchanged)
    }
}

#[cfg(test)]
mod tests;
