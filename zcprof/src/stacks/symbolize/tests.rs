//! The symbolizer against real code: functions of this test binary and of libc, and of a
//! small C program compiled here that exits, or whose file is deleted, before its frames
//! are resolved.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::OnceLock,
    time::{Duration, Instant},
};

use blazesym::inspect::{Inspector, source};

use super::*;

#[inline(never)]
fn marker_function_for_symbolize_tests() -> u64 {
    std::hint::black_box(42)
}

/// The executable mapping of this process that holds `addr`.
fn own_mapping(addr: u64) -> maps::Mapping {
    maps::executable(std::process::id())
        .unwrap()
        .into_iter()
        .find(|m| (m.start..m.end).contains(&addr))
        .unwrap_or_else(|| panic!("{addr:#x} is not in an executable mapping"))
}

fn build_id_of(path: &Path) -> BuildId {
    let found = blazesym::helper::read_elf_build_id(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{} has no build ID", path.display()));
    let mut id = [0; 20];
    id[..found.len()].copy_from_slice(&found);
    id
}

/// The frame as the kernel would report it with a build ID.
fn file_frame(addr: u64) -> RawFrame {
    let mapping = own_mapping(addr);
    RawFrame::File {
        build_id: build_id_of(Path::new(mapping.path.as_deref().unwrap())),
        offset: mapping.file_offset(addr),
    }
}

fn libc_function(name: &std::ffi::CStr) -> u64 {
    // SAFETY: dlsym with the default handle and a NUL-terminated name only reads.
    let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    assert!(!addr.is_null(), "dlsym({name:?}) found nothing");
    addr as u64
}

/// The stack sampler keeps the symbolizer behind a mutex that two threads share.
#[test]
fn the_symbolizer_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Symbolizer>();
}

#[test]
fn names_a_function_of_this_binary_by_address_and_by_build_id() {
    let addr = marker_function_for_symbolize_tests as *const () as u64;
    let pid = std::process::id();
    let mut symbolizer = Symbolizer::new();
    symbolizer.observe(pid);
    for frame in [RawFrame::Ip(addr), file_frame(addr)] {
        let symbols = symbolizer.resolve(pid, &[frame]);
        let last = symbols.last().unwrap();
        assert!(
            last.function
                .as_deref()
                .unwrap()
                .ends_with("marker_function_for_symbolize_tests"),
            "{frame:?} -> {symbols:#?}"
        );
        assert_eq!(last.file.as_deref().map(base_name), Some("tests.rs"));
        assert!(last.line.is_some());
        assert_eq!(
            last.module,
            std::env::current_exe().unwrap().to_str().unwrap()
        );
        assert_eq!(last.display(), {
            let function = last.function.as_deref().unwrap();
            format!("{function} (tests.rs:{})", last.line.unwrap())
        });
    }
    // Demangled, without the hash.
    let name = symbolizer.resolve(pid, &[RawFrame::Ip(addr)])[0]
        .function
        .clone()
        .unwrap();
    assert!(
        name.contains("::tests::") && !name.contains("::h"),
        "{name}"
    );
    let stats = symbolizer.stats();
    assert_eq!((stats.unresolved_frames, stats.processes_observed), (0, 1));
    assert!(
        stats.resolved_frames >= 3 && stats.files_known >= 2,
        "{stats:?}"
    );
}

/// The kernel resolves a garbage address (a walk that read a non-pointer) to the next
/// mapping above it, with an offset far past the file's end: not a frame in that file.
#[test]
fn a_build_id_frame_past_its_files_end_is_unknown() {
    let addr = marker_function_for_symbolize_tests as *const () as u64;
    let pid = std::process::id();
    let mut symbolizer = Symbolizer::new();
    symbolizer.observe(pid);
    let RawFrame::File { build_id, .. } = file_frame(addr) else {
        unreachable!("file_frame makes a file frame")
    };
    let size = std::fs::metadata(std::env::current_exe().unwrap())
        .unwrap()
        .len();
    let garbage = RawFrame::File {
        build_id,
        offset: size + 0xffff_0000,
    };
    let symbols = symbolizer.resolve(pid, &[garbage]);
    assert_eq!(symbols.len(), 1);
    assert_eq!(symbols[0].module, UNKNOWN_MODULE, "{symbols:#?}");
    assert!(!symbols[0].resolved());
}

