//! The collector owns the loaded eBPF object and turns the kernel's maps and ring buffer
//! into [`Batch`]es, on a task of its own, so that whoever consumes them (a printer, the
//! dashboard) never blocks collection, and the ring buffer is drained as soon as records
//! arrive rather than once per tick (a full buffer would lose lifecycle records).

mod batch_read;

use std::{mem::size_of, os::fd::AsFd as _, ptr::read_unaligned, time::Duration};

use anyhow::{Context as _, anyhow};
use aya::{
    Ebpf,
    maps::{HashMap, IterableMap as _, MapData, MapError, PerCpuArray, RingBuf},
};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::mpsc,
    task::JoinHandle,
    time::MissedTickBehavior,
};
use zcprof_common::{COUNTERS_MAP, Counts, EVENTS_MAP, Event, Key, counter, event_kind};

use crate::{
    model::{Batch, Forget, KernelCounters, ProcEvent},
    probe_stats::{self, Counters},
    probes::{self, Layer},
};

/// Requests to the collector task.
#[derive(Debug)]
pub enum Control {
    /// Send a batch now (e.g. once the profiled command has exited).
    Flush,
    /// Delete these map entries: the model took them over (see `Model::apply`).
    Forget(Forget),
    /// Run this with the loaded object, which the collector holds: attaching probes found
    /// after the load (the user layer's uprobes on a binary a followed process exec'd).
    WithObject(WithObject),
}

/// A task for [`Control::WithObject`].
pub struct WithObject(pub Box<dyn FnOnce(&mut Ebpf) + Send>);

impl std::fmt::Debug for WithObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WithObject(..)")
    }
}

/// The map handles taken out of the loaded object; the object itself stays alive here so
/// that its programs stay attached until the collector is dropped.
pub struct Collector {
    ebpf: Ebpf,
    /// BPF run-time statistics, when on: held here so that zcprof's part in keeping them on
    /// ends when its programs detach.
    stats: Option<probe_stats::Enabled>,
    /// Every counting layer's `Key -> Counts` map (`probes::counting_layers`).
    maps: Vec<(Layer, HashMap<MapData, Key, Counts>)>,
    counters: PerCpuArray<MapData, u64>,
    ring: AsyncFd<RingBuf<MapData>>,
    pending: Vec<ProcEvent>,
    malformed: u64,
    /// Reads the maps with `BPF_MAP_LOOKUP_BATCH` until the kernel refuses it once.
    batched: bool,
    buffers: batch_read::Buffers,
    /// Entries the last read found: the next one's `Vec` starts that large.
    last_entries: usize,
}

impl Collector {
    /// Takes the maps out of a loaded object; `stats`, when on, adds the programs' run time
    /// to every batch. Must run inside a tokio runtime (the ring buffer is registered with
    /// its reactor).
    pub fn new(mut ebpf: Ebpf, stats: Option<probe_stats::Enabled>) -> anyhow::Result<Self> {
        let maps = probes::counting_layers()
            .map(|(layer, counting)| {
                let map = HashMap::try_from(take(&mut ebpf, counting.map)?)?;
                Ok((layer, map))
            })
            .collect::<anyhow::Result<_>>()?;
        let counters = PerCpuArray::try_from(take(&mut ebpf, COUNTERS_MAP)?)?;
        let ring = RingBuf::try_from(take(&mut ebpf, EVENTS_MAP)?)?;
        // SAFETY: the RingBuf owns its map fd, which stays open and unchanged until the
        // RingBuf (and so the AsyncFd that owns it) is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|err| anyhow!("registering the ring buffer with tokio: {}", err))?;
        Ok(Collector {
            ebpf,
            stats,
            maps,
            counters,
            ring,
            pending: Vec::new(),
            malformed: 0,
            batched: true,
            buffers: batch_read::Buffers::default(),
            last_entries: 0,
        })
    }

