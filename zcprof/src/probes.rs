//! The loader: loads zcprof's eBPF object and attaches what this kernel allows, layer by
//! layer from the table of layers ([`LAYERS`]), deciding per probe at run time. A probe that
//! cannot attach is recorded with the kernel's reason ([`ProbeStatus`]) and the rest keep
//! working; the caller shows the list to the user, never hides it. zcprof stops only when
//! the object cannot load or a required layer (the syscall layer) attaches nothing.
//!
//! # What a layer provides
//! A layer is one module on every side and one line in [`LAYERS`]:
//! - `zcprof-common/src/LAYER.rs`: the names both sides use (programs, maps, globals) and,
//!   for a layer that counts, its table of *slots* (what `Key::slot` means: a syscall, a
//!   kernel counter, an io_uring opcode, a copy routine…) and its [`Counting`]: its id in
//!   `zcprof_common::layer`, its `Key -> Counts` map, how many slots, and its exit program.
//! - `zcprof-ebpf/src/LAYER.rs`: its programs; for a counting layer its map, updated with
//!   `maps::count`, and an exit program made with `lifecycle::exit_flush!` and
//!   `lifecycle::flush_ended` that moves an exiting process's entries into `FINAL` records
//!   (so its counts survive the exit and a reused PID starts from zero). Anything kept from a
//!   call's entry to its exit (arguments per thread, a request's process) goes through
//!   `maps::stash`, which counts a full map as a lost event.
//! - `zcprof/src/probes/LAYER.rs`: its [`LayerSpec`] (`LAYER`) and its [`LayerProbes`]: the
//!   globals its programs read, learned from this host before the object loads (tracefs
//!   field offsets), and `attach`, which tries its mechanisms cheapest first and returns one
//!   [`ProbeStatus`] per probe, never an error. `names` lists every program, map and global
//!   it asks the object for; a unit test finds each in the embedded object.
//! - a variant of [`Layer`] (`probes/status.rs`), the name every figure carries.
//!
//! The rest follows from the table without code per layer: the collector reads and forgets
//! every counting layer's map ([`counting_layers`]), the decoder checks `FINAL` records
//! against the layer's `Counting`, the model attributes entries, leftovers of vanished
//! processes and final counts per process instance, and the layer lines, doctor and every
//! report list the layer's probes and state. What a layer writes itself is what its figures
//! mean: a `Totals<ITS_SLOTS>` field in `model::Counters` and the views in `report/` and
//! `ui/` that show it.
//!
//! The layers planned next fit this shape: io_uring (tracepoints `io_uring_submit_req` /
//! `io_uring_complete`; slots = opcodes; the request-to-process join map is a stash),
//! mmap'd file pages (`filemap:*` tracepoints; per process, bytes = pages mapped), user-space
//! copies (uprobes on the resolved memcpy/memmove; slots = routines), CPU samples (a
//! `perf_event` cpu-clock program; calls = samples, slots = where they landed). Slots are a
//! dense array per process, so a table stays small (tens): the syscall layer's coming
//! dimensions either multiply its slots when they have few values (descriptor kind), get a
//! small counting map of their own that only the rare path touches (errno per failed call),
//! or are attributes of the process carried by lifecycle records (cgroup); a per-thread
//! breakdown is a layer keyed by thread id whose process the lifecycle records name.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use aya::{Btf, Ebpf, EbpfLoader, programs::TracePoint};
use zcprof_common::Counting;

use crate::tracefs;

mod btf_layout;
pub mod cpu;
pub mod flows;
pub mod io_uring;
pub mod kernel;
pub mod lifecycle;
pub mod mapped;
pub mod stacks;
pub mod status;
pub mod syscall;
pub mod threads;
pub mod user;

pub use status::{
    Attachment, Layer, LayerSummary, Mechanism, ProbeStatus, State, copy_source, summarize,
};
pub use syscall::SyscallProbe;

/// The eBPF object built by build.rs from `zcprof-ebpf`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/zcprof"));

/// The table of layers, in the order they attach: lifecycle first (once the syscall layer
/// counts a process, its exit must be seen, or its entries would outlive it), then the
/// syscall layer every figure starts from, then the best-effort kernel, io_uring and mapped
/// layers (the stacks layer after the kernel layer, whose probes it samples at with
/// `--kernel-stacks`). Statuses are reported in [`Layer`]'s order instead (syscall first).
pub const LAYERS: [LayerSpec; 10] = [
    lifecycle::LAYER,
    syscall::LAYER,
    flows::LAYER,
    threads::LAYER,
    kernel::LAYER,
    stacks::LAYER,
    io_uring::LAYER,
    mapped::LAYER,
    user::LAYER,
    cpu::LAYER,
];

