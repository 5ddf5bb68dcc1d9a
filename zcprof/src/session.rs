//! A profiling session: privileges checked, probes attached, the collector running, and the
//! model fed from it. Shared by every subcommand that profiles.
//!
//! The loop contract every subcommand follows: call [`Session::next`] (in a `select!` with
//! whatever else the command waits for; it is cancel-safe) and look at `session.model` after
//! each [`Tick`]; `?` its error, which is the collector's own reason for stopping. Exited
//! processes are kept or pruned as decided once in [`Session::start`] ([`Retention`]), and
//! the map entries the model takes over are handed back to the collector here, for every
//! layer; no command does either itself.

mod files;
mod user;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow};
use aya::maps::{HashMap, MapData};
use tokio::signal::unix::{SignalKind, signal};
use zcprof_common::{
    FOLLOWED_MAP,
    files::FILES_MAP,
    mapped::{FileKey, MARKS_MAP, Mark},
    stacks::STACK_EVENTS_MAP,
};

pub use files::{File, Files};

use crate::{
    collector::{self, Collector, Control},
    host::{
        cgroup, privileges,
        procfs::{self, Procfs},
    },
    model::{Model, ProcEvent, ProcId, ProcSource as _},
    probe_stats,
    probes::{self, Layer, LayerSummary, LoadOptions, ProbeStatus},
    stacks,
    stdio::{self, say},
};

/// `16 kernel-layer probes are unavailable on this kernel`, or `None` when every one attached.
pub fn kernel_missing_line(probes: &[ProbeStatus]) -> Option<String> {
    let missing = probes
        .iter()
        .filter(|p| p.layer == Layer::Kernel && p.via().is_none())
        .count();
    (missing > 0).then(|| {
        format!(
            "{missing} kernel-layer probe{} unavailable on this kernel",
            if missing == 1 { " is" } else { "s are" }
        )
    })
}

/// What a session does with processes that have exited, decided when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep every process instance: `run`, `record` and `demo` report whole process trees,
    /// exited members included.
    KeepExited,
    /// Forget an exited process once its caller has seen an interval in which it did
    /// nothing after the one it exited in (`top`, `serve`, the dashboard): a long session
    /// must not grow without bound.
    PruneExited,
}

/// Why [`Session::next`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// The collector's timer closed an interval.
    Interval,
    /// The batch [`Session::flush`] asked for: everything the kernel had recorded before
    /// the request is in the model.
    Flushed,
}

pub struct Session {
    handle: collector::Handle,
    pub model: Model,
    pub probes: Vec<ProbeStatus>,
    pub layers: Vec<LayerSummary>,
    pub started: Instant,
    retention: Retention,
    /// The kernel's map of followed processes (`zcprof_common::FOLLOWED_MAP`), when the
    /// lifecycle programs that keep it (`task_newtask`, `process_exit`) are attached.
    followed: Option<HashMap<MapData, u32, u32>>,
    /// How many followed processes were alive at the last batch (the map's entries: the
    /// kernel removes a process's entry when it exits, so zombies do not count); `None`
    /// when this session cannot follow.
    pub followed_alive: Option<usize>,
    /// The mapped layer's high-water marks (`zcprof_common::mapped::MARKS_MAP`), when the
    /// layer attached: the per-file pages behind its per-process figure.
    mapped_marks: Option<HashMap<MapData, FileKey, Mark>>,
    /// cgroup ids to paths, learnt at each batch while the cgroups exist.
    pub cgroups: cgroup::Resolver,
    /// `run --files`: the per-file counts, when the flows layer attached.
    files: Option<Files>,
    /// The probes' run time over time, when BPF statistics are on (`--probe-stats`).
    probe_stats: Option<probe_stats::Tracker>,
    /// The stacks layer's reader, when `--stacks` attached.
    stacks: Option<stacks::Sampler>,
    /// The user layer's checks of followed processes, when `--user-copies` attached.
    user: Option<user::UserCopies>,
}

