//! Attaching the syscall layer (`zcprof-ebpf/src/syscalls.rs`): one BTF-typed raw tracepoint
//! on `sys_exit` when the kernel has BTF, else one plain raw tracepoint, else one
//! `syscalls:sys_exit_*` tracepoint per counted syscall, or the mode the user chose with
//! `--syscall-probe`. Each fallback is a warning that says why; the layer is required, so the
//! loader stops when none of them attaches.

use std::path::Path;

use anyhow::{Context as _, bail};
use aya::{
    Btf, Ebpf,
    programs::{BtfTracePoint, RawTracePoint},
};
use serde::Serialize;
use zcprof_common::syscalls::{self, COUNTING, global, program};

use super::{
    Host, Layer, LayerProbes, LayerSpec, LoadOptions, Mechanism, Names, ProbeStatus,
    attach_tracepoint,
    btf_layout::{self, Member},
    tracepoint,
};
use crate::tracefs;

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Syscall,
    counting: Some(COUNTING),
    required: true,
    names,
    probes,
};

/// How the syscall layer sees syscall exits (see `zcprof-ebpf/src/syscalls.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallProbe {
    /// One BTF-typed raw tracepoint (`tp_btf`) on `sys_exit`, filtered by syscall number:
    /// the cheapest per syscall (no helper call to read the number). Needs the kernel's
    /// BTF; falls back to `raw` without it.
    #[default]
    Btf,
    /// One raw tracepoint on `sys_exit`, filtered by syscall number.
    Raw,
    /// One `syscalls:sys_exit_*` tracepoint per counted syscall.
    Tracepoint,
}

fn names() -> Names {
    Names {
        programs: vec![
            program::SYS_EXIT_BTF,
            program::SYS_EXIT_RAW,
            program::SYS_EXIT_TP,
            program::SYS_ENTER_MMSG_TP,
        ],
        maps: Vec::new(),
        globals: MEMBERS.iter().map(|(g, ..)| *g).collect(),
    }
}

/// What the exit programs read to tell a process's only thread, whose counts they add
/// without atomics (`zcprof-ebpf/src/syscalls.rs`, `alone`).
const MEMBERS: [Member; 2] = [
    (global::TASK_SIGNAL, "task_struct", &["signal"], 8),
    (
        global::SIGNAL_NR_THREADS,
        "signal_struct",
        &["nr_threads"],
        4,
    ),
];

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(Syscall {
        mode: opts.syscall_probe,
        offsets: Vec::new(),
    })
}

struct Syscall {
    mode: SyscallProbe,
    /// [`MEMBERS`]' offsets; none when BTF lacks one, and then every count is atomic, which
    /// costs a few ns per syscall and changes no figure.
    offsets: Vec<(&'static str, u32)>,
}

impl LayerProbes for Syscall {
    fn prepare(&mut self, btf: &mut btf_layout::Shared) {
        self.offsets = btf
            .get()
            .and_then(|btf| btf_layout::offsets(btf, &MEMBERS))
            .unwrap_or_default();
    }

    fn globals(&mut self, _host: &mut Host) -> Vec<(&'static str, u32)> {
        self.offsets.clone()
    }

