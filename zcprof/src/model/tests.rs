//! Unit tests of the model with synthetic batches: attribution, PID reuse, leftovers of
//! exited processes, intervals and process trees.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use zcprof_common::{Counts, Key, syscalls};

use super::*;

/// A fake /proc: the processes alive "now" (the dashboard's tests use it too).
#[derive(Default)]
pub(crate) struct FakeProc(HashMap<u32, ProcInfo>);

impl FakeProc {
    pub(crate) fn with(mut self, tgid: u32, comm: &str, ppid: u32) -> Self {
        self.0.insert(
            tgid,
            ProcInfo {
                comm: comm.into(),
                ppid,
            },
        );
        self
    }
}

impl ProcSource for FakeProc {
    fn lookup(&self, tgid: u32) -> Option<ProcInfo> {
        self.0.get(&tgid).cloned()
    }
}

fn index(name: &str) -> u32 {
    syscalls::index_named(name).expect(name) as u32
}

fn stats(calls: u64, bytes: u64) -> Counts {
    Counts {
        calls,
        bytes,
        ..Counts::ZERO
    }
}

fn key(tgid: u32, name: &str) -> Key {
    Key {
        tgid,
        slot: index(name),
    }
}

/// The syscall-layer entries `keys`, as `Model::apply` hands them back.
fn forgotten(keys: &[Key]) -> Forget {
    Forget(keys.iter().map(|k| (Layer::Syscall, *k)).collect())
}

struct Clock(Instant);

impl Clock {
    /// The next batch, a second later: `events`, and `stats` as `STATS` entries.
    fn batch(&mut self, events: Vec<ProcEvent>, stats: Vec<(Key, Counts)>) -> Batch {
        self.0 += Duration::from_secs(1);
        Batch {
            events,
            counts: stats
                .into_iter()
                .map(|(key, counts)| (Layer::Syscall, key, counts))
                .collect(),
            ..Batch::empty(self.0)
        }
    }
}

fn fork(parent: u32, child: u32, comm: &str) -> ProcEvent {
    ProcEvent::Fork {
        parent,
        child,
        comm: comm.into(),
        followed: false,
        cgroup: 0,
    }
}

fn exit(tgid: u32, comm: &str) -> ProcEvent {
    ProcEvent::Exit {
        tgid,
        comm: comm.into(),
        followed: None,
        cgroup: 0,
    }
}

fn final_stats(tgid: u32, name: &str, s: Counts) -> ProcEvent {
    ProcEvent::Final {
        tgid,
        layer: Layer::Syscall,
        slot: index(name),
        counts: Box::new(s),
        comm: String::new(),
    }
}

fn final_kernel(tgid: u32, probe: u32, s: Counts) -> ProcEvent {
    ProcEvent::Final {
        tgid,
        layer: Layer::Kernel,
        slot: probe,
        counts: Box::new(s),
        comm: String::new(),
    }
}

fn instances(model: &Model, tgid: u32) -> Vec<&Process> {
    model.processes().filter(|p| p.tgid == tgid).collect()
}

#[test]
fn pid_reuse_makes_two_processes() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let none = FakeProc::default();
    m.apply(
        &clock.batch(
            vec![
                fork(1, 100, "first"),
                final_stats(100, "read", stats(2, 10)),
                exit(100, "first"),
                fork(1, 100, "second"),
            ],
            vec![(key(100, "read"), stats(1, 5))],
        ),
        &none,
    );
    let both = instances(&m, 100);
    assert_eq!(both.len(), 2);
    assert_eq!((both[0].comm.as_str(), both[0].exited), ("first", true));
    assert_eq!(both[0].totals.syscall[index("read") as usize], stats(2, 10));
    assert_eq!((both[1].comm.as_str(), both[1].exited), ("second", false));
    assert_eq!(both[1].totals.syscall[index("read") as usize], stats(1, 5));
}

#[test]
fn a_fork_over_a_live_pid_closes_the_stale_instance() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let proc = FakeProc::default().with(7, "b", 1);
    m.apply(&clock.batch(vec![fork(1, 7, "a")], vec![]), &proc);
    // The exit record of the first process was lost; the PID comes back.
    m.apply(&clock.batch(vec![fork(1, 7, "b")], vec![]), &proc);
    let both = instances(&m, 7);
    assert_eq!(both.len(), 2);
    assert!(both[0].exited);
    assert!(!both[1].exited);
}