impl Session {
    /// Checks privileges, loads and attaches the probes (telling the user on stderr about
    /// anything unavailable), and starts collecting every `period`. Must run inside a
    /// tokio runtime.
    pub fn start(
        opts: &LoadOptions,
        period: Duration,
        retention: Retention,
    ) -> anyhow::Result<Session> {
        privileges::check()?;
        // Before the probes attach, so that their counters (which start at zero when each
        // program loads) hold every run, as the maps hold every call: the first interval's
        // cost is then over the same calls as its figures.
        let stats = match probe_stats::start(opts.probe_stats) {
            Ok(stats) => stats,
            Err(err) => {
                say!("zcprof: warning: --probe-stats: {err}; the probes' cost is not shown");
                None
            }
        };
        let mut loaded = probes::load(opts)?;
        for warning in &loaded.warnings {
            say!("zcprof: warning: {warning}");
        }
        // The kernel layer is best effort and its list is long on kernels without fentry or
        // kprobes. Said on every command, the line became noise that hid real warnings, so
        // it is said by `--verbose` and `zcprof doctor` only; every report's layer state
        // ("kernel layer: partial … (16 probes unavailable)") still shows what zcprof
        // cannot see, where the figures are.
        if stdio::verbose()
            && let Some(line) = kernel_missing_line(&loaded.probes)
        {
            say!("zcprof: warning: {line} (`zcprof doctor` says why)");
        }
        // A layer the user turned off (`--disable-layer`) is not a surprise to warn about:
        // its state ("unavailable") is in every report's layer line, where the figures are.
        for p in loaded
            .probes
            .iter()
            .filter(|p| p.layer != Layer::Kernel && !opts.disabled.contains(&p.layer))
        {
            if let Some(reason) = p.reason() {
                say!(
                    "zcprof: warning: probe {} ({} layer) is unavailable: {reason}",
                    p.probe,
                    p.layer,
                );
            }
        }
        let probes = loaded.probes.clone();
        let layers = loaded.layer_summary();
        let followed = if can_follow(&probes) {
            let map = loaded
                .ebpf
                .take_map(FOLLOWED_MAP)
                .ok_or_else(|| anyhow!("map {FOLLOWED_MAP} is missing from the eBPF object"))?;
            Some(HashMap::try_from(map).context("opening the followed-process map")?)
        } else {
            None
        };
        let mapped_marks = if probes
            .iter()
            .any(|p| p.layer == Layer::Mapped && p.via().is_some())
        {
            let map = loaded
                .ebpf
                .take_map(MARKS_MAP)
                .ok_or_else(|| anyhow!("map {MARKS_MAP} is missing from the eBPF object"))?;
            Some(HashMap::try_from(map).context("opening the mapped layer's marks")?)
        } else {
            None
        };
        let files = if opts.files
            && probes
                .iter()
                .any(|p| p.layer == Layer::Flows && p.via().is_some())
        {
            let map = loaded
                .ebpf
                .take_map(FILES_MAP)
                .ok_or_else(|| anyhow!("map {FILES_MAP} is missing from the eBPF object"))?;
            Some(Files::new(
                HashMap::try_from(map).context("opening the per-file map")?,
            ))
        } else {
            None
        };
        let stacks = match opts.stacks {
            Some(period)
                if probes
                    .iter()
                    .any(|p| p.layer == Layer::Stacks && p.via().is_some()) =>
            {
                let map = loaded.ebpf.take_map(STACK_EVENTS_MAP).ok_or_else(|| {
                    anyhow!("map {STACK_EVENTS_MAP} is missing from the eBPF object")
                })?;
                Some(stacks::Sampler::start(map, period)?)
            }
            _ => None,
        };
        let user = probes
            .iter()
            .any(|p| p.layer == Layer::User && p.via().is_some())
            .then(|| user::UserCopies::new(&opts.user_binaries));
        let collector = Collector::new(loaded.ebpf, stats).context("starting the collector")?;
        let started = Instant::now();
        let probe_stats = collector
            .probe_stats()
            .map(|by| probe_stats::Tracker::new(by, started, probe_stats::Counters::default()));
        let mut model = Model::new();
        model.start_at(started);
        Ok(Session {
            handle: collector::spawn(collector, period),
            model,
            probes,
            layers,
            started,
            retention,
            followed_alive: followed.as_ref().map(|_| 0),
            followed,
            mapped_marks,
            cgroups: cgroup::Resolver::new(),
            files,
            probe_stats,
            stacks,
            user,
        })
    }