    fn attach(&mut self, ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus> {
        // Cheapest first; each fallback is a warning that says why.
        let attempts = [
            (
                Mechanism::TpBtf,
                "tp_btf:sys_exit",
                "the BTF raw tracepoint on sys_exit",
                "the raw tracepoint",
            ),
            (
                Mechanism::RawTracepoint,
                "raw_tp:sys_exit",
                "the raw sys_exit tracepoint",
                "one tracepoint per syscall",
            ),
        ];
        for (via, probe, what, next) in attempts {
            let result = match (via, self.mode, host.btf.as_ref()) {
                (Mechanism::TpBtf, SyscallProbe::Btf, Some(btf)) => attach_btf_raw(ebpf, btf),
                // Without BTF, the loader has already said so; the raw tracepoint does the
                // same job.
                (Mechanism::RawTracepoint, SyscallProbe::Btf | SyscallProbe::Raw, _) => {
                    attach_raw(ebpf)
                }
                _ => continue,
            };
            match result {
                Ok(()) => {
                    host.syscall_via = Some(via);
                    return vec![ProbeStatus::attached(Layer::Syscall, probe.into(), via)];
                }
                Err(err) => host.warnings.push(format!(
                    "{what} cannot attach ({err:#}); falling back to {next}"
                )),
            }
        }
        let Some(root) = host.tracefs.as_deref() else {
            return all_tracepoints_unavailable("tracefs is unavailable");
        };
        let statuses = attach_tracepoints(ebpf, root);
        host.syscall_via = statuses.iter().find_map(ProbeStatus::via);
        statuses
    }
}

/// One `syscalls:sys_exit_*` tracepoint per counted syscall (and the `sys_enter_*` of
/// recvmmsg/sendmmsg, whose message vector the exit needs).
fn attach_tracepoints(ebpf: &mut Ebpf, root: &Path) -> Vec<ProbeStatus> {
    if let Err(err) = check_layouts(root) {
        return all_tracepoints_unavailable(&format!("{err:#}"));
    }
    // Load each program once, before any attach (see `probes::tracepoint`).
    let loaded = [program::SYS_EXIT_TP, program::SYS_ENTER_MMSG_TP]
        .into_iter()
        .try_for_each(|name| tracepoint(ebpf, name).map(drop));
    if let Err(err) = loaded {
        return all_tracepoints_unavailable(&format!("{err:#}"));
    }
    let attach = |ebpf: &mut Ebpf, name: &str, event: &str| {
        if !tracefs::exists(root, "syscalls", event) {
            bail!("this kernel has no tracepoint syscalls:{event}");
        }
        attach_tracepoint(ebpf, name, "syscalls", event)
    };
    syscalls::SYSCALLS
        .iter()
        .filter(|sc| sc.is_syscall())
        .map(|sc| {
            let event = format!("sys_exit_{}", sc.event);
            let result = attach(ebpf, program::SYS_EXIT_TP, &event).and_then(|()| {
                if sc.counts_messages {
                    let enter = format!("sys_enter_{}", sc.event);
                    attach(ebpf, program::SYS_ENTER_MMSG_TP, &enter)
                } else {
                    Ok(())
                }
            });
            let probe = format!("syscalls:{event}");
            match result {
                Ok(()) => ProbeStatus::attached(Layer::Syscall, probe, Mechanism::Tracepoint),
                Err(err) => ProbeStatus::unavailable(Layer::Syscall, probe, format!("{err:#}")),
            }
        })
        .collect()
}

/// Every per-syscall tracepoint, unavailable for the same `reason`.
fn all_tracepoints_unavailable(reason: &str) -> Vec<ProbeStatus> {
    syscalls::SYSCALLS
        .iter()
        .filter(|sc| sc.is_syscall())
        .map(|sc| {
            ProbeStatus::unavailable(
                Layer::Syscall,
                format!("syscalls:sys_exit_{}", sc.event),
                reason.to_string(),
            )
        })
        .collect()
}

fn attach_btf_raw(ebpf: &mut Ebpf, btf: &Btf) -> anyhow::Result<()> {
    let prog: &mut BtfTracePoint = super::program(ebpf, program::SYS_EXIT_BTF)?;
    prog.load("sys_exit", btf).context("loading")?;
    prog.attach().context("attaching")?;
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let prog: &mut RawTracePoint = super::program(ebpf, program::SYS_EXIT_RAW)?;
    prog.load().context("loading")?;
    prog.attach("sys_exit").context("attaching")?;
    Ok(())
}

/// The tracepoint programs read `__syscall_nr`/`ret` and the mmsg pointer at fixed offsets;
/// refuse to attach them to a kernel whose records differ.
fn check_layouts(root: &Path) -> anyhow::Result<()> {
    let exit = tracefs::fields(root, "syscalls", "sys_exit_read")?;
    if tracefs::offset_of(&exit, "__syscall_nr", 4) != Some(8)
        || tracefs::offset_of(&exit, "ret", 8) != Some(16)
    {
        bail!("syscalls:sys_exit_* records have an unexpected layout on this kernel");
    }
    let enter = tracefs::fields(root, "syscalls", "sys_enter_recvmmsg")?;
    if tracefs::offset_of(&enter, "mmsg", 8) != Some(24) {
        bail!("syscalls:sys_enter_recvmmsg records have an unexpected layout on this kernel");
    }
    Ok(())
}