#[test]
fn existing_processes_come_from_proc() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let proc = FakeProc::default().with(50, "nginx", 1).with(1, "init", 0);
    let forget = m.apply(
        &clock.batch(
            vec![],
            vec![
                (key(1, "write"), stats(1, 1)),
                (key(50, "sendfile"), stats(3, 300)),
            ],
        ),
        &proc,
    );
    assert!(forget.is_empty());
    let p = &instances(&m, 50)[0];
    assert_eq!(p.comm, "nginx");
    assert_eq!(p.origin, Origin::Existing);
    assert_eq!(p.ppid, Some(1));
    assert_eq!(p.parent, m.latest_instance(1));
    assert_eq!(p.totals.syscall.figures().zero_copy_bytes, 300);
}

#[test]
fn leftovers_of_a_gone_process_are_added_once_and_forgotten() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let none = FakeProc::default();
    m.apply(
        &clock.batch(
            vec![
                fork(1, 9, "w"),
                final_stats(9, "write", stats(1, 4)),
                exit(9, "w"),
            ],
            vec![],
        ),
        &none,
    );
    // An entry the exit could not flush (ring buffer full) is still in the map.
    let forget = m.apply(
        &clock.batch(vec![], vec![(key(9, "write"), stats(2, 6))]),
        &none,
    );
    assert_eq!(forget, forgotten(&[key(9, "write")]));
    let p = &instances(&m, 9);
    assert_eq!(p.len(), 1, "no new instance for a dead pid");
    assert_eq!(p[0].totals.syscall[index("write") as usize], stats(3, 10));
}

#[test]
fn intervals_are_deltas_between_batches() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    m.start_at(clock.0);
    let proc = FakeProc::default().with(5, "cat", 1);
    m.apply(
        &clock.batch(vec![], vec![(key(5, "read"), stats(10, 1000))]),
        &proc,
    );
    assert_eq!(m.interval, Some(Duration::from_secs(1)));
    assert_eq!(
        instances(&m, 5)[0]
            .interval
            .syscall
            .figures()
            .copy_k2u_bytes,
        1000
    );
    m.apply(
        &clock.batch(vec![], vec![(key(5, "read"), stats(15, 1600))]),
        &proc,
    );
    let p = instances(&m, 5)[0];
    assert_eq!(p.interval.syscall.figures().copy_k2u_bytes, 600);
    assert_eq!(p.interval.syscall.figures().calls, 5);
    assert_eq!(p.totals.syscall.figures().copy_k2u_bytes, 1600);
    m.apply(
        &clock.batch(vec![], vec![(key(5, "read"), stats(15, 1600))]),
        &proc,
    );
    assert!(instances(&m, 5)[0].interval.syscall.is_zero());
}

/// The kernel layer has intervals of its own, and a process active only there is active.
#[test]
fn kernel_intervals_are_deltas_too() {
    use zcprof_common::kernel::id;
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    m.start_at(clock.0);
    let proc = FakeProc::default().with(5, "nc", 1);
    let k = Key {
        tgid: 5,
        slot: id::CHECK_OBJECT_SIZE_TO_USER,
    };
    let mut batch = clock.batch(vec![], vec![(key(5, "read"), stats(1, 10))]);
    batch.counts.push((Layer::Kernel, k, stats(4, 4000)));
    m.apply(&batch, &proc);
    let mut batch = clock.batch(vec![], vec![(key(5, "read"), stats(1, 10))]);
    batch.counts.push((Layer::Kernel, k, stats(6, 6500)));
    m.apply(&batch, &proc);
    let p = instances(&m, 5)[0];
    assert!(
        p.interval.syscall.is_zero(),
        "no syscall in the second interval"
    );
    assert_eq!(
        p.interval.kernel[id::CHECK_OBJECT_SIZE_TO_USER as usize],
        stats(2, 2500)
    );
    assert!(p.active(), "kernel-layer activity alone counts");
    assert_eq!(
        p.totals.kernel[id::CHECK_OBJECT_SIZE_TO_USER as usize],
        stats(6, 6500)
    );
}

#[test]
fn exited_processes_are_pruned_after_a_quiet_interval() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let none = FakeProc::default();
    m.apply(
        &clock.batch(
            vec![
                fork(1, 3, "x"),
                final_stats(3, "read", stats(1, 1)),
                exit(3, "x"),
            ],
            vec![],
        ),
        &none,
    );
    m.prune_exited();
    assert_eq!(
        instances(&m, 3).len(),
        1,
        "its last interval is still shown"
    );
    m.apply(&clock.batch(vec![], vec![]), &none);
    m.prune_exited();
    assert_eq!(instances(&m, 3).len(), 0);
}

