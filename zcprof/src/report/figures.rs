//! The figure objects shared by every JSON document zcprof writes (`zcprof.run/v1`,
//! `zcprof.recording/v1`): the model's totals as [`rec::Layer`]s keyed by probe layer, layer
//! states and lost events, in the types of the `zcprof-recording` crate.

use zcprof_common::{
    Counts, HIST_BUCKETS, hist,
    kernel::Role,
    syscalls::{self, Direction, Family},
};
use zcprof_recording::{self as rec, Bucket, Entry, LayerTotals, Layers, ProbeLayer};

use super::Lost;
use crate::{
    model::{
        Counters, CpuSlots, Figures, FlowSlots, IoUringOps, KernelProbes, MappedSlots, Syscalls,
        Totals, errno_names, flow_name,
    },
    probes::{Layer, LayerSummary},
};

/// `{"syscall": …, "kernel": …}`: the figures of each layer. The kernel layer is present
/// when one of its counters fired; which layers attached is in the layer states.
pub fn layers(totals: &Counters, copy_source: Option<Role>) -> Layers {
    let mut layers = Layers::from([(Layer::Syscall.to_string(), syscall_layer(&totals.syscall))]);
    if !totals.kernel.is_zero() {
        layers.insert(
            Layer::Kernel.to_string(),
            kernel_layer(&totals.kernel, copy_source),
        );
    }
    if !totals.io_uring.is_zero() {
        layers.insert(Layer::IoUring.to_string(), io_uring_layer(&totals.io_uring));
    }
    if !totals.cpu.is_zero() {
        layers.insert(Layer::Cpu.to_string(), cpu_layer(&totals.cpu));
    }
    if !totals.mapped.is_zero() {
        layers.insert(Layer::Mapped.to_string(), mapped_layer(&totals.mapped));
    }
    if !totals.flows.is_zero() {
        layers.insert(Layer::Flows.to_string(), flows_layer(&totals.flows));
    }
    if !totals.user.is_zero() {
        layers.insert(Layer::User.to_string(), super::user::layer(&totals.user));
    }
    layers
}

/// The flows layer: one entry per flow that counted (`copy file -> user`, `sendfile file ->
/// tcp`, …, with the family and direction of the syscalls it comes from), totals summed as
/// the syscall layer sums them (a breakdown of its bytes, never added to them), and the
/// bytes delivered through sockets.
pub fn flows_layer(t: &Totals<FlowSlots>) -> rec::Layer {
    let mut f = Figures::default();
    for (_, flow, s) in t.fired() {
        match (flow.family, flow.direction) {
            (Family::Copy, Direction::KernelToUser) => f.copy_k2u_bytes += s.bytes,
            // Which of the zero-copy-requested sends a notification confirmed is the syscall layer's to say:
            // copied here, as there without notifications.
            (Family::Copy | Family::ZeroCopyRequested, _) => f.copy_u2k_bytes += s.bytes,
            _ => f.zero_copy_bytes += s.bytes,
        }
        f.calls += s.calls;
    }
    let mut totals = layer_totals(&f);
    totals.delivered_bytes = Some(t.delivered_bytes());
    rec::Layer {
        copy_source: None,
        totals,
        syscalls: Default::default(),
        probes: t
            .fired()
            .map(|(_, flow, s)| (flow_name(&flow), entry(flow.family, flow.direction, s)))
            .collect(),
    }
}

/// The mapped layer: one entry per slot that counted (`fault`, `map_pages`; family
/// `mapped`, bytes = pages × page size), and totals with its events as calls and no copied
/// or zero-copy bytes: mapped pages are a figure of their own, never added to bytes moved.
pub fn mapped_layer(t: &Totals<MappedSlots>) -> rec::Layer {
    rec::Layer {
        copy_source: None,
        totals: LayerTotals {
            calls: t.events(),
            ..LayerTotals::default()
        },
        syscalls: Default::default(),
        probes: slot_entries(t.named(), rec::Family::Mapped, rec::Direction::K2u),
    }
}

/// The cpu layer: one entry per slot that counted (`kernel_copy`, `kernel`, `user_copy`,
/// `user`, `user_unresolved`; family `cpu_samples`, calls = samples, bytes = their CPU
/// time in ns), and totals with the samples as calls and no bytes: samples are a figure of
/// their own.
pub fn cpu_layer(t: &Totals<CpuSlots>) -> rec::Layer {
    rec::Layer {
        copy_source: None,
        totals: LayerTotals {
            calls: t.shares().samples,
            ..LayerTotals::default()
        },
        syscalls: Default::default(),
        probes: slot_entries(t.named(), rec::Family::CpuSamples, rec::Direction::K2k),
    }
}

/// A layer's named slots that counted, as entries of `family` and `direction` (errors and
/// errnos none: the layers that use this count events, not calls that fail).
fn slot_entries<'a>(
    named: impl Iterator<Item = (&'static str, &'a Counts)>,
    family: rec::Family,
    direction: rec::Direction,
) -> rec::SortedMap<Entry> {
    named
        .filter(|(_, s)| s.calls > 0)
        .map(|(name, s)| {
            (
                name.to_string(),
                Entry {
                    family,
                    direction,
                    calls: s.calls,
                    bytes: s.bytes,
                    errors: 0,
                    errno: Default::default(),
                    hist: buckets(s),
                },
            )
        })
        .collect()
}

/// The io_uring layer: totals (its copies count as copies, as the syscall layer's), and
/// one entry per opcode that completed, under `probes`, with the notification slots and
/// the detector's entry where they counted.
pub fn io_uring_layer(t: &Totals<IoUringOps>) -> rec::Layer {
    rec::Layer {
        copy_source: None,
        totals: layer_totals(&t.figures()),
        syscalls: Default::default(),
        probes: t
            .fired()
            .map(|(op, s)| (op.name.to_string(), entry(op.family, op.direction, s)))
            .collect(),
    }
}

