//! Attribution of the kernel's counts to processes: pure, no I/O (process details come
//! through the [`ProcSource`] trait), so that it is tested with synthetic batches.
//!
//! A process is one *instance* ([`ProcId`]): a tgid from its fork (or first sighting) to its
//! exit. When a PID is reused, the new process gets a new instance, so two processes are
//! never merged; the kernel side helps by flushing and deleting an exiting process's map
//! entries (see `zcprof-ebpf/src/lifecycle.rs`).

mod input;
mod threads;
mod totals;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};

pub use input::{Batch, KernelCounters, ProcEvent};
pub use threads::{Thread, Threads};
pub use totals::{
    Counters, CountsExt, CpuShares, CpuSlots, Figures, FlowSlots, IoUringOps, KernelProbes,
    MappedSlots, Slots, Syscalls, Totals, UserSlots, errno_names, flow_how, flow_name, would_block,
};
use zcprof_common::{Counts, Key};

use crate::probes::{self, Layer};

/// Identity of one process instance, unique for the life of a [`Model`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcId(pub u64);

/// What `/proc` says about a live process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    pub comm: String,
    pub ppid: u32,
}

/// Where the model learns about processes it has no event for (started before zcprof).
pub trait ProcSource {
    /// `None` when no process `tgid` exists (any more).
    fn lookup(&self, tgid: u32) -> Option<ProcInfo>;

    /// Whether process `tgid` exists.
    fn alive(&self, tgid: u32) -> bool {
        self.lookup(tgid).is_some()
    }

    /// The name of thread `tid` of process `tgid`, `None` when it is gone or unknown.
    fn thread_name(&self, _tgid: u32, _tid: u32) -> Option<String> {
        None
    }
}

/// How the model first learned of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Its fork was seen: everything it did is counted.
    Forked,
    /// It existed before the probes attached (or its fork record was lost): counted from
    /// the moment the probes attached.
    Existing,
}

/// One process instance.
#[derive(Clone, Debug)]
pub struct Process {
    pub id: ProcId,
    pub tgid: u32,
    /// The parent's tgid, when known.
    pub ppid: Option<u32>,
    /// The parent's instance, when the parent was seen by this model.
    pub parent: Option<ProcId>,
    pub comm: String,
    pub origin: Origin,
    pub exited: bool,
    /// The kernel follows it (`zcprof_common::FOLLOWED_MAP`): a target of `record --pid`,
    /// the command of `run`/`record -- CMD`, or a descendant of one, as decided at its fork
    /// or its seeding, never guessed from a parent pid. Sticky: once seen followed, an
    /// instance stays a member after it exits.
    pub followed: bool,
    /// Its cgroup v2 id (the inode number of its directory in the cgroup2 filesystem), as
    /// the last lifecycle record about it said (a fork: its parent's; an exec, an exit: its
    /// own), `None` when no record said (it started before zcprof and has not exec'd or
    /// exited yet: `host::cgroup` reads /proc then). A process moved to another cgroup
    /// keeps every byte under the last one seen.
    pub cgroup: Option<u64>,
    /// The path of that cgroup under the cgroup2 root, once the session resolved it
    /// ([`Model::resolve_cgroups`]); for a process no record named, what /proc said.
    pub cgroup_path: Option<String>,
    /// [`Model::resolve_cgroups`] has tried for the current `cgroup` (a removed cgroup, or a
    /// process gone from /proc, is not tried again).
    cgroup_tried: bool,
    /// Everything each layer counted for it since the probes attached.
    pub totals: Counters,
    /// What each layer counted for it during the last interval (see [`Model::tick`]).
    pub interval: Counters,
    /// Its threads, with the threads layer (`--threads`); empty without it.
    pub threads: Threads,
    at_last_tick: Counters,
    /// Exited before the last tick too: may be pruned once it shows no activity.
    exited_at_last_tick: bool,
}

