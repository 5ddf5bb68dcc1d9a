//! Attaching the kernel layer (`zcprof_common::kernel::FUNCTIONS`), deciding per function at
//! run time: fentry/fexit first, kprobe/kretprobe next, a tracepoint equivalent where one
//! exists, else "unavailable" with every reason the kernel gave.
//!
//! Startup stays fast because the expensive attempts are skipped when the answer is already
//! known: a kernel that refuses one fentry load (EPERM before the verifier runs) refuses them
//! all; without the kprobe PMU no kprobe can attach; a function missing from the BTF cannot be
//! an fentry target; a function the ftrace list does not name is notrace. Nothing here fails
//! the whole load: each function ends as one `ProbeStatus`. The layer's exit program
//! (`process_exit_kernel`) is attached by the lifecycle layer, right after `process_exit`.

use std::{
    collections::HashSet,
    fs, io,
    path::{Path, PathBuf},
};

use aya::{
    Btf, BtfError, Ebpf,
    programs::{FEntry, FExit, KProbe, ProgramError, TracePoint},
};
use zcprof_common::kernel::{
    COUNTING, FUNCTIONS, KernelFunction, Mode, SKB_COPY_LEN_OFFSET, Tracepoint,
};

use super::{
    Host, Layer, LayerProbes, LayerSpec, LoadOptions, Mechanism, Names, ProbeStatus, tracefs_offset,
};
use crate::{host::kallsyms, tracefs};

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Kernel,
    counting: Some(COUNTING),
    required: false,
    names,
    probes,
};

/// Where the kprobe PMU announces itself; absent when the kernel has no CONFIG_KPROBES.
const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe/type";

fn names() -> Names {
    let programs = FUNCTIONS
        .iter()
        .flat_map(|f| {
            [
                Some(f.fentry),
                f.kprobe,
                f.kretprobe,
                f.tracepoint.map(|t| t.program),
            ]
        })
        .flatten()
        .collect();
    Names {
        programs,
        maps: Vec::new(),
        globals: vec![SKB_COPY_LEN_OFFSET],
    }
}

fn probes(_: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(KernelLayer {
        skb_len_known: false,
    })
}

struct KernelLayer {
    /// `skb:skb_copy_datagram_iovec`'s `len` offset was found in tracefs.
    skb_len_known: bool,
}

impl LayerProbes for KernelLayer {
    fn globals(&mut self, host: &mut Host) -> Vec<(&'static str, u32)> {
        // 0 (not found) keeps the layer from attaching that tracepoint.
        let at = tracefs_offset(
            host.tracefs.as_deref(),
            "skb",
            "skb_copy_datagram_iovec",
            "len",
            4,
        )
        .unwrap_or(0);
        self.skb_len_known = at != 0;
        vec![(SKB_COPY_LEN_OFFSET, at)]
    }

    fn attach(&mut self, ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus> {
        let statuses = attach(
            ebpf,
            host.btf.as_ref(),
            host.tracefs.as_deref(),
            self.skb_len_known,
        );
        host.kernel_via = statuses.iter().find_map(ProbeStatus::via);
        statuses
    }
}

/// What this kernel allows, learnt once and shared by every function.
struct Allowed<'a> {
    btf: Option<&'a Btf>,
    tracefs: Option<&'a Path>,
    /// The tracepoint programs' field offsets were found in tracefs.
    offsets_known: bool,
    /// `Some(reason)` once fentry/fexit is known not to load on this kernel at all.
    fentry_refused: Option<String>,
    /// `Err(reason)` when no kprobe can attach on this kernel.
    kprobes: Result<(), String>,
    /// Functions ftrace can trace (`available_filter_functions`), when readable: a function
    /// absent from it is notrace, and neither fentry nor kprobe can attach.
    traceable: Option<HashSet<String>>,
    /// Functions in /proc/kallsyms, read only when BTF cannot tell whether one exists.
    kallsyms: Option<HashSet<String>>,
}

/// Attaches every kernel-layer function: one status per function.
fn attach(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    tracefs: Option<&Path>,
    offsets_known: bool,
) -> Vec<ProbeStatus> {
    let mut host = Allowed {
        btf,
        tracefs,
        offsets_known,
        fentry_refused: btf
            .is_none()
            .then(|| "no kernel BTF (fentry needs /sys/kernel/btf/vmlinux)".to_string()),
        kprobes: kprobes_supported(),
        traceable: None,
        kallsyms: None,
    };
    // Reading the ftrace list costs a few milliseconds; only worth it when something could
    // attach by function.
    if host.fentry_refused.is_none() || host.kprobes.is_ok() {
        host.traceable = tracefs.and_then(|root| traceable_functions(root).ok());
    }
    FUNCTIONS
        .iter()
        .map(|f| attach_one(ebpf, &mut host, f))
        .collect()
}

