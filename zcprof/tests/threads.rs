//! The threads layer (`--threads`) on the running kernel: named threads make known
//! syscalls, and the layer must give each thread exactly its own calls and bytes, name it
//! (from /proc while it lives, from its exit record once it exits), in every syscall probe
//! mode; `run` and `record` carry the split, which adds up to the process's syscall layer.

mod common;

use std::{
    ffi::CString,
    sync::mpsc,
    thread::{self, JoinHandle},
};

use serde_json::Value;

use common::{index, privileged, triple};
use zcprof::{
    model::{Model, Process, Thread},
    probes::{Layer, LoadOptions, State, SyscallProbe},
};

/// What each worker thread does: `(name, syscall, calls, bytes per call)`. Reads come from
/// /dev/zero and writes go to /dev/null, so every call moves exactly its length.
const WORK: [(&str, &str, u64, u64); 3] = [
    ("zc-reader", "read", 37, 4096),
    ("zc-writer", "write", 23, 1000),
    ("zc-writer", "pwrite64", 2, 10),
];

/// Makes thread `name`'s calls of [`WORK`] with raw syscalls.
fn work(name: &str) {
    let open = |path: &str, flags| {
        let path = CString::new(path).expect("no NUL");
        // SAFETY: a valid path.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open {path:?}");
        fd
    };
    let zero = open("/dev/zero", libc::O_RDONLY);
    let null = open("/dev/null", libc::O_WRONLY);
    let mut buf = vec![0u8; 4096];
    for &(_, syscall, calls, len) in WORK.iter().filter(|w| w.0 == name) {
        for _ in 0..calls {
            let p = buf.as_mut_ptr().cast();
            let len = len as usize;
            // SAFETY: `len` is within `buf`; the descriptors are open.
            let moved = unsafe {
                match syscall {
                    "read" => libc::read(zero, p, len),
                    "write" => libc::write(null, p, len),
                    "pwrite64" => libc::pwrite(null, p, len, 0),
                    other => unreachable!("{other}"),
                }
            };
            assert_eq!(moved, len as isize, "{syscall}");
        }
    }
    // SAFETY: closing what this function opened.
    unsafe {
        libc::close(zero);
        libc::close(null);
    }
}

/// Starts thread `name` doing `work`'s [`WORK`]; returns its tid (once the work is done)
/// and its handle. With `hold`, it then waits on the channel before it exits.
fn spawn(
    name: &'static str,
    work_of: &'static str,
    hold: Option<mpsc::Receiver<()>>,
) -> (u32, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            work(work_of);
            // SAFETY: no arguments.
            let tid = unsafe { libc::gettid() } as u32;
            tx.send(tid).expect("the test waits");
            if let Some(hold) = hold {
                let _ = hold.recv();
            }
        })
        .expect("spawn");
    (rx.recv().expect("the thread's tid"), handle)
}

/// What [`WORK`] says thread `name` did, as `(syscall, (calls, bytes, errors))`.
fn expected(name: &str) -> Vec<(String, (u64, u64, u64))> {
    let mut v: Vec<_> = WORK
        .iter()
        .filter(|w| w.0 == name)
        .map(|&(_, sc, calls, len)| (sc.to_string(), (calls, calls * len, 0)))
        .collect();
    v.sort();
    v
}

/// What the threads layer counted for `t`, as [`expected`] spells it.
fn counted(t: &Thread) -> Vec<(String, (u64, u64, u64))> {
    let mut v: Vec<_> = zcprof_common::syscalls::SYSCALLS
        .iter()
        .zip(t.totals.slots())
        .filter(|(_, s)| s.calls > 0)
        .map(|(sc, s)| (sc.name.to_string(), triple(s)))
        .collect();
    v.sort();
    v
}

fn me(model: &Model) -> &Process {
    let id = model
        .latest_instance(std::process::id())
        .expect("the test process is counted");
    model.process(id).expect("instance")
}