impl Process {
    /// The name for people: `?` when it is unknown (the process was gone before /proc was
    /// read and no lifecycle record named it), so a table never shows a blank.
    pub fn name(&self) -> &str {
        if self.comm.is_empty() {
            "?"
        } else {
            &self.comm
        }
    }

    /// Takes a lifecycle record's cgroup id (0: the record did not know it).
    fn set_cgroup(&mut self, id: u64) {
        if id != 0 && self.cgroup != Some(id) {
            self.cgroup = Some(id);
            self.cgroup_path = None;
            self.cgroup_tried = false;
        }
    }

    /// The container or unit its cgroup path names, if any.
    pub fn container(&self) -> Option<String> {
        self.cgroup_path
            .as_deref()
            .and_then(crate::host::cgroup::container)
    }

    /// The counts at `slot` of `layer`: the threads layer's are its threads'.
    fn slot_mut(&mut self, layer: Layer, slot: u32) -> Option<&mut Counts> {
        match layer {
            Layer::Threads => self.threads.slot_mut(slot),
            _ => self.totals.slot_mut(layer, slot),
        }
    }

    /// The kernel map key of every slot it counted something in, in every layer.
    fn keys(&self) -> Vec<(Layer, Key)> {
        let tgid = self.tgid;
        self.totals
            .used()
            .map(|(layer, slot)| (layer, Key { tgid, slot }))
            .chain(self.threads.keys(tgid))
            .collect()
    }

    /// Did something in the last interval, in any layer.
    pub fn active(&self) -> bool {
        !self.interval.is_zero()
    }

    fn new(id: ProcId, tgid: u32, comm: String, origin: Origin) -> Self {
        Process {
            id,
            tgid,
            ppid: None,
            parent: None,
            comm,
            origin,
            exited: false,
            followed: false,
            cgroup: None,
            cgroup_path: None,
            cgroup_tried: false,
            totals: Counters::zero(),
            interval: Counters::zero(),
            threads: Threads::default(),
            at_last_tick: Counters::zero(),
            exited_at_last_tick: false,
        }
    }
}

/// Processes, their totals and the kernel's health counters.
#[derive(Default)]
pub struct Model {
    procs: BTreeMap<ProcId, Process>,
    /// The live instance of each tgid.
    live: HashMap<u32, ProcId>,
    next_id: u64,
    /// The latest kernel counters (cumulative since load).
    pub counters: KernelCounters,
    /// Ring-buffer records user space could not decode (cumulative).
    pub malformed: u64,
    /// Entries in the kernel's `STATS` map at the last read: live processes × syscalls
    /// they used. Exited processes' entries are deleted, so this stays bounded.
    pub kernel_entries: usize,
    last_tick: Option<Instant>,
    /// The tick [`Model::prune_exited`] last ran after (it acts once per interval).
    pruned_after: Option<Instant>,
    /// Live processes the last sweep found gone from /proc (see `sweep_missed_exits`).
    suspects: HashSet<ProcId>,
    /// Length of the last interval, once two ticks have happened.
    pub interval: Option<Duration>,
}

impl Model {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the first interval at `at` (when the probes attached), so the first batch
    /// already yields rates.
    pub fn start_at(&mut self, at: Instant) {
        self.last_tick = Some(at);
    }

    /// Applies one batch from the collector, then closes the interval at `batch.at`.
    /// Returns the map entries, in every layer, that user space took over (left behind by
    /// processes that are gone), which the collector must delete so they are not counted
    /// twice.
    pub fn apply(&mut self, batch: &Batch, source: &dyn ProcSource) -> Forget {
        for event in &batch.events {
            self.apply_event(event, source);
        }
        let mut forget = Forget::default();
        for (layer, key, counts) in &batch.counts {
            if !valid(*layer, key.slot) {
                continue;
            }
            let (id, leftover) = self.entry_owner(key.tgid, source);
            let Some(slot) = self
                .procs
                .get_mut(&id)
                .and_then(|p| p.slot_mut(*layer, key.slot))
            else {
                continue;
            };
            if leftover {
                slot.add(counts);
                forget.0.push((*layer, *key));
            } else {
                *slot = *counts;
            }
        }
        self.counters = batch.counters;
        self.kernel_entries = batch
            .counts
            .iter()
            .filter(|(layer, _, _)| *layer == Layer::Syscall)
            .count();
        self.malformed = batch.malformed;
        for p in self.procs.values_mut().filter(|p| !p.exited) {
            p.threads.name(p.tgid, source);
        }
        self.tick(batch.at);
        self.sweep_missed_exits(source, &mut forget);
        forget
    }