    /// `--user-copies`: checks what the user layer counts of process `tgid`, which the
    /// caller just spawned (its exec record comes a batch later, when it may be gone).
    pub fn user_check(&mut self, tgid: u32) {
        if let Some(user) = &mut self.user {
            let comm = std::fs::read_to_string(format!("/proc/{tgid}/comm"))
                .map(|c| c.trim_end().to_string())
                .unwrap_or_default();
            user.check(tgid, &comm, &self.handle.control);
        }
    }

    /// `--user-copies`: what the user layer counts of each of `tgids` it checked (at their
    /// exec records); `None` without the layer.
    pub fn user_coverage(
        &self,
        tgids: &[u32],
    ) -> Option<Vec<crate::report::user::ProcessCoverage>> {
        Some(self.user.as_ref()?.coverage_of(tgids))
    }

    /// Runs `spawn`; with `--stacks`, reads the spawned process's mappings as soon as it
    /// returns, before the stacks layer may look at a sample of it (see
    /// `stacks::Sampler::observe_spawned`).
    pub fn stacks_observe_spawned<T>(
        &self,
        program: Option<&std::path::Path>,
        spawn: impl FnOnce() -> Option<(T, u32)>,
    ) -> Option<(T, u32)> {
        match &self.stacks {
            Some(sampler) => sampler.observe_spawned(program, spawn),
            None => spawn(),
        }
    }

    /// Process `tgid`'s call sites over the last minute, for the dashboard; `None` without
    /// `--stacks`.
    pub fn call_sites(&self, tgid: u32) -> Option<crate::ui::processes::CallSites> {
        let sampler = self.stacks.as_ref()?;
        Some(crate::ui::processes::CallSites {
            pid: tgid,
            period: sampler.period,
            lost: self.model.counters.stack_lost,
            rows: sampler
                .recent(tgid, stacks::table::RECENT_SECONDS)
                .into_iter()
                .map(
                    |(_, call_site, samples)| crate::ui::processes::CallSiteRow {
                        call_site,
                        samples,
                    },
                )
                .collect(),
        })
    }

    /// The stacks layer's estimate so far, symbolized; `None` without `--stacks` (or when
    /// it did not attach).
    pub fn stacks(&self) -> Option<stacks::Report> {
        let sampler = self.stacks.as_ref()?;
        Some(sampler.report(self.model.counters.stack_lost))
    }

    /// The probes' own cost over the last interval, when BPF statistics are on (`None`
    /// before the first interval closed).
    pub fn probe_cost(&self) -> Option<probe_stats::Cost> {
        self.probe_stats.as_ref()?.interval()
    }

    /// The probes' own cost since the session started, when BPF statistics are on.
    pub fn probe_total(&self) -> Option<probe_stats::Cost> {
        self.probe_stats.as_ref().map(probe_stats::Tracker::total)
    }

    /// `run --files`: the per-file counts, `None` when not asked for or the flows layer did
    /// not attach.
    pub fn files(&self) -> Option<&Files> {
        self.files.as_ref()
    }

    /// The cgroup of each of `members` that is known, by instance.
    pub fn cgroups_of(&self, members: &[ProcId]) -> BTreeMap<ProcId, cgroup::Cgroup> {
        members
            .iter()
            .filter_map(|id| {
                let p = self.model.process(*id)?;
                (p.cgroup.is_some() || p.cgroup_path.is_some()).then(|| {
                    (
                        *id,
                        cgroup::Cgroup {
                            id: p.cgroup,
                            path: p.cgroup_path.clone(),
                            container: p.container(),
                        },
                    )
                })
            })
            .collect()
    }

    /// Whether the mapped layer attached (its figures can be compared with ground truth).
    pub fn mapped_layer_attached(&self) -> bool {
        self.mapped_marks.is_some()
    }

