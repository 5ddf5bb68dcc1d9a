//! The stacks layer in user space: where in the program the bytes are moved. The kernel
//! side (`zcprof-ebpf/src/stacks.rs`) samples the calling thread's user stack every
//! `--stack-period` bytes of a `(process, syscall)`; here the samples are read
//! ([`sampler`]), decoded ([`sample`]) and aggregated ([`table`]), their raw frames named
//! ([`symbolize`]), each stack reduced to the call site the reports show ([`callsite`]),
//! and the stacks drawn as flame graphs ([`flame`]). With `--kernel-stacks` the kernel
//! layer's probes sample too, each sample with the kernel stack at the copy above the user
//! stack; their slot carries [`KERNEL_BIT`] and names a kernel-layer probe.

pub mod callsite;
pub mod flame;
pub mod sample;
pub mod sampler;
pub mod symbolize;
pub mod table;

pub use sampler::{Report, Sampler, Stack};

use zcprof_common::{
    kernel::Role,
    stacks::KERNEL_BIT,
    syscalls::{Direction, Family},
};

/// What a sample's slot names: a syscall (the syscall layer's row), or with [`KERNEL_BIT`]
/// a kernel-layer probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `read`, or the kernel probe's name (`_copy_to_user`).
    pub name: &'static str,
    /// For a kernel-layer probe, the kernel function it probes.
    pub function: &'static str,
    pub kernel: bool,
    pub family: Family,
    pub direction: Direction,
}

/// The origin of samples of `slot`; `None` for a slot this build does not know.
pub fn origin(slot: u32) -> Option<Origin> {
    if slot & KERNEL_BIT != 0 {
        let probe = zcprof_common::kernel::get(slot & !KERNEL_BIT)?;
        return Some(Origin {
            name: probe.name,
            function: probe.function,
            kernel: true,
            family: if matches!(probe.role, Role::ZeroCopy) {
                Family::ZeroCopy
            } else {
                Family::Copy
            },
            direction: probe.direction,
        });
    }
    let syscall = zcprof_common::syscalls::get(slot)?;
    Some(Origin {
        name: syscall.name,
        function: syscall.name,
        kernel: false,
        family: syscall.family,
        direction: syscall.direction,
    })
}

/// How reports name the call site of a stack of `origin` (user frames `frames`, kernel
/// frames `kernel` for a kernel-layer sample), innermost first.
pub fn site_name(
    origin: &Origin,
    frames: &[symbolize::Symbol],
    kernel: &[symbolize::Symbol],
    main_binary: Option<&str>,
) -> String {
    let site = callsite::call_site(frames, main_binary);
    if origin.kernel {
        site.display_kernel(kernel, origin.name)
    } else {
        site.display(origin.name)
    }
}

/// A kernel-layer sample's kernel frames as reports show them: from the probed function
/// out. The frames of the probe itself come first in what the kernel gives (an fentry or
/// fexit program and its trampoline, a kprobe's ftrace handler, a kretprobe's trampoline)
/// and are dropped; an fexit or kretprobe fires after the function returned, with its
/// caller innermost, so the function is put back as the innermost frame (at offset 0: the
/// copy was somewhere in it).
pub fn from_probed_function(
    origin: &Origin,
    frames: Vec<symbolize::Symbol>,
) -> Vec<symbolize::Symbol> {
    let mut frames: Vec<symbolize::Symbol> = frames
        .into_iter()
        .skip_while(|s| s.function.as_deref().is_some_and(is_probe_machinery))
        .collect();
    let innermost = frames.first().and_then(|s| s.function.as_deref());
    if !frames.is_empty() && innermost.map(base_function) != Some(origin.function) {
        frames.insert(
            0,
            symbolize::Symbol {
                function: Some(origin.function.to_string()),
                file: None,
                line: None,
                module: symbolize::KERNEL_MODULE.into(),
                offset: 0,
                inlined: false,
            },
        );
    }
    frames
}

/// A kernel function of the probing itself (BPF programs, trampolines, ftrace, kprobes,
/// tracepoint glue), never of the copy.
fn is_probe_machinery(function: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "bpf_prog_",
        "bpf_trampoline_",
        "__bpf_prog_",
        "bpf_trace_run",
        "__bpf_trace_",
        "trace_call_bpf",
        "perf_trace_",
        "kprobe_",
        "kretprobe_",
        "__kretprobe_",
        "arch_rethook_",
        "rethook_",
    ];
    PREFIXES.iter().any(|p| function.starts_with(p))
        || function.contains("ftrace")
        || function.starts_with("__traceiter_")
}

/// `copy_page_to_iter` for `copy_page_to_iter.constprop.0`: the compiler's clones keep
/// their function's name before the dot.
fn base_function(function: &str) -> &str {
    function.split('.').next().unwrap_or(function)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(function: &str) -> symbolize::Symbol {
        symbolize::Symbol {
            function: Some(function.into()),
            file: None,
            line: None,
            module: symbolize::KERNEL_MODULE.into(),
            offset: 0x10,
            inlined: false,
        }
    }

    fn names(frames: &[symbolize::Symbol]) -> Vec<&str> {
        frames
            .iter()
            .filter_map(|s| s.function.as_deref())
            .collect()
    }

    #[test]
    fn kernel_frames_start_at_the_probed_function() {
        let origin = origin(KERNEL_BIT | zcprof_common::kernel::id::SKB_COPY_DATAGRAM_ITER)
            .expect("a kernel probe");
        assert_eq!(origin.function, "skb_copy_datagram_iter");
        // fentry: the program and its trampoline first.
        let fentry = ["bpf_prog_f63f_fentry_skb", "bpf_trampoline_6442474223"]
            .into_iter()
            .chain(["skb_copy_datagram_iter", "tcp_recvmsg_locked"])
            .map(named)
            .collect();
        assert_eq!(
            names(&from_probed_function(&origin, fentry)),
            ["skb_copy_datagram_iter", "tcp_recvmsg_locked"]
        );
        // A tracepoint's stack starts at the function already.
        let tracepoint = vec![named("skb_copy_datagram_iter"), named("tcp_recvmsg")];
        assert_eq!(
            names(&from_probed_function(&origin, tracepoint)),
            ["skb_copy_datagram_iter", "tcp_recvmsg"]
        );
        // fexit and kretprobe: after the return, the caller is innermost.
        let fexit = ["bpf_prog_1_fexit", "bpf_trampoline_1", "tcp_recvmsg_locked"]
            .into_iter()
            .map(named)
            .collect();
        let frames = from_probed_function(&origin, fexit);
        assert_eq!(
            names(&frames),
            ["skb_copy_datagram_iter", "tcp_recvmsg_locked"]
        );
        assert_eq!(frames[0].offset, 0);
        // A clone keeps its function's name.
        let clone = vec![named("skb_copy_datagram_iter.constprop.0")];
        assert_eq!(from_probed_function(&origin, clone).len(), 1);
        assert!(from_probed_function(&origin, Vec::new()).is_empty());
    }
}