/// One line of [`LAYERS`]: what the loader, the collector and the model need to know about
/// a layer.
pub struct LayerSpec {
    pub layer: Layer,
    /// What it counts per process in a map; `None` for a layer of attribution only.
    pub counting: Option<Counting>,
    /// zcprof stops when none of its probes attach (every figure starts from the syscall
    /// layer).
    pub required: bool,
    /// Every program, map and global it asks the object for by name (its counting map is
    /// in `counting`).
    pub names: fn() -> Names,
    /// Its probes for one load.
    pub probes: fn(&LoadOptions) -> Box<dyn LayerProbes>,
}

/// Names a layer asks the eBPF object for.
#[derive(Debug, Default)]
pub struct Names {
    pub programs: Vec<&'static str>,
    pub maps: Vec<&'static str>,
    pub globals: Vec<&'static str>,
}

/// One layer's probes during one load.
pub trait LayerProbes {
    /// Runs before the loader parses the kernel's BTF for aya: a layer that reads BTF with
    /// a parser of its own (`btf_layout`, parsed once for every layer) does it here; the
    /// parse is dropped before aya's, so the two are never in memory at once (they would add
    /// up in the daemon's peak RSS).
    fn prepare(&mut self, _btf: &mut btf_layout::Shared) {}

    /// The globals its programs read, with their values for this host; set before the
    /// object loads. A fact it cannot learn is a warning, and its probes that need it are
    /// reported unavailable by `attach`.
    fn globals(&mut self, _host: &mut Host) -> Vec<(&'static str, u32)> {
        Vec::new()
    }

    /// Attaches its programs: one status per probe, attached or with the reason it is not.
    fn attach(&mut self, ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus>;
}

/// What the loader learnt about this host, shared by every layer.
pub struct Host {
    /// The kernel's BTF (or the user's `--btf`), if any.
    pub btf: Option<Btf>,
    /// Where tracefs is mounted, if it could be.
    pub tracefs: Option<PathBuf>,
    /// Non-fatal problems the user must be told about (missing BTF, fallbacks).
    pub warnings: Vec<String>,
    /// How the syscall layer's exit program attached, once it has (the flows layer counts
    /// from it).
    pub syscall_via: Option<Mechanism>,
    /// How the kernel layer's first attached probe attached, once it has (the stacks layer
    /// samples there with `--kernel-stacks`).
    pub kernel_via: Option<Mechanism>,
}

/// The layer a `FINAL` record's `layer` id names, with what it counts.
pub fn counting_layer(id: u32) -> Option<(Layer, Counting)> {
    counting_layers().find(|(_, c)| c.layer == id)
}

/// Every layer that counts per process, with what it counts, in table order.
pub fn counting_layers() -> impl Iterator<Item = (Layer, Counting)> {
    LAYERS
        .iter()
        .filter_map(|spec| spec.counting.map(|c| (spec.layer, c)))
}

/// The line of [`LAYERS`] for `layer`.
pub fn spec(layer: Layer) -> Option<&'static LayerSpec> {
    LAYERS.iter().find(|spec| spec.layer == layer)
}

/// What to load; the default is what zcprof loads without options (the opt-in layers off).
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// BTF to load against; `None`: the running kernel's (/sys/kernel/btf/vmlinux).
    pub btf: Option<PathBuf>,
    pub syscall_probe: SyscallProbe,
    /// Layers the user turned off (`--disable-layer`): reported unavailable, never tried.
    pub disabled: Vec<Layer>,
    /// `--flows`: count the flows layer (descriptor kinds).
    pub flows: bool,
    /// `--threads`: count the threads layer (the syscall layer per thread).
    pub threads: bool,
    /// `--stacks`: sample user stacks every this many bytes of a `(process, syscall)`
    /// (`--stack-period`); `None`: the stacks layer is off.
    pub stacks: Option<u32>,
    /// With `--stacks` or `--user-copies`: count only the processes the kernel follows
    /// (`FOLLOWED_MAP`): the command reports no others.
    pub stacks_followed: bool,
    /// With `--stacks`: `--kernel-stacks`, the kernel layer's probes sample too, with the
    /// kernel stack at the copy.
    pub kernel_stacks: bool,
    /// `run --files`: count per `(process, file)` too (`zcprof_common::files`; turns the
    /// flows layer on).
    pub files: bool,
    /// `--user-copies`: count the user layer (uprobes on the copy routines).
    pub user_copies: bool,
    /// With `--user-copies`: the binaries besides this host's libc to probe from the start
    /// (the program of `run -- CMD` / `record -- CMD`, the executables of `record --pid`);
    /// more are probed as followed processes exec them.
    pub user_binaries: Vec<PathBuf>,
    /// `--probe-stats` (`top`, `run`, `serve`): turn the kernel's BPF run-time statistics
    /// on while the probes are attached, to report their own cost ([`crate::probe_stats`]).
    pub probe_stats: bool,
    /// `--cpu`: sample every CPU at this frequency (`--cpu-frequency`, Hz) for the cpu
    /// layer; `None`: the layer is off.
    pub cpu: Option<u64>,
}

