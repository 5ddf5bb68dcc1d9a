//! The fixed-time workloads: fork one worker per core, run until the time is up, tally every
//! counted syscall's return value in shared memory, and print the exact totals as JSON.
//!
//! Workers use raw libc calls only and `_exit` at the end, so the tally is every counted
//! syscall they made (the clock is read through the vDSO, which makes no syscall).

use std::{
    ffi::CString,
    ptr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::json;

use zcprof_units::DurationRule;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Storm,
    Bulk,
    Zerocopy,
    /// `dd if=/dev/zero of=/dev/null bs=1`: the cheapest syscalls there are, so the probe's
    /// own cost is the largest share of each.
    DdBs1,
    /// io_uring READ and WRITE requests in batches: the io_uring layer's hot path.
    Uring,
}

#[derive(clap::Args)]
pub struct Args {
    /// How long each worker runs, e.g. 3, 2.5, 500ms
    #[arg(long, default_value = "3", value_parser = |t: &str| RUN_LENGTH.parse(t))]
    seconds: Duration,
    /// Number of worker processes [default: one per online CPU]
    #[arg(long)]
    workers: Option<usize>,
}

/// `--seconds`: any length above zero.
const RUN_LENGTH: DurationRule = DurationRule::positive("run length");

/// The syscalls the workloads make, as zcprof and strace name them, then the io_uring
/// requests (as zcprof names their opcodes; a request is counted where it completes).
const NAMES: [&str; 6] = ["read", "write", "sendfile", "splice", "READ", "WRITE"];
const READ: usize = 0;
const WRITE: usize = 1;
const SENDFILE: usize = 2;
const SPLICE: usize = 3;
const URING_READ: usize = 4;
const URING_WRITE: usize = 5;
/// The first io_uring slot: `NAMES[..SYSCALLS]` are syscalls.
const SYSCALLS: usize = URING_READ;

/// One worker's own count, in memory shared with the parent.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Tally {
    calls: [u64; NAMES.len()],
    bytes: [u64; NAMES.len()],
    errors: [u64; NAMES.len()],
    elapsed_ns: u64,
    /// CPU time the worker used (user + system, so including any probe that runs in its
    /// syscalls): unlike wall time, not inflated by other load on the machine.
    cpu_ns: u64,
    /// Set to 1 when the worker finished normally.
    done: u64,
}

impl Tally {
    #[inline(always)]
    fn note(&mut self, which: usize, ret: isize) -> isize {
        self.calls[which] += 1;
        if ret < 0 {
            self.errors[which] += 1;
        } else {
            self.bytes[which] += ret as u64;
        }
        ret
    }
}

/// Size of the input file of the bulk and zero-copy workloads (kept in the page cache).
const INPUT_BYTES: usize = 16 << 20;
const BULK_CHUNK: usize = 1 << 20;
const ZC_CHUNK: usize = 64 << 10;

pub fn run(kind: Kind, args: &Args) -> anyhow::Result<()> {
    let workers = args.workers.unwrap_or_else(online_cpus).max(1);
    // tmpfs keeps the scratch files in memory; but io_uring punts tmpfs reads to io-wq
    // workers (measured on 6.18), so the io_uring workload reads a page-cached file on disk.
    let dir = if kind != Kind::Uring && std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // Removed with everything in it when `scratch` drops (the workers `_exit`, never drop it).
    let scratch = tempfile::Builder::new()
        .prefix("zcbench-")
        .tempdir_in(&dir)
        .with_context(|| format!("creating a scratch directory in {}", dir.display()))?;
    let input = scratch.path().join("in");
    let outputs: Vec<_> = (0..workers)
        .map(|i| scratch.path().join(format!("out{i}")))
        .collect();
    if matches!(kind, Kind::Bulk | Kind::Zerocopy | Kind::Uring) {
        let data: Vec<u8> = (0..INPUT_BYTES).map(|i| (i % 251) as u8).collect();
        std::fs::write(&input, data).with_context(|| format!("writing {}", input.display()))?;
    }
    let report = run_workers(kind, args.seconds, workers, &input, &outputs)?;
    println!("{report}");
    Ok(())
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpath(p: &std::path::Path) -> anyhow::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).context("path with NUL")
}