fn attach_one(ebpf: &mut Ebpf, host: &mut Allowed, f: &KernelFunction) -> ProbeStatus {
    let name = f.function.to_string();
    let mut reasons: Vec<String> = Vec::new();
    let in_btf = host.btf.map(|btf| {
        btf.id_by_type_name_kind(f.function, aya_obj::btf::BtfKind::Func)
            .is_ok()
    });
    let exists = in_btf == Some(true) || host.kallsyms().contains(f.function);
    let notrace = host
        .traceable
        .as_ref()
        .is_some_and(|t| !t.contains(f.function));
    if !exists {
        reasons.push("not in this kernel (neither in its BTF nor in /proc/kallsyms)".into());
    } else if notrace {
        reasons.push(format!(
            "notrace: {} exists but is not in available_filter_functions, so neither fentry nor kprobe can attach",
            f.function
        ));
    } else {
        match try_fentry(ebpf, host, f, in_btf == Some(true)) {
            Ok(via) => return ProbeStatus::attached(Layer::Kernel, name, via),
            Err(reason) => reasons.push(reason),
        }
        match try_kprobe(ebpf, host, f) {
            Ok(via) => return ProbeStatus::attached(Layer::Kernel, name, via),
            Err(reason) => reasons.push(reason),
        }
    }
    if let Some(tp) = f.tracepoint {
        match try_tracepoint(ebpf, host, tp) {
            Ok(()) => return ProbeStatus::attached(Layer::Kernel, name, Mechanism::Tracepoint),
            Err(reason) => reasons.push(reason),
        }
    }
    ProbeStatus::unavailable(Layer::Kernel, name, reasons.join("; "))
}

impl Allowed<'_> {
    fn kallsyms(&mut self) -> &HashSet<String> {
        self.kallsyms.get_or_insert_with(|| {
            // Sorted for a binary search per line: hashing 120,000 names cost more.
            let mut wanted: Vec<&str> = FUNCTIONS.iter().map(|f| f.function).collect();
            wanted.sort_unstable();
            kallsyms::symbols(&kallsyms::read())
                .filter(|s| wanted.binary_search(&s.name).is_ok())
                .map(|s| s.name.to_string())
                .collect()
        })
    }
}

/// fentry or fexit, per the table; `Ok(via)` once attached.
fn try_fentry(
    ebpf: &mut Ebpf,
    host: &mut Allowed,
    f: &KernelFunction,
    in_btf: bool,
) -> Result<Mechanism, String> {
    let via = match f.fentry_mode {
        Mode::Entry => Mechanism::Fentry,
        Mode::Exit => Mechanism::Fexit,
    };
    let label = via.name();
    if let Some(reason) = &host.fentry_refused {
        return Err(format!("{label}: {reason}"));
    }
    let Some(btf) = host.btf else {
        return Err(format!("{label}: no kernel BTF"));
    };
    if !in_btf {
        return Err(format!(
            "{label}: {} is not in the kernel's BTF",
            f.function
        ));
    }
    let result = match f.fentry_mode {
        Mode::Entry => program::<FEntry>(ebpf, f.fentry).and_then(|p| {
            p.load(f.function, btf).map_err(Failure::Load)?;
            p.attach().map(drop).map_err(|e| {
                let _ = p.unload();
                Failure::Attach(e)
            })
        }),
        Mode::Exit => program::<FExit>(ebpf, f.fentry).and_then(|p| {
            p.load(f.function, btf).map_err(Failure::Load)?;
            p.attach().map(drop).map_err(|e| {
                let _ = p.unload();
                Failure::Attach(e)
            })
        }),
    };
    match result {
        Ok(()) => Ok(via),
        Err(failure) => {
            let reason = failure.describe();
            if failure.refused() {
                // EPERM at load means the program type is refused (this machine's kernel),
                // not that this one function is: every later attempt would fail the same way.
                host.fentry_refused = Some(reason.clone());
            }
            Err(format!("{label}: {reason}"))
        }
    }
}