/// Flushes until the exit records of threads `tids` came, for at most 10 s. A join returns
/// once the kernel cleared the thread's tid, which `do_exit` does (in `exit_mm`) before it
/// fires `sched_process_exit`: the record can come a moment after the join.
fn exits_seen(rt: &tokio::runtime::Runtime, session: &mut zcprof::session::Session, tids: &[u32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        rt.block_on(session.flush()).expect("flush");
        let p = me(&session.model);
        let seen = tids
            .iter()
            .all(|tid| p.threads.get(*tid).is_some_and(|t| t.exited));
        if seen || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn exact_threads(mode: SyscallProbe, test: &str) {
    if !privileged(test) {
        return;
    }
    // With every opt-in dimension on: their programs must load together on every kernel
    // (inline, the lookups' paths and the threads layer's multiplied past the verifier's
    // limit), and none may change another's counts.
    let (rt, mut session) = common::session_opts(&LoadOptions {
        syscall_probe: mode,
        flows: true,
        threads: true,
        files: true,
        ..LoadOptions::default()
    });
    let layer = session
        .layers
        .iter()
        .find(|l| l.layer == Layer::Threads)
        .expect("the threads layer is listed when asked for");
    assert_eq!(layer.state, State::Live, "{layer:?}");
    assert!(
        session
            .layers
            .iter()
            .any(|l| l.layer == Layer::Flows && l.state == State::Live),
        "{:?}",
        session.layers
    );
    assert!(session.files().is_some(), "per-file counts are on");
    let (release, hold) = mpsc::channel();
    let (reader, r) = spawn("zc-reader", "zc-reader", None);
    let (writer, w) = spawn("zc-writer", "zc-writer", None);
    // The writer's work again in a thread that is still alive when the counts are read.
    let (live, l) = spawn("zc-live", "zc-writer", Some(hold));
    r.join().expect("reader");
    w.join().expect("writer");
    exits_seen(&rt, &mut session, &[reader, writer]);
    let p = me(&session.model);
    let thread = |tid: u32| {
        p.threads
            .get(tid)
            .unwrap_or_else(|| panic!("{mode:?}: thread {tid} is not counted"))
            .clone()
    };
    for (tid, name) in [(reader, "zc-reader"), (writer, "zc-writer")] {
        let t = thread(tid);
        assert_eq!(counted(&t), expected(name), "{mode:?}: {name}");
        assert_eq!(t.name, name, "{mode:?}: named from its exit record");
        assert!(t.exited, "{mode:?}: {name} exited");
    }
    let t = thread(live);
    assert_eq!(counted(&t), expected("zc-writer"), "{mode:?}: live");
    assert_eq!(t.name, "zc-live", "{mode:?}: named from /proc while alive");
    assert!(!t.exited);
    release.send(()).expect("the live thread waits");
    l.join().expect("live");
    exits_seen(&rt, &mut session, &[live]);
    let t = me(&session.model)
        .threads
        .get(live)
        .expect("still listed")
        .clone();
    assert!(t.exited, "{mode:?}: its exit is seen");
    assert_eq!(
        counted(&t),
        expected("zc-writer"),
        "{mode:?}: unchanged by its exit"
    );
    assert_eq!(
        session.model.counters.lost(),
        0,
        "no lost events: {:?}",
        session.model.counters
    );
}

#[test]
fn threads_are_exact_with_the_btf_raw_tracepoint() {
    exact_threads(
        SyscallProbe::Btf,
        "threads_are_exact_with_the_btf_raw_tracepoint",
    );
}

#[test]
fn threads_are_exact_with_the_raw_tracepoint() {
    exact_threads(
        SyscallProbe::Raw,
        "threads_are_exact_with_the_raw_tracepoint",
    );
}

#[test]
fn threads_are_exact_with_per_syscall_tracepoints() {
    exact_threads(
        SyscallProbe::Tracepoint,
        "threads_are_exact_with_per_syscall_tracepoints",
    );
}

/// Without `--threads` the layer is not listed and no process has threads.
#[test]
fn no_threads_unless_asked() {
    if !privileged("no_threads_unless_asked") {
        return;
    }
    let (rt, mut session) = common::session(SyscallProbe::Btf);
    assert!(session.layers.iter().all(|l| l.layer != Layer::Threads));
    let (_, r) = spawn("zc-reader", "zc-reader", None);
    r.join().expect("reader");
    rt.block_on(session.flush()).expect("flush");
    assert!(session.model.processes().all(|p| p.threads.is_empty()));
    let reads = me(&session.model).totals.syscall[index("read")];
    assert!(reads.bytes >= 37 * 4096);
}

/// Not a test of its own: the workload of [`run_and_record_carry_threads`], which runs
/// this binary with `ZCPROF_THREADS_WORKLOAD=1` and this test's name.
#[test]
fn threads_workload() {
    if std::env::var_os("ZCPROF_THREADS_WORKLOAD").is_none() {
        return;
    }
    for name in ["zc-reader", "zc-writer"] {
        spawn(name, name, None).1.join().expect("worker");
    }
}

/// `zcprof --threads ARGS -- <this test binary running threads_workload>`, its output
/// (`-o`) parsed.
fn zcprof_on_workload(args: &[&str], tag: &str) -> Value {
    let out = common::temp(tag);
    let output = common::zcprof()
        .arg("--threads")
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "threads_workload", "--test-threads=1", "--quiet"])
        .env("ZCPROF_THREADS_WORKLOAD", "1")
        .output()
        .expect("zcprof runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out).expect("the output")).expect("JSON")
}

/// `(syscall, (calls, bytes, errors))` of a JSON syscall layer.
fn syscalls_of(layer: &Value) -> Vec<(String, (u64, u64, u64))> {
    let mut v: Vec<_> = layer["syscalls"]
        .as_object()
        .expect("syscalls")
        .iter()
        .map(|(name, e)| {
            let n = |k: &str| e[k].as_u64().expect(k);
            (name.clone(), (n("calls"), n("bytes"), n("errors")))
        })
        .collect();
    v.sort();
    v
}

/// The workload process's threads, and its own syscall layer, from `doc`'s processes
/// (`layer` finds a process's syscall layer in that document).
fn workload_threads(doc: &Value, layer: impl Fn(&Value) -> &Value) {
    let workload = doc["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| {
            p["threads"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == "zc-reader"))
        })
        .unwrap_or_else(|| panic!("no process with a zc-reader thread: {doc}"));
    let threads = workload["threads"].as_array().expect("threads");
    for name in ["zc-reader", "zc-writer"] {
        let t = threads
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(syscalls_of(&t["syscall"]), expected(name), "{name}");
        assert_eq!(t["exited"], true);
    }
    // The threads add up to the process: the layer counted it from its start.
    let mut sum: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    for t in threads {
        for (sc, (c, b, e)) in syscalls_of(&t["syscall"]) {
            let s = sum.entry(sc).or_default();
            *s = (s.0 + c, s.1 + b, s.2 + e);
        }
    }
    let sum: Vec<_> = sum.into_iter().collect();
    assert_eq!(sum, syscalls_of(layer(workload)));
}

