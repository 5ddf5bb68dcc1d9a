//! The stacks layer's part of a recording (`record --stacks`): which user call stacks moved
//! the bytes, estimated by sampling. Each sample stands for one period of one process's
//! bytes of one syscall; a stack's `bytes` are its `samples × period_bytes`. The exact
//! totals are the layers' figures; stacks only apportion them.

use serde::{Deserialize, Serialize};

use super::{Direction, Family};

/// What the stacks layer saw while recording.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stacks {
    /// Bytes per sample (`--stack-period`).
    pub period_bytes: u64,
    /// Samples of the recorded processes (periods crossed: a call that crossed three
    /// periods is three samples), those of the stacks not kept included.
    pub samples: u64,
    /// Samples the kernel could not send because its ring buffer was full, machine-wide:
    /// the estimate misses them.
    pub lost_samples: u64,
    /// Samples of stacks beyond the bound on distinct stacks zcprof keeps: in `samples`,
    /// not in `stacks`.
    pub dropped_samples: u64,
    /// Samples whose stack looked cut short (no program entry point at its root): the
    /// program was probably built without frame pointers.
    pub truncated_samples: u64,
    /// Frames in `stacks`, and those that could not be named (shown as module+offset).
    pub frames: u64,
    pub unresolved_frames: u64,
    /// Most bytes first.
    pub stacks: Vec<StackRecord>,
}

/// One distinct stack of one process and syscall.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackRecord {
    pub pid: u32,
    /// The process's name.
    pub comm: String,
    /// The name of the thread that made the calls.
    pub thread: String,
    /// Whose bytes the samples are (recordings made before `--kernel-stacks` have none:
    /// the syscall layer's).
    #[serde(default)]
    pub layer: StackLayer,
    /// The syscall; for [`StackLayer::Kernel`] the kernel-layer probe.
    pub syscall: String,
    pub family: Family,
    pub direction: Direction,
    pub samples: u64,
    /// Estimated: `samples × period_bytes`.
    pub bytes: u64,
    pub truncated: bool,
    /// The three innermost frames of the program's own code, past its libraries'
    /// wrappers: `read() in copy_file (copy.rs:120) ← run ← main`.
    pub call_site: String,
    /// Innermost first.
    pub frames: Vec<FrameRecord>,
    /// For [`StackLayer::Kernel`]: the kernel stack at the copy, innermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_frames: Vec<FrameRecord>,
}

/// The layer a stack's samples apportion the bytes of.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StackLayer {
    /// A syscall's bytes (`--stacks`).
    #[default]
    Syscall,
    /// A kernel-layer probe's bytes (`--kernel-stacks`): the same bytes as some syscall's,
    /// seen where the kernel copies them.
    Kernel,
}

/// One frame; `function` is `null` when it could not be named, then `module` and
/// `offset` still say where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRecord {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The binary or library (its path), `[unknown]` when not even that is known.
    pub module: String,
    /// The instruction's offset in `module` (its address when the module is unknown).
    pub offset: u64,
}

impl FrameRecord {
    /// `function` or `module+0xoffset`: how flame graphs and the call sites name it.
    pub fn name(&self) -> String {
        match &self.function {
            Some(f) => f.clone(),
            None => {
                let module = self.module.rsplit('/').next().unwrap_or(&self.module);
                format!("{module}+{:#x}", self.offset)
            }
        }
    }
}

/// A call site of one process: its stacks that share the three innermost frames of the
/// program's own code (and the syscall), summed.
#[derive(Clone, Debug, PartialEq)]
pub struct CallSite {
    pub pid: u32,
    pub comm: String,
    pub layer: StackLayer,
    pub call_site: String,
    pub family: Family,
    pub direction: Direction,
    pub samples: u64,
    pub bytes: u64,
}

/// The sampling error of an estimate made of `samples` periods of `period` bytes, as one
/// standard deviation: `period × √samples` (the samples of one call site over a run are a
/// count whose variance is about its mean, as for any rare-event count), and at least one
/// period, since a call site that moved less than one period may have no sample at all.
pub fn sampling_error(samples: u64, period: u64) -> u64 {
    ((samples as f64).sqrt().max(1.0) * period as f64).ceil() as u64
}

impl Stacks {
    /// The call sites of every process, most bytes first.
    pub fn call_sites(&self) -> Vec<CallSite> {
        let mut sites: Vec<CallSite> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for s in &self.stacks {
            let key = (s.pid, s.comm.as_str(), s.call_site.as_str());
            match index.get(&key) {
                Some(&i) => {
                    let site: &mut CallSite = &mut sites[i];
                    site.samples += s.samples;
                    site.bytes += s.bytes;
                }
                None => {
                    index.insert(key, sites.len());
                    sites.push(CallSite {
                        pid: s.pid,
                        comm: s.comm.clone(),
                        layer: s.layer,
                        call_site: s.call_site.clone(),
                        family: s.family,
                        direction: s.direction,
                        samples: s.samples,
                        bytes: s.bytes,
                    });
                }
            }
        }
        sites.sort_by(|a, b| (b.bytes, a.pid, &a.call_site).cmp(&(a.bytes, b.pid, &b.call_site)));
        sites
    }

    /// What makes these figures impossible, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.period_bytes == 0 {
            return Err("its period is 0 bytes".into());
        }
        let mut kept = 0u64;
        let mut frames = 0u64;
        let mut truncated = 0u64;
        for s in &self.stacks {
            if s.bytes != s.samples.saturating_mul(self.period_bytes) {
                return Err(format!(
                    "a stack of process {} has {} bytes, not its {} samples of {} bytes",
                    s.pid, s.bytes, s.samples, self.period_bytes
                ));
            }
            kept = kept.saturating_add(s.samples);
            frames = frames.saturating_add((s.frames.len() + s.kernel_frames.len()) as u64);
            if s.truncated {
                truncated = truncated.saturating_add(s.samples);
            }
        }
        if kept.saturating_add(self.dropped_samples) != self.samples {
            return Err(format!(
                "its stacks hold {kept} samples and {} were dropped, but it counts {}",
                self.dropped_samples, self.samples
            ));
        }
        if frames != self.frames || self.unresolved_frames > frames {
            return Err(format!(
                "it counts {} frames ({} unresolved) but its stacks hold {frames}",
                self.frames, self.unresolved_frames
            ));
        }
        if truncated != self.truncated_samples {
            return Err(format!(
                "it counts {} truncated samples but its stacks hold {truncated}",
                self.truncated_samples
            ));
        }
        Ok(())
    }
}