fn try_kprobe(ebpf: &mut Ebpf, host: &Allowed, f: &KernelFunction) -> Result<Mechanism, String> {
    if let Err(reason) = &host.kprobes {
        return Err(format!("kprobe: {reason}"));
    }
    let mut attached = Vec::new();
    let mut via = Mechanism::Kprobe;
    for (name, is_ret) in [(f.kprobe, false), (f.kretprobe, true)] {
        let Some(name) = name else { continue };
        let result = program::<KProbe>(ebpf, name).and_then(|p| {
            if p.fd().is_err() {
                p.load().map_err(Failure::Load)?;
            }
            p.attach(f.function, 0).map_err(Failure::Attach)
        });
        match result {
            Ok(link) => attached.push((name, link)),
            Err(failure) => {
                // A kprobe without its kretprobe partner would only fill the stash map.
                for (name, link) in attached {
                    if let Ok(p) = program::<KProbe>(ebpf, name) {
                        let _ = p.detach(link);
                    }
                }
                let label = if is_ret { "kretprobe" } else { "kprobe" };
                return Err(format!("{label}: {}", failure.describe()));
            }
        }
        if is_ret {
            via = if f.kprobe.is_some() {
                Mechanism::KprobeAndKretprobe
            } else {
                Mechanism::Kretprobe
            };
        }
    }
    Ok(via)
}

fn try_tracepoint(ebpf: &mut Ebpf, host: &Allowed, tp: Tracepoint) -> Result<(), String> {
    let label = format!("tracepoint {}:{}", tp.category, tp.event);
    let Some(root) = host.tracefs else {
        return Err(format!("{label}: tracefs is unavailable"));
    };
    if !tracefs::exists(root, tp.category, tp.event) {
        return Err(format!("{label}: not in this kernel"));
    }
    if !host.offsets_known {
        return Err(format!("{label}: its record has no 4-byte len field"));
    }
    program::<TracePoint>(ebpf, tp.program)
        .and_then(|p| {
            if p.fd().is_err() {
                p.load().map_err(Failure::Load)?;
            }
            p.attach(tp.category, tp.event)
                .map(drop)
                .map_err(Failure::Attach)
        })
        .map_err(|failure| format!("{label}: {}", failure.describe()))
}

/// Why a program did not end up attached.
enum Failure {
    Missing(String),
    Load(ProgramError),
    Attach(ProgramError),
}

impl Failure {
    /// The load was refused with EPERM: the program type is not allowed here.
    fn refused(&self) -> bool {
        matches!(self, Failure::Load(ProgramError::LoadError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EPERM))
    }

    fn describe(&self) -> String {
        match self {
            Failure::Missing(what) => what.clone(),
            Failure::Load(ProgramError::LoadError { io_error, .. }) => {
                format!("load refused: {}", errno(io_error))
            }
            Failure::Load(err) => format!("load failed: {}", chain(err)),
            Failure::Attach(err) => format!("attach failed: {}", chain(err)),
        }
    }
}

/// `EPERM (Operation not permitted)` from an io::Error.
fn errno(err: &io::Error) -> String {
    let name = match err.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        _ => return err.to_string(),
    };
    format!("{name} ({})", strip_os_error(err))
}

fn strip_os_error(err: &io::Error) -> String {
    let text = err.to_string();
    match text.split_once(" (os error") {
        Some((head, _)) => head.to_string(),
        None => text,
    }
}

/// An error and its sources on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, Failure>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| Failure::Missing(format!("program {name} is missing from the object")))?;
    prog.try_into().map_err(Failure::Load)
}

/// Whether kprobes can attach here: the kprobe PMU exists (aya attaches through it).
fn kprobes_supported() -> Result<(), String> {
    if Path::new(KPROBE_PMU).exists() {
        Ok(())
    } else {
        Err(format!(
            "kprobes not configured (no {KPROBE_PMU}: the kernel lacks CONFIG_KPROBES)"
        ))
    }
}

/// The functions ftrace can attach to, from `available_filter_functions` (entries may carry
/// a module suffix, ` [ext4]`).
fn traceable_functions(root: &Path) -> io::Result<HashSet<String>> {
    let text = fs::read_to_string(root.join("available_filter_functions"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// What doctor says about BTF.
pub fn btf_state(path: Option<&PathBuf>) -> (PathBuf, Result<(), String>) {
    let path = path
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/sys/kernel/btf/vmlinux"));
    if !path.exists() {
        return (path, Err("missing".into()));
    }
    let parsed: Result<Btf, BtfError> = Btf::parse_file(&path, aya::Endianness::default());
    (
        path,
        parsed.map(drop).map_err(|e| format!("not valid BTF: {e}")),
    )
}

/// The kprobe verdict, for doctor.
pub fn kprobe_state() -> Result<(), String> {
    kprobes_supported()
}