    /// The mapped layer's pages per `(process, file)` that the kernel still keeps (the
    /// marks outlive their process until the LRU evicts them), sorted; empty when the layer
    /// is not attached. A mark being updated while it is read is skipped, not an error.
    pub fn mapped_files(&self) -> Vec<(FileKey, Mark)> {
        let Some(map) = self.mapped_marks.as_ref() else {
            return Vec::new();
        };
        let mut files: Vec<(FileKey, Mark)> = map.iter().filter_map(Result::ok).collect();
        files.sort_by_key(|(key, _)| *key);
        files
    }

    /// Whether the kernel follows processes in this session (see [`Session::follow`]).
    pub fn can_follow(&self) -> bool {
        self.followed.is_some()
    }

    /// Has the kernel follow `tgid` (recorded as `parent`'s child) and, from now on, every
    /// process it forks. Nothing when this session cannot follow.
    pub fn follow(&mut self, tgid: u32, parent: u32) -> anyhow::Result<()> {
        if let Some(map) = self.followed.as_mut() {
            map.insert(tgid, parent, 0)
                .with_context(|| format!("following process {tgid}"))?;
        }
        Ok(())
    }

    /// Stops following `tgid` itself (the processes it forked meanwhile stay followed).
    pub fn unfollow(&mut self, tgid: u32) {
        if let Some(map) = self.followed.as_mut() {
            // Already gone is fine: it exited.
            let _ = map.remove(&tgid);
        }
    }

    /// Follows `roots` and every process descended from them now: the roots first (so that
    /// what they fork from here on is followed by the kernel), then their descendants from
    /// /proc, read again until a pass finds nobody new (a descendant may fork between the
    /// read and its insertion). One that exited before its insertion is removed again, so a
    /// later process that gets its pid is not followed by mistake.
    pub fn follow_trees(&mut self, roots: &[u32]) -> anyhow::Result<()> {
        if !self.can_follow() {
            return Ok(());
        }
        let mut followed: std::collections::HashSet<u32> = roots.iter().copied().collect();
        for &root in roots {
            let parent = Procfs.lookup(root).map_or(0, |info| info.ppid);
            self.follow(root, parent)?;
        }
        loop {
            let all = procfs::processes();
            let tree: Vec<u32> = procfs::descendants(roots, &all);
            let new: Vec<(u32, u32)> = all
                .iter()
                .filter(|(tgid, _)| tree.contains(tgid) && !followed.contains(tgid))
                .copied()
                .collect();
            if new.is_empty() {
                break;
            }
            for (tgid, ppid) in new {
                followed.insert(tgid);
                self.follow(tgid, ppid)?;
                if !procfs::exists(tgid) {
                    self.unfollow(tgid);
                }
            }
        }
        Ok(())
    }

    /// Waits for the next batch and applies it to the model. Fails with the collector's
    /// reason when it has stopped.
    ///
    /// Cancel-safe: dropped before a batch arrives, it has changed nothing that matters (the
    /// pruning it starts with acts once per interval).
    pub async fn next(&mut self) -> anyhow::Result<Tick> {
        self.prune();
        self.receive().await
    }

