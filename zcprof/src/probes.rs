//! Loads zcprof's eBPF object and attaches what this kernel allows, deciding per probe at run
//! time. A probe that cannot attach is recorded with the kernel's reason and the rest keep
//! working; the caller shows the list (`ProbeStatus`) to the user, never hides it.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{BtfTracePoint, RawTracePoint, TracePoint},
};
use serde::Serialize;
use zcprof_common::{global, program, syscalls};

use crate::tracefs;

pub mod kernel;
pub use kernel::LAYER_KERNEL;

/// The eBPF object built by build.rs from `zcprof-ebpf`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/zcprof"));

/// How the syscall layer sees syscall exits (see `zcprof-ebpf/src/syscalls.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallProbe {
    /// One BTF-typed raw tracepoint (`tp_btf`) on `sys_exit`, filtered by syscall number:
    /// the cheapest per syscall (no helper call to read the number). Needs the kernel's
    /// BTF; falls back to `raw` without it.
    Btf,
    /// One raw tracepoint on `sys_exit`, filtered by syscall number.
    Raw,
    /// One `syscalls:sys_exit_*` tracepoint per counted syscall.
    Tracepoint,
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// BTF to load against; `None`: the running kernel's (/sys/kernel/btf/vmlinux).
    pub btf: Option<PathBuf>,
    pub syscall_probe: SyscallProbe,
}

/// The layer a probe feeds; every figure zcprof prints names one.
pub const LAYER_SYSCALL: &str = "syscall";
/// Process lifecycle (fork/exec/exit): attribution, not a layer of figures.
pub const LAYER_LIFECYCLE: &str = "lifecycle";

/// What became of one probe.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeStatus {
    pub layer: &'static str,
    /// What was probed, e.g. `syscalls:sys_exit_read` or `raw_tp:sys_exit`.
    pub probe: String,
    /// How it is attached (`raw_tracepoint`, `tracepoint`), or `None` if unavailable.
    pub via: Option<&'static str>,
    /// Why it is unavailable.
    pub reason: Option<String>,
}

impl ProbeStatus {
    fn attached(layer: &'static str, probe: String, via: &'static str) -> Self {
        ProbeStatus {
            layer,
            probe,
            via: Some(via),
            reason: None,
        }
    }

    fn unavailable(layer: &'static str, probe: String, reason: String) -> Self {
        // A verifier rejection carries the whole verifier log (thousands of lines): keep
        // the sentence that says what happened.
        let reason = match reason.split_once('\n') {
            Some((first, _)) => format!("{first} …"),
            None => reason,
        };
        ProbeStatus {
            layer,
            probe,
            via: None,
            reason: Some(reason),
        }
    }
}

/// The loaded object and what attached.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub probes: Vec<ProbeStatus>,
    /// Non-fatal problems the user must be told about (missing BTF, fallbacks).
    pub warnings: Vec<String>,
}

impl Loaded {
    /// One line per layer: how it is attached, or why it is not.
    pub fn layer_summary(&self) -> Vec<LayerSummary> {
        summarize(&self.probes)
    }
}

/// The state of one layer, for headers and JSON.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LayerSummary {
    pub layer: &'static str,
    /// `live`, `partial` or `unavailable`.
    pub state: &'static str,
    /// e.g. `raw_tracepoint sys_exit` or `tracepoint ×21`.
    pub via: String,
    pub attached: usize,
    pub unavailable: Vec<String>,
}

