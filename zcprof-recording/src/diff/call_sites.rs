//! Call sites before → after (both recordings made with `--stacks`): which sites appeared,
//! vanished or changed by more than their sampling error. A site is a process name and its
//! call site (`read() in serve_file (server.rs:120) ← handle ← main`): pids differ between
//! runs, names and code do not.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Change, Norm, Status};
use crate::format::{Direction, Family, Recording, Stacks, sampling_error};

/// How far apart two estimates must be to count as a change: this many times their
/// combined sampling error (one standard deviation each), about 95 % confidence.
pub const SIGMAS: f64 = 2.0;

/// The call sites of both recordings.
#[derive(Clone, Debug, Serialize)]
pub struct CallSites {
    /// Each recording's bytes per sample.
    pub period_bytes: [u64; 2],
    /// Sites that appeared, vanished or changed beyond [`SIGMAS`] sampling errors (every
    /// site when the diff is inconclusive, not compared), most bytes first.
    pub changed: Vec<CallSiteChange>,
    /// Sites whose change is within the sampling error.
    pub unchanged: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct CallSiteChange {
    /// The process name.
    pub process: String,
    pub call_site: String,
    pub family: Family,
    pub direction: Direction,
    /// Estimated bytes, normalised as the rest of the diff.
    pub bytes: Change,
    /// The normalised difference below which the change is sampling noise
    /// ([`SIGMAS`] × the combined error).
    pub error_bytes: Option<f64>,
}

/// `None` unless both recordings have stacks.
pub(super) fn compare(before: &Recording, after: &Recording, norm: Norm) -> Option<CallSites> {
    let (sb, sa) = (before.stacks.as_ref()?, after.stacks.as_ref()?);
    let mut sites: BTreeMap<(String, String), Site> = BTreeMap::new();
    for (side, stacks) in [(0, sb), (1, sa)] {
        for s in stacks.call_sites() {
            let site = sites.entry((s.comm, s.call_site)).or_insert(Site {
                family: s.family,
                direction: s.direction,
                samples: [0, 0],
                bytes: [0, 0],
            });
            site.samples[side] += s.samples;
            site.bytes[side] += s.bytes;
        }
    }
    let mut changed = Vec::new();
    let mut unchanged = 0;
    for ((process, call_site), site) in sites {
        let bytes = norm.pair(site.bytes[0], site.bytes[1]);
        let error = norm.0.map(|(nb, na)| {
            let e = |side: usize, stacks: &Stacks, n: f64| {
                sampling_error(site.samples[side], stacks.period_bytes) as f64 / n
            };
            SIGMAS * e(0, sb, nb).hypot(e(1, sa, na))
        });
        let beyond = match (bytes.before, bytes.after, error) {
            (Some(b), Some(a), Some(error)) => (a - b).abs() > error,
            // Not compared: listed as they are.
            _ => true,
        };
        if !beyond || bytes.status == Status::Same {
            unchanged += 1;
            continue;
        }
        changed.push(CallSiteChange {
            process,
            call_site,
            family: site.family,
            direction: site.direction,
            bytes,
            error_bytes: error,
        });
    }
    changed.sort_by(|a, b| {
        let w = |c: &CallSiteChange| {
            c.bytes.before_total.unwrap_or(0) + c.bytes.after_total.unwrap_or(0)
        };
        w(b).cmp(&w(a))
            .then_with(|| (&a.process, &a.call_site).cmp(&(&b.process, &b.call_site)))
    });
    Some(CallSites {
        period_bytes: [sb.period_bytes, sa.period_bytes],
        changed,
        unchanged,
    })
}

struct Site {
    family: Family,
    direction: Direction,
    samples: [u64; 2],
    bytes: [u64; 2],
}