/// The kernel layer: one entry per counter that fired, under `probes`. Its copy totals
/// come from one set of counters only (`copy_source`: the copy primitives, else
/// `__check_object_size`), never both, so a byte is not counted twice; the breakdown and
/// zero-copy-internal counters are listed but not summed into the totals.
pub fn kernel_layer(k: &Totals<KernelProbes>, copy_source: Option<Role>) -> rec::Layer {
    let (copy_k2u_bytes, copy_u2k_bytes) = copy_source.map(|role| k.copied(role)).unwrap_or((0, 0));
    let fired = || k.fired();
    rec::Layer {
        copy_source: Some(copy_source.map(|role| role.name().to_string())),
        totals: LayerTotals {
            copy_k2u_bytes,
            copy_u2k_bytes,
            zero_copy_bytes: 0,
            calls: fired().map(|(_, s)| s.calls).sum(),
            errors: fired().map(|(_, s)| s.errors).sum(),
            // A kernel function's failure has no errno.
            would_block: 0,
            errno: Default::default(),
            zero_copy_ratio: None,
            msg_zerocopy: Default::default(),
            delivered_bytes: None,
        },
        syscalls: Default::default(),
        probes: fired()
            .map(|(p, s)| {
                let family = match p.role {
                    Role::ZeroCopy => rec::Family::ZeroCopy,
                    Role::Primitive | Role::CrossCheck | Role::Breakdown => rec::Family::Copy,
                };
                (
                    p.name.to_string(),
                    Entry {
                        family,
                        direction: direction(p.direction),
                        calls: s.calls,
                        bytes: s.bytes,
                        errors: s.errors,
                        errno: Default::default(),
                        hist: buckets(s),
                    },
                )
            })
            .collect(),
    }
}

/// The syscall layer: totals, and every syscall that was called.
pub fn syscall_layer(t: &Totals<Syscalls>) -> rec::Layer {
    rec::Layer {
        copy_source: None,
        totals: layer_totals(&t.figures()),
        syscalls: used(t)
            .map(|(sc, s)| (sc.name.to_string(), entry(sc.family, sc.direction, s)))
            .collect(),
        probes: Default::default(),
    }
}

/// The totals of a layer whose figures are sums of results (syscall, io_uring).
fn layer_totals(f: &Figures) -> LayerTotals {
    LayerTotals {
        copy_k2u_bytes: f.copy_k2u_bytes,
        copy_u2k_bytes: f.copy_u2k_bytes,
        zero_copy_bytes: f.zero_copy_bytes,
        calls: f.calls,
        errors: f.errors,
        would_block: f.would_block(),
        errno: errno_names(&f.errno),
        zero_copy_ratio: f.zero_copy_ratio(),
        msg_zerocopy: f.msg_zerocopy,
        delivered_bytes: None,
    }
}

/// One syscall's or opcode's entry.
fn entry(f: Family, d: Direction, s: &Counts) -> Entry {
    Entry {
        family: family(f),
        direction: direction(d),
        calls: s.calls,
        bytes: s.bytes,
        errors: s.errors,
        errno: errno_names(&s.errno),
        hist: buckets(s),
    }
}

/// Syscalls with at least one call, in table order.
pub fn used(
    totals: &Totals<Syscalls>,
) -> impl Iterator<Item = (&'static syscalls::Syscall, &Counts)> {
    syscalls::SYSCALLS
        .iter()
        .zip(totals.slots())
        .filter(|(_, s)| s.calls > 0)
}

pub fn family(f: Family) -> rec::Family {
    match f {
        Family::Copy => rec::Family::Copy,
        Family::ZeroCopy => rec::Family::ZeroCopy,
        Family::ZeroCopyRequested => rec::Family::ZeroCopyRequested,
        Family::Notice => rec::Family::Notice,
        Family::Control => rec::Family::Control,
    }
}

pub fn direction(d: Direction) -> rec::Direction {
    match d {
        Direction::KernelToUser => rec::Direction::K2u,
        Direction::UserToKernel => rec::Direction::U2k,
        Direction::KernelToKernel => rec::Direction::K2k,
    }
}

/// Non-empty size buckets.
pub fn buckets(s: &Counts) -> Vec<Bucket> {
    (0..HIST_BUCKETS)
        .filter(|&k| s.hist[k] > 0)
        .map(|k| Bucket {
            low: hist::bucket_low(k),
            high: hist::bucket_high(k),
            count: s.hist[k],
        })
        .collect()
}

pub fn probe_layers(layers: &[LayerSummary]) -> Vec<ProbeLayer> {
    layers
        .iter()
        .map(|l| ProbeLayer {
            layer: l.layer.to_string(),
            state: l.state.to_string(),
            via: l.via.clone(),
            attached: l.attached as u64,
            unavailable: l.unavailable.clone(),
        })
        .collect()
}

pub fn lost(l: &Lost) -> rec::Lost {
    rec::Lost {
        ringbuf_full: l.kernel.ringbuf_full,
        stats_map_full: l.kernel.stats_map_full,
        mmsg_unreadable: l.kernel.mmsg_unreadable,
        mmsg_no_enter: l.kernel.mmsg_no_enter,
        stash_full: l.kernel.stash_full,
        follow_full: l.kernel.follow_full,
        io_uring_unmatched: l.kernel.io_uring_unmatched,
        malformed_records: l.malformed_records,
        total: l.total,
    }
}