#[test]
fn trees_follow_forks_not_pids() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let none = FakeProc::default();
    m.apply(
        &clock.batch(
            vec![
                fork(1, 10, "sh"),
                fork(10, 11, "sh"),
                fork(11, 12, "dd"),
                fork(1, 20, "other"),
                fork(20, 21, "other-child"),
            ],
            vec![],
        ),
        &none,
    );
    let root = m.child_of(1, 10).expect("root");
    let tgids: Vec<u32> = m
        .tree(root)
        .iter()
        .map(|id| m.process(*id).expect("member").tgid)
        .collect();
    assert_eq!(tgids, vec![10, 11, 12]);
}

#[test]
fn figures_split_copy_directions_and_zero_copy() {
    let mut t = Totals::<Syscalls>::zero();
    t[index("read") as usize] = stats(1, 100);
    t[index("recvmmsg") as usize] = stats(1, 20);
    t[index("write") as usize] = stats(1, 50);
    t[index("sendfile") as usize] = stats(2, 850);
    t[index("splice") as usize] = Counts {
        errors: 1,
        ..stats(1, 0)
    };
    let f = t.figures();
    assert_eq!(f.copy_k2u_bytes, 120);
    assert_eq!(f.copy_u2k_bytes, 50);
    assert_eq!(f.zero_copy_bytes, 850);
    assert_eq!(f.calls, 6);
    assert_eq!(f.errors, 1);
    assert_eq!(f.zero_copy_ratio(), Some(850.0 / 1020.0));
    assert_eq!(Totals::<Syscalls>::zero().figures().zero_copy_ratio(), None);
}

#[test]
fn events_for_unknown_syscalls_are_ignored() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let proc = FakeProc::default().with(4, "a", 1);
    let bad = Key { tgid: 4, slot: 999 };
    m.apply(&clock.batch(vec![], vec![(bad, stats(1, 1))]), &proc);
    assert_eq!(m.processes().count(), 0);
}

#[test]
fn a_process_that_died_without_an_exit_record_is_swept() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let alive = FakeProc::default().with(8, "dd", 1);
    m.apply(
        &clock.batch(
            vec![],
            vec![
                (key(8, "read"), stats(1, 10)),
                (key(8, "write"), stats(2, 20)),
            ],
        ),
        &alive,
    );
    assert!(!instances(&m, 8)[0].exited);
    // Busy in this interval: not even checked, although /proc no longer has it.
    let gone = FakeProc::default();
    let forget = m.apply(
        &clock.batch(
            vec![],
            vec![
                (key(8, "read"), stats(2, 20)),
                (key(8, "write"), stats(2, 20)),
            ],
        ),
        &gone,
    );
    assert!(forget.is_empty());
    assert!(!instances(&m, 8)[0].exited);
    // Idle and gone: suspected first, since its exit records may still be on their way.
    let forget = m.apply(
        &clock.batch(
            vec![],
            vec![
                (key(8, "read"), stats(2, 20)),
                (key(8, "write"), stats(2, 20)),
            ],
        ),
        &gone,
    );
    assert!(forget.is_empty());
    assert!(!instances(&m, 8)[0].exited);
    // Still idle, gone, and no exit record came: exited, totals kept, entries deleted.
    let forget = m.apply(
        &clock.batch(
            vec![],
            vec![
                (key(8, "read"), stats(2, 20)),
                (key(8, "write"), stats(2, 20)),
            ],
        ),
        &gone,
    );
    assert_eq!(forget, forgotten(&[key(8, "read"), key(8, "write")]));
    let p = instances(&m, 8)[0];
    assert!(p.exited);
    assert_eq!(p.totals.syscall.figures().calls, 4);
}

/// Regression (fork storm): a child that exits right after a batch drained the ring buffer
/// is gone from /proc before its exit records arrive; they must still land on its instance.
#[test]
fn exit_records_after_the_process_left_proc_land_on_its_instance() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let gone = FakeProc::default();
    m.apply(&clock.batch(vec![fork(1, 40, "w")], vec![]), &gone);
    m.apply(
        &clock.batch(
            vec![final_stats(40, "read", stats(1, 198)), exit(40, "w")],
            vec![],
        ),
        &gone,
    );
    let all = instances(&m, 40);
    assert_eq!(all.len(), 1, "one instance");
    assert_eq!(all[0].origin, Origin::Forked);
    assert_eq!(all[0].totals.syscall[index("read") as usize], stats(1, 198));
}