    /// Marks exited the live processes that are gone although no exit record came (it was
    /// lost to a full ring buffer), and has their map entries deleted. Only idle ones are
    /// checked: a process that did something in the last interval is alive.
    ///
    /// A process must be found gone by two sweeps in a row. Its exit records are submitted
    /// before it disappears from /proc, but possibly after this batch drained the ring
    /// buffer: the next batch carries them, and only if it does not was the exit lost.
    fn sweep_missed_exits(&mut self, source: &dyn ProcSource, forget: &mut Forget) {
        let gone: HashSet<ProcId> = self
            .live
            .iter()
            .filter(|(_, id)| self.procs.get(id).is_some_and(|p| !p.active()))
            .filter(|(tgid, _)| !source.alive(**tgid))
            .map(|(_, id)| *id)
            .collect();
        let confirmed: Vec<ProcId> = gone.intersection(&self.suspects).copied().collect();
        self.suspects = gone;
        for id in confirmed {
            self.suspects.remove(&id);
            let Some(p) = self.procs.get(&id) else {
                continue;
            };
            let tgid = p.tgid;
            forget.0.extend(p.keys());
            self.mark_exited(tgid, id);
        }
    }

    /// The instance a kernel map entry of `tgid` belongs to, and whether the entry is a
    /// leftover. Live entries hold cumulative totals of the live instance (or of a process
    /// that started before zcprof, created here). A leftover was left behind by a process
    /// that is gone (its exit record was lost): it is added once to that process's last
    /// instance, and the caller has the kernel entry deleted.
    fn entry_owner(&mut self, tgid: u32, source: &dyn ProcSource) -> (ProcId, bool) {
        if let Some(id) = self.live.get(&tgid).copied() {
            return (id, false);
        }
        if let Some(info) = source.lookup(tgid) {
            let id = self.create(tgid, info.comm, Origin::Existing);
            let parent = self.live.get(&info.ppid).copied();
            if let Some(p) = self.procs.get_mut(&id) {
                p.ppid = Some(info.ppid);
                p.parent = parent;
            }
            return (id, false);
        }
        let id = match self.latest_instance(tgid) {
            Some(id) => id,
            None => {
                let id = self.create(tgid, String::new(), Origin::Existing);
                self.mark_exited(tgid, id);
                id
            }
        };
        (id, true)
    }

