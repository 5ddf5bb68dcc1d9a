//! Attaching the user layer (`zcprof_common::user`, opt-in with `--user-copies`): uprobes
//! on the copy routines of this host's libc (resolved through their IFUNCs,
//! [`routines::host_libc`]) and of the Go binaries the session names, for every process
//! that maps them (system-wide uprobes: a process forked or exec'd later is covered
//! without attaching again; the programs count only followed processes when the command
//! reports no others). Each probe is one routine in one file; its slot is the attach
//! cookie. A uprobe costs a trap into the kernel per hit (about a microsecond on hardware,
//! ~20 µs measured in a VM, see [`COST`]) in every process that maps the probed file while
//! zcprof runs, which is why the layer is off unless asked for.
//!
//! Its exit program is attached by the lifecycle layer, after `process_exit`.

pub mod routines;

use aya::{
    Ebpf,
    programs::{
        UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
    },
};
use zcprof_common::user::{COUNTING, global, program};

use super::{Host, Layer, LayerProbes, LayerSpec, LoadOptions, Mechanism, Names, ProbeStatus};
pub use routines::{Binary, Coverage, FileId, Routine};

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::User,
    counting: Some(COUNTING),
    required: false,
    names,
    probes,
};

/// How the header and the summaries say what the layer costs: a trap per call of a probed
/// routine, in every process mapping the probed file (not only the followed ones). About
/// 1 µs on hardware; 17 µs (a tracefs uprobe, no program) to 26 µs (this layer) per call
/// measured in a Firecracker VM on 2026-12-07, where 8-byte memcpy calls cost 2 ns without.
pub const COST: &str = "uprobes: a trap per copy call, ~1 µs on hardware, ~20 µs in a VM";

/// What the layer covers machine-wide (`top`, `serve`, `record` without a command), where no
/// process is checked: said in the header.
pub const MACHINE_COVERAGE: &str = "user-space copies (user layer): every process using this host's libc (its memcpy/memmove/mempcpy as resolved for this CPU); not counted: Go programs (probed only under run/record), other libcs (containers), static binaries, copies the compiler inlined";

fn names() -> Names {
    Names {
        programs: vec![program::C_COPY, program::GO_MEMMOVE],
        maps: Vec::new(),
        globals: vec![global::FOLLOWED_ONLY],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(UserLayer {
        wanted: opts.user_copies && !opts.disabled.contains(&Layer::User),
        followed_only: opts.stacks_followed,
        binaries: opts.user_binaries.clone(),
    })
}

struct UserLayer {
    /// `--user-copies`.
    wanted: bool,
    /// Count only followed processes.
    followed_only: bool,
    /// Binaries to probe besides the host's libc (the Go ones among them are probed).
    binaries: Vec<std::path::PathBuf>,
}

impl LayerProbes for UserLayer {
    fn globals(&mut self, _host: &mut Host) -> Vec<(&'static str, u32)> {
        if self.wanted && self.followed_only {
            vec![(global::FOLLOWED_ONLY, 1)]
        } else {
            Vec::new()
        }
    }

    fn attach(&mut self, ebpf: &mut Ebpf, _host: &mut Host) -> Vec<ProbeStatus> {
        if !self.wanted {
            return Vec::new();
        }
        let mut statuses = match routines::host_libc() {
            Ok(libc) => attach_binary(ebpf, &libc),
            Err(why) => vec![ProbeStatus::unavailable(
                Layer::User,
                "libc memcpy/memmove/mempcpy".into(),
                why,
            )],
        };
        for path in &self.binaries {
            match routines::go_binary(path) {
                Ok(Some(go)) => statuses.extend(attach_binary(ebpf, &go)),
                Ok(None) => {}
                Err(why) => statuses.push(ProbeStatus::unavailable(
                    Layer::User,
                    format!("runtime.memmove in {}", path.display()),
                    why,
                )),
            }
        }
        statuses
    }
}

/// How doctor and the layer lines name the probe of `routine` in `binary`:
/// `memcpy/memmove in /usr/lib/x86_64-linux-gnu/libc.so.6+0x9c590`.
pub fn probe_name(binary: &Binary, routine: &Routine) -> String {
    format!(
        "{} in {}+{:#x}",
        routine.name(),
        binary.path.display(),
        routine.offset
    )
}

/// Attaches one uprobe per routine of `binary`, for every process mapping it.
pub fn attach_binary(ebpf: &mut Ebpf, binary: &Binary) -> Vec<ProbeStatus> {
    binary
        .routines
        .iter()
        .map(|routine| {
            let probe = probe_name(binary, routine);
            match attach_routine(ebpf, binary, routine) {
                Ok(()) => ProbeStatus::attached(Layer::User, probe, Mechanism::Uprobe),
                Err(err) => ProbeStatus::unavailable(Layer::User, probe, format!("{err:#}")),
            }
        })
        .collect()
}

fn attach_routine(ebpf: &mut Ebpf, binary: &Binary, routine: &Routine) -> anyhow::Result<()> {
    let prog: &mut UProbe = super::program(ebpf, routine.program)?;
    if prog.fd().is_err() {
        prog.load()?;
    }
    let point = UProbeAttachPoint {
        location: UProbeAttachLocation::AbsoluteOffset(routine.offset),
        cookie: Some(u64::from(routine.slot)),
    };
    prog.attach(point, &binary.path, UProbeScope::AllProcesses)?;
    Ok(())
}
