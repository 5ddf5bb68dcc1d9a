//! The threads layer's attribution (`--threads`): each process's threads, with the syscall
//! layer's counts per thread (see `zcprof_common::threads` for how a map slot names both).

use std::collections::BTreeMap;

use zcprof_common::{Counts, Key, threads};

use super::{ProcSource, Syscalls, Totals};
use crate::probes::Layer;

/// One thread of a process, as the threads layer counted it.
#[derive(Clone, Debug)]
pub struct Thread {
    pub tid: u32,
    /// Its name (`comm`, which `pthread_setname_np` sets): from /proc when first seen
    /// alive, from its exit record at its exit; empty while unknown.
    pub name: String,
    /// Its exit record came (its entries were moved out of the kernel's map).
    pub exited: bool,
    /// The syscall layer's counts for this thread since the probes attached.
    pub totals: Totals<Syscalls>,
    /// The same during the last interval.
    pub interval: Totals<Syscalls>,
    at_last_tick: Totals<Syscalls>,
    exited_at_last_tick: bool,
    /// /proc was asked for its name (it is not asked again).
    name_tried: bool,
}

impl Thread {
    fn new(tid: u32) -> Self {
        Thread {
            tid,
            name: String::new(),
            exited: false,
            totals: Totals::zero(),
            interval: Totals::zero(),
            at_last_tick: Totals::zero(),
            exited_at_last_tick: false,
            name_tried: false,
        }
    }

    /// The name for people: `?` while unknown.
    pub fn name(&self) -> &str {
        if self.name.is_empty() {
            "?"
        } else {
            &self.name
        }
    }

    pub fn active(&self) -> bool {
        !self.interval.is_zero()
    }
}

/// A process's threads, by tid.
#[derive(Clone, Debug, Default)]
pub struct Threads(BTreeMap<u32, Thread>);

impl Threads {
    /// The counts at threads-layer `slot` (`None` for a slot outside the syscall table).
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut Counts> {
        let (index, tid) = threads::split(slot);
        let index = index as usize;
        let thread = self.0.entry(tid).or_insert_with(|| Thread::new(tid));
        thread.totals.slot_mut(index)
    }

    /// Takes thread `tid`'s exit record: it is gone, named `comm` at its exit.
    pub fn exited(&mut self, tid: u32, comm: &str) {
        if let Some(t) = self.0.get_mut(&tid) {
            t.exited = true;
            if !comm.is_empty() {
                t.name = comm.to_string();
            }
        }
    }

    /// Names the live threads not named yet, from `source`.
    pub fn name(&mut self, tgid: u32, source: &dyn ProcSource) {
        for t in self.0.values_mut() {
            if t.name.is_empty() && !t.exited && !t.name_tried {
                t.name_tried = true;
                if let Some(name) = source.thread_name(tgid, t.tid) {
                    t.name = name;
                }
            }
        }
    }

    /// Closes the interval (as the process's own counters).
    pub fn tick(&mut self) {
        for t in self.0.values_mut() {
            t.interval = t.totals.minus(&t.at_last_tick);
            t.at_last_tick = t.totals.clone();
        }
    }

    /// Forgets threads that had exited before the last interval and did nothing in it.
    pub fn prune_exited(&mut self) {
        self.0
            .retain(|_, t| !(t.exited && t.exited_at_last_tick && !t.active()));
        for t in self.0.values_mut() {
            t.exited_at_last_tick = t.exited;
        }
    }

    /// The kernel map keys of the live threads' counted slots (for a process whose exit
    /// was lost: see `Model::sweep_missed_exits`).
    pub fn keys(&self, tgid: u32) -> impl Iterator<Item = (Layer, Key)> + '_ {
        self.0.values().filter(|t| !t.exited).flat_map(move |t| {
            t.totals
                .slots()
                .iter()
                .enumerate()
                .filter(|(_, s)| s.calls > 0)
                .map(move |(i, _)| {
                    let slot = threads::slot(i as u32, t.tid);
                    (Layer::Threads, Key { tgid, slot })
                })
        })
    }

    /// Every thread, by tid.
    pub fn iter(&self) -> impl Iterator<Item = &Thread> {
        self.0.values()
    }

    pub fn get(&self, tid: u32) -> Option<&Thread> {
        self.0.get(&tid)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