/// The loaded object and what attached.
pub struct Loaded {
    pub ebpf: Ebpf,
    /// One status per probe, in [`Layer`] order.
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

/// Loads the object and attaches every layer's probes; fails when the object cannot load or
/// a required layer attaches nothing (`zcprof doctor` reports that failure as it is).
pub fn load(opts: &LoadOptions) -> anyhow::Result<Loaded> {
    let mut layers: Vec<(&LayerSpec, Box<dyn LayerProbes>)> = LAYERS
        .iter()
        .map(|spec| (spec, (spec.probes)(opts)))
        .collect();
    let mut layout_btf = btf_layout::Shared::new(opts.btf.as_deref());
    for (_, probes) in &mut layers {
        probes.prepare(&mut layout_btf);
    }
    drop(layout_btf);
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
    let mut host = Host {
        btf,
        tracefs,
        warnings,
        syscall_via: None,
        kernel_via: None,
    };
    let globals: Vec<(&str, u32)> = layers
        .iter_mut()
        .flat_map(|(_, probes)| probes.globals(&mut host))
        .collect();
    let mut ebpf = {
        let mut loader = EbpfLoader::new();
        loader.btf(host.btf.as_ref());
        for (name, value) in &globals {
            loader.override_global(name, value, true);
        }
        if opts.stacks.is_none() {
            // Its 4 MiB are only needed with --stacks: one page otherwise.
            loader.map_max_entries(zcprof_common::stacks::STACK_EVENTS_MAP, 4096);
        }
        loader
            .load(OBJECT)
            .context("loading zcprof's eBPF object")?
    };
    let mut probes = Vec::new();
    for (spec, layer) in &mut layers {
        let statuses = layer.attach(&mut ebpf, &mut host);
        if spec.required && !statuses.iter().any(|p| p.via().is_some()) {
            bail!(
                "no {} probe could attach on this kernel: {}",
                spec.layer,
                status::first_reason(&statuses)
            );
        }
        probes.extend(statuses);
    }
    // Stable: each layer's probes keep the order it attached them in.
    probes.sort_by_key(|p| p.layer);
    Ok(Loaded {
        ebpf,
        probes,
        warnings: host.warnings,
    })
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

/// The tracepoint program `name`, loaded once (every layer attaching one program to several
/// tracepoints shares the load: a rejected program is rejected for all of them, and each
/// attempt can cost seconds of verifier time).
fn tracepoint<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut TracePoint> {
    let prog: &mut TracePoint = program(ebpf, name)?;
    if prog.fd().is_err() {
        prog.load().with_context(|| format!("loading {name}"))?;
    }
    Ok(prog)
}

/// Loads zcprof's object and attaches only the benchmark's empty programs
/// (`zcprof_common::floor`) on the syscall layer's default hook and, where this kernel has
/// them, the io_uring layer's two tracepoints: what the hooks alone cost, against which
/// `cargo xtask bench` measures zcprof's own work. Returns the hooks attached, with the
/// object (which detaches them when dropped).
pub fn load_floor() -> anyhow::Result<(Ebpf, Vec<String>)> {
    let mut warnings = Vec::new();
    let btf = load_btf(None, &mut warnings)?
        .ok_or_else(|| anyhow!("the empty hook is a tp_btf program: this kernel has no BTF"))?;
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .load(OBJECT)
        .context("loading zcprof's eBPF object")?;
    let prog: &mut aya::programs::BtfTracePoint =
        program(&mut ebpf, zcprof_common::floor::EMPTY_SYS_EXIT)?;
    prog.load("sys_exit", &btf)
        .context("loading the empty hook")?;
    prog.attach().context("attaching the empty hook")?;
    let mut hooks = vec!["tp_btf/sys_exit".to_string()];
    let uring = tracefs::ensure_mounted()
        .ok()
        .and_then(|root| io_uring::submit_event(&root));
    if let Some(submit) = uring {
        for event in ["io_uring_complete", submit] {
            attach_tracepoint(
                &mut ebpf,
                zcprof_common::floor::EMPTY_TRACEPOINT,
                "io_uring",
                event,
            )
            .with_context(|| format!("attaching the empty program to io_uring:{event}"))?;
            hooks.push(format!("io_uring:{event}"));
        }
    }
    Ok((ebpf, hooks))
}

/// The program `name` of the object, as the program type `T` it must be.
fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} is missing from the object"))?;
    Ok(prog.try_into()?)
}