fn summarize(probes: &[ProbeStatus]) -> Vec<LayerSummary> {
    let mut out: Vec<LayerSummary> = Vec::new();
    for p in probes {
        let entry = match out.iter_mut().position(|l| l.layer == p.layer) {
            Some(i) => &mut out[i],
            None => {
                out.push(LayerSummary {
                    layer: p.layer,
                    state: "unavailable",
                    via: String::new(),
                    attached: 0,
                    unavailable: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        match p.via {
            Some(via) => {
                entry.attached += 1;
                if !entry.via.contains(via) {
                    if !entry.via.is_empty() {
                        entry.via.push_str(", ");
                    }
                    entry.via.push_str(via);
                }
            }
            None => entry.unavailable.push(p.probe.clone()),
        }
    }
    for l in &mut out {
        l.state = match (l.attached, l.unavailable.len()) {
            (0, _) => "unavailable",
            (_, 0) => "live",
            _ => "partial",
        };
    }
    out
}

/// Loads the object and attaches the syscall, lifecycle and kernel probes; fails when no
/// syscall probe attaches (the layer every figure starts from).
pub fn load(opts: &LoadOptions) -> anyhow::Result<Loaded> {
    let loaded = load_all(opts)?;
    if !loaded
        .probes
        .iter()
        .any(|p| p.layer == LAYER_SYSCALL && p.via.is_some())
    {
        bail!(
            "no syscall probe could attach on this kernel: {}",
            first_reason(&loaded.probes)
        );
    }
    Ok(loaded)
}

/// Loads the object and attaches whatever this kernel allows, failing only when the object
/// itself cannot be loaded (`zcprof doctor` reports what attached, whatever it is).
pub fn load_all(opts: &LoadOptions) -> anyhow::Result<Loaded> {
    let mut warnings = Vec::new();
    let btf = load_btf(opts.btf.as_ref(), &mut warnings)?;
    let tracefs = match tracefs::ensure_mounted() {
        Ok(root) => Some(root),
        Err(err) => {
            warnings.push(format!(
                "tracefs is unavailable ({err:#}): classic tracepoints (process lifecycle, the tracepoint syscall probe) cannot attach"
            ));
            None
        }
    };
    let offsets = tracefs.as_deref().map(lifecycle_offsets).transpose();
    let offsets = match offsets {
        Ok(offsets) => offsets,
        Err(err) => {
            warnings.push(format!("cannot read tracepoint layouts: {err:#}"));
            None
        }
    };

    let mut loader = EbpfLoader::new();
    loader.btf(btf.as_ref());
    let (pid_at, flags_at, group_dead_at) = offsets.unwrap_or((0, 0, 0));
    // 0 (not found) keeps the kernel layer from attaching that tracepoint.
    let skb_len_at = tracefs
        .as_deref()
        .and_then(|root| tracefs::fields(root, "skb", "skb_copy_datagram_iovec").ok())
        .and_then(|fields| tracefs::offset_of(&fields, "len", 4))
        .unwrap_or(0);
    loader
        .override_global(global::NEWTASK_PID_OFFSET, &pid_at, true)
        .override_global(global::NEWTASK_FLAGS_OFFSET, &flags_at, true)
        .override_global(global::EXIT_GROUP_DEAD_OFFSET, &group_dead_at, true)
        .override_global(
            zcprof_common::kernel::SKB_COPY_LEN_OFFSET,
            &skb_len_at,
            true,
        );
    let mut ebpf = loader
        .load(OBJECT)
        .context("loading zcprof's eBPF object")?;

    // Lifecycle first: once the syscall layer counts a process, its exit must be seen, or
    // its entries would outlive it (a process exiting while we attach would stay "live").
    let mut lifecycle = Vec::new();
    if offsets.is_some() {
        attach_lifecycle(&mut ebpf, &mut lifecycle);
        attach_kernel_flush(&mut ebpf, &mut lifecycle);
    } else {
        let names = LIFECYCLE
            .iter()
            .map(|(category, event, _)| format!("{category}:{event}"))
            .chain([KERNEL_FLUSH.to_string()]);
        for probe in names {
            lifecycle.push(ProbeStatus::unavailable(
                LAYER_LIFECYCLE,
                probe,
                "tracefs is unavailable".into(),
            ));
        }
    }
    let mut probes = Vec::new();
    attach_syscall_layer(
        &mut ebpf,
        opts.syscall_probe,
        btf.as_ref(),
        tracefs.as_deref(),
        &mut probes,
        &mut warnings,
    );
    // Reported syscall layer first: it is the one that produces figures.
    probes.append(&mut lifecycle);
    if !probes
        .iter()
        .any(|p| p.layer == LAYER_SYSCALL && p.via.is_some())
    {
        bail!(
            "no syscall probe could attach on this kernel: {}",
            first_reason(&probes)
        );
    }
    kernel::attach(
        &mut ebpf,
        btf.as_ref(),
        tracefs.as_deref(),
        skb_len_at != 0,
        &mut probes,
    );
    Ok(Loaded {
        ebpf,
        probes,
        warnings,
    })
}

fn first_reason(probes: &[ProbeStatus]) -> String {
    probes
        .iter()
        .find_map(|p| p.reason.as_ref().map(|r| format!("{}: {r}", p.probe)))
        .unwrap_or_else(|| "no reason given".into())
}

/// BTF from `path`, or the running kernel's. A path the user named must work; the kernel's
/// own may be missing (the syscall layer does not need it), which is only a warning.
fn load_btf(path: Option<&PathBuf>, warnings: &mut Vec<String>) -> anyhow::Result<Option<Btf>> {
    match path {
        Some(path) => {
            if !path.exists() {
                bail!("the BTF file {} does not exist", path.display());
            }
            let btf = Btf::parse_file(path, aya::Endianness::default())
                .map_err(|err| anyhow!("{} is not valid BTF: {err}", path.display()))?;
            Ok(Some(btf))
        }
        None => match Btf::from_sys_fs() {
            Ok(btf) => Ok(Some(btf)),
            Err(err) => {
                warnings.push(format!(
                    "this kernel exposes no BTF (/sys/kernel/btf/vmlinux: {err}); the syscall layer works without it"
                ));
                Ok(None)
            }
        },
    }
}

/// (category, event, program) of the lifecycle tracepoints.
const LIFECYCLE: [(&str, &str, &str); 3] = [
    ("task", "task_newtask", program::TASK_NEWTASK),
    ("sched", "sched_process_exec", program::PROCESS_EXEC),
    ("sched", "sched_process_exit", program::PROCESS_EXIT),
];

/// Field offsets the lifecycle programs read: newtask `pid` and `clone_flags`, and exit
/// `group_dead` (0 when this kernel's record has none).
fn lifecycle_offsets(root: &std::path::Path) -> anyhow::Result<(u32, u32, u32)> {
    let newtask = tracefs::fields(root, "task", "task_newtask")?;
    let pid = tracefs::offset_of(&newtask, "pid", 4)
        .ok_or_else(|| anyhow!("task:task_newtask has no 4-byte pid field"))?;
    let flags = tracefs::offset_of(&newtask, "clone_flags", 8)
        .ok_or_else(|| anyhow!("task:task_newtask has no 8-byte clone_flags field"))?;
    let exit = tracefs::fields(root, "sched", "sched_process_exit")?;
    let group_dead = tracefs::offset_of(&exit, "group_dead", 1).unwrap_or(0);
    Ok((pid, flags, group_dead))
}

fn attach_lifecycle(ebpf: &mut Ebpf, probes: &mut Vec<ProbeStatus>) {
    for (category, event, name) in LIFECYCLE {
        let probe = format!("{category}:{event}");
        let result = tracepoint(ebpf, name).and_then(|tp| {
            tp.attach(category, event)
                .map(drop)
                .map_err(|err| anyhow!(err).context("attach"))
        });
        probes.push(match result {
            Ok(()) => ProbeStatus::attached(LAYER_LIFECYCLE, probe, "tracepoint"),
            Err(err) => ProbeStatus::unavailable(LAYER_LIFECYCLE, probe, format!("{err:#}")),
        });
    }
}

/// How doctor and the headers name the kernel layer's exit flush.
pub const KERNEL_FLUSH: &str = "sched:sched_process_exit (kernel-layer totals)";

/// The kernel layer's exit flush (`process_exit_kernel`), after `process_exit`. Without it
/// the kernel layer still counts, and user space reads an exited process's entries from the
/// map instead (they are only not freed as early).
fn attach_kernel_flush(ebpf: &mut Ebpf, probes: &mut Vec<ProbeStatus>) {
    let result = tracepoint(ebpf, program::PROCESS_EXIT_KERNEL).and_then(|tp| {
        tp.attach("sched", "sched_process_exit")
            .map(drop)
            .map_err(|err| anyhow!(err).context("attach"))
    });
    let probe = KERNEL_FLUSH.to_string();
    probes.push(match result {
        Ok(()) => ProbeStatus::attached(LAYER_LIFECYCLE, probe, "tracepoint"),
        Err(err) => ProbeStatus::unavailable(LAYER_LIFECYCLE, probe, format!("{err:#}")),
    });
}

fn tracepoint<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut TracePoint> {
    let prog: &mut TracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} is missing from the object"))?
        .try_into()?;
    if prog.fd().is_err() {
        prog.load().with_context(|| format!("loading {name}"))?;
    }
    Ok(prog)
}

fn attach_syscall_layer(
    ebpf: &mut Ebpf,
    mode: SyscallProbe,
    btf: Option<&Btf>,
    tracefs: Option<&std::path::Path>,
    probes: &mut Vec<ProbeStatus>,
    warnings: &mut Vec<String>,
) {
    // Without BTF, load_btf has already said so; the raw tracepoint does the same job.
    if let (SyscallProbe::Btf, Some(btf)) = (mode, btf) {
        match attach_btf_raw(ebpf, btf) {
            Ok(()) => {
                probes.push(ProbeStatus::attached(
                    LAYER_SYSCALL,
                    "tp_btf:sys_exit".into(),
                    "tp_btf",
                ));
                return;
            }
            Err(err) => warnings.push(format!(
                "the BTF raw tracepoint on sys_exit cannot attach ({err:#}); falling back to the raw tracepoint"
            )),
        }
    }
    if mode != SyscallProbe::Tracepoint {
        match attach_raw(ebpf) {
            Ok(()) => {
                probes.push(ProbeStatus::attached(
                    LAYER_SYSCALL,
                    "raw_tp:sys_exit".into(),
                    "raw_tracepoint",
                ));
                return;
            }
            Err(err) => warnings.push(format!(
                "the raw sys_exit tracepoint cannot attach ({err:#}); falling back to one tracepoint per syscall"
            )),
        }
    }
    let Some(root) = tracefs else {
        all_syscall_tracepoints_unavailable(probes, "tracefs is unavailable");
        return;
    };
    if let Err(err) = check_syscall_layouts(root) {
        all_syscall_tracepoints_unavailable(probes, &format!("{err:#}"));
        return;
    }
    // Load each program once: a program the verifier rejects is rejected for every
    // syscall, and each attempt can cost seconds of verifier time.
    let loaded = [program::SYS_EXIT_TP, program::SYS_ENTER_MMSG_TP]
        .into_iter()
        .try_for_each(|name| tracepoint(ebpf, name).map(drop));
    if let Err(err) = loaded {
        all_syscall_tracepoints_unavailable(probes, &format!("{err:#}"));
        return;
    }
    for sc in &syscalls::SYSCALLS {
        let event = format!("sys_exit_{}", sc.event);
        let result = attach_tp(ebpf, program::SYS_EXIT_TP, root, &event).and_then(|()| {
            if sc.counts_messages {
                attach_tp(
                    ebpf,
                    program::SYS_ENTER_MMSG_TP,
                    root,
                    &format!("sys_enter_{}", sc.event),
                )
            } else {
                Ok(())
            }
        });
        let probe = format!("syscalls:{event}");
        probes.push(match result {
            Ok(()) => ProbeStatus::attached(LAYER_SYSCALL, probe, "tracepoint"),
            Err(err) => ProbeStatus::unavailable(LAYER_SYSCALL, probe, format!("{err:#}")),
        });
    }
}

/// Records every per-syscall tracepoint as unavailable for the same `reason`.
fn all_syscall_tracepoints_unavailable(probes: &mut Vec<ProbeStatus>, reason: &str) {
    for sc in &syscalls::SYSCALLS {
        probes.push(ProbeStatus::unavailable(
            LAYER_SYSCALL,
            format!("syscalls:sys_exit_{}", sc.event),
            reason.to_string(),
        ));
    }
}

fn attach_btf_raw(ebpf: &mut Ebpf, btf: &Btf) -> anyhow::Result<()> {
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(program::SYS_EXIT_BTF)
        .ok_or_else(|| {
            anyhow!(
                "program {} is missing from the object",
                program::SYS_EXIT_BTF
            )
        })?
        .try_into()?;
    prog.load("sys_exit", btf).context("loading")?;
    prog.attach().context("attaching")?;
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let prog: &mut RawTracePoint = ebpf
        .program_mut(program::SYS_EXIT_RAW)
        .ok_or_else(|| {
            anyhow!(
                "program {} is missing from the object",
                program::SYS_EXIT_RAW
            )
        })?
        .try_into()?;
    prog.load().context("loading")?;
    prog.attach("sys_exit").context("attaching")?;
    Ok(())
}

fn attach_tp(
    ebpf: &mut Ebpf,
    name: &str,
    root: &std::path::Path,
    event: &str,
) -> anyhow::Result<()> {
    if !tracefs::exists(root, "syscalls", event) {
        bail!("this kernel has no tracepoint syscalls:{event}");
    }
    tracepoint(ebpf, name)?
        .attach("syscalls", event)
        .map(drop)
        .map_err(|err| anyhow!(err).context("attach"))
}

/// The tracepoint programs read `__syscall_nr`/`ret` and the mmsg pointer at fixed offsets;
/// refuse to attach them to a kernel whose records differ.
fn check_syscall_layouts(root: &std::path::Path) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_live_partial_or_unavailable() {
        let probes = vec![
            ProbeStatus::attached(LAYER_SYSCALL, "a".into(), "tracepoint"),
            ProbeStatus::unavailable(LAYER_SYSCALL, "b".into(), "gone".into()),
            ProbeStatus::attached(LAYER_LIFECYCLE, "c".into(), "tracepoint"),
        ];
        let s = summarize(&probes);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].state, "partial");
        assert_eq!(s[0].unavailable, vec!["b".to_string()]);
        assert_eq!(s[1].state, "live");
        assert_eq!(s[1].via, "tracepoint");
        let none = summarize(&[ProbeStatus::unavailable(
            LAYER_SYSCALL,
            "x".into(),
            "r".into(),
        )]);
        assert_eq!(none[0].state, "unavailable");
        assert_eq!(
            first_reason(&[ProbeStatus::unavailable(
                LAYER_SYSCALL,
                "x".into(),
                "r".into()
            )]),
            "x: r"
        );
    }
}
