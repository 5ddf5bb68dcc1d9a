//! The stacks layer's symbolizer: the kernel's raw user frames to function, file:line and
//! module, even after the process exited.
//!
//! The kernel gives each frame either as (build ID, file offset), which names the code
//! whatever became of the process, or as a bare address (no GNU build ID in the file, or the
//! kernel could not take the process's mmap lock), which only the process's mappings turn
//! into a file offset. So [`Symbolizer::observe`] runs at a process's first sample, while it
//! most likely lives: it reads the mappings, opens each mapped file (see [`files`]) and
//! learns its build ID. [`Symbolizer::resolve`] later needs none of /proc, unless a frame is
//! unknown: then a live process's mappings are read again (a library loaded since), at most
//! once per [`REREAD_GAP`].
//!
//! Every frame comes back as at least one [`Symbol`], named or not (never dropped), with
//! the functions inlined at that point as extra frames before it. The innermost frame is
//! the exact instruction; the others are return addresses, so they are looked up one byte
//! earlier (in the call instruction), as perf does, for the caller's line.
//!
//! Memory is bounded: [`MAX_FILES`](files::MAX_FILES) files,
//! [`MAX_PROCESSES`] processes' mappings, [`MAX_CACHED`] looked-up offsets.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::host::{maps, procfs};

mod engine;
mod files;
#[cfg(test)]
mod tests;

use engine::{Engine, Located};
pub use files::BuildId;
use files::{FileId, Files};

/// How soon after a process's mappings were read a frame that they do not cover reads them
/// again: often enough to catch a library loaded after the first sample, rarely enough that
/// many frames of unmapped code (or of a process just gone) cost one read, not one each.
pub const REREAD_GAP: Duration = Duration::from_millis(100);

/// Processes whose mappings are kept; past it the least recently used is forgotten.
pub const MAX_PROCESSES: usize = 4096;

/// Looked-up (file, offset) pairs kept; past it the cache starts over. A stack has at most
/// 127 frames, so a full cache holds the distinct frames of some thousands of stacks.
pub const MAX_CACHED: usize = 65_536;

/// The module of a frame whose file is not known.
pub const UNKNOWN_MODULE: &str = "[unknown]";
/// The module of kernel frames (`--kernel-stacks`); their offset is the address.
pub const KERNEL_MODULE: &str = "[kernel]";

/// A user frame as the kernel reports it (`struct bpf_stack_build_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawFrame {
    /// The file with this GNU build ID (zero padded to 20 bytes), at this file offset.
    File { build_id: BuildId, offset: u64 },
    /// Only the address in the process is known.
    Ip(u64),
}

/// One frame, symbolized as far as it could be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Symbol {
    /// Demangled, without Rust's hash suffix; `None` when unresolved.
    pub function: Option<String>,
    /// The source file (full path as the debug info has it) and line of the frame's
    /// instruction, when the file has DWARF line info.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The binary or library, e.g. `/usr/lib/x86_64-linux-gnu/libc.so.6`, as the process
    /// saw its path; `[vdso]` and the like; [`UNKNOWN_MODULE`].
    pub module: String,
    /// The file offset in `module`, or the address when the module is unknown.
    pub offset: u64,
    /// A function inlined into the next frame (both stand for the same raw frame).
    pub inlined: bool,
}

impl Symbol {
    /// A frame that could not be named.
    pub fn unresolved(module: impl Into<String>, offset: u64) -> Symbol {
        Symbol {
            function: None,
            file: None,
            line: None,
            module: module.into(),
            offset,
            inlined: false,
        }
    }

    pub fn resolved(&self) -> bool {
        self.function.is_some()
    }

    /// `serve_file (server.rs:120)`, `serve_file`, or `libfoo.so+0x1234` when unresolved.
    pub fn display(&self) -> String {
        match (&self.function, &self.file, self.line) {
            (Some(function), Some(file), Some(line)) => {
                format!("{function} ({}:{line})", base_name(file))
            }
            (Some(function), Some(file), None) => format!("{function} ({})", base_name(file)),
            (Some(function), None, _) => function.clone(),
            (None, ..) => format!("{}+{:#x}", base_name(&self.module), self.offset),
        }
    }
}

