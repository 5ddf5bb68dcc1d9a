//! Fork storm (issue 7): thousands of short-lived processes, each making known writes and
//! reads, while a session runs. Every process's bytes must be accounted exactly, PIDs that
//! are reused must not merge, the kernel's STATS map must not grow with the processes that
//! came and went, no event may be lost, and the profiler's memory must stay flat.

mod common;

use std::{collections::HashMap, ffi::CString, time::Duration};

use common::{Child, in_child, privileged, triple};
use zcprof::{
    model::Origin,
    probes::LoadOptions,
    session::{Retention, Session},
};
use zcprof_common::syscalls;

/// Processes in all.
const PROCESSES: usize = 3000;
/// Processes forked between two reads of the session: few enough that their records
/// (about four each) fit the ring buffer easily, as they would for a live `top`.
const BATCH: usize = 250;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .expect("VmRSS")
}

#[test]
fn fork_storm_is_counted_exactly_and_stays_bounded() {
    if !privileged("fork_storm_is_counted_exactly_and_stays_bounded") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let opts = LoadOptions::default();
    let mut session = rt
        .block_on(async {
            Session::start(&opts, Duration::from_millis(200), Retention::PruneExited)
        })
        .expect("probes attach on this kernel");
    let me = std::process::id();
    let devnull = CString::new("/dev/null").expect("path");
    let zero = CString::new("/dev/zero").expect("path");
    // SAFETY: valid paths; the fds are closed at the end.
    let (out, input) = unsafe {
        (
            libc::open(devnull.as_ptr(), libc::O_WRONLY),
            libc::open(zero.as_ptr(), libc::O_RDONLY),
        )
    };
    assert!(out >= 0 && input >= 0);
    let mut buf = vec![0u8; 4096];

    rt.block_on(session.flush()).expect("flush");
    let entries_before = session.model.kernel_entries;
    let mut rss_warm = 0;
    // How many instances of each PID we forked, to check that none merged.
    let mut forked: HashMap<u32, usize> = HashMap::new();
    let mut reused = 0;
    let mut first_pid_of_last_batch = None;
    let mut n = 0;
    while n < PROCESSES {
        // Every other batch, rewind the PID counter so that this batch reuses the PIDs of
        // the previous one (all exited and reaped): reuse then happens thousands of times,
        // not once per pid_max.
        if let Some(first) = first_pid_of_last_batch
            && (n / BATCH) % 2 == 1
        {
            std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", first - 1))
                .expect("ns_last_pid");
        }
        let mut batch: Vec<Child> = Vec::with_capacity(BATCH);
        for _ in 0..BATCH.min(PROCESSES - n) {
            let k = n;
            let p = buf.as_mut_ptr().cast::<libc::c_void>();
            batch.push(in_child(|t| {
                // SAFETY: `buf` holds 4096 bytes; the fds are open.
                unsafe {
                    for _ in 0..(k % 5 + 1) {
                        t.note("write", libc::write(out, p, 64 * (k % 3 + 1)));
                    }
                    t.note("read", libc::read(input, p, 100 + k % 1000));
                    if k % 7 == 0 {
                        t.note("write", libc::write(-1, p, 1)); // an error, EBADF
                    }
                }
            }));
            n += 1;
        }
        first_pid_of_last_batch = batch.first().map(|c| c.pid);
        rt.block_on(session.flush()).expect("flush");
        let m = &session.model;
        for child in &batch {
            let count = forked.entry(child.pid).or_default();
            *count += 1;
            if *count > 1 {
                reused += 1;
            }
            let id = m
                .child_of(me, child.pid)
                .unwrap_or_else(|| panic!("no process forked with pid {}", child.pid));
            let p = m.process(id).expect("instance");
            assert!(p.exited, "pid {}: the exit was seen", child.pid);
            assert_eq!(
                p.origin,
                Origin::Forked,
                "pid {}: the fork was seen",
                child.pid
            );
            for (i, sc) in syscalls::SYSCALLS.iter().enumerate() {
                let want = (
                    child.tally.calls[i],
                    child.tally.bytes[i],
                    child.tally.errors[i],
                );
                assert_eq!(
                    triple(&p.totals.syscall[i]),
                    want,
                    "pid {} (instance {}): {} (calls, bytes, errors)",
                    child.pid,
                    *count,
                    sc.name
                );
            }
        }
        // Above, a reused PID's latest instance holds exactly the new process's counts: had
        // it merged with the earlier process of that PID, the totals would be their sum.
        assert_eq!(m.counters.lost(), 0, "no lost events: {:?}", m.counters);
        assert_eq!(m.malformed, 0);
        // As `top` does, the session forgets processes that exited before the last interval
        // when it is next asked for a batch; prune now (the session's own pruning then
        // finds nothing left to do) so the memory measured below holds this batch only.
        session.model.prune_exited();
        if n == 2 * BATCH {
            rss_warm = rss_kib();
        }
    }
    // SAFETY: closing our own fds.
    unsafe {
        libc::close(out);
        libc::close(input);
    }
    // Two more rounds prune the last batches (here and in the session's next flush); then
    // nothing of the storm is left in the model or in the kernel's map.
    for _ in 0..2 {
        rt.block_on(session.flush()).expect("flush");
        session.model.prune_exited();
    }
    let left = session
        .model
        .processes()
        .filter(|p| p.ppid == Some(me) && forked.contains_key(&p.tgid))
        .count();
    assert_eq!(left, 0, "exited processes are pruned from the model");
    let entries_after = session.model.kernel_entries;
    // Other processes on the machine come and go, so allow some slack; without the
    // kernel's deletion at exit the storm alone would leave more than PROCESSES entries.
    assert!(
        entries_after <= entries_before + 200,
        "STATS map grew from {entries_before} to {entries_after} entries"
    );
    assert!(
        reused >= PROCESSES / 4,
        "only {reused} PIDs were reused; the test needs ns_last_pid to work"
    );
    let rss_end = rss_kib();
    assert!(
        rss_end <= rss_warm + 8 * 1024,
        "memory grew from {rss_warm} KiB to {rss_end} KiB over the storm"
    );
    eprintln!(
        "fork storm: {PROCESSES} processes, {reused} reused PIDs, STATS entries {entries_before} -> {entries_after}, RSS {rss_warm} -> {rss_end} KiB"
    );
}
