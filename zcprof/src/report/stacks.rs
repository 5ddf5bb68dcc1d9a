//! The stacks layer's estimate as people read it: per process, the call sites that moved
//! the most bytes (`run --stacks`), from the same [`Stacks`] a recording holds.

use std::collections::{BTreeMap, HashMap};

use zcprof_recording::{CallSite, FrameRecord, StackLayer, StackRecord, Stacks, sampling_error};

use super::figures;
use crate::{
    model::{Model, ProcId},
    stacks::{self, callsite, symbolize::Symbol},
    units,
};

/// The stacks of `members` (process instances of `model`; zcprof's own process never among
/// them) in a recording's shape. Samples of other processes are left out of every figure
/// but `lost_samples`, which the kernel counts machine-wide.
pub fn build(report: &stacks::Report, model: &Model, members: &[ProcId]) -> Stacks {
    let own = std::process::id();
    let comms: HashMap<u32, &str> = members
        .iter()
        .filter_map(|id| model.process(*id))
        .filter(|p| p.tgid != own)
        .map(|p| (p.tgid, p.name()))
        .collect();
    let period = report.period;
    let mut out = Stacks {
        period_bytes: period,
        lost_samples: report.lost,
        ..Stacks::default()
    };
    for stack in &report.stacks {
        let Some(comm) = comms.get(&stack.tgid) else {
            continue;
        };
        let Some(origin) = stacks::origin(stack.slot) else {
            continue;
        };
        let truncated = callsite::truncated(&stack.frames);
        let call_site = stacks::site_name(
            &origin,
            &stack.frames,
            &stack.kernel,
            stack.main_binary.as_deref(),
        );
        let frames: Vec<FrameRecord> = stack.frames.iter().map(frame).collect();
        let kernel_frames: Vec<FrameRecord> = stack.kernel.iter().map(frame).collect();
        out.samples += stack.periods;
        out.frames += frames.len() as u64;
        out.frames += kernel_frames.len() as u64;
        out.unresolved_frames += stack
            .frames
            .iter()
            .chain(&stack.kernel)
            .filter(|f| !f.resolved())
            .count() as u64;
        if truncated {
            out.truncated_samples += stack.periods;
        }
        out.stacks.push(StackRecord {
            pid: stack.tgid,
            comm: (*comm).to_string(),
            thread: stack.thread.clone(),
            layer: if origin.kernel {
                StackLayer::Kernel
            } else {
                StackLayer::Syscall
            },
            syscall: origin.name.to_string(),
            family: figures::family(origin.family),
            direction: figures::direction(origin.direction),
            samples: stack.periods,
            bytes: stack.periods * period,
            truncated,
            call_site,
            frames,
            kernel_frames,
        });
    }
    // The dropped samples are machine-wide too: all of them are said, none are kept.
    out.dropped_samples = report.dropped_samples;
    out.samples += report.dropped_samples;
    out
}

fn frame(s: &Symbol) -> FrameRecord {
    FrameRecord {
        function: s.function.clone(),
        file: s.file.clone(),
        line: s.line,
        module: s.module.clone(),
        offset: s.offset,
    }
}

/// The text section: how the estimate was made and what it misses, then each process's
/// `shown` largest call sites.
pub fn text(stacks: &Stacks, shown: usize) -> String {
    let period = stacks.period_bytes;
    let mut out = format!(
        "\nstacks layer (estimated: one sample per {} of a process's bytes of one syscall, ± {} × √samples): {}\n",
        units::bytes(period as f64),
        units::bytes(period as f64),
        quality(stacks),
    );
    // The kernel layer's samples apportion the same bytes again, where the kernel copies
    // them: their shares are of their own sum.
    let mut by_process: BTreeMap<(u32, &str, StackLayer), Vec<&CallSite>> = BTreeMap::new();
    let sites = stacks.call_sites();
    for site in &sites {
        by_process
            .entry((site.pid, site.comm.as_str(), site.layer))
            .or_default()
            .push(site);
    }
    if by_process.is_empty() {
        out.push_str("  no stack samples: no process moved a period's worth of bytes\n");
    }
    for ((pid, comm, layer), sites) in by_process {
        let sampled: u64 = sites.iter().map(|s| s.bytes).sum();
        let at = match layer {
            StackLayer::Syscall => "",
            StackLayer::Kernel => ", at the kernel layer's copy probes (--kernel-stacks)",
        };
        out.push_str(&format!(
            "  process {pid} {comm}{at}: {} call site{}, {} sampled\n",
            sites.len(),
            if sites.len() == 1 { "" } else { "s" },
            units::bytes(sampled as f64),
        ));
        for site in sites.iter().take(shown) {
            out.push_str(&format!(
                "    {:>10} ± {:<10} {:>4}  {}\n",
                units::bytes(site.bytes as f64),
                units::bytes(sampling_error(site.samples, period) as f64),
                units::percent(Some(site.bytes as f64 / sampled.max(1) as f64)),
                site.call_site,
            ));
        }
        if sites.len() > shown {
            out.push_str(&format!(
                "    … and {} more (run --json lists every stack)\n",
                sites.len() - shown
            ));
        }
    }
    out
}

/// `72 samples, 0 lost, 0 dropped; 0 truncated; 0 of 512 frames unresolved`, with the
/// frame-pointer hint when stacks were cut short.
fn quality(s: &Stacks) -> String {
    let mut line = format!(
        "{} samples, {} lost, {} dropped; {} of {} frames unresolved",
        units::count(s.samples),
        units::count(s.lost_samples),
        units::count(s.dropped_samples),
        units::count(s.unresolved_frames),
        units::count(s.frames),
    );
    if s.truncated_samples > 0 {
        line.push_str(&format!(
            "; {} of the samples' stacks look cut short: build the program with frame pointers (-C force-frame-pointers=yes, -fno-omit-frame-pointer)",
            units::percent(Some(s.truncated_samples as f64 / s.samples.max(1) as f64)),
        ));
    }
    line
}