/// The key of `map`'s entry used least recently, by the clock reading `last_used` gives.
fn least_recent<K: Copy, V>(map: &HashMap<K, V>, last_used: impl Fn(&V) -> u64) -> Option<K> {
    map.iter()
        .min_by_key(|(_, v)| last_used(v))
        .map(|(k, _)| *k)
}

/// The last component of a path (all of it when it has none).
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').find(|c| !c.is_empty()).unwrap_or(path)
}

/// What the symbolizer did, for the report ("N frames unresolved").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames returned by [`Symbolizer::resolve`] with and without a function (inlined
    /// frames count as frames).
    pub resolved_frames: u64,
    pub unresolved_frames: u64,
    /// Processes whose mappings are held now.
    pub processes_observed: usize,
    /// Files held open now.
    pub files_known: usize,
    /// Times a /proc/PID/maps was read (first sights, refreshes and misses).
    pub maps_reads: u64,
}

pub struct Symbolizer {
    files: Files,
    processes: HashMap<u32, Process>,
    /// What was found at (file, offset looked up); empty when nothing was.
    cache: HashMap<(FileId, u64), Arc<[Located]>>,
    engine: Engine,
    /// Kernel addresses named (`None`: kallsyms has nothing there).
    kernel: HashMap<u64, Option<String>>,
    stats: Stats,
    clock: u64,
}

/// A process's executable mappings, when they were read.
struct Process {
    mappings: Vec<Mapped>,
    /// Its executable's path (`/proc/PID/exe`).
    exe: Option<String>,
    read_at: Instant,
    last_used: u64,
}

struct Mapped {
    start: u64,
    end: u64,
    offset: u64,
    /// The mapping's path, pseudo-name or [`UNKNOWN_MODULE`].
    module: Arc<str>,
    file: Option<FileId>,
}