fn run_workers(
    kind: Kind,
    seconds: Duration,
    workers: usize,
    input: &std::path::Path,
    outputs: &[std::path::PathBuf],
) -> anyhow::Result<serde_json::Value> {
    let size = std::mem::size_of::<Tally>() * workers;
    // SAFETY: an anonymous shared mapping, checked below, unmapped at the end.
    let shared = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if shared == libc::MAP_FAILED {
        bail!("mmap failed: {}", std::io::Error::last_os_error());
    }
    let tallies = shared.cast::<Tally>();
    let input = cpath(input)?;
    let outputs: Vec<CString> = outputs
        .iter()
        .map(|o| cpath(o))
        .collect::<anyhow::Result<_>>()?;
    let mut pids = Vec::new();
    for (i, output) in outputs.iter().enumerate().take(workers) {
        // SAFETY: this process is single-threaded; the child only runs the workload (raw
        // syscalls and allocation) and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!("fork failed: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: slot `i` of the zeroed shared mapping belongs to this worker alone.
            let tally = unsafe { &mut *tallies.add(i) };
            let started = Instant::now();
            let cpu0 = process_cpu_ns();
            let ok = match kind {
                Kind::Storm => storm(tally, started + seconds),
                Kind::Bulk => bulk(tally, started + seconds, &input, output),
                Kind::Zerocopy => zerocopy(tally, started + seconds, &input),
                Kind::DdBs1 => dd_bs1(tally, started + seconds),
                Kind::Uring => uring(tally, started + seconds, &input),
            };
            tally.elapsed_ns = started.elapsed().as_nanos() as u64;
            tally.cpu_ns = process_cpu_ns().saturating_sub(cpu0);
            tally.done = u64::from(ok);
            // SAFETY: leave without flushing stdio or running destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        pids.push(pid);
    }
    let mut failed = 0;
    for &pid in &pids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failed += 1;
        }
    }
    // SAFETY: every worker has exited; nothing else writes the mapping.
    let results: Vec<Tally> = (0..workers).map(|i| unsafe { *tallies.add(i) }).collect();
    // SAFETY: unmapping what we mapped.
    unsafe { libc::munmap(shared, size) };
    if failed > 0 {
        bail!("{failed} of {workers} workers failed (a syscall returned an error)");
    }
    let mut calls_per_s = 0.0;
    let mut bytes_per_s = 0.0;
    let (mut calls, mut bytes, mut errors, mut cpu_ns) = (0u64, 0u64, 0u64, 0u64);
    let per_worker: Vec<serde_json::Value> = pids
        .iter()
        .zip(&results)
        .map(|(pid, t)| {
            let secs = t.elapsed_ns as f64 / 1e9;
            let c: u64 = t.calls.iter().sum();
            let b: u64 = t.bytes.iter().sum();
            calls += c;
            bytes += b;
            errors += t.errors.iter().sum::<u64>();
            cpu_ns += t.cpu_ns;
            calls_per_s += c as f64 / secs;
            bytes_per_s += b as f64 / secs;
            let slots = |range: std::ops::Range<usize>| -> serde_json::Map<String, serde_json::Value> {
                range
                    .filter(|&k| t.calls[k] > 0)
                    .map(|k| {
                        (
                            NAMES[k].to_string(),
                            json!({"calls": t.calls[k], "bytes": t.bytes[k], "errors": t.errors[k]}),
                        )
                    })
                    .collect()
            };
            json!({"pid": pid, "seconds": secs, "cpu_seconds": t.cpu_ns as f64 / 1e9, "calls": c, "bytes": b, "syscalls": slots(0..SYSCALLS), "io_uring": slots(SYSCALLS..NAMES.len())})
        })
        .collect();
    Ok(json!({
        "workload": match kind { Kind::Storm => "storm", Kind::Bulk => "bulk", Kind::Zerocopy => "zerocopy", Kind::DdBs1 => "dd-bs1", Kind::Uring => "uring" },
        "workers": per_worker,
        "calls": calls,
        "bytes": bytes,
        "errors": errors,
        "calls_per_s": calls_per_s,
        "bytes_per_s": bytes_per_s,
        "cpu_seconds": cpu_ns as f64 / 1e9,
        "calls_per_cpu_s": calls as f64 / (cpu_ns as f64 / 1e9),
        "bytes_per_cpu_s": bytes as f64 / (cpu_ns as f64 / 1e9),
    }))
}

