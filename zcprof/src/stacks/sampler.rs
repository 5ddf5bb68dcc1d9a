//! The stacks layer's reader: a thread of its own drains `STACK_EVENTS` as samples arrive,
//! has each new process's mappings read at its first sample (while it is most likely still
//! alive), and aggregates; [`Sampler::report`] symbolizes what was aggregated.
//!
//! Not on the collector's task: reading a process's maps and its files' build IDs takes
//! milliseconds, which would hold back the lifecycle ring buffer (whose records must not
//! be lost) on the collector's single-threaded runtime.

use std::{
    collections::HashSet,
    os::fd::{AsFd as _, AsRawFd as _},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::maps::{Map, MapData, RingBuf};

use super::{
    sample,
    symbolize::{Symbol, Symbolizer},
    table::Table,
};

/// How long the thread waits for a wakeup before it drains anyway: the kernel wakes it
/// only for an entry's first sample (a wakeup per sample cost the sampled syscalls more
/// than the sample itself), and 4 MiB hold some 20,000 typical samples, more than 50 ms of
/// a 10 GiB/s copy makes.
const POLL: Duration = Duration::from_millis(50);
/// The pause after each drain.
const PAUSE: Duration = Duration::from_millis(5);

pub struct Sampler {
    inner: Arc<Mutex<Inner>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Bytes per period.
    pub period: u64,
}

struct Inner {
    ring: RingBuf<MapData>,
    /// When the table started: samples are filed by whole seconds since then.
    started: Instant,
    table: Table,
    symbolizer: Symbolizer,
    /// Processes whose mappings were read at their first sample.
    observed: HashSet<u32>,
    /// Records that were not well-formed samples.
    malformed: u64,
}

/// Puts back the caller of a syscall wrapper that keeps no frame of its own (glibc's
/// `read`; Go's `Syscall6`), which a frame-pointer walk skips: the word at the top of
/// the stack is then the return address into that caller. When the wrapper does keep
/// a frame, the word is its saved frame pointer (a stack address) or a local, which
/// does not point into the process's code and is left out.
///
/// Whether the word is code is known from the process's mappings; when they could not
/// be read (the process exited first), from the chain's first return address, which is
/// the stack's second frame: the kernel gave that one as a file offset, so the word is
/// at the same distance from it in the same file if it lies in that file's code (the
/// wrapper's caller and its caller are one program's code).
pub(crate) fn restore_leaf_caller(symbolizer: &mut Symbolizer, sample: &mut sample::Sample) {
    use super::symbolize::RawFrame;
    let word = sample.leaf_return;
    if word == 0 || sample.frames.is_empty() {
        return;
    }
    if symbolizer.is_code(sample.tgid, word) {
        sample.frames.insert(1, RawFrame::Ip(word));
        return;
    }
    let (Some(&RawFrame::File { build_id, offset }), chain) =
        (sample.frames.get(1), sample.chain_return)
    else {
        return;
    };
    if chain == 0 {
        return;
    }
    let at = offset
        .checked_add(word)
        .and_then(|sum| sum.checked_sub(chain));
    if let Some(at) = at.filter(|at| symbolizer.is_code_in_file(&build_id, *at)) {
        sample.frames.insert(
            1,
            RawFrame::File {
                build_id,
                offset: at,
            },
        );
    }
}

impl Inner {
    fn drain(&mut self) {
        while let Some(item) = self.ring.next() {
            let Some(sample) = sample::decode(&item) else {
                self.malformed += 1;
                continue;
            };
            drop(item);
            if self.observed.insert(sample.tgid) {
                self.symbolizer.observe(sample.tgid);
            }
            let mut sample = sample;
            restore_leaf_caller(&mut self.symbolizer, &mut sample);
            let now = self.started.elapsed().as_secs();
            self.table.add(sample, now);
        }
    }
}

impl Sampler {
    /// Starts reading the `STACK_EVENTS` ring buffer `map`; `period` is the layer's.
    pub fn start(map: Map, period: u32) -> anyhow::Result<Sampler> {
        let ring = RingBuf::try_from(map).context("opening the stack samples' ring buffer")?;
        // zcprof's own libraries are most programs' too (libc, the dynamic loader): known
        // from the start, a process that exits before its first sample is read still has
        // its library frames named.
        let mut symbolizer = Symbolizer::new();
        symbolizer.observe(std::process::id());
        let inner = Arc::new(Mutex::new(Inner {
            ring,
            started: Instant::now(),
            table: Table::default(),
            symbolizer,
            observed: HashSet::new(),
            malformed: 0,
        }));
        let fd = lock(&inner).ring.as_fd().as_raw_fd();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("zcprof-stacks".into())
            .spawn({
                let (inner, stop) = (inner.clone(), stop.clone());
                move || {
                    // The kernel wakes this thread only for an entry's first sample (a
                    // process new to it, whose mappings must be read while it lives); the
                    // rest wait for the next drain. The pause after each drain keeps a
                    // stream of samples from being drained one by one.
                    while !stop.load(Ordering::Relaxed) {
                        let mut poll = libc::pollfd {
                            fd,
                            events: libc::POLLIN,
                            revents: 0,
                        };
                        // SAFETY: one valid pollfd; the ring buffer (and so `fd`) lives in
                        // `inner` until this thread has been joined.
                        unsafe { libc::poll(&mut poll, 1, POLL.as_millis() as i32) };
                        lock(&inner).drain();
                        std::thread::sleep(PAUSE);
                    }
                }
            })
            .context("starting the stack sampler's thread")?;
        Ok(Sampler {
            inner,
            stop,
            thread: Some(thread),
            period: u64::from(period),
        })
    }

    /// Learns `program`, runs `spawn` and reads the spawned process's mappings as soon as
    /// it returns, with the samples held back meanwhile: were the reader to see the
    /// process's first sample first, it could find the process gone (a command that copies
    /// and exits at once) and the mappings would never be read. Even so the command may
    /// have run to its end by then (the mappings are empty): its program's frames are
    /// named from the file learnt before, its libraries' from zcprof's own (libc).
    pub fn observe_spawned<T>(
        &self,
        program: Option<&std::path::Path>,
        spawn: impl FnOnce() -> Option<(T, u32)>,
    ) -> Option<(T, u32)> {
        let mut inner = lock(&self.inner);
        // The program first: a command may run to its end before spawn returns here.
        if let Some(program) = program {
            inner.symbolizer.learn_file(program);
        }
        let spawned = spawn()?;
        if inner.observed.insert(spawned.1) {
            inner.symbolizer.observe(spawned.1);
        }
        Some(spawned)
    }

    /// Every stack aggregated so far, symbolized, with what the estimate is made of;
    /// `lost` is the kernel's count of samples it could not send (`counter::STACK_LOST`).
    pub fn report(&self, lost: u64) -> Report {
        let mut inner = lock(&self.inner);
        inner.drain();
        let Inner {
            table,
            symbolizer,
            malformed,
            ..
        } = &mut *inner;
        let mut stacks: Vec<Stack> = table
            .iter()
            .map(|(key, tally)| Stack {
                tgid: key.tgid,
                slot: key.slot,
                thread: tally.thread.clone(),
                periods: tally.periods,
                samples: tally.samples,
                frames: symbolizer.resolve(key.tgid, &key.frames),
                kernel: match super::origin(key.slot) {
                    Some(origin) if origin.kernel => {
                        super::from_probed_function(&origin, symbolizer.resolve_kernel(&key.kernel))
                    }
                    _ => Vec::new(),
                },
                main_binary: symbolizer.main_binary(key.tgid).map(String::from),
            })
            .collect();
        stacks.sort_by(|a, b| {
            (b.periods, a.tgid, a.slot, &a.thread).cmp(&(a.periods, b.tgid, b.slot, &b.thread))
        });
        Report {
            period: self.period,
            samples: table.samples,
            periods: table.periods,
            lost,
            dropped_samples: table.dropped_samples,
            malformed: *malformed,
            stacks,
        }
    }
}

impl Sampler {
    /// Process `tgid`'s call sites over the last `seconds` (at most the table's minute),
    /// symbolized: `(syscall row, call site, periods)`, most first. Only that process's
    /// stacks are symbolized (names are cached), so the dashboard can ask every refresh.
    pub fn recent(&self, tgid: u32, seconds: u64) -> Vec<(u32, String, u64)> {
        let mut inner = lock(&self.inner);
        inner.drain();
        let now = inner.started.elapsed().as_secs();
        let Inner {
            table, symbolizer, ..
        } = &mut *inner;
        let mut sites: Vec<(u32, String, u64)> = Vec::new();
        for (key, tally) in table.iter().filter(|(k, _)| k.tgid == tgid) {
            let periods = tally.since(now, seconds);
            if periods == 0 {
                continue;
            }
            let Some(origin) = super::origin(key.slot) else {
                continue;
            };
            let frames = symbolizer.resolve(tgid, &key.frames);
            let kernel =
                super::from_probed_function(&origin, symbolizer.resolve_kernel(&key.kernel));
            let site = super::site_name(&origin, &frames, &kernel, symbolizer.main_binary(tgid));
            match sites
                .iter_mut()
                .find(|(slot, s, _)| *slot == key.slot && *s == site)
            {
                Some((_, _, p)) => *p += periods,
                None => sites.push((key.slot, site, periods)),
            }
        }
        sites.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        sites
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic on the sampler's thread leaves the table as it was: still worth reporting.
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The stacks layer's estimate: which stacks moved the bytes, `periods × period` each.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub period: u64,
    /// Samples taken and the periods they crossed (those of dropped stacks included).
    pub samples: u64,
    pub periods: u64,
    /// Samples the kernel could not send (its ring buffer was full).
    pub lost: u64,
    /// Samples of stacks beyond the table's bound: counted in `samples`, not in `stacks`.
    pub dropped_samples: u64,
    /// Records that were not well-formed samples.
    pub malformed: u64,
    /// Largest first.
    pub stacks: Vec<Stack>,
}

/// One aggregated stack, symbolized (innermost frame first).
#[derive(Clone, Debug)]
pub struct Stack {
    pub tgid: u32,
    /// The syscall layer's row whose bytes these are, or with `KERNEL_BIT` the kernel
    /// layer's probe ([`super::origin`]).
    pub slot: u32,
    pub thread: String,
    pub periods: u64,
    pub samples: u64,
    pub frames: Vec<Symbol>,
    /// The kernel frames, innermost first, for a kernel-layer sample (`--kernel-stacks`).
    pub kernel: Vec<Symbol>,
    /// The process's executable, when its mappings were read: its frames are the
    /// program's own code.
    pub main_binary: Option<String>,
}