    /// Moves every record waiting in the ring buffer into `pending`.
    fn drain(&mut self) {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            match decode(&item) {
                Some(event) => self.pending.push(event),
                None => self.malformed += 1,
            }
        }
    }

    /// Drains the ring buffer, then reads the maps. In that order: a process's exit
    /// deletes its map entries before its records become visible, so every count is in
    /// exactly one of the two. Fails only when the kernel refuses a read.
    pub fn batch(&mut self, flushed: bool) -> anyhow::Result<Batch> {
        self.drain();
        let mut counts = Vec::with_capacity(self.last_entries);
        for (layer, map) in &self.maps {
            if self.batched {
                let read =
                    batch_read::read_all(map.map().fd().as_fd(), &mut self.buffers, |k, v| {
                        counts.push((*layer, k, settled(v)));
                    });
                match read {
                    Ok(()) => continue,
                    // Refused at its first call, before any entry was read.
                    Err(batch_read::BatchError::Unsupported(_)) => self.batched = false,
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("reading the {layer} layer's map"));
                    }
                }
            }
            for entry in map.iter() {
                match entry {
                    Ok((key, value)) => counts.push((*layer, key, settled(value))),
                    // Deleted between listing and reading (its process just exited, or
                    // the model had it forgotten): its counts are in a record instead.
                    Err(MapError::KeyNotFound) => {}
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("reading the {layer} layer's map"));
                    }
                }
            }
        }
        self.last_entries = counts.len();
        Ok(Batch {
            at: std::time::Instant::now(),
            events: std::mem::take(&mut self.pending),
            counts,
            counters: self.read_counters()?,
            malformed: self.malformed,
            flushed,
            probe_runs: self.probe_runs(),
        })
    }

    /// The programs' run time and runs so far, when statistics are on.
    fn probe_runs(&self) -> Option<Counters> {
        self.stats.as_ref().map(|_| Counters::of(&self.ebpf))
    }

    /// Who turned the statistics on, when they are.
    pub fn probe_stats(&self) -> Option<probe_stats::EnabledBy> {
        self.stats.as_ref().map(|s| s.by)
    }

    fn read_counters(&self) -> anyhow::Result<KernelCounters> {
        let sum = |index: u32| -> anyhow::Result<u64> {
            let per_cpu = self
                .counters
                .get(&index, 0)
                .context("reading the lost-event counters")?;
            Ok(per_cpu.iter().sum())
        };
        Ok(KernelCounters {
            ringbuf_full: sum(counter::RINGBUF_FULL)?,
            stats_map_full: sum(counter::STATS_FULL)?,
            mmsg_unreadable: sum(counter::MMSG_UNREADABLE)?,
            mmsg_no_enter: sum(counter::MMSG_NO_ENTER)?,
            stash_full: sum(counter::STASH_FULL)?,
            follow_full: sum(counter::FOLLOW_FULL)?,
            io_uring_unmatched: sum(counter::IO_URING_UNMATCHED)?,
            stack_lost: sum(counter::STACK_LOST)?,
        })
    }

    fn forget(&mut self, forget: &Forget) {
        for (layer, key) in &forget.0 {
            if let Some((_, map)) = self.maps.iter_mut().find(|(l, _)| l == layer) {
                // Already gone is fine: the process may have been flushed meanwhile.
                let _ = map.remove(key);
            }
        }
    }
}

/// A live map value made self-consistent. The kernel adds a call's count before its
/// error, errno or histogram count, and a lookup copies the value while other CPUs update
/// it, so a read can see a later field already counted and `calls` (or `errors`) not yet:
/// a recording of a busy process then had one call more in a histogram than in all, which
/// its own parser rejects. Raising the totals to what the later fields prove keeps every
/// figure at or below the next read's, so totals still only grow.
fn settled(mut c: Counts) -> Counts {
    let sum = |v: &[u64]| v.iter().fold(0u64, |s, n| s.saturating_add(*n));
    c.errors = c.errors.max(sum(&c.errno));
    c.calls = c.calls.max(sum(&c.hist).saturating_add(c.errors));
    c
}