/// CPU time of the calling process, in nanoseconds: a worker is one thread, plus any
/// io-wq worker the kernel starts for its io_uring requests, whose time is the worker's.
pub fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How many iterations run between two looks at the clock.
const CHECK_EVERY: u32 = 64;

/// 64 B then 4 KiB through a private pipe: write, then read the same bytes back.
fn storm(t: &mut Tally, deadline: Instant) -> bool {
    let mut fds = [0i32; 2];
    // SAFETY: a valid two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return false;
    }
    let [r, w] = fds;
    let mut buf = vec![7u8; 4096];
    let p = buf.as_mut_ptr().cast::<libc::c_void>();
    loop {
        for _ in 0..CHECK_EVERY {
            for size in [64usize, 4096] {
                // SAFETY: `buf` holds 4096 bytes; the pipe is ours.
                let ok = unsafe {
                    t.note(WRITE, libc::write(w, p, size)) == size as isize
                        && t.note(READ, libc::read(r, p, size)) == size as isize
                };
                if !ok {
                    return false;
                }
            }
        }
        if Instant::now() >= deadline {
            return true;
        }
    }
}

/// dd's loop at `bs=1`: read one byte from /dev/zero, write it to /dev/null.
fn dd_bs1(t: &mut Tally, deadline: Instant) -> bool {
    // SAFETY: valid NUL-terminated paths.
    let (zero, null) = unsafe {
        (
            libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY),
            libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY),
        )
    };
    if zero < 0 || null < 0 {
        return false;
    }
    let mut byte = 0u8;
    let p = (&raw mut byte).cast::<libc::c_void>();
    loop {
        for _ in 0..CHECK_EVERY * 8 {
            // SAFETY: one byte of our own; the fds are ours.
            let ok = unsafe {
                t.note(READ, libc::read(zero, p, 1)) == 1
                    && t.note(WRITE, libc::write(null, p, 1)) == 1
            };
            if !ok {
                return false;
            }
        }
        if Instant::now() >= deadline {
            return true;
        }
    }
}

/// 1 MiB reads from the input (rewound at the end) and 1 MiB writes to a private tmpfs file
/// (rewound after every write, so it stays 1 MiB).
fn bulk(t: &mut Tally, deadline: Instant, input: &CString, output: &CString) -> bool {
    // SAFETY: valid NUL-terminated paths.
    let (fd, out) = unsafe {
        (
            libc::open(input.as_ptr(), libc::O_RDONLY),
            libc::open(
                output.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o600,
            ),
        )
    };
    if fd < 0 || out < 0 {
        return false;
    }
    let mut buf = vec![0u8; BULK_CHUNK];
    let p = buf.as_mut_ptr().cast::<libc::c_void>();
    loop {
        for _ in 0..4 {
            // SAFETY: `buf` holds BULK_CHUNK bytes; the fds are ours.
            unsafe {
                let n = t.note(READ, libc::read(fd, p, BULK_CHUNK));
                if n < 0 {
                    return false;
                }
                if n == 0 {
                    libc::lseek(fd, 0, libc::SEEK_SET);
                    continue;
                }
                if t.note(WRITE, libc::write(out, p, n as usize)) != n {
                    return false;
                }
                libc::lseek(out, 0, libc::SEEK_SET);
            }
        }
        if Instant::now() >= deadline {
            return true;
        }
    }
}