    /// Asks for a batch now and applies every batch up to and including it, so that the
    /// model holds everything the kernel recorded before this call.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.prune();
        if self.handle.control.send(Control::Flush).is_err() {
            return Err(self.stopped().await);
        }
        while self.receive().await? != Tick::Flushed {}
        Ok(())
    }

    /// The caller asks for more, so it is done with the last interval: prune now if this
    /// session prunes.
    fn prune(&mut self) {
        if self.retention == Retention::PruneExited {
            self.model.prune_exited();
        }
    }

    async fn receive(&mut self) -> anyhow::Result<Tick> {
        let Some(batch) = self.handle.batches.recv().await else {
            return Err(self.stopped().await);
        };
        let forget = self.model.apply(&batch, &Procfs);
        if let (Some(tracker), Some(runs)) = (&mut self.probe_stats, batch.probe_runs) {
            tracker.update(batch.at, runs);
        }
        if let Some(files) = &mut self.files {
            files.update(&self.model);
        }
        self.cgroups
            .learn(batch.events.iter().filter_map(|e| match e {
                ProcEvent::Fork { cgroup, .. }
                | ProcEvent::Exec { cgroup, .. }
                | ProcEvent::Exit { cgroup, .. } => Some(*cgroup),
                ProcEvent::Final { .. } => None,
            }));
        let resolver = &mut self.cgroups;
        self.model.resolve_cgroups(|id, tgid| match id {
            Some(id) => resolver.path(id),
            None => cgroup::of_pid(tgid),
        });
        // After the batch's ring-buffer records: a process forked since then is in the map
        // but not in the model yet (its instance comes with its fork record), one that
        // exited since then has its exit record, flag included, in the next batch.
        if let Some(map) = &self.followed {
            let alive: Vec<u32> = map.keys().filter_map(Result::ok).collect();
            self.followed_alive = Some(alive.len());
            self.model.mark_followed(alive);
        }
        if let Some(user) = &mut self.user {
            for e in &batch.events {
                if let ProcEvent::Exec {
                    tgid,
                    comm,
                    followed: Some(_),
                    ..
                } = e
                {
                    user.check(*tgid, comm, &self.handle.control);
                }
            }
            let attached = user.take_attached();
            if !attached.is_empty() {
                self.probes.extend(attached);
                self.probes.sort_by_key(|p| p.layer);
                self.layers = probes::summarize(&self.probes);
            }
        }
        // If the collector is gone there is nothing left to delete from; the next receive
        // says why it went.
        if !forget.is_empty() {
            let _ = self.handle.control.send(Control::Forget(forget));
        }
        Ok(if batch.flushed {
            Tick::Flushed
        } else {
            Tick::Interval
        })
    }

    /// Why the collector stopped, from its task (awaited once).
    async fn stopped(&mut self) -> anyhow::Error {
        let Some(task) = self.handle.task.as_mut() else {
            return anyhow!("the collector has stopped");
        };
        let outcome = task.await;
        self.handle.task = None;
        match outcome {
            Ok(Err(err)) => err.context("the collector stopped"),
            // It ends by itself only when the session is gone; anything else is a bug.
            Ok(Ok(())) => anyhow!("the collector stopped unexpectedly"),
            Err(join) => anyhow!("the collector failed: {join}"),
        }
    }
}

/// Whether the programs that keep the followed-process map are attached: `task_newtask`
/// adds children, `process_exit` removes what exits (without it entries would outlive
/// their processes).
fn can_follow(probes: &[ProbeStatus]) -> bool {
    ["task:task_newtask", "sched:sched_process_exit"]
        .iter()
        .all(|name| {
            probes
                .iter()
                .any(|p| p.layer == Layer::Lifecycle && p.probe == *name && p.via().is_some())
        })
}