#[inline(never)]
fn caller_marker_for_symbolize_tests() -> u64 {
    std::hint::black_box(marker_function_for_symbolize_tests()) + 1
}

/// A process gone before its mappings were read: the syscall wrapper's caller (the word at
/// the top of the stack) is still put back, placed in the file from the distance to the
/// chain's first return address, which the kernel gave as a file offset too.
#[test]
fn a_gone_processs_frameless_wrapper_caller_is_placed_by_the_chain_return() {
    use crate::stacks::{sample::Sample, sampler::restore_leaf_caller};
    let chain = marker_function_for_symbolize_tests as *const () as u64;
    let word = caller_marker_for_symbolize_tests as *const () as u64;
    let mut symbolizer = Symbolizer::new();
    symbolizer.learn_file(&std::env::current_exe().unwrap());
    let libc = file_frame(libc_function(c"clock_nanosleep"));
    let mut sample = Sample {
        // No such process: nothing can be read of it.
        tgid: u32::MAX - 7,
        pid: u32::MAX - 7,
        slot: 0,
        periods: 1,
        thread: "gone".into(),
        frames: vec![libc, file_frame(chain)],
        kernel: Vec::new(),
        leaf_return: word,
        chain_return: chain,
    };
    restore_leaf_caller(&mut symbolizer, &mut sample);
    assert_eq!(sample.frames.len(), 3, "{:?}", sample.frames);
    assert_eq!(sample.frames[1], file_frame(word));
    // A word that is no code of the file (a stack address) is left out.
    sample.frames.remove(1);
    sample.leaf_return = 0x7ffd_0000_0000;
    restore_leaf_caller(&mut symbolizer, &mut sample);
    assert_eq!(sample.frames.len(), 2);
}

#[test]
fn names_a_libc_function_by_address_and_by_build_id() {
    let addr = libc_function(c"clock_nanosleep");
    let pid = std::process::id();
    let mut symbolizer = Symbolizer::new();
    // Not observed first: the Ip frame reads the mappings on its miss.
    for frame in [RawFrame::Ip(addr), file_frame(addr)] {
        let symbols = symbolizer.resolve(pid, &[frame]);
        assert_eq!(symbols.len(), 1, "{symbols:#?}");
        assert!(
            symbols[0]
                .function
                .as_deref()
                .unwrap()
                .contains("clock_nanosleep"),
            "{symbols:#?}"
        );
        assert!(symbols[0].module.contains("libc"), "{symbols:#?}");
    }
}

#[test]
fn unknown_build_ids_and_addresses_come_back_as_module_and_offset() {
    let mut symbolizer = Symbolizer::new();
    let frames = [
        RawFrame::File {
            build_id: [0xab; 20],
            offset: 0x1234,
        },
        // No such process (pids stop at 2^22).
        RawFrame::Ip(0x7f00_0000_1000),
    ];
    let symbols = symbolizer.resolve(0x7fff_fff0, &frames);
    assert_eq!(
        symbols,
        vec![
            Symbol::unresolved(UNKNOWN_MODULE, 0x1234),
            Symbol::unresolved(UNKNOWN_MODULE, 0x7f00_0000_1000),
        ]
    );
    assert_eq!(symbols[0].display(), "[unknown]+0x1234");
    assert_eq!(symbolizer.stats().unresolved_frames, 2);
}

// A C program compiled for these tests: a function that waits forever, a caller into which
// another function is inlined, and a stripped copy.

const PROGRAM: &str = r#"
#include <unistd.h>
volatile int calls;
static inline __attribute__((always_inline)) void inlined_wait(void) { pause(); calls++; }
__attribute__((noinline)) void wait_here(void) { inlined_wait(); calls++; }
int main(void) { wait_here(); return calls; }
"#;

struct Programs {
    /// Keeps the directory.
    _dir: tempfile::TempDir,
    with_symbols: PathBuf,
    stripped: PathBuf,
}

