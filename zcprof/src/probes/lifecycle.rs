//! Attaching the lifecycle layer: the fork, exec and exit tracepoints that attribute counts to
//! process instances (`zcprof-ebpf/src/lifecycle.rs`), and, right after `process_exit`, the
//! exit program of every counting layer that has one of its own (so that a process's final
//! counts are moved out of every map before its PID can be reused).
//!
//! The programs read tracepoint fields at offsets learnt from this kernel's tracefs; without
//! tracefs, or without those fields, every lifecycle probe is reported unavailable and the
//! counting layers still count (from their maps alone).

use std::path::Path;

use anyhow::anyhow;
use aya::Ebpf;
use zcprof_common::{FOLLOWED_MAP, global, program};

use super::{
    Host, LAYERS, Layer, LayerProbes, LayerSpec, LoadOptions, Mechanism, Names, ProbeStatus,
    attach_tracepoint,
};
use crate::tracefs;

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Lifecycle,
    counting: None,
    required: false,
    names,
    probes,
};

/// (category, event, program) of the lifecycle tracepoints.
const TRACEPOINTS: [(&str, &str, &str); 3] = [
    ("task", "task_newtask", program::TASK_NEWTASK),
    ("sched", "sched_process_exec", program::PROCESS_EXEC),
    ("sched", "sched_process_exit", program::PROCESS_EXIT),
];

fn names() -> Names {
    Names {
        programs: TRACEPOINTS
            .iter()
            .map(|(_, _, program)| *program)
            .chain(exit_flushes().map(|(_, program)| program))
            .collect(),
        maps: vec![FOLLOWED_MAP],
        globals: vec![
            global::NEWTASK_PID_OFFSET,
            global::NEWTASK_FLAGS_OFFSET,
            global::EXIT_GROUP_DEAD_OFFSET,
        ],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(Lifecycle {
        offsets: None,
        flows: opts.flows || opts.files,
        threads: opts.threads,
        user: opts.user_copies,
        cpu: opts.cpu.is_some(),
    })
}

/// Every counting layer's own exit program (see `zcprof_common::Counting::exit_flush`).
fn exit_flushes() -> impl Iterator<Item = (Layer, &'static str)> {
    LAYERS
        .iter()
        .filter_map(|spec| Some((spec.layer, spec.counting?.exit_flush?)))
}

/// How doctor and the headers name `layer`'s exit flush, e.g.
/// `sched:sched_process_exit (kernel-layer totals)`.
pub fn exit_flush_probe(layer: Layer) -> String {
    format!("sched:sched_process_exit ({layer}-layer totals)")
}

struct Lifecycle {
    /// The programs' field offsets, once read from tracefs.
    offsets: Option<Offsets>,
    /// `--flows`: the opt-in flows layer's exit flush is attached (and listed) only then.
    flows: bool,
    /// `--threads`: likewise the threads layer's.
    threads: bool,
    /// `--user-copies`: likewise the user layer's.
    user: bool,
    /// `--cpu`: likewise the cpu layer's.
    cpu: bool,
}

impl Lifecycle {
    /// The exit flushes of the layers this load counts with.
    fn exit_flushes(&self) -> impl Iterator<Item = (Layer, &'static str)> + '_ {
        exit_flushes().filter(|(layer, _)| match layer {
            Layer::Flows => self.flows,
            Layer::Threads => self.threads,
            Layer::User => self.user,
            Layer::Cpu => self.cpu,
            _ => true,
        })
    }
}

/// Field offsets the programs read: newtask `pid` and `clone_flags`, and exit `group_dead`
/// (0 when this kernel's record has none).
#[derive(Clone, Copy)]
struct Offsets {
    pid: u32,
    flags: u32,
    group_dead: u32,
}

impl LayerProbes for Lifecycle {
    fn globals(&mut self, host: &mut Host) -> Vec<(&'static str, u32)> {
        self.offsets = match host.tracefs.as_deref().map(offsets).transpose() {
            Ok(offsets) => offsets,
            Err(err) => {
                host.warnings
                    .push(format!("cannot read tracepoint layouts: {err:#}"));
                None
            }
        };
        let o = self.offsets.unwrap_or(Offsets {
            pid: 0,
            flags: 0,
            group_dead: 0,
        });
        vec![
            (global::NEWTASK_PID_OFFSET, o.pid),
            (global::NEWTASK_FLAGS_OFFSET, o.flags),
            (global::EXIT_GROUP_DEAD_OFFSET, o.group_dead),
        ]
    }

    fn attach(&mut self, ebpf: &mut Ebpf, _host: &mut Host) -> Vec<ProbeStatus> {
        let mut probes = Vec::new();
        if self.offsets.is_none() {
            let names = TRACEPOINTS
                .iter()
                .map(|(category, event, _)| format!("{category}:{event}"))
                .chain(
                    self.exit_flushes()
                        .map(|(layer, _)| exit_flush_probe(layer)),
                );
            for probe in names {
                probes.push(ProbeStatus::unavailable(
                    Layer::Lifecycle,
                    probe,
                    "tracefs is unavailable".into(),
                ));
            }
            return probes;
        }
        let targets = TRACEPOINTS
            .iter()
            .map(|&(category, event, name)| (format!("{category}:{event}"), category, event, name))
            // Each after `process_exit`: a counting layer's exit flush without it still
            // leaves the layer counting, and user space reads an exited process's entries
            // from the map instead (they are only not freed as early).
            .chain(self.exit_flushes().map(|(layer, name)| {
                (exit_flush_probe(layer), "sched", "sched_process_exit", name)
            }));
        for (probe, category, event, name) in targets {
            probes.push(match attach_tracepoint(ebpf, name, category, event) {
                Ok(()) => ProbeStatus::attached(Layer::Lifecycle, probe, Mechanism::Tracepoint),
                Err(err) => ProbeStatus::unavailable(Layer::Lifecycle, probe, format!("{err:#}")),
            });
        }
        probes
    }
}

fn offsets(root: &Path) -> anyhow::Result<Offsets> {
    let newtask = tracefs::fields(root, "task", "task_newtask")?;
    let pid = tracefs::offset_of(&newtask, "pid", 4)
        .ok_or_else(|| anyhow!("task:task_newtask has no 4-byte pid field"))?;
    let flags = tracefs::offset_of(&newtask, "clone_flags", 8)
        .ok_or_else(|| anyhow!("task:task_newtask has no 8-byte clone_flags field"))?;
    let exit = tracefs::fields(root, "sched", "sched_process_exit")?;
    let group_dead = tracefs::offset_of(&exit, "group_dead", 1).unwrap_or(0);
    Ok(Offsets {
        pid,
        flags,
        group_dead,
    })
}
