//! The stacks layer (`zcprof_common::stacks`), opt-in with `--stacks`: like the threads
//! layer it has no hook of its own — the syscall layer's exit programs take the samples —
//! only its switch (the period) and its ring buffer, which the collector reads. Its one
//! probe is reported attached the way the syscall layer's exit program is. Without
//! `--stacks` it reports nothing and costs one branch per counted syscall.

use aya::Ebpf;
use zcprof_common::stacks::{STACK_EVENTS_MAP, global};

use super::{Host, Layer, LayerProbes, LayerSpec, LoadOptions, Names, ProbeStatus};

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Stacks,
    counting: None,
    required: false,
    names,
    probes,
};

/// How doctor and the layer lines name the layer's one probe.
pub const PROBE: &str = "sys_exit (user stacks)";
/// The same for `--kernel-stacks`: the kernel layer's probes, sampling with kernel stacks.
pub const KERNEL_PROBE: &str = "kernel-layer probes (kernel stacks)";

fn names() -> Names {
    Names {
        programs: Vec::new(),
        maps: vec![STACK_EVENTS_MAP],
        globals: vec![global::PERIOD, global::FOLLOWED_ONLY, global::KERNEL],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(Stacks {
        period: opts.stacks,
        followed_only: opts.stacks_followed,
        kernel: opts.kernel_stacks,
    })
}

struct Stacks {
    /// `--stack-period` with `--stacks`.
    period: Option<u32>,
    /// Only the followed processes are sampled.
    followed_only: bool,
    /// `--kernel-stacks`.
    kernel: bool,
}

impl LayerProbes for Stacks {
    fn globals(&mut self, _host: &mut Host) -> Vec<(&'static str, u32)> {
        match self.period {
            Some(period) => vec![
                (global::PERIOD, period),
                (global::FOLLOWED_ONLY, u32::from(self.followed_only)),
                (global::KERNEL, u32::from(self.kernel)),
            ],
            None => Vec::new(),
        }
    }

    fn attach(&mut self, _ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus> {
        if self.period.is_none() {
            return Vec::new();
        }
        let mut statuses = vec![match host.syscall_via {
            Some(via) => ProbeStatus::attached(Layer::Stacks, PROBE.into(), via),
            None => ProbeStatus::unavailable(
                Layer::Stacks,
                PROBE.into(),
                "no syscall exit program attached".into(),
            ),
        }];
        if self.kernel {
            statuses.push(match host.kernel_via {
                Some(via) => ProbeStatus::attached(Layer::Stacks, KERNEL_PROBE.into(), via),
                None => ProbeStatus::unavailable(
                    Layer::Stacks,
                    KERNEL_PROBE.into(),
                    "no kernel-layer probe attached on this kernel (see the kernel layer's reasons)"
                        .into(),
                ),
            });
        }
        statuses
    }
}
