//! Attaching the mapped layer (`zcprof_common::mapped`): `filemap:mm_filemap_fault` and
//! `filemap:mm_filemap_map_pages` (Linux 6.12 and later), their field offsets and sizes
//! from tracefs. Its exit program is attached by the lifecycle layer, after `process_exit`.
//!
//! On an older kernel (Debian's 6.1) neither tracepoint exists: the layer is unavailable
//! with that reason, and the programs, which load everywhere, are never attached.

use std::path::Path;

use anyhow::anyhow;
use aya::Ebpf;
use zcprof_common::mapped::{COUNTING, MARKS_MAP, PAGE_SIZE, global, program};

use super::{
    Host, Layer, LayerProbes, LayerSpec, LoadOptions, Mechanism, Names, ProbeStatus,
    attach_tracepoint,
};
use crate::tracefs;

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Mapped,
    counting: Some(COUNTING),
    required: false,
    names,
    probes,
};

/// The tracepoints, as `(program, event)`.
const EVENTS: [(&str, &str); 2] = [
    (program::FAULT, "mm_filemap_fault"),
    (program::MAP_PAGES, "mm_filemap_map_pages"),
];

/// Why the layer cannot attach on a kernel without the tracepoints.
pub const TOO_OLD: &str = "no filemap:mm_filemap_* tracepoints (Linux < 6.12)";

fn names() -> Names {
    Names {
        programs: EVENTS.iter().map(|(program, _)| *program).collect(),
        maps: vec![MARKS_MAP],
        globals: vec![
            global::FAULT_INO,
            global::FAULT_DEV,
            global::FAULT_INDEX,
            global::MAP_INO,
            global::MAP_DEV,
            global::MAP_INDEX,
            global::MAP_LAST_INDEX,
        ],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(MappedLayer {
        disabled: opts.disabled.contains(&Layer::Mapped),
        plan: Err("not planned yet".into()),
    })
}

struct MappedLayer {
    /// `--disable-layer mapped`.
    disabled: bool,
    /// `Ok` when the offsets were found, else why the layer cannot attach.
    plan: Result<(), String>,
}

/// Both records' offsets as globals, or why they are unusable. `i_ino` and `index` are
/// `unsigned long` (8 bytes on 64-bit), `s_dev` a `dev_t` (4).
fn offsets(root: &Path) -> Result<Vec<(&'static str, u32)>, String> {
    if EVENTS
        .iter()
        .any(|(_, event)| !tracefs::exists(root, "filemap", event))
    {
        return Err(TOO_OLD.into());
    }
    let read = |event: &str, wanted: &[(&'static str, &str, u32)]| {
        tracefs::globals(root, "filemap", event, wanted)
    };
    let mut globals = read(
        "mm_filemap_fault",
        &[
            (global::FAULT_INO, "i_ino", 8),
            (global::FAULT_DEV, "s_dev", 4),
            (global::FAULT_INDEX, "index", 8),
        ],
    )?;
    globals.extend(read(
        "mm_filemap_map_pages",
        &[
            (global::MAP_INO, "i_ino", 8),
            (global::MAP_DEV, "s_dev", 4),
            (global::MAP_INDEX, "index", 8),
            (global::MAP_LAST_INDEX, "last_index", 8),
        ],
    )?);
    Ok(globals)
}

/// This machine's page size (the kernel side converts pages with [`PAGE_SIZE`]).
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(0)
}

impl LayerProbes for MappedLayer {
    fn globals(&mut self, host: &mut Host) -> Vec<(&'static str, u32)> {
        if self.disabled {
            self.plan = Err("disabled (--disable-layer mapped)".into());
            return Vec::new();
        }
        if page_size() != PAGE_SIZE {
            self.plan = Err(format!(
                "the page size is {} B, the layer counts {PAGE_SIZE}-byte pages",
                page_size()
            ));
            return Vec::new();
        }
        let Some(root) = host.tracefs.as_deref() else {
            self.plan = Err("tracefs is unavailable".into());
            return Vec::new();
        };
        match offsets(root) {
            Ok(globals) => {
                self.plan = Ok(());
                globals
            }
            Err(why) => {
                self.plan = Err(why);
                Vec::new()
            }
        }
    }

    fn attach(&mut self, ebpf: &mut Ebpf, _host: &mut Host) -> Vec<ProbeStatus> {
        EVENTS
            .iter()
            .map(|&(name, event)| {
                let probe = format!("filemap:{event}");
                let result = match &self.plan {
                    Ok(()) => attach_tracepoint(ebpf, name, "filemap", event),
                    Err(why) => Err(anyhow!("{why}")),
                };
                match result {
                    Ok(()) => ProbeStatus::attached(Layer::Mapped, probe, Mechanism::Tracepoint),
                    Err(err) => ProbeStatus::unavailable(Layer::Mapped, probe, format!("{err:#}")),
                }
            })
            .collect()
    }
}