/// Where a raw frame points.
enum Target {
    /// Into a known file: report `offset`, look up `lookup`.
    Known {
        file: FileId,
        module: Arc<str>,
        offset: u64,
        lookup: u64,
    },
    Unknown {
        module: Arc<str>,
        offset: u64,
    },
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        Symbolizer {
            files: Files::default(),
            processes: HashMap::new(),
            cache: HashMap::new(),
            engine: Engine::default(),
            kernel: HashMap::new(),
            stats: Stats::default(),
            clock: 0,
        }
    }

    /// Learns `pid`'s mappings and files, unless already known (then this costs a hash
    /// look-up). Call it at the process's first sample; a process that is already gone is
    /// skipped (its frames with a build ID of a file known from another process still
    /// resolve).
    pub fn observe(&mut self, pid: u32) {
        if let Some(process) = self.processes.get_mut(&pid) {
            self.clock += 1;
            process.last_used = self.clock;
            return;
        }
        self.read(pid);
    }

    /// Learns the file at `path`, so that build-ID frames of it are named even
    /// when no process that maps it could be read in time: the program a command runs, known
    /// before it starts (a command that copies and exits may be gone before its mappings
    /// can be read, whatever zcprof does after the spawn).
    pub fn learn_file(&mut self, path: &std::path::Path) {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(path) = std::fs::canonicalize(path) else {
            return;
        };
        let (Some(text), Ok(meta)) = (path.to_str(), std::fs::metadata(&path)) else {
            return;
        };
        let dev = meta.dev();
        let mapping = maps::Mapping {
            start: 0,
            end: 0,
            offset: 0,
            dev: (libc::major(dev), libc::minor(dev)),
            inode: meta.ino(),
            path: Some(text.to_string()),
            deleted: false,
        };
        let _ = self.files.learn(std::process::id(), &mapping);
    }

    /// Reads `pid`'s mappings again now (e.g. after it loaded a library); `false` when it is
    /// gone, in which case what was known of it is kept.
    pub fn refresh(&mut self, pid: u32) -> bool {
        self.read(pid)
    }

    /// The path of `pid`'s executable as it was when its mappings were read, for
    /// [`callsite::call_site`](super::callsite::call_site).
    pub fn main_binary(&self, pid: u32) -> Option<&str> {
        self.processes.get(&pid)?.exe.as_deref()
    }

    /// Symbolizes one stack of `pid` (innermost frame first); at least one [`Symbol`] per
    /// frame, in order, the functions inlined at a frame before it.
    pub fn resolve(&mut self, pid: u32, frames: &[RawFrame]) -> Vec<Symbol> {
        let targets: Vec<Target> = frames
            .iter()
            .enumerate()
            .map(|(i, frame)| self.target(pid, *frame, i == 0))
            .collect();
        self.look_up(&targets);
        let mut out = Vec::with_capacity(frames.len());
        for target in targets {
            match target {
                Target::Known {
                    file,
                    module,
                    offset,
                    lookup,
                } => match self.cache.get(&(file, lookup)) {
                    Some(found) if !found.is_empty() => out.extend(found.iter().map(|f| Symbol {
                        function: Some(f.function.clone()),
                        file: f.file.clone(),
                        line: f.line,
                        module: module.to_string(),
                        offset,
                        inlined: f.inlined,
                    })),
                    _ => out.push(Symbol::unresolved(&*module, offset)),
                },
                Target::Unknown { module, offset } => {
                    out.push(Symbol::unresolved(&*module, offset));
                }
            }
        }
        let resolved = out.iter().filter(|s| s.resolved()).count() as u64;
        self.stats.resolved_frames += resolved;
        self.stats.unresolved_frames += out.len() as u64 - resolved;
        out
    }

    /// Symbolizes a kernel stack (innermost first): one [`Symbol`] per address, in module
    /// [`KERNEL_MODULE`], named from /proc/kallsyms (cached by address).
    pub fn resolve_kernel(&mut self, addrs: &[u64]) -> Vec<Symbol> {
        let missing: Vec<u64> = addrs
            .iter()
            .copied()
            .filter(|a| !self.kernel.contains_key(a))
            .collect();
        if !missing.is_empty() {
            let found = self.engine.kernel(&missing);
            for (addr, found) in missing.into_iter().zip(found) {
                // The innermost name is the function holding the address (kallsyms has
                // no inlining).
                let function = found.into_iter().last().map(|l| l.function);
                self.kernel.insert(addr, function);
            }
        }
        addrs
            .iter()
            .map(|addr| Symbol {
                function: self.kernel.get(addr).cloned().flatten(),
                file: None,
                line: None,
                module: KERNEL_MODULE.into(),
                offset: *addr,
                inlined: false,
            })
            .collect()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            processes_observed: self.processes.len(),
            files_known: self.files.len(),
            ..self.stats
        }
    }

    /// Whether `addr` lies in one of `pid`'s executable file mappings as they were read
    /// (reading a live process's again when none covers it).
    pub fn is_code(&mut self, pid: u32, addr: u64) -> bool {
        matches!(
            self.target(pid, RawFrame::Ip(addr), false),
            Target::Known { .. }
        )
    }

    /// Whether `offset` of the known file with `build_id` lies in one of its executable
    /// segments (no process needed: the file is held open).
    pub fn is_code_in_file(&mut self, build_id: &BuildId, offset: u64) -> bool {
        let Some(id) = self.files.by_build_id(build_id) else {
            return false;
        };
        self.files.get(id).is_some_and(|f| {
            f.code
                .iter()
                .any(|&(start, end)| (start..end).contains(&offset))
        })
    }

    /// Where `frame` of `pid` points, reading a live process's mappings again when it is
    /// not covered by what is known.
    fn target(&mut self, pid: u32, frame: RawFrame, leaf: bool) -> Target {
        let found = self.find(pid, frame);
        let found = match found {
            None if self.reread_on_miss(pid) => self.find(pid, frame),
            found => found,
        };
        let (file, module, offset) = match (found, frame) {
            (Some(found), _) => found,
            (None, RawFrame::File { offset, .. } | RawFrame::Ip(offset)) => {
                (None, UNKNOWN_MODULE.into(), offset)
            }
        };
        match file {
            Some(file) => Target::Known {
                file,
                module,
                offset,
                // A return address follows the call: its line is that of the byte before.
                lookup: if leaf {
                    offset
                } else {
                    offset.saturating_sub(1)
                },
            },
            None => Target::Unknown { module, offset },
        }
    }

    /// The file (if one can be read), module name and file offset of `frame`.
    fn find(&mut self, pid: u32, frame: RawFrame) -> Option<(Option<FileId>, Arc<str>, u64)> {
        match frame {
            RawFrame::File { build_id, offset } => {
                let id = self.files.by_build_id(&build_id)?;
                let file = self.files.get(id)?;
                if offset >= file.size {
                    return Some((None, UNKNOWN_MODULE.into(), offset));
                }
                Some((Some(id), file.path.clone(), offset))
            }
            RawFrame::Ip(addr) => {
                let process = self.processes.get(&pid)?;
                let i = process.mappings.partition_point(|m| m.end <= addr);
                let m = process.mappings.get(i).filter(|m| m.start <= addr)?;
                Some((m.file, m.module.clone(), addr - m.start + m.offset))
            }
        }
    }

    fn reread_on_miss(&mut self, pid: u32) -> bool {
        match self.processes.get(&pid) {
            Some(p) if p.read_at.elapsed() < REREAD_GAP => false,
            _ => self.read(pid),
        }
    }

    /// Reads `pid`'s mappings and opens their files; `false` when the process is gone.
    fn read(&mut self, pid: u32) -> bool {
        self.stats.maps_reads += 1;
        self.clock += 1;
        let now = Instant::now();
        let Ok(mappings) = maps::executable(pid) else {
            // Gone (or never there): keep what is known, and remember when it was tried.
            let process = self.processes.entry(pid).or_insert_with(|| Process {
                mappings: Vec::new(),
                exe: None,
                read_at: now,
                last_used: 0,
            });
            process.read_at = now;
            self.bound_processes();
            return false;
        };
        let mappings = mappings
            .iter()
            .map(|m| Mapped {
                start: m.start,
                end: m.end,
                offset: m.offset,
                module: m.path.as_deref().unwrap_or(UNKNOWN_MODULE).into(),
                file: m.is_file().then(|| self.files.learn(pid, m)).flatten(),
            })
            .collect();
        for closed in self.files.take_closed() {
            self.engine.evict(&closed);
        }
        let exe = procfs::exe(pid);
        self.processes.insert(
            pid,
            Process {
                mappings,
                exe,
                read_at: now,
                last_used: self.clock,
            },
        );
        self.bound_processes();
        true
    }

    fn bound_processes(&mut self) {
        while self.processes.len() > MAX_PROCESSES {
            let Some(oldest) = least_recent(&self.processes, |p| p.last_used) else {
                break;
            };
            self.processes.remove(&oldest);
        }
    }

    /// Looks up every known target not in the cache, one request per file.
    fn look_up(&mut self, targets: &[Target]) {
        let mut wanted: BTreeMap<FileId, Vec<u64>> = BTreeMap::new();
        for target in targets {
            if let Target::Known { file, lookup, .. } = target
                && !self.cache.contains_key(&(*file, *lookup))
            {
                wanted.entry(*file).or_default().push(*lookup);
            }
        }
        if wanted.is_empty() {
            return;
        }
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        for (file, mut offsets) in wanted {
            offsets.sort_unstable();
            offsets.dedup();
            let found = match self.files.get(file) {
                Some(known) => self.engine.symbolize(&known.read_path(), &offsets),
                None => vec![Vec::new(); offsets.len()],
            };
            for (offset, found) in offsets.into_iter().zip(found) {
                self.cache.insert((file, offset), found.into());
            }
        }
    }
}
