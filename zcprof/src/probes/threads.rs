//! The threads layer (`zcprof_common::threads`), opt-in with `--threads`: like the flows
//! layer it has no hook of its own — the syscall layer's exit programs count per thread
//! too — only its switch and its exit program (attached by the lifecycle layer). Its one
//! probe is reported attached the way the syscall layer's exit program is. Without
//! `--threads` it reports nothing and costs one branch per counted syscall.

use aya::Ebpf;
use zcprof_common::threads::{COUNTING, global};

use super::{Host, Layer, LayerProbes, LayerSpec, LoadOptions, Names, ProbeStatus};

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Threads,
    counting: Some(COUNTING),
    required: false,
    names,
    probes,
};

/// How doctor and the layer lines name the layer's one probe.
pub const PROBE: &str = "sys_exit (per thread)";

fn names() -> Names {
    Names {
        programs: Vec::new(),
        maps: Vec::new(),
        globals: vec![global::ON],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(Threads {
        wanted: opts.threads,
    })
}

struct Threads {
    /// `--threads`.
    wanted: bool,
}

impl LayerProbes for Threads {
    fn globals(&mut self, _host: &mut Host) -> Vec<(&'static str, u32)> {
        if self.wanted {
            vec![(global::ON, 1)]
        } else {
            Vec::new()
        }
    }

    fn attach(&mut self, _ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus> {
        if !self.wanted {
            return Vec::new();
        }
        vec![match host.syscall_via {
            Some(via) => ProbeStatus::attached(Layer::Threads, PROBE.into(), via),
            None => ProbeStatus::unavailable(
                Layer::Threads,
                PROBE.into(),
                "no syscall exit program attached".into(),
            ),
        }]
    }
}