/// The kernel layer is attributed like the syscall layer, into its own field: final records
/// of an exited process, live map entries, and leftovers of a process that is gone (handed to
/// the collector for deletion).
#[test]
fn kernel_layer_is_attributed_apart_from_the_syscall_layer() {
    use zcprof_common::kernel::{self, id};
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let none = FakeProc::default();
    let mut batch = clock.batch(
        vec![
            fork(1, 100, "first"),
            final_kernel(100, id::PIPE_READ, stats(3, 300)),
            exit(100, "first"),
            fork(1, 101, "live"),
        ],
        vec![(key(101, "read"), stats(1, 5))],
    );
    let live = Key {
        tgid: 101,
        slot: id::CHECK_OBJECT_SIZE_TO_USER,
    };
    let gone = Key {
        tgid: 555,
        slot: id::DO_SENDFILE,
    };
    batch.counts.extend([
        (Layer::Kernel, live, stats(2, 64)),
        (Layer::Kernel, gone, stats(1, 9)),
    ]);
    let forget = m.apply(&batch, &none);
    let first = instances(&m, 100)[0];
    assert_eq!(first.totals.kernel[id::PIPE_READ as usize], stats(3, 300));
    assert!(
        first.totals.syscall.is_zero(),
        "nothing leaks into the syscall layer"
    );
    let live_p = instances(&m, 101)[0];
    assert_eq!(
        live_p.totals.kernel[id::CHECK_OBJECT_SIZE_TO_USER as usize],
        stats(2, 64)
    );
    assert_eq!(live_p.totals.syscall[index("read") as usize], stats(1, 5));
    assert_eq!(
        live_p.totals.kernel.copied(kernel::Role::CrossCheck),
        (64, 0)
    );
    assert_eq!(
        instances(&m, 555)[0].totals.kernel[id::DO_SENDFILE as usize],
        stats(1, 9)
    );
    assert_eq!(forget, Forget(vec![(Layer::Kernel, gone)]));
    // Invalid probe indexes are ignored, not a panic, and make no process.
    let mut bad = clock.batch(vec![], vec![]);
    bad.counts = vec![(
        Layer::Kernel,
        Key {
            tgid: 77,
            slot: 999,
        },
        stats(1, 1),
    )];
    assert!(m.apply(&bad, &none).is_empty());
    assert!(instances(&m, 77).is_empty());
}

/// The kernel layer's final records come from a second exit program and may follow the
/// EXIT record: they still belong to the instance that just ended.
#[test]
fn kernel_final_stats_after_exit_go_to_the_ended_instance() {
    use zcprof_common::kernel::id;
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let none = FakeProc::default();
    m.apply(
        &clock.batch(
            vec![
                fork(1, 100, "first"),
                exit(100, "first"),
                final_kernel(100, id::PIPE_WRITE, stats(1, 42)),
            ],
            vec![],
        ),
        &none,
    );
    let all = instances(&m, 100);
    assert_eq!(all.len(), 1, "no second instance");
    assert!(all[0].exited);
    assert_eq!(all[0].totals.kernel[id::PIPE_WRITE as usize], stats(1, 42));
}

/// A process whose exit record was lost leaves entries in every layer's map; the sweep that
/// finds it gone has all of them deleted (the kernel layer's too: left behind, they came
/// back as a leftover and were added to its totals a second time).
#[test]
fn a_swept_process_has_its_entries_in_every_layer_forgotten() {
    use zcprof_common::kernel::id;
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let alive = FakeProc::default().with(8, "dd", 1);
    let k = Key {
        tgid: 8,
        slot: id::CHECK_OBJECT_SIZE_TO_USER,
    };
    let batch = |clock: &mut Clock| {
        let mut b = clock.batch(vec![], vec![(key(8, "read"), stats(1, 10))]);
        b.counts.push((Layer::Kernel, k, stats(1, 10)));
        b
    };
    m.apply(&batch(&mut clock), &alive);
    let gone = FakeProc::default();
    assert!(m.apply(&batch(&mut clock), &gone).is_empty(), "suspected");
    assert_eq!(
        m.apply(&batch(&mut clock), &gone),
        Forget(vec![(Layer::Syscall, key(8, "read")), (Layer::Kernel, k)])
    );
    let p = instances(&m, 8)[0];
    assert!(p.exited);
    assert_eq!(p.totals.kernel[k.slot as usize], stats(1, 10));
}