/// `run --threads --json` and `record --threads` list each thread of the workload with its
/// exact figures, adding up to the process's, and validate against their schemas.
#[test]
fn run_and_record_carry_threads() {
    if !privileged("run_and_record_carry_threads") {
        return;
    }
    let run = zcprof_on_workload(&["run", "--json"], "threads-run");
    let errors: Vec<String> = common::run_schema()
        .iter_errors(&run)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        run["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .any(|l| l["layer"] == "threads" && l["state"] == "live"),
        "{}",
        run["layers"]
    );
    workload_threads(&run, |p| &p["syscall"]);

    let rec = zcprof_on_workload(&["record"], "threads-record");
    let schema: Value =
        serde_json::from_str(include_str!("../../schema/recording.v1.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema");
    let errors: Vec<String> = validator
        .iter_errors(&rec)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    zcprof_recording::parse(rec.to_string().as_bytes()).expect("the recording parses");
    workload_threads(&rec, |p| &p["layers"]["syscall"]);
}

/// `top --threads --json` lists, under the process, a live thread that keeps writing, by
/// name, with its rates; the frames validate against the schema.
#[test]
fn top_json_lists_active_threads() {
    if !privileged("top_json_lists_active_threads") {
        return;
    }
    let (_top, lines) = common::lines_of(&["--threads", "top", "--json", "-i", "300ms"]);
    let first = lines
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("a first frame");
    assert!(first.contains("zcprof.top/v1"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = stop.clone();
    let looper = thread::Builder::new()
        .name("zc-looper".into())
        .spawn(move || {
            while !looping.load(std::sync::atomic::Ordering::Relaxed) {
                work("zc-writer");
                thread::sleep(std::time::Duration::from_millis(20));
            }
        })
        .expect("spawn");
    let schema = common::top_schema();
    let me = u64::from(std::process::id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = None;
    while seen.is_none() && std::time::Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(5)) else {
            continue;
        };
        let frame: Value = serde_json::from_str(&line).expect("JSON");
        assert!(schema.is_valid(&frame), "{frame}");
        for p in frame["processes"].as_array().expect("processes") {
            assert!(p["threads"].is_array(), "every process lists threads: {p}");
            if p["pid"] != me {
                continue;
            }
            seen = p["threads"]
                .as_array()
                .expect("threads")
                .iter()
                .find(|t| t["name"] == "zc-looper")
                .map(|t| t["syscall"]["copy_u2k_bytes_per_s"].as_f64().unwrap_or(0.0));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    looper.join().expect("looper");
    assert!(
        seen.is_some_and(|rate| rate > 0.0),
        "no frame showed the zc-looper thread writing: {seen:?}"
    );
}

/// A thread storm: more live `(thread, syscall)` entries than the threads layer's map holds.
/// The calls that find it full are counted as lost (`stats_map_full`), never silently, and
/// the process's own figures (the syscall layer's map) stay exact.
#[test]
fn a_thread_storm_is_a_counted_loss() {
    use std::sync::{Arc, Barrier};
    if !privileged("a_thread_storm_is_a_counted_loss") {
        return;
    }
    // Each storm thread makes one call of each, of one byte, on /dev/zero or /dev/null: one
    // entry per syscall while it lives. `preadv2` and `pwritev2` no other thread here makes.
    const CALLS: [&str; 8] = [
        "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv2", "pwritev2",
    ];
    let storm = zcprof_common::threads::TSTATS_MAX_ENTRIES as usize / CALLS.len() + 200;
    let (rt, mut session) = common::session_opts(&LoadOptions {
        threads: true,
        ..LoadOptions::default()
    });
    let open = |path: &str, flags| {
        let path = CString::new(path).expect("no NUL");
        // SAFETY: a valid path.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open {path:?}");
        fd
    };
    let (zero, null) = (
        open("/dev/zero", libc::O_RDONLY),
        open("/dev/null", libc::O_WRONLY),
    );
    let done = Arc::new(Barrier::new(storm + 1));
    let release = Arc::new(Barrier::new(storm + 1));
    let (tids, tid) = mpsc::channel();
    let handles: Vec<JoinHandle<()>> = (0..storm)
        .map(|_| {
            let (done, release, tids) = (done.clone(), release.clone(), tids.clone());
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut byte = [0u8; 1];
                    let p = byte.as_mut_ptr().cast();
                    let iov = libc::iovec {
                        iov_base: p,
                        iov_len: 1,
                    };
                    // SAFETY: one byte of `byte`, open descriptors.
                    let moved = unsafe {
                        [
                            libc::read(zero, p, 1),
                            libc::write(null, p, 1),
                            libc::pread(zero, p, 1, 0),
                            libc::pwrite(null, p, 1, 0),
                            libc::readv(zero, &iov, 1),
                            libc::writev(null, &iov, 1),
                            libc::preadv2(zero, &iov, 1, 0, 0),
                            libc::pwritev2(null, &iov, 1, 0, 0),
                        ]
                    };
                    assert!(moved.iter().all(|n| *n == 1), "{moved:?}");
                    // SAFETY: no arguments.
                    tids.send(unsafe { libc::gettid() } as u32)
                        .expect("the test waits");
                    done.wait();
                    release.wait();
                })
                .expect("spawn a storm thread")
        })
        .collect();
    done.wait();
    rt.block_on(session.flush()).expect("flush");
    let storm_tids: std::collections::HashSet<u32> = tid.try_iter().collect();
    assert_eq!(storm_tids.len(), storm);
    let p = me(&session.model);
    for name in ["preadv2", "pwritev2"] {
        let s = p.totals.syscall[index(name)];
        assert_eq!(
            s.calls, storm as u64,
            "{name}: the process's figures are exact"
        );
    }
    let counted: u64 = p
        .threads
        .iter()
        .filter(|t| storm_tids.contains(&t.tid))
        .map(|t| {
            CALLS
                .iter()
                .map(|name| t.totals[index(name)].calls)
                .sum::<u64>()
        })
        .sum();
    let made = (storm * CALLS.len()) as u64;
    let lost = session.model.counters.stats_map_full;
    assert!(
        counted < made,
        "the map holds {counted} of {made}: no storm"
    );
    assert!(
        counted + lost >= made,
        "{counted} counted + {lost} lost < {made} made: a loss went uncounted"
    );
    assert!(zcprof::report::Lost::of(&session.model).total >= lost);
    release.wait();
    for h in handles {
        h.join().expect("a storm thread");
    }
    // SAFETY: closing what this test opened.
    unsafe {
        libc::close(zero);
        libc::close(null);
    }
}