    fn apply_event(&mut self, event: &ProcEvent, source: &dyn ProcSource) {
        match event {
            ProcEvent::Fork {
                parent,
                child,
                comm,
                followed,
                cgroup,
            } => {
                // A live instance with the child's PID must have exited unseen.
                if let Some(stale) = self.live.get(child).copied() {
                    self.mark_exited(*child, stale);
                }
                let id = self.create(*child, comm.clone(), Origin::Forked);
                let parent_id = self.live.get(parent).copied();
                if let Some(p) = self.procs.get_mut(&id) {
                    p.ppid = Some(*parent);
                    p.parent = parent_id;
                    p.followed = *followed;
                    p.set_cgroup(*cgroup);
                }
            }
            ProcEvent::Exec {
                tgid,
                comm,
                followed,
                cgroup,
            } => {
                let id = self.live_or_create(*tgid, comm, source);
                self.follow(id, *followed);
                if let Some(p) = self.procs.get_mut(&id) {
                    p.comm.clone_from(comm);
                    p.set_cgroup(*cgroup);
                }
            }
            ProcEvent::Final {
                tgid,
                layer,
                slot,
                counts,
                comm,
            } => {
                if !valid(*layer, *slot) {
                    return;
                }
                // A layer flushed by an exit program of its own may send these after the
                // process's EXIT: then they belong to the instance that just ended. The
                // syscall layer's come before EXIT, from a live instance (or one that
                // /proc still shows).
                let after_exit = probes::spec(*layer)
                    .and_then(|spec| spec.counting)
                    .is_some_and(|c| c.exit_flush.is_some());
                let id = match (self.live.get(tgid).copied(), after_exit) {
                    (Some(id), _) => id,
                    (None, true) => match self.latest_instance(*tgid) {
                        Some(id) => id,
                        None => self.live_or_create(*tgid, "", source),
                    },
                    (None, false) => self.live_or_create(*tgid, "", source),
                };
                let Some(p) = self.procs.get_mut(&id) else {
                    return;
                };
                if let Some(counts_at) = p.slot_mut(*layer, *slot) {
                    *counts_at = **counts;
                }
                if *layer == Layer::Threads {
                    // Sent at the thread's exit only, by the thread itself.
                    p.threads
                        .exited(zcprof_common::threads::split(*slot).1, comm);
                }
            }
            ProcEvent::Exit {
                tgid,
                comm,
                followed,
                cgroup,
            } => {
                let id = self.live_or_create(*tgid, comm, source);
                self.follow(id, *followed);
                if let Some(p) = self.procs.get_mut(&id) {
                    if p.comm.is_empty() {
                        p.comm.clone_from(comm);
                    }
                    p.set_cgroup(*cgroup);
                }
                self.mark_exited(*tgid, id);
            }
        }
    }

    /// Marks instance `id` followed when the kernel says so (`Some(parent)`), and gives it
    /// that parent where it had none: a process first met at its exit has been reaped, and
    /// /proc no longer knows its parent, but the kernel's map did.
    fn follow(&mut self, id: ProcId, followed: Option<u32>) {
        let Some(parent) = followed else {
            return;
        };
        let parent_id = self.live.get(&parent).copied().or_else(|| {
            self.procs
                .values()
                .rev()
                .find(|p| p.tgid == parent && p.id != id)
                .map(|p| p.id)
        });
        if let Some(p) = self.procs.get_mut(&id) {
            p.followed = true;
            if p.ppid.is_none() {
                p.ppid = (parent != 0).then_some(parent);
                p.parent = parent_id.filter(|_| parent != 0);
            }
        }
    }

    /// Marks followed the live instances of `tgids`: the kernel's map of followed
    /// processes as read after a batch (the targets and descendants seeded at attach, which
    /// no lifecycle record announced).
    pub fn mark_followed(&mut self, tgids: impl IntoIterator<Item = u32>) {
        for tgid in tgids {
            if let Some(p) = self.live.get(&tgid).and_then(|id| self.procs.get_mut(id)) {
                p.followed = true;
            }
        }
    }

    /// Every followed instance, live or exited, in creation order.
    pub fn followed(&self) -> Vec<ProcId> {
        self.procs
            .values()
            .filter(|p| p.followed)
            .map(|p| p.id)
            .collect()
    }

    fn live_or_create(&mut self, tgid: u32, comm: &str, source: &dyn ProcSource) -> ProcId {
        if let Some(id) = self.live.get(&tgid) {
            return *id;
        }
        let info = source.lookup(tgid);
        let comm = info
            .as_ref()
            .map_or_else(|| comm.to_string(), |i| i.comm.clone());
        let id = self.create(tgid, comm, Origin::Existing);
        if let Some(info) = info {
            let parent = self.live.get(&info.ppid).copied();
            if let Some(p) = self.procs.get_mut(&id) {
                p.ppid = Some(info.ppid);
                p.parent = parent;
            }
        }
        id
    }

    fn create(&mut self, tgid: u32, comm: String, origin: Origin) -> ProcId {
        let id = ProcId(self.next_id);
        self.next_id += 1;
        self.procs.insert(id, Process::new(id, tgid, comm, origin));
        self.live.insert(tgid, id);
        id
    }