/// Attaches the tracepoint program `name` to `category:event`.
fn attach_tracepoint(
    ebpf: &mut Ebpf,
    name: &str,
    category: &str,
    event: &str,
) -> anyhow::Result<()> {
    tracepoint(ebpf, name)?
        .attach(category, event)
        .map(drop)
        .map_err(|err| anyhow!(err).context("attach"))
}

/// A tracepoint's field offset from tracefs, or 0 (the programs' "not found") with the
/// reason, when tracefs or the field is missing.
fn tracefs_offset(
    root: Option<&Path>,
    category: &str,
    event: &str,
    field: &str,
    size: u32,
) -> Option<u32> {
    let fields = tracefs::fields(root?, category, event).ok()?;
    tracefs::offset_of(&fields, field, size)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use aya_obj::{Object, ProgramSection};
    use zcprof_common::{COUNTERS_MAP, EVENTS_MAP};

    use super::*;

    /// Every program, map and global the user side asks for by name, per layer.
    fn asked() -> Vec<(Layer, Names)> {
        let mut all: Vec<(Layer, Names)> = LAYERS
            .iter()
            .map(|spec| {
                let mut names = (spec.names)();
                names.maps.extend(spec.counting.map(|c| c.map));
                (spec.layer, names)
            })
            .collect();
        // The collector's own.
        all.push((
            Layer::Lifecycle,
            Names {
                maps: vec![EVENTS_MAP, COUNTERS_MAP],
                ..Names::default()
            },
        ));
        all
    }

    /// Unprivileged: parses the embedded object as aya does and finds every name the user
    /// side asks for, so a renamed program or map fails here, not at run time as root on a
    /// kernel where that probe happens to be tried.
    #[test]
    fn object_has_every_name() {
        let object = Object::parse(OBJECT).expect("the embedded eBPF object parses");
        let symbols: HashSet<String> = {
            use object::{Object as _, ObjectSymbol as _};
            let elf = object::File::parse(OBJECT).expect("the object is ELF");
            elf.symbols()
                .filter_map(|s| s.name().ok().map(str::to_string))
                .collect()
        };
        let mut checked = 0;
        for (layer, names) in asked() {
            for program in &names.programs {
                assert!(
                    object.programs.contains_key(*program),
                    "{layer} layer: program {program} is not in the object"
                );
                checked += 1;
            }
            for map in &names.maps {
                assert!(
                    object.maps.contains_key(*map),
                    "{layer} layer: map {map} is not in the object"
                );
                checked += 1;
            }
            for global in &names.globals {
                assert!(
                    symbols.contains(*global),
                    "{layer} layer: global {global} is not in the object"
                );
                checked += 1;
            }
        }
        assert!(checked > 40, "only {checked} names checked");
        // The bench's floor (`load_floor`): not in any layer, loaded by `zcbench empty-hook`.
        let floor = zcprof_common::floor::EMPTY_SYS_EXIT;
        assert!(
            matches!(
                object.programs.get(floor).map(|p| &p.section),
                Some(ProgramSection::BtfTracePoint)
            ),
            "the floor program {floor} is not a tp_btf program in the object"
        );
        let floor = zcprof_common::floor::EMPTY_TRACEPOINT;
        assert!(
            matches!(
                object.programs.get(floor).map(|p| &p.section),
                Some(ProgramSection::TracePoint)
            ),
            "the floor program {floor} is not a tracepoint program in the object"
        );
        // The kinds matter too: aya refuses to treat a tracepoint as a kprobe.
        for f in &zcprof_common::kernel::FUNCTIONS {
            let section = |name: &str| &object.programs[name].section;
            assert!(
                matches!(
                    section(f.fentry),
                    ProgramSection::FEntry { .. } | ProgramSection::FExit { .. }
                ),
                "{}",
                f.fentry
            );
            for kprobe in f.kprobe.iter().chain(&f.kretprobe) {
                assert!(
                    matches!(
                        section(kprobe),
                        ProgramSection::KProbe | ProgramSection::KRetProbe
                    ),
                    "{kprobe}"
                );
            }
        }
    }

    #[test]
    fn the_table_names_each_layer_once_and_counting_ids_are_unique() {
        let layers: HashSet<Layer> = LAYERS.iter().map(|s| s.layer).collect();
        assert_eq!(layers.len(), LAYERS.len());
        let ids: HashSet<u32> = counting_layers().map(|(_, c)| c.layer).collect();
        assert_eq!(ids.len(), counting_layers().count());
        assert_eq!(
            counting_layer(zcprof_common::layer::KERNEL).map(|(l, _)| l),
            Some(Layer::Kernel)
        );
        assert_eq!(
            counting_layer(zcprof_common::layer::SYSCALL).map(|(l, _)| l),
            Some(Layer::Syscall)
        );
        assert!(counting_layer(99).is_none());
        assert_eq!(LAYERS.iter().filter(|s| s.required).count(), 1);
    }
}