/// sendfile 64 KiB of the input into a pipe, then splice it out to /dev/null: the bytes never
/// pass through user memory.
fn zerocopy(t: &mut Tally, deadline: Instant, input: &CString) -> bool {
    let mut fds = [0i32; 2];
    // SAFETY: valid arguments; results checked.
    let (fd, null) = unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return false;
        }
        (
            libc::open(input.as_ptr(), libc::O_RDONLY),
            libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY),
        )
    };
    if fd < 0 || null < 0 {
        return false;
    }
    let [r, w] = fds;
    let mut off: libc::off_t = 0;
    loop {
        for _ in 0..CHECK_EVERY {
            // SAFETY: our fds and a valid offset pointer.
            unsafe {
                let n = t.note(SENDFILE, libc::sendfile(w, fd, &mut off, ZC_CHUNK));
                if n < 0 {
                    return false;
                }
                if n == 0 {
                    off = 0;
                    continue;
                }
                let mut left = n;
                while left > 0 {
                    let m = t.note(
                        SPLICE,
                        libc::splice(r, ptr::null_mut(), null, ptr::null_mut(), left as usize, 0),
                    );
                    if m <= 0 {
                        return false;
                    }
                    left -= m;
                }
            }
        }
        if Instant::now() >= deadline {
            return true;
        }
    }
}

/// Requests per `io_uring_enter`: half READs, half WRITEs.
const URING_BATCH: usize = 32;
const URING_CHUNK: usize = 4096;

/// Batches of 16 READs of 4 KiB from the page-cached input (walking through it) and 16
/// WRITEs of 4 KiB to /dev/null: one `io_uring_enter` submits a batch and waits for all of
/// it. Both complete inline, in the worker's own thread (a WRITE to a tmpfs file would be
/// punted to io-wq workers, whose context switches would swamp the probes' cost). Every completion is
/// tallied under its opcode (`user_data`), `res` as bytes; `io_uring_enter` itself is no
/// counted syscall. Any failed request fails the worker.
fn uring(t: &mut Tally, deadline: Instant, input: &CString) -> bool {
    use io_uring::{IoUring, opcode, types::Fd};

    // SAFETY: valid NUL-terminated paths.
    let (fd, out) = unsafe {
        (
            libc::open(input.as_ptr(), libc::O_RDONLY),
            libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY),
        )
    };
    if fd < 0 || out < 0 {
        return false;
    }
    let Ok(mut ring) = IoUring::new(URING_BATCH as u32) else {
        return false;
    };
    let half = URING_BATCH / 2;
    let mut reads = vec![0u8; half * URING_CHUNK];
    let writes = vec![7u8; half * URING_CHUNK];
    let chunks = (INPUT_BYTES / URING_CHUNK) as u64;
    let mut next = 0u64;
    loop {
        for _ in 0..CHECK_EVERY / 16 {
            for i in 0..half {
                let at = (next % chunks) * URING_CHUNK as u64;
                next += 1;
                let buf = reads[i * URING_CHUNK..].as_mut_ptr();
                let read = opcode::Read::new(Fd(fd), buf, URING_CHUNK as u32)
                    .offset(at)
                    .build()
                    .user_data(URING_READ as u64);
                let buf = writes[i * URING_CHUNK..].as_ptr();
                let write = opcode::Write::new(Fd(out), buf, URING_CHUNK as u32)
                    .build()
                    .user_data(URING_WRITE as u64);
                // SAFETY: the buffers outlive the batch, which completes before they are
                // touched again; the queue has room for a whole batch.
                if unsafe { ring.submission().push_multiple(&[read, write]) }.is_err() {
                    return false;
                }
            }
            if ring.submit_and_wait(URING_BATCH).is_err() {
                return false;
            }
            let mut reaped = 0;
            for cqe in ring.completion() {
                let Ok(slot) = usize::try_from(cqe.user_data()) else {
                    return false;
                };
                if !(SYSCALLS..NAMES.len()).contains(&slot)
                    || t.note(slot, cqe.result() as isize) != URING_CHUNK as isize
                {
                    return false;
                }
                reaped += 1;
            }
            if reaped != URING_BATCH {
                return false;
            }
        }
        if Instant::now() >= deadline {
            return true;
        }
    }
}