    fn mark_exited(&mut self, tgid: u32, id: ProcId) {
        if self.live.get(&tgid) == Some(&id) {
            self.live.remove(&tgid);
        }
        if let Some(p) = self.procs.get_mut(&id) {
            p.exited = true;
        }
    }

    /// The most recent instance of `tgid`, live or exited.
    pub fn latest_instance(&self, tgid: u32) -> Option<ProcId> {
        self.procs
            .values()
            .rev()
            .find(|p| p.tgid == tgid)
            .map(|p| p.id)
    }

    /// Closes the current interval: each process's `interval` becomes what it did since the
    /// previous tick.
    fn tick(&mut self, now: Instant) {
        self.interval = self
            .last_tick
            .map(|last| now.saturating_duration_since(last));
        self.last_tick = Some(now);
        for p in self.procs.values_mut() {
            p.interval = p.totals.minus(&p.at_last_tick);
            p.at_last_tick = p.totals.clone();
            p.threads.tick();
        }
    }

    /// Forgets exited processes that did nothing in the last interval and had exited before
    /// it began: a long `top` must not grow without bound. Acts once per interval (calling
    /// it again before the next batch changes nothing). The session calls it, when it was
    /// started to prune, each time its caller asks for more batches, i.e. after the caller
    /// has shown the last interval (`run` and `record` keep everything).
    pub fn prune_exited(&mut self) {
        if self.pruned_after == self.last_tick {
            return;
        }
        self.pruned_after = self.last_tick;
        self.procs
            .retain(|_, p| !(p.exited && p.exited_at_last_tick && !p.active()));
        for p in self.procs.values_mut() {
            p.exited_at_last_tick = p.exited;
            p.threads.prune_exited();
        }
    }

    pub fn process(&self, id: ProcId) -> Option<&Process> {
        self.procs.get(&id)
    }

    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.procs.values()
    }

    /// Gives each process whose cgroup path is not known yet, once per cgroup id, the path
    /// `resolve(id, tgid)` finds: by id where a record named the cgroup, else (a live
    /// process that started before zcprof) by pid. Exited processes without an id are
    /// left unknown.
    pub fn resolve_cgroups(&mut self, mut resolve: impl FnMut(Option<u64>, u32) -> Option<String>) {
        for p in self.procs.values_mut() {
            if p.cgroup_tried || p.cgroup_path.is_some() || (p.cgroup.is_none() && p.exited) {
                continue;
            }
            p.cgroup_path = resolve(p.cgroup, p.tgid);
            p.cgroup_tried = true;
        }
    }

    /// The instance started by fork `parent -> child`, i.e. the latest instance of `child`
    /// whose parent is `parent`.
    pub fn child_of(&self, parent: u32, child: u32) -> Option<ProcId> {
        self.procs
            .values()
            .rev()
            .find(|p| p.tgid == child && p.ppid == Some(parent))
            .map(|p| p.id)
    }

    /// `root` and every instance descended from it, in creation order.
    pub fn tree(&self, root: ProcId) -> Vec<ProcId> {
        let mut members = vec![root];
        let mut seen = std::collections::HashSet::from([root]);
        // Creation order means parents come before children, so one pass suffices.
        for p in self.procs.values() {
            if let Some(parent) = p.parent
                && seen.contains(&parent)
                && seen.insert(p.id)
            {
                members.push(p.id);
            }
        }
        members
    }
}

/// Whether `slot` is in `layer`'s table (the decoder checks records already; map keys are
/// the kernel's, checked here).
fn valid(layer: Layer, slot: u32) -> bool {
    probes::spec(layer)
        .and_then(|spec| spec.counting)
        .is_some_and(|c| (slot as usize) < c.slots)
}

/// Map entries, per layer, for the collector to delete (see [`Model::apply`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forget(pub Vec<(Layer, Key)>);

impl Forget {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests;
