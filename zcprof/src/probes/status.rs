//! What became of each probe and of each layer, as types: a probe is attached by a
//! [`Mechanism`] or unavailable with the kernel's reason (data, never an error), and a layer is
//! [`State::Live`], [`State::Partial`] or [`State::Unavailable`]. Every report, the dashboard
//! and doctor read these; JSON spells them as before (`"layer": "syscall"`, `"via":
//! "tp_btf"`, `"state": "live"`).

use std::fmt;

use serde::{Serialize, Serializer};
use zcprof_common::kernel::{self, Role};

/// A probe layer: one set of probes and what they feed. Every figure zcprof prints names
/// one. The order of the variants is the order layers are reported in (the syscall layer
/// first: every figure starts from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Read/write-family and zero-copy syscalls, per process and syscall.
    Syscall,
    /// Process fork/exec/exit: attribution (trees, names, PID reuse), not figures.
    Lifecycle,
    /// Kernel functions that copy or move bytes, per process and probe.
    Kernel,
    /// io_uring requests, per process and opcode.
    IoUring,
    /// File pages mapped in through mmap, per process (not bytes moved: its own figure).
    Mapped,
    /// The syscall layer's bytes by the kinds of descriptor they moved between (opt-in:
    /// `--flows`).
    Flows,
    /// The syscall layer's counts by thread (opt-in: `--threads`).
    Threads,
    /// User call stacks sampled by the syscall layer's bytes (opt-in: `--stacks`): where in
    /// the program the bytes are moved, estimated, not counted.
    Stacks,
    /// Copies inside a process's own memory through its copy routines (glibc's
    /// `memcpy`/`memmove`/`mempcpy`, Go's `runtime.memmove`), by uprobes (opt-in:
    /// `--user-copies`): its own figure, never added to the syscall layer's.
    User,
    /// Where each process's CPU time goes, sampled (opt-in: `--cpu`): kernel and user copy
    /// routines, the rest of the kernel and of user space.
    Cpu,
}

impl Layer {
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Syscall => "syscall",
            Layer::Lifecycle => "lifecycle",
            Layer::Kernel => "kernel",
            Layer::IoUring => "io_uring",
            Layer::Mapped => "mapped",
            Layer::Flows => "flows",
            Layer::Threads => "threads",
            Layer::Stacks => "stacks",
            Layer::User => "user",
            Layer::Cpu => "cpu",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// How an attached probe is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// A BTF-typed raw tracepoint.
    TpBtf,
    RawTracepoint,
    /// A classic (tracefs) tracepoint.
    Tracepoint,
    Fentry,
    Fexit,
    Kprobe,
    Kretprobe,
    /// A kprobe stashing an argument and a kretprobe using it.
    KprobeAndKretprobe,
    /// A uprobe on a user-space function's entry.
    Uprobe,
    /// A `perf_event` program on a sampling event.
    PerfEvent,
}

impl Mechanism {
    /// As printed and in JSON (`via`).
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::TpBtf => "tp_btf",
            Mechanism::RawTracepoint => "raw_tracepoint",
            Mechanism::Tracepoint => "tracepoint",
            Mechanism::Fentry => "fentry",
            Mechanism::Fexit => "fexit",
            Mechanism::Kprobe => "kprobe",
            Mechanism::Kretprobe => "kretprobe",
            Mechanism::KprobeAndKretprobe => "kprobe+kretprobe",
            Mechanism::Uprobe => "uprobe",
            Mechanism::PerfEvent => "perf_event",
        }
    }
}

/// What became of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attachment {
    Attached(Mechanism),
    /// Why it is unavailable: the kernel's reason, or what zcprof found missing.
    Unavailable(String),
}

/// One probe of one layer and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeStatus {
    pub layer: Layer,
    /// What was probed, e.g. `syscalls:sys_exit_read` or `raw_tp:sys_exit`.
    pub probe: String,
    pub attachment: Attachment,
}

impl ProbeStatus {
    pub fn attached(layer: Layer, probe: String, via: Mechanism) -> Self {
        ProbeStatus {
            layer,
            probe,
            attachment: Attachment::Attached(via),
        }
    }

    pub fn unavailable(layer: Layer, probe: String, reason: String) -> Self {
        // A verifier rejection carries the whole verifier log (thousands of lines): keep
        // the sentence that says what happened and the log's last line, which says why
        // (`processed 1000001 insns (limit 1000000) …`, or the instruction it refused).
        let reason = match reason.split_once('\n') {
            Some((first, rest)) => match rest
                .lines()
                .rev()
                .find(|l| l.contains("processed ") || l.contains("too large"))
                .or_else(|| rest.lines().rev().find(|l| !l.trim().is_empty()))
            {
                Some(last) => format!("{first} … {}", last.trim()),
                None => format!("{first} …"),
            },
            None => reason,
        };
        ProbeStatus {
            layer,
            probe,
            attachment: Attachment::Unavailable(reason),
        }
    }

    /// How it is attached, or `None` if it is unavailable.
    pub fn via(&self) -> Option<Mechanism> {
        match self.attachment {
            Attachment::Attached(via) => Some(via),
            Attachment::Unavailable(_) => None,
        }
    }

    /// Why it is unavailable, or `None` if it is attached.
    pub fn reason(&self) -> Option<&str> {
        match &self.attachment {
            Attachment::Attached(_) => None,
            Attachment::Unavailable(reason) => Some(reason),
        }
    }
}