/// Issue 12: a followed child first met at its exit (forked before the probes attached,
/// reaped before any read of /proc) is a member, with the parent its exit record names;
/// its fork-time descendants inherit the flag, and the map snapshot marks the live targets
/// that no record announced. Nothing else is a member.
#[test]
fn membership_comes_from_the_kernel_not_from_proc() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let target = FakeProc::default().with(10, "sh", 1).with(30, "other", 1);
    let reaped = ProcEvent::Exit {
        tgid: 20,
        comm: "dd".into(),
        followed: Some(10),
        cgroup: 0,
    };
    let followed_fork = ProcEvent::Fork {
        parent: 10,
        child: 21,
        comm: "sh".into(),
        followed: true,
        cgroup: 0,
    };
    m.apply(
        &clock.batch(
            vec![
                final_stats(20, "write", stats(100, 6_553_600)),
                reaped,
                followed_fork,
                fork(30, 31, "other"),
            ],
            vec![
                (key(10, "read"), stats(1, 1)),
                (key(30, "read"), stats(1, 1)),
            ],
        ),
        &target,
    );
    m.mark_followed([10, 21]);
    let members: Vec<(u32, Option<u32>, bool)> = m
        .followed()
        .into_iter()
        .filter_map(|id| m.process(id))
        .map(|p| (p.tgid, p.ppid, p.exited))
        .collect();
    assert_eq!(
        members,
        vec![
            (20, Some(10), true),
            (21, Some(10), false),
            (10, Some(1), false)
        ]
    );
    let dd = instances(&m, 20)[0];
    assert_eq!(dd.comm, "dd");
    assert_eq!(dd.totals.syscall.figures().copied_bytes(), 6_553_600);
}

/// A process's cgroup is the last one a record named; its path is resolved once per id,
/// and a process no record named (it started before zcprof) is resolved by pid.
#[test]
fn cgroups_come_from_the_records_and_resolve_once() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let source = FakeProc::default().with(10, "sh", 1).with(30, "old", 1);
    let forked = ProcEvent::Fork {
        parent: 10,
        child: 11,
        comm: "sh".into(),
        followed: false,
        cgroup: 5,
    };
    m.apply(&clock.batch(vec![forked], Vec::new()), &source);
    let mut asked = Vec::new();
    let resolve = |asked: &mut Vec<(Option<u64>, u32)>, m: &mut Model| {
        m.resolve_cgroups(|id, tgid| {
            asked.push((id, tgid));
            id.map(|id| format!("/cg{id}"))
        });
    };
    resolve(&mut asked, &mut m);
    let child = m.child_of(10, 11).expect("child");
    assert_eq!(
        m.process(child)
            .and_then(|p| p.cgroup_path.clone())
            .as_deref(),
        Some("/cg5")
    );
    assert!(asked.contains(&(Some(5), 11)), "{asked:?}");
    asked.clear();
    resolve(&mut asked, &mut m);
    assert!(asked.is_empty(), "resolved once: {asked:?}");
    // It moved and exec'd: the new cgroup, resolved again; then it exits there.
    let exec = ProcEvent::Exec {
        tgid: 11,
        comm: "dd".into(),
        followed: None,
        cgroup: 6,
    };
    m.apply(&clock.batch(vec![exec], Vec::new()), &source);
    resolve(&mut asked, &mut m);
    assert_eq!(asked, [(Some(6), 11)]);
    let p = m.process(child).expect("instance");
    assert_eq!(
        (p.cgroup, p.cgroup_path.as_deref()),
        (Some(6), Some("/cg6"))
    );
    // An exit that names no cgroup (0) keeps the last one.
    m.apply(&clock.batch(vec![exit(11, "dd")], Vec::new()), &source);
    assert_eq!(m.process(child).and_then(|p| p.cgroup), Some(6));
    // A process that was there before: by pid, once.
    let key = Key {
        tgid: 30,
        slot: index("read"),
    };
    let one = Counts {
        calls: 1,
        bytes: 1,
        ..Counts::ZERO
    };
    m.apply(&clock.batch(Vec::new(), vec![(key, one)]), &source);
    asked.clear();
    resolve(&mut asked, &mut m);
    assert_eq!(asked, [(None, 30)]);
}