/// The test programs, compiled once; `None` (the test is skipped, saying why) without a C
/// compiler.
fn programs() -> Option<&'static Programs> {
    static PROGRAMS: OnceLock<Option<Programs>> = OnceLock::new();
    PROGRAMS
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let source = dir.path().join("wait.c");
            std::fs::write(&source, PROGRAM).unwrap();
            let compile = |out: &Path, extra: &[&str]| {
                Command::new("cc")
                    .args([
                        "-O2",
                        "-g",
                        "-fno-omit-frame-pointer",
                        "-Wl,--build-id=sha1",
                    ])
                    .args(extra)
                    .arg("-o")
                    .arg(out)
                    .arg(&source)
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let with_symbols = dir.path().join("wait");
            let stripped = dir.path().join("wait-stripped");
            (compile(&with_symbols, &[]) && compile(&stripped, &["-s"])).then(|| Programs {
                _dir: dir,
                with_symbols,
                stripped,
            })
        })
        .as_ref()
}

macro_rules! programs_or_skip {
    () => {
        match programs() {
            Some(programs) => programs,
            None => {
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    b"skipped: no C compiler (cc) to build the test program\n",
                );
                return;
            }
        }
    };
}

/// A running copy of a test program, killed on drop.
struct Running {
    child: Child,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts a copy of `program` and waits until it is past the dynamic loader (its maps
    /// show libc).
    fn start(program: &Path) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(program.file_name().unwrap());
        std::fs::copy(program, &path).unwrap();
        let child = Command::new(&path).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id()));
            if maps.is_ok_and(|m| m.contains("libc")) {
                break;
            }
            assert!(Instant::now() < deadline, "the test program did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Running {
            child,
            path,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it and waits until it is gone.
    fn end(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        assert!(!procfs::exists(self.pid()));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wait_here`'s file offset and size in `program`.
fn wait_here(program: &Path) -> (u64, u64) {
    let inspector = Inspector::new();
    let found = inspector
        .lookup(
            &source::Source::Elf(source::Elf::new(program)),
            &["wait_here"],
        )
        .unwrap();
    let sym = found[0].first().expect("wait_here is in the symbol table");
    (sym.file_offset.unwrap(), sym.size.unwrap() as u64)
}

/// The address of the file offset `offset` of `path` in `pid`, from its maps.
fn address_in(pid: u32, path: &Path, offset: u64) -> u64 {
    let path = path.to_str().unwrap();
    maps::executable(pid)
        .unwrap()
        .into_iter()
        .find(|m| {
            m.path.as_deref() == Some(path)
                && (m.offset..m.offset + m.end - m.start).contains(&offset)
        })
        .map(|m| m.start + offset - m.offset)
        .unwrap()
}

/// Runs a copy of `program`, lets `before` act on it, has a new symbolizer observe it and
/// ends it: what the tests then resolve is only what the symbolizer kept.
fn observed_then_gone(program: &Path, before: impl FnOnce(&Running)) -> Gone {
    let mut running = Running::start(program);
    let build_id = build_id_of(&running.path);
    before(&running);
    let mut symbolizer = Symbolizer::new();
    symbolizer.observe(running.pid());
    running.end();
    Gone {
        pid: running.pid(),
        module: running.path.to_str().unwrap().to_string(),
        build_id,
        symbolizer,
        _running: running,
    }
}

struct Gone {
    pid: u32,
    /// The path the program ran from.
    module: String,
    build_id: BuildId,
    symbolizer: Symbolizer,
    /// Keeps the copy's directory.
    _running: Running,
}

impl Gone {
    fn resolve(&mut self, offset: u64) -> Vec<Symbol> {
        let frame = RawFrame::File {
            build_id: self.build_id,
            offset,
        };
        self.symbolizer.resolve(self.pid, &[frame])
    }
}

#[test]
fn a_process_that_exited_is_still_named() {
    let programs = programs_or_skip!();
    let mut running = Running::start(&programs.with_symbols);
    let pid = running.pid();
    let (offset, _) = wait_here(&programs.with_symbols);
    let ip = address_in(pid, &running.path, offset);
    let libc = libc_function(c"pause");
    // This process's libc is the child's: its frames carry the same build ID and offset.
    let libc_frame = file_frame(libc);
    let mut symbolizer = Symbolizer::new();
    symbolizer.observe(pid);
    assert_eq!(
        symbolizer.main_binary(pid),
        Some(running.path.to_str().unwrap())
    );
    let build_id = build_id_of(&running.path);
    running.end();

    // Past the leaf the frames are return addresses, looked up a byte earlier: one byte
    // into wait_here is still wait_here (its first byte would be the function before).
    let frames = [
        libc_frame,
        RawFrame::File {
            build_id,
            offset: offset + 1,
        },
        RawFrame::Ip(ip + 1),
    ];
    let symbols = symbolizer.resolve(pid, &frames);
    let names: Vec<&str> = symbols
        .iter()
        .filter_map(|s| s.function.as_deref())
        .collect();
    assert_eq!(names.len(), 3, "{symbols:#?}");
    assert!(names[0].contains("pause"), "{symbols:#?}");
    assert_eq!(names[1..], ["wait_here", "wait_here"], "{symbols:#?}");
    for symbol in &symbols[1..] {
        assert_eq!(symbol.module, running.path.to_str().unwrap());
        assert_eq!(symbol.offset, offset + 1);
        assert_eq!(symbol.file.as_deref().map(base_name), Some("wait.c"));
    }
}

#[test]
fn a_deleted_binary_is_read_through_its_mapping() {
    let programs = programs_or_skip!();
    let (offset, _) = wait_here(&programs.with_symbols);
    let mut gone = observed_then_gone(&programs.with_symbols, |running| {
        std::fs::remove_file(&running.path).unwrap()
    });
    let symbols = gone.resolve(offset);
    assert_eq!(symbols.len(), 1, "{symbols:#?}");
    assert_eq!(symbols[0].function.as_deref(), Some("wait_here"));
    assert_eq!(symbols[0].module, gone.module);
}

#[test]
fn a_stripped_binary_gives_module_and_offset() {
    let programs = programs_or_skip!();
    // The stripped copy has the same code at the same offsets.
    let (offset, _) = wait_here(&programs.with_symbols);
    let mut gone = observed_then_gone(&programs.stripped, |_| {});
    let symbols = gone.resolve(offset);
    assert_eq!(symbols, vec![Symbol::unresolved(&gone.module, offset)]);
    assert_eq!(symbols[0].display(), format!("wait-stripped+{offset:#x}"));
    assert_eq!(gone.symbolizer.stats().unresolved_frames, 1);
}

#[test]
fn inlined_functions_come_before_the_function_they_are_inlined_into() {
    let programs = programs_or_skip!();
    let (start, size) = wait_here(&programs.with_symbols);
    let mut gone = observed_then_gone(&programs.with_symbols, |_| {});
    let expanded = (start..start + size)
        .map(|offset| gone.resolve(offset))
        .find(|symbols| symbols.len() == 2)
        .expect("some instruction of wait_here is inlined_wait's");
    assert_eq!(expanded[0].function.as_deref(), Some("inlined_wait"));
    assert!(expanded[0].inlined);
    assert_eq!(expanded[1].function.as_deref(), Some("wait_here"));
    assert!(!expanded[1].inlined);
    assert_eq!(expanded[0].offset, expanded[1].offset);
    assert!(
        expanded
            .iter()
            .all(|s| s.file.as_deref().map(base_name) == Some("wait.c"))
    );
}

#[test]
fn a_program_learnt_from_its_path_is_named_without_any_process() {
    let programs = programs_or_skip!();
    let (offset, _) = wait_here(&programs.with_symbols);
    let build_id = build_id_of(&programs.with_symbols);
    let mut symbolizer = Symbolizer::new();
    // No process ever mapped it here: only its path was learnt (what `run` knows of its
    // command before the command starts).
    symbolizer.learn_file(&programs.with_symbols);
    let symbols = symbolizer.resolve(
        4_000_000,
        &[RawFrame::File {
            build_id,
            offset: offset + 1,
        }],
    );
    assert_eq!(
        symbols[0].function.as_deref(),
        Some("wait_here"),
        "{symbols:#?}"
    );
}