/// `{"layer", "probe", "via", "reason"}` (`via` or `reason` null), as doctor's JSON has it.
impl Serialize for ProbeStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            layer: Layer,
            probe: &'a str,
            via: Option<&'static str>,
            reason: Option<&'a str>,
        }
        Json {
            layer: self.layer,
            probe: &self.probe,
            via: self.via().map(Mechanism::name),
            reason: self.reason(),
        }
        .serialize(serializer)
    }
}

/// How much of a layer attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Every probe attached.
    Live,
    /// Some did.
    Partial,
    /// None did.
    Unavailable,
}

impl State {
    pub const fn name(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Partial => "partial",
            State::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The state of one layer, for headers and JSON.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LayerSummary {
    pub layer: Layer,
    pub state: State,
    /// The mechanisms its attached probes use, e.g. `tp_btf` or `fexit, fentry, tracepoint`.
    pub via: String,
    pub attached: usize,
    /// The probes that are unavailable (`zcprof doctor` has each one's reason).
    pub unavailable: Vec<String>,
}

/// One summary per layer, in the order the probes name them.
pub fn summarize(probes: &[ProbeStatus]) -> Vec<LayerSummary> {
    let mut out: Vec<LayerSummary> = Vec::new();
    for p in probes {
        let entry = match out.iter_mut().position(|l| l.layer == p.layer) {
            Some(i) => &mut out[i],
            None => {
                out.push(LayerSummary {
                    layer: p.layer,
                    state: State::Unavailable,
                    via: String::new(),
                    attached: 0,
                    unavailable: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        match p.via() {
            Some(via) => {
                entry.attached += 1;
                if !entry.via.contains(via.name()) {
                    if !entry.via.is_empty() {
                        entry.via.push_str(", ");
                    }
                    entry.via.push_str(via.name());
                }
            }
            None => entry.unavailable.push(p.probe.clone()),
        }
    }
    for l in &mut out {
        l.state = match (l.attached, l.unavailable.len()) {
            (0, _) => State::Unavailable,
            (_, 0) => State::Live,
            _ => State::Partial,
        };
    }
    out
}

/// `probe: reason` of the first unavailable probe, for the one sentence zcprof stops with.
pub fn first_reason(probes: &[ProbeStatus]) -> String {
    probes
        .iter()
        .find_map(|p| p.reason().map(|r| format!("{}: {r}", p.probe)))
        .unwrap_or_else(|| "no reason given".into())
}

/// Which of the kernel layer's counters make its kernel-copy figure on this kernel: the copy
/// primitives when any attached, else `__check_object_size`, else none (see
/// `zcprof_common::kernel`). Every report of kernel copies (run, top, CSV, recordings,
/// serve, the dashboard, demos) takes its role from here.
pub fn copy_source(layers: &[LayerSummary]) -> Option<Role> {
    let layer = layers.iter().find(|l| l.layer == Layer::Kernel)?;
    let attached = |role: Role| {
        kernel::PROBES
            .iter()
            .filter(|p| p.role == role)
            .any(|p| !layer.unavailable.iter().any(|u| u == p.function))
    };
    [Role::Primitive, Role::CrossCheck]
        .into_iter()
        .find(|&role| attached(role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_live_partial_or_unavailable() {
        let probes = vec![
            ProbeStatus::attached(Layer::Syscall, "a".into(), Mechanism::Tracepoint),
            ProbeStatus::unavailable(Layer::Syscall, "b".into(), "gone".into()),
            ProbeStatus::attached(Layer::Lifecycle, "c".into(), Mechanism::Tracepoint),
        ];
        let s = summarize(&probes);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].state, State::Partial);
        assert_eq!(s[0].unavailable, vec!["b".to_string()]);
        assert_eq!(s[1].state, State::Live);
        assert_eq!(s[1].via, "tracepoint");
        let none = summarize(&[ProbeStatus::unavailable(
            Layer::Syscall,
            "x".into(),
            "r".into(),
        )]);
        assert_eq!(none[0].state, State::Unavailable);
        assert_eq!(
            first_reason(&[ProbeStatus::unavailable(
                Layer::Syscall,
                "x".into(),
                "r".into()
            )]),
            "x: r"
        );
    }

    #[test]
    fn json_spells_layers_mechanisms_and_states_as_strings() {
        let attached = ProbeStatus::attached(
            Layer::Kernel,
            "_copy_to_user".into(),
            Mechanism::KprobeAndKretprobe,
        );
        assert_eq!(
            serde_json::to_value(&attached).expect("json"),
            serde_json::json!({"layer": "kernel", "probe": "_copy_to_user",
                "via": "kprobe+kretprobe", "reason": null})
        );
        let gone = ProbeStatus::unavailable(
            Layer::Lifecycle,
            "task:task_newtask".into(),
            "tracefs is unavailable\nmore".into(),
        );
        assert_eq!(
            serde_json::to_value(&gone).expect("json"),
            serde_json::json!({"layer": "lifecycle", "probe": "task:task_newtask",
                "via": null, "reason": "tracefs is unavailable … more"})
        );
        // A verifier log keeps its first line and the line that says why.
        let rejected = ProbeStatus::unavailable(
            Layer::Syscall,
            "sys_exit".into(),
            "loading: Verifier output: 0: R1=ctx()\n1: r2 = 0\nprocessed 1000001 insns (limit 1000000)\n: Argument list too long".into(),
        );
        assert_eq!(
            rejected.reason(),
            Some("loading: Verifier output: 0: R1=ctx() … processed 1000001 insns (limit 1000000)")
        );
        let summary = serde_json::to_value(summarize(&[attached])).expect("json");
        assert_eq!(summary[0]["state"], "live");
        assert_eq!(summary[0]["layer"], "kernel");
    }
}