fn take(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<aya::maps::Map> {
    ebpf.take_map(name)
        .ok_or_else(|| anyhow!("map {name} is missing from the eBPF object"))
}

/// Decodes one ring-buffer record; `None` if it is not a well-formed `Event`.
pub fn decode(bytes: &[u8]) -> Option<ProcEvent> {
    if bytes.len() < size_of::<Event>() {
        return None;
    }
    // SAFETY: the length was checked above; `Event` is plain old data (every bit pattern
    // is valid) and `read_unaligned` makes no alignment assumption about the buffer.
    let event: Event = unsafe { read_unaligned(bytes.as_ptr().cast()) };
    let comm = comm_string(&event.comm);
    let followed = (event.followed != 0).then_some(event.parent);
    Some(match event.kind {
        event_kind::FORK => ProcEvent::Fork {
            parent: event.tgid,
            child: event.pid,
            comm,
            followed: followed.is_some(),
            cgroup: event.cgroup,
        },
        event_kind::EXEC => ProcEvent::Exec {
            tgid: event.tgid,
            comm,
            followed,
            cgroup: event.cgroup,
        },
        event_kind::FINAL => {
            let (layer, counting) = probes::counting_layer(event.layer)?;
            if event.slot as usize >= counting.slots {
                return None;
            }
            ProcEvent::Final {
                tgid: event.tgid,
                layer,
                slot: event.slot,
                counts: Box::new(event.counts),
                comm,
            }
        }
        event_kind::EXIT => ProcEvent::Exit {
            tgid: event.tgid,
            comm,
            followed,
            cgroup: event.cgroup,
        },
        _ => return None,
    })
}

pub fn comm_string(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

/// The running collector: batches come out, control goes in, and its task ends with the
/// reason it stopped.
pub struct Handle {
    pub batches: mpsc::Receiver<Batch>,
    /// Unbounded so that sending never waits: `Session::next` stays cancel-safe (its only
    /// await is the batch receive). What goes in is bounded by the kernel's maps.
    pub control: mpsc::UnboundedSender<Control>,
    /// `None` once its outcome was taken.
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Runs the collector on its own task, sending a batch every `period` and on request.
/// Dropping the `Handle` stops it (and detaches the probes).
pub fn spawn(collector: Collector, period: Duration) -> Handle {
    // Bounded: a consumer that falls behind makes the collector wait instead of buffering
    // without limit. While it waits it does not drain the ring buffer, so consumers must
    // stay quick (applying a batch is microseconds); a stall shows up as lost records.
    let (batch_tx, batches) = mpsc::channel(4);
    let (control, control_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(collector, period, batch_tx, control_rx));
    Handle {
        batches,
        control,
        task: Some(task),
    }
}

/// The collector's loop. Ends with `Ok` when the consumer has gone (nothing left to do), and
/// with the error when collecting cannot go on; the session hands it to its caller.
async fn run(
    mut c: Collector,
    period: Duration,
    batches: mpsc::Sender<Batch>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if batches.send(c.batch(false)?).await.is_err() {
                    return Ok(());
                }
            }
            ready = c.ring.readable_mut() => {
                ready.context("polling the ring buffer")?.clear_ready();
                c.drain();
            }
            request = control.recv() => match request {
                Some(Control::Flush) => {
                    if batches.send(c.batch(true)?).await.is_err() {
                        return Ok(());
                    }
                }
                Some(Control::Forget(forget)) => c.forget(&forget),
                Some(Control::WithObject(WithObject(with))) => with(&mut c.ebpf),
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use zcprof_common::COMM_LEN;

    use super::*;

    fn raw(event: &Event) -> Vec<u8> {
        // SAFETY: `Event` is `#[repr(C)]` plain data without padding; viewing it as bytes
        // is what the kernel does when it writes the record.
        unsafe {
            std::slice::from_raw_parts((event as *const Event).cast::<u8>(), size_of::<Event>())
        }
        .to_vec()
    }

    fn event(kind: u32) -> Event {
        let mut comm = [0u8; COMM_LEN];
        comm[..2].copy_from_slice(b"dd");
        Event {
            kind,
            tgid: 10,
            pid: 11,
            parent: 9,
            followed: 1,
            layer: zcprof_common::layer::SYSCALL,
            slot: 1,
            _pad: 0,
            cgroup: 7,
            comm,
            counts: Counts {
                calls: 3,
                ..Counts::ZERO
            },
        }
    }

    #[test]
    fn a_torn_read_is_settled_upwards() {
        // Read while a call was half counted: its histogram count is in, `calls` not yet;
        // and a failure whose errno is in but not its error count.
        let mut torn = Counts {
            calls: 10,
            errors: 1,
            ..Counts::ZERO
        };
        torn.hist[3] = 10;
        torn.errno[0] = 2;
        let c = settled(torn);
        assert_eq!((c.calls, c.errors), (12, 2));
        // A consistent value is left as it is.
        let mut whole = Counts {
            calls: 5,
            errors: 2,
            bytes: 7,
            ..Counts::ZERO
        };
        whole.hist[1] = 3;
        whole.errno[4] = 2;
        let c = settled(whole);
        assert_eq!(
            (c.calls, c.errors, c.bytes, c.hist, c.errno),
            (5, 2, 7, whole.hist, whole.errno)
        );
    }

    #[test]
    fn decodes_each_kind() {
        assert_eq!(
            decode(&raw(&event(event_kind::FORK))),
            Some(ProcEvent::Fork {
                parent: 10,
                child: 11,
                comm: "dd".into(),
                followed: true,
                cgroup: 7,
            })
        );
        assert_eq!(
            decode(&raw(&event(event_kind::EXEC))),
            Some(ProcEvent::Exec {
                tgid: 10,
                comm: "dd".into(),
                followed: Some(9),
                cgroup: 7,
            })
        );
        match decode(&raw(&event(event_kind::FINAL))) {
            Some(ProcEvent::Final {
                tgid: 10,
                layer: Layer::Syscall,
                slot: 1,
                counts,
                ..
            }) => assert_eq!(counts.calls, 3),
            other => panic!("{other:?}"),
        }
        let mut kernel = event(event_kind::FINAL);
        kernel.layer = zcprof_common::layer::KERNEL;
        match decode(&raw(&kernel)) {
            Some(ProcEvent::Final {
                tgid: 10,
                layer: Layer::Kernel,
                slot: 1,
                counts,
                ..
            }) => assert_eq!(counts.calls, 3),
            other => panic!("{other:?}"),
        }
        kernel.slot = zcprof_common::kernel::COUNT as u32;
        assert_eq!(
            decode(&raw(&kernel)),
            None,
            "a slot outside the kernel table"
        );
        let mut unknown = event(event_kind::FINAL);
        unknown.layer = 99;
        assert_eq!(decode(&raw(&unknown)), None, "a layer no table names");
        assert_eq!(
            decode(&raw(&event(event_kind::EXIT))),
            Some(ProcEvent::Exit {
                tgid: 10,
                comm: "dd".into(),
                followed: Some(9),
                cgroup: 7,
            })
        );
    }

    /// A record of a process that is not followed says so (its parent is then unknown).
    #[test]
    fn unfollowed_records_carry_no_parent() {
        let mut exit = event(event_kind::EXIT);
        exit.followed = 0;
        exit.parent = 0;
        assert_eq!(
            decode(&raw(&exit)),
            Some(ProcEvent::Exit {
                tgid: 10,
                comm: "dd".into(),
                followed: None,
                cgroup: 7,
            })
        );
    }

    #[test]
    fn rejects_short_unknown_and_out_of_range_records() {
        let bytes = raw(&event(event_kind::EXIT));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&raw(&event(99))), None);
        let mut bad = event(event_kind::FINAL);
        bad.slot = 1000;
        assert_eq!(decode(&raw(&bad)), None);
        // Unaligned input must decode too (ring-buffer items are only 8-byte aligned, and
        // nothing guarantees more to a future caller).
        let mut shifted = vec![0u8];
        shifted.extend(raw(&event(event_kind::EXEC)));
        assert!(decode(&shifted[1..]).is_some());
    }

    #[test]
    fn comm_stops_at_nul() {
        assert_eq!(comm_string(b"abc\0def"), "abc");
        assert_eq!(comm_string(b"abcdefgh"), "abcdefgh");
    }
}
