//! blazesym's symbolizer on a thread of its own: file offsets in an ELF file to the function
//! there, its source line and the functions inlined into it.
//!
//! Why a thread: `blazesym::symbolize::Symbolizer` is not `Send` (it shares its caches
//! through `Rc`), while zcprof's symbolizer lives behind a mutex that the stack sampler's
//! thread and the reporting thread share. Its maintainers' advice for that case
//! (libbpf/blazesym#930) is one symbolizer per thread; here that thread is the only one that
//! ever touches it, and it keeps blazesym's parsed ELF and DWARF data between requests. A
//! request costs a channel round trip (microseconds) on top of the lookup itself.
//!
//! Should the thread die (a panic inside blazesym on a malformed file), the request in
//! flight answers "not found" and the next one starts a fresh thread.

use std::{
    path::{Path, PathBuf},
    sync::mpsc::{self, Receiver, Sender},
    thread::JoinHandle,
};

use blazesym::MaybeDefault;
use blazesym::symbolize::{
    CodeInfo, Input, Sym, Symbolized, Symbolizer, evict,
    source::{Elf, Kernel, Source},
};

/// One function found at a file offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// Demangled, without Rust's hash suffix.
    pub function: String,
    /// The source file and line of the instruction within `function`.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Inlined into the function of the next entry (which holds the instruction).
    pub inlined: bool,
}

enum Request {
    /// File offsets in the ELF file at `path`; answered with one `Vec<Located>` each,
    /// innermost function first, empty where no function was found.
    Symbolize { path: PathBuf, offsets: Vec<u64> },
    /// Kernel addresses, from /proc/kallsyms; answered like `Symbolize`.
    Kernel { addrs: Vec<u64> },
    /// Drop what was parsed of `path` (and blazesym's descriptor for it).
    Evict { path: PathBuf },
}

struct Worker {
    requests: Sender<Request>,
    replies: Receiver<Vec<Vec<Located>>>,
    thread: JoinHandle<()>,
}

/// The handle to the thread, started at the first request.
#[derive(Default)]
pub struct Engine {
    worker: Option<Worker>,
}

impl Engine {
    /// The functions at `offsets` of `path`: one entry per offset, in order.
    pub fn symbolize(&mut self, path: &Path, offsets: &[u64]) -> Vec<Vec<Located>> {
        let request = Request::Symbolize {
            path: path.to_path_buf(),
            offsets: offsets.to_vec(),
        };
        self.ask(request, offsets.len())
    }

    /// The kernel functions at `addrs` (the running kernel's, by /proc/kallsyms): one
    /// entry per address, in order.
    pub fn kernel(&mut self, addrs: &[u64]) -> Vec<Vec<Located>> {
        let request = Request::Kernel {
            addrs: addrs.to_vec(),
        };
        self.ask(request, addrs.len())
    }

    fn ask(&mut self, request: Request, n: usize) -> Vec<Vec<Located>> {
        let answer = self
            .worker()
            .and_then(|w| w.requests.send(request).ok().map(|()| w))
            .and_then(|w| w.replies.recv().ok());
        match answer {
            Some(found) if found.len() == n => found,
            _ => {
                // The thread is gone (or never started): start anew next time.
                self.stop();
                vec![Vec::new(); n]
            }
        }
    }

    /// Forgets `path`: its descriptor is about to be closed, and the number reused.
    pub fn evict(&mut self, path: &Path) {
        if let Some(worker) = &self.worker {
            let _ = worker.requests.send(Request::Evict {
                path: path.to_path_buf(),
            });
        }
    }

    fn worker(&mut self) -> Option<&Worker> {
        if self.worker.is_none() {
            self.worker = start();
        }
        self.worker.as_ref()
    }

    fn stop(&mut self) {
        if let Some(worker) = self.worker.take() {
            drop(worker.requests);
            let _ = worker.thread.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start() -> Option<Worker> {
    let (requests, incoming) = mpsc::channel();
    let (outgoing, replies) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("zcprof-symbolize".into())
        .spawn(move || serve(&incoming, &outgoing))
        .ok()?;
    Some(Worker {
        requests,
        replies,
        thread,
    })
}

/// The thread's loop, until the engine drops its sender.
fn serve(incoming: &Receiver<Request>, outgoing: &Sender<Vec<Vec<Located>>>) {
    // Debug info inside the file is read (a program's own lines and inlined functions),
    // separate debug files under /usr/lib/debug are not: for glibc with libc6-dbg they cost
    // ~230 ms at the first frame instead of ~3 ms, and name `read` as `__GI___libc_read`,
    // while library frames' lines are never shown (call sites skip them).
    let mut symbolizer = Symbolizer::builder()
        .enable_code_info(true)
        .enable_inlined_fns(true)
        .enable_demangling(true)
        .set_debug_dirs(Some::<&[&Path]>(&[]))
        .build();
    while let Ok(request) = incoming.recv() {
        match request {
            Request::Symbolize { path, offsets } => {
                let source = Source::Elf(Elf::new(path));
                let found = lookup(
                    &symbolizer,
                    &source,
                    Input::FileOffset(&offsets),
                    offsets.len(),
                );
                if outgoing.send(found).is_err() {
                    return;
                }
            }
            Request::Kernel { addrs } => {
                // kallsyms only: a vmlinux image would have to match the running kernel,
                // and kallsyms names every function (modules' too) without one.
                let source = Source::Kernel(Kernel {
                    vmlinux: MaybeDefault::None,
                    debug_syms: false,
                    ..Kernel::default()
                });
                let found = lookup(&symbolizer, &source, Input::AbsAddr(&addrs), addrs.len());
                if outgoing.send(found).is_err() {
                    return;
                }
            }
            Request::Evict { path } => {
                // Evicting what was never loaded is no error; a failure leaves memory in
                // use, which the next eviction may still free.
                let _ = symbolizer.evict(&evict::Evict::Elf(evict::Elf::new(path)));
            }
        }
    }
}

/// What `source` has at the `n` addresses or offsets of `input`.
fn lookup(
    symbolizer: &Symbolizer,
    source: &Source<'_>,
    input: Input<&[u64]>,
    n: usize,
) -> Vec<Vec<Located>> {
    match symbolizer.symbolize(source, input) {
        Ok(found) => found
            .into_iter()
            .map(|s| match s {
                Symbolized::Sym(sym) => located(sym),
                Symbolized::Unknown(_) => Vec::new(),
            })
            .collect(),
        // Not an ELF file, or unreadable: nothing in it can be named.
        Err(_) => vec![Vec::new(); n],
    }
}

/// blazesym names the outer function and lists what is inlined into it outermost first, each
/// with the source location within it (as `addr2line -i` does); frames go innermost first.
fn located(sym: Sym<'_>) -> Vec<Located> {
    let mut frames: Vec<Located> = sym
        .inlined
        .iter()
        .rev()
        .map(|f| {
            let (file, line) = code(f.code_info.as_ref());
            Located {
                function: f.name.to_string(),
                file,
                line,
                inlined: true,
            }
        })
        .collect();
    let (file, line) = code(sym.code_info.as_deref());
    frames.push(Located {
        function: sym.name.to_string(),
        file,
        line,
        inlined: false,
    });
    frames
}

fn code(info: Option<&CodeInfo<'_>>) -> (Option<String>, Option<u32>) {
    match info {
        Some(info) => (
            Some(info.to_path().to_string_lossy().into_owned()),
            info.line,
        ),
        None => (None, None),
    }
}
