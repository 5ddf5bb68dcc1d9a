//! Attaching the cpu layer (`zcprof_common::cpu`, opt-in with `--cpu`): its `perf_event`
//! program on the software cpu-clock event, one attachment per online CPU, sampling at
//! `--cpu-frequency` per CPU. Before the object loads it reads the kernel copy routines
//! from /proc/kallsyms ([`KERNEL_COPY_ROUTINES`]); once it has loaded it fills the two
//! lookup maps (kernel ranges; user-space files by build ID, from
//! [`crate::host::copy_routines`]). Its exit program is attached by the lifecycle layer.
//!
//! No hardware PMU is needed (cpu-clock is a software event); perf events must be
//! permitted (`perf_event_paranoid`, CAP_PERFMON): each CPU's attachment says why not.

use std::fs;

use anyhow::{Context as _, anyhow};
use aya::{
    Ebpf,
    maps::{Array, HashMap},
    programs::{
        PerfEvent,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use zcprof_common::cpu::{
    BuildId, COUNTING, FILE_RANGES, FileRanges, KCOPY_MAX, KCOPY_RANGES_MAP, Range,
    UCOPY_FILES_MAP, global, program,
};

use super::{Host, Layer, LayerProbes, LayerSpec, LoadOptions, Mechanism, Names, ProbeStatus};
use crate::host::{
    copy_routines::{self, CopyFile},
    kallsyms,
};

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Cpu,
    counting: Some(COUNTING),
    required: false,
    names,
    probes,
};

/// The kernel's copy routines, by symbol name, across the kernels zcprof runs on: x86-64's
/// user copies (`rep_movs_alternative` since 6.4; `copy_user_generic_unrolled`,
/// `copy_user_generic_string` and `copy_user_enhanced_fast_string` before), `memcpy` and
/// `memmove` (with their `__` aliases; `memcpy_erms` and `memcpy_orig` the variants
/// selected by alternatives), page copies, machine-check-safe copies, non-temporal copies
/// (`__copy_user_nocache`, `__memcpy_flushcache`), and the checksumming copy of the
/// network stack. Since 6.4, on a CPU with FSRM (this host's), `copy_to_user` and friends
/// are an inlined `rep movsb` inside their callers, so the iov_iter and user-copy
/// functions that contain it are copy routines too (`_copy_to_iter`, `copy_to_user_iter`,
/// `_copy_to_user`, …: a sample in them is almost always in the copy; the few instructions
/// around it count as copying, an overstatement stated in the README). Each range runs
/// from the symbol to the next symbol of the kernel text.
pub const KERNEL_COPY_ROUTINES: &[&str] = &[
    "rep_movs_alternative",
    "copy_user_generic_unrolled",
    "copy_user_generic_string",
    "copy_user_enhanced_fast_string",
    "copy_user_generic",
    "__copy_user_nocache",
    "memcpy",
    "__memcpy",
    "memcpy_erms",
    "memcpy_orig",
    "memmove",
    "__memmove",
    "copy_page",
    "copy_mc_fragile",
    "copy_mc_enhanced_fast_string",
    "__memcpy_flushcache",
    "csum_partial_copy_generic",
    "_copy_to_iter",
    "_copy_from_iter",
    "_copy_from_iter_nocache",
    "_copy_mc_to_iter",
    "copy_page_to_iter",
    "copy_page_from_iter",
    "copy_page_from_iter_atomic",
    "copy_folio_from_iter_atomic",
    "copy_to_user_iter",
    "copy_from_user_iter",
    "copy_to_user_iter_nofault",
    "_copy_to_user",
    "_copy_from_user",
    "copyout",
    "copyin",
    "raw_copy_from_user",
];

fn names() -> Names {
    Names {
        programs: vec![program::SAMPLE],
        maps: vec![KCOPY_RANGES_MAP, UCOPY_FILES_MAP],
        globals: vec![global::KCOPY_COUNT],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(Cpu {
        frequency: opts.cpu,
        kernel: Vec::new(),
    })
}

struct Cpu {
    /// `--cpu`: samples per second per CPU; `None`: the layer is off.
    frequency: Option<u64>,
    /// The kernel copy ranges found in kallsyms, sorted.
    kernel: Vec<Range>,
}

/// The ranges of `routines` in the text of /proc/kallsyms: from each symbol's address to
/// the next higher address of any text symbol; sorted, merged where they touch (aliases
/// such as `memcpy`/`__memcpy` are one range). Addresses shown as 0 (kptr_restrict) give
/// nothing.
pub fn kernel_ranges(listing: &str, routines: &[&str]) -> Vec<Range> {
    let mut text: Vec<u64> = Vec::new();
    let mut starts: Vec<u64> = Vec::new();
    // The core kernel's copy routines are not in modules.
    for symbol in kallsyms::symbols(listing).filter(|s| s.is_text() && s.module.is_none()) {
        let Some(addr) = symbol.address() else {
            continue;
        };
        text.push(addr);
        if routines.contains(&symbol.name) {
            starts.push(addr);
        }
    }
    text.sort_unstable();
    text.dedup();
    starts.sort_unstable();
    starts.dedup();
    let mut ranges: Vec<Range> = Vec::new();
    for start in starts {
        let next = text.partition_point(|&a| a <= start);
        let Some(&end) = text.get(next) else {
            continue;
        };
        match ranges.last_mut() {
            Some(last) if last.end >= start => last.end = last.end.max(end),
            _ => ranges.push(Range { start, end }),
        }
    }
    ranges.truncate(KCOPY_MAX as usize);
    ranges
}

/// One file's routines as the kernel map's value; `None` without a build ID.
fn file_value(file: &CopyFile) -> Option<(BuildId, FileRanges)> {
    let id = file.build_id?;
    let mut value = FileRanges::default();
    for (slot, r) in value.ranges.iter_mut().zip(&file.routines) {
        *slot = Range {
            start: r.start,
            end: r.end,
        };
    }
    value.count = file.routines.len().min(FILE_RANGES) as u32;
    Some((BuildId { id, _pad: 0 }, value))
}

impl Cpu {
    /// Fills the lookup maps; returns warnings for what cannot be classified.
    fn fill(&self, ebpf: &mut Ebpf) -> anyhow::Result<Vec<String>> {
        let mut warnings = Vec::new();
        let mut kernel: Array<_, Range> = Array::try_from(
            ebpf.map_mut(KCOPY_RANGES_MAP)
                .ok_or_else(|| anyhow!("map {KCOPY_RANGES_MAP} is missing"))?,
        )?;
        for (i, r) in self.kernel.iter().enumerate() {
            kernel
                .set(i as u32, r, 0)
                .context("filling the kernel copy ranges")?;
        }
        let mut files: HashMap<_, BuildId, FileRanges> = HashMap::try_from(
            ebpf.map_mut(UCOPY_FILES_MAP)
                .ok_or_else(|| anyhow!("map {UCOPY_FILES_MAP} is missing"))?,
        )?;
        let (found, problems) = copy_routines::machine();
        for file in &found {
            match file_value(file) {
                Some((key, value)) => files
                    .insert(key, value, 0)
                    .with_context(|| format!("adding {}'s copy routines", file.path))?,
                None => warnings.push(format!(
                    "cpu layer: {} has no GNU build ID: its copy routines' samples count as user time",
                    file.path
                )),
            }
        }
        for (path, why) in problems {
            warnings.push(format!(
                "cpu layer: copy routines of {path} not known ({why})"
            ));
        }
        Ok(warnings)
    }
}

impl LayerProbes for Cpu {
    fn globals(&mut self, host: &mut Host) -> Vec<(&'static str, u32)> {
        if self.frequency.is_none() {
            return Vec::new();
        }
        match fs::read_to_string("/proc/kallsyms") {
            Ok(text) => self.kernel = kernel_ranges(&text, KERNEL_COPY_ROUTINES),
            Err(err) => host
                .warnings
                .push(format!("cpu layer: /proc/kallsyms: {err}")),
        }
        if self.kernel.is_empty() {
            host.warnings.push(
                "cpu layer: no kernel copy routine found in /proc/kallsyms (addresses hidden by kptr_restrict?): kernel samples are not split".into(),
            );
        }
        vec![(global::KCOPY_COUNT, self.kernel.len() as u32)]
    }

    fn attach(&mut self, ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus> {
        let Some(frequency) = self.frequency else {
            return Vec::new();
        };
        let probe = |cpu: Option<u32>| match cpu {
            Some(cpu) => format!("perf_event:cpu-clock (cpu {cpu}, {frequency} Hz)"),
            None => format!("perf_event:cpu-clock ({frequency} Hz)"),
        };
        let failed = |why: String| vec![ProbeStatus::unavailable(Layer::Cpu, probe(None), why)];
        match self.fill(ebpf) {
            Ok(warnings) => host.warnings.extend(warnings),
            Err(err) => return failed(format!("{err:#}")),
        }
        let cpus = match aya::util::online_cpus() {
            Ok(cpus) => cpus,
            Err((path, err)) => return failed(format!("reading {path}: {err}")),
        };
        let prog: &mut PerfEvent = match super::program(ebpf, program::SAMPLE) {
            Ok(prog) => prog,
            Err(err) => return failed(format!("{err:#}")),
        };
        if let Err(err) = prog.load() {
            return failed(format!("loading {}: {err}", program::SAMPLE));
        }
        cpus.into_iter()
            .map(|cpu| {
                let attached = prog.attach(
                    PerfEventConfig::Software(SoftwareEvent::CpuClock),
                    PerfEventScope::AllProcessesOneCpu { cpu },
                    SamplePolicy::Frequency(frequency),
                    false,
                );
                match attached {
                    Ok(_) => {
                        ProbeStatus::attached(Layer::Cpu, probe(Some(cpu)), Mechanism::PerfEvent)
                    }
                    Err(err) => ProbeStatus::unavailable(
                        Layer::Cpu,
                        probe(Some(cpu)),
                        permission_hint(&anyhow!(err)),
                    ),
                }
            })
            .collect()
    }
}

/// The error, with what to check when perf events are not permitted.
fn permission_hint(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    if text.contains("EACCES")
        || text.contains("EPERM")
        || text.contains("ermission denied")
        || text.contains("not permitted")
    {
        format!(
            "{text}: perf events are not permitted (kernel.perf_event_paranoid = {}; CAP_PERFMON or root is needed)",
            crate::host::perf_event_paranoid()
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_run_to_the_next_text_symbol_and_aliases_merge() {
        let kallsyms = "\
ffffffff82238830 T copy_page
ffffffff82238900 t copy_page_regs
ffffffff82238940 T rep_movs_alternative
ffffffff822389c0 T some_function
ffffffff82243860 T memcpy
ffffffff82243860 T __memcpy
ffffffff82243880 t memcpy_orig
ffffffff822439c0 T memmove
ffffffff822439c0 T __memmove
ffffffff82243b00 T memset
ffffffff82250000 D memcpy_data
ffffffffc0000000 t memcpy [some_module]
";
        let r = kernel_ranges(kallsyms, KERNEL_COPY_ROUTINES);
        let want = [
            (0xffffffff82238830, 0xffffffff82238900),
            (0xffffffff82238940, 0xffffffff822389c0),
            (0xffffffff82243860, 0xffffffff82243b00),
        ];
        let got: Vec<(u64, u64)> = r.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(got, want);
        assert!(
            kernel_ranges(
                "0000000000000000 T memcpy\n0000000000000000 T memset\n",
                KERNEL_COPY_ROUTINES
            )
            .is_empty()
        );
    }

    #[test]
    fn this_hosts_kallsyms_has_the_copy_routines() {
        let Ok(text) = fs::read_to_string("/proc/kallsyms") else {
            return;
        };
        let r = kernel_ranges(&text, KERNEL_COPY_ROUTINES);
        if r.is_empty() {
            // Unprivileged: kptr_restrict shows zeros.
            return;
        }
        for w in r.windows(2) {
            assert!(w[0].end <= w[1].start, "sorted and disjoint: {r:x?}");
        }
        assert!(r.iter().all(|r| r.end - r.start < 1 << 16), "{r:x?}");
    }
}