/// Resolves on SIGINT or SIGTERM with the signal's number.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::sync::mpsc;
    use zcprof_common::{Counts, Key};

    use super::*;
    use crate::model::{Batch, Forget};

    impl Session {
        /// A session over a fake collector (no probes): what `start` builds after loading.
        fn over(handle: collector::Handle, retention: Retention) -> Session {
            Session {
                handle,
                model: Model::new(),
                probes: Vec::new(),
                layers: Vec::new(),
                started: Instant::now(),
                retention,
                followed: None,
                followed_alive: None,
                mapped_marks: None,
                cgroups: cgroup::Resolver::new(),
                files: None,
                probe_stats: None,
                stacks: None,
                user: None,
            }
        }
    }

    /// A fake collector: the batches it will send, the control it receives, and its task.
    fn fake(
        outcome: anyhow::Result<()>,
    ) -> (
        collector::Handle,
        mpsc::Sender<Batch>,
        mpsc::UnboundedReceiver<Control>,
    ) {
        let (batch_tx, batches) = mpsc::channel(8);
        let (control, control_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move { outcome });
        let handle = collector::Handle {
            batches,
            control,
            task: Some(task),
        };
        (handle, batch_tx, control_rx)
    }

    #[tokio::test]
    async fn the_collectors_own_error_reaches_the_caller() {
        let (handle, batches, _control) =
            fake(Err(anyhow!("polling the ring buffer: Bad file descriptor")));
        let mut session = Session::over(handle, Retention::KeepExited);
        drop(batches);
        let err = session.next().await.expect_err("the collector stopped");
        assert_eq!(
            format!("{err:#}"),
            "the collector stopped: polling the ring buffer: Bad file descriptor"
        );
        // Asked again, it still says it stopped (its task is awaited only once).
        let again = session.flush().await.expect_err("still stopped");
        assert_eq!(again.to_string(), "the collector has stopped");
    }

    #[tokio::test]
    async fn ticks_say_whether_the_batch_was_asked_for() {
        let (handle, batches, mut control) = fake(Ok(()));
        let mut session = Session::over(handle, Retention::KeepExited);
        batches
            .send(Batch::empty(Instant::now()))
            .await
            .expect("send");
        assert_eq!(session.next().await.expect("a batch"), Tick::Interval);
        // `flush` asks for a batch and applies everything up to the asked-for one.
        let reply = tokio::spawn(async move {
            let request = control.recv().await;
            assert!(matches!(request, Some(Control::Flush)), "{request:?}");
            for flushed in [false, true] {
                let batch = Batch {
                    flushed,
                    ..Batch::empty(Instant::now())
                };
                batches.send(batch).await.expect("send");
            }
            (batches, control)
        });
        session.flush().await.expect("flushed");
        let (batches, _control) = reply.await.expect("reply");
        drop(batches);
        assert!(session.next().await.is_err());
    }

    /// Entries the model takes over go back to the collector, whatever their layer.
    #[tokio::test]
    async fn leftovers_of_every_layer_are_handed_back() {
        let (handle, batches, mut control) = fake(Ok(()));
        let mut session = Session::over(handle, Retention::KeepExited);
        // No process has this pid (above the largest pid_max), so its entries are
        // leftovers of a process that is gone.
        let key = Key {
            tgid: 1 << 30,
            slot: 0,
        };
        let one = Counts {
            calls: 1,
            ..Counts::ZERO
        };
        let batch = Batch {
            counts: vec![(Layer::Syscall, key, one), (Layer::Kernel, key, one)],
            ..Batch::empty(Instant::now())
        };
        batches.send(batch).await.expect("send");
        session.next().await.expect("a batch");
        match control.try_recv() {
            Ok(Control::Forget(forget)) => assert_eq!(
                forget,
                Forget(vec![(Layer::Syscall, key), (Layer::Kernel, key)])
            ),
            other => panic!("{other:?}"),
        }
    }

    /// A process that exited in one interval and was idle in the next is pruned when the
    /// caller comes back for more, once, and only in a session started to prune.
    #[tokio::test]
    async fn pruning_is_decided_when_the_session_starts() {
        for (retention, left) in [(Retention::PruneExited, 0), (Retention::KeepExited, 1)] {
            let (handle, batches, _control) = fake(Ok(()));
            let mut session = Session::over(handle, retention);
            let start = Instant::now();
            let exited = Batch {
                events: vec![
                    ProcEvent::Fork {
                        parent: 1,
                        child: 1 << 30,
                        comm: "gone".into(),
                        followed: false,
                        cgroup: 0,
                    },
                    ProcEvent::Exit {
                        tgid: 1 << 30,
                        comm: "gone".into(),
                        followed: None,
                        cgroup: 0,
                    },
                ],
                ..Batch::empty(start)
            };
            batches.send(exited).await.expect("send");
            for s in 1..=3 {
                let at = start + Duration::from_secs(s);
                batches.send(Batch::empty(at)).await.expect("send");
            }
            session.next().await.expect("exit interval");
            session.next().await.expect("idle interval");
            assert_eq!(
                session.model.processes().count(),
                1,
                "{retention:?}: its last intervals are still shown"
            );
            session.next().await.expect("next");
            assert_eq!(session.model.processes().count(), left, "{retention:?}");
        }
    }
}
