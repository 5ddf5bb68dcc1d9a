//! A recording (`zcprof.recording/v1`, see `schema/recording.v1.json`) built from the model:
//! the chosen process instances with their figures per layer, their total, and everything
//! needed to judge the numbers later (version, kernel, layers live, lost events, timing).

use std::collections::BTreeMap;

use zcprof_recording::{ProcessRecord, Recording, ThreadRecord, Total, Workload, format::SCHEMA};

use super::{Lost, figures};
use crate::{
    host::cgroup::Cgroup,
    model::{Counters, Model, Origin, ProcId},
    probes::{LayerSummary, copy_source},
};

/// How and when the recording was made.
pub struct Meta {
    pub workload: Workload,
    /// `raw` or `tracepoint`.
    pub syscall_probe: &'static str,
    pub started_unix: f64,
    pub ended_unix: f64,
    pub duration_s: f64,
    /// `exit`, `duration` or `signal`.
    pub ended_by: &'static str,
    /// `--stacks`: the stacks layer's estimate for the recorded processes.
    pub stacks: Option<zcprof_recording::Stacks>,
}

/// The recording of `members` (process instances of `model`), zcprof's own process never
/// among them: the machine and `--comm` select by what ran, and zcprof's own reads (the
/// kernel's BTF, /proc for every new process) would otherwise land in a machine-wide
/// recording and differ between two recordings for reasons that are not the workload's.
pub fn build(
    model: &Model,
    members: &[ProcId],
    cgroups: &BTreeMap<ProcId, Cgroup>,
    layers: &[LayerSummary],
    meta: Meta,
) -> Recording {
    let mut total = Counters::zero();
    let copy_source = copy_source(layers);
    let own = std::process::id();
    let processes = members
        .iter()
        .filter_map(|id| model.process(*id))
        .filter(|p| p.tgid != own)
        .map(|p| {
            total.add(&p.totals);
            let cgroup = cgroups.get(&p.id);
            ProcessRecord {
                pid: p.tgid,
                ppid: p.ppid,
                comm: p.comm.clone(),
                origin: match p.origin {
                    Origin::Forked => "forked",
                    Origin::Existing => "existing",
                }
                .into(),
                exited: p.exited,
                cgroup: cgroup.and_then(|c| c.path.clone()),
                container: cgroup.and_then(|c| c.container.clone()),
                layers: figures::layers(&p.totals, copy_source),
                threads: p
                    .threads
                    .iter()
                    .map(|t| ThreadRecord {
                        tid: t.tid,
                        name: t.name.clone(),
                        exited: t.exited,
                        syscall: figures::syscall_layer(&t.totals),
                    })
                    .collect(),
            }
        })
        .collect();
    Recording {
        schema: SCHEMA.into(),
        zcprof_version: env!("CARGO_PKG_VERSION").into(),
        kernel: crate::host::kernel_release(),
        syscall_probe: meta.syscall_probe.into(),
        started_unix: meta.started_unix,
        ended_unix: meta.ended_unix,
        duration_s: meta.duration_s,
        interrupted: meta.ended_by == "signal",
        ended_by: meta.ended_by.into(),
        workload: meta.workload,
        probe_layers: figures::probe_layers(layers),
        lost: figures::lost(&Lost::of(model)),
        processes,
        total: Total {
            layers: figures::layers(&total, copy_source),
        },
        stacks: meta.stacks,
    }
}

/// The recording as pretty JSON, newline-terminated.
pub fn json(r: &Recording) -> String {
    let mut s =
        serde_json::to_string_pretty(r).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"));
    s.push('\n');
    s
}