/// A threads-layer key of `tgid`'s thread `tid`, syscall `name`.
fn thread_key(tgid: u32, tid: u32, name: &str) -> Key {
    Key {
        tgid,
        slot: zcprof_common::threads::slot(index(name), tid),
    }
}

/// A /proc that names threads too.
struct NamingProc(FakeProc);

impl ProcSource for NamingProc {
    fn lookup(&self, tgid: u32) -> Option<ProcInfo> {
        self.0.lookup(tgid)
    }

    fn thread_name(&self, _tgid: u32, tid: u32) -> Option<String> {
        (tid == 11).then(|| "worker".to_string())
    }
}

#[test]
fn threads_get_their_own_counts_names_and_exit() {
    let source = NamingProc(FakeProc::default().with(10, "server", 1));
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let mut batch = clock.batch(vec![], vec![(key(10, "read"), stats(5, 500))]);
    batch.counts.extend([
        (Layer::Threads, thread_key(10, 10, "read"), stats(2, 200)),
        (Layer::Threads, thread_key(10, 11, "read"), stats(3, 300)),
        // A slot past the syscall table is not a thread's.
        (
            Layer::Threads,
            Key {
                tgid: 10,
                slot: zcprof_common::threads::slot(syscalls::COUNT as u32, 12),
            },
            stats(1, 1),
        ),
    ]);
    m.apply(&batch, &source);
    let p = m.processes().find(|p| p.tgid == 10).expect("server");
    assert_eq!(p.threads.len(), 2);
    let worker = p.threads.get(11).expect("worker");
    assert_eq!(worker.name, "worker", "named from /proc when first seen");
    assert_eq!(worker.totals[index("read") as usize].bytes, 300);
    assert_eq!(worker.interval[index("read") as usize].bytes, 300);
    assert_eq!(p.threads.get(10).expect("main").name(), "?");
    assert_eq!(p.totals.syscall[index("read") as usize].bytes, 500);

    // The worker exits: its final record names it as it was then, and it stays listed.
    let final_read = ProcEvent::Final {
        tgid: 10,
        layer: Layer::Threads,
        slot: zcprof_common::threads::slot(index("read"), 11),
        counts: Box::new(stats(4, 400)),
        comm: "worker-7".into(),
    };
    let batch = clock.batch(vec![final_read], vec![(key(10, "read"), stats(6, 600))]);
    let mut batch = batch;
    batch
        .counts
        .push((Layer::Threads, thread_key(10, 10, "read"), stats(2, 200)));
    m.apply(&batch, &source);
    let p = m.processes().find(|p| p.tgid == 10).expect("server");
    let worker = p.threads.get(11).expect("worker");
    assert!(worker.exited);
    assert_eq!(worker.name, "worker-7");
    assert_eq!(worker.interval[index("read") as usize].bytes, 100);
    assert!(!p.threads.get(10).expect("main").active());

    // Idle and exited before the last tick: pruned with the exited processes' rule.
    m.apply(&clock.batch(vec![], vec![]), &source);
    m.prune_exited();
    m.apply(&clock.batch(vec![], vec![]), &source);
    m.prune_exited();
    let p = m.processes().find(|p| p.tgid == 10).expect("server");
    assert!(
        p.threads.get(11).is_none(),
        "the exited idle thread is forgotten"
    );
    assert!(p.threads.get(10).is_some(), "the live one stays");
}

#[test]
fn a_lost_exit_forgets_the_threads_entries_too() {
    let mut m = Model::new();
    let mut clock = Clock(Instant::now());
    let alive = FakeProc::default().with(10, "server", 1);
    let mut batch = clock.batch(vec![], vec![(key(10, "read"), stats(1, 10))]);
    batch
        .counts
        .push((Layer::Threads, thread_key(10, 11, "read"), stats(1, 10)));
    m.apply(&batch, &alive);
    let gone = FakeProc::default();
    m.apply(&clock.batch(vec![], vec![]), &gone);
    let forget = m.apply(&clock.batch(vec![], vec![]), &gone);
    assert_eq!(
        forget,
        Forget(vec![
            (Layer::Syscall, key(10, "read")),
            (Layer::Threads, thread_key(10, 11, "read")),
        ])
    );
}
