//! The collector owns the loaded eBPF object and turns the kernel's maps and ring buffer
//! into [`Batch`]es, on a task of its own, so that whoever consumes them (a printer, the
//! dashboard) never blocks collection, and the ring buffer is drained as soon as records
//! arrive rather than once per tick (a full buffer would lose lifecycle records).

use std::{mem::size_of, ptr::read_unaligned, time::Duration};

use anyhow::anyhow;
use aya::{
    Ebpf,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::mpsc,
    task::JoinHandle,
    time::MissedTickBehavior,
};
use zcprof_common::{
    COUNTERS_MAP, EVENTS_MAP, Event, STATS_MAP, StatsKey, SyscallStats, counter, event_kind,
    kernel::{self, KSTATS_MAP, KernelKey},
};

use crate::model::{Batch, KernelCounters, ProcEvent};

/// Requests to the collector task.
#[derive(Debug)]
pub enum Control {
    /// Send a batch now (e.g. once the profiled command has exited).
    Flush,
    /// Delete these `STATS` entries: the model took them over (see `Model::apply`).
    Forget(Vec<StatsKey>),
    /// The same for `KSTATS` entries (see `Model::take_kernel_forget`).
    ForgetKernel(Vec<KernelKey>),
}

/// The map handles taken out of the loaded object; the object itself stays alive here so
/// that its programs stay attached until the collector is dropped.
pub struct Collector {
    _ebpf: Ebpf,
    stats: HashMap<MapData, StatsKey, SyscallStats>,
    kstats: HashMap<MapData, KernelKey, SyscallStats>,
    counters: PerCpuArray<MapData, u64>,
    ring: AsyncFd<RingBuf<MapData>>,
    pending: Vec<ProcEvent>,
    malformed: u64,
}

impl Collector {
    /// Takes the maps out of a loaded object. Must run inside a tokio runtime (the ring
    /// buffer is registered with its reactor).
    pub fn new(mut ebpf: Ebpf) -> anyhow::Result<Self> {
        let stats = HashMap::try_from(take(&mut ebpf, STATS_MAP)?)?;
        let kstats = HashMap::try_from(take(&mut ebpf, KSTATS_MAP)?)?;
        let counters = PerCpuArray::try_from(take(&mut ebpf, COUNTERS_MAP)?)?;
        let ring = RingBuf::try_from(take(&mut ebpf, EVENTS_MAP)?)?;
        // SAFETY: the RingBuf owns its map fd, which stays open and unchanged until the
        // RingBuf (and so the AsyncFd that owns it) is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|err| anyhow!("registering the ring buffer with tokio: {}", err))?;
        Ok(Collector {
            _ebpf: ebpf,
            stats,
            kstats,
            counters,
            ring,
            pending: Vec::new(),
            malformed: 0,
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
    /// exactly one of the two.
    pub fn batch(&mut self, flushed: bool) -> Batch {
        self.drain();
        let stats = self.stats.iter().filter_map(Result::ok).collect();
        let kernel_stats = self.kstats.iter().filter_map(Result::ok).collect();
        Batch {
            at: std::time::Instant::now(),
            events: std::mem::take(&mut self.pending),
            stats,
            kernel_stats,
            counters: self.read_counters(),
            malformed: self.malformed,
            flushed,
        }
    }

    fn read_counters(&self) -> KernelCounters {
        let sum = |index: u32| -> u64 {
            self.counters
                .get(&index, 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0)
        };
        KernelCounters {
            ringbuf_full: sum(counter::RINGBUF_FULL),
            stats_map_full: sum(counter::STATS_FULL),
            mmsg_unreadable: sum(counter::MMSG_UNREADABLE),
            mmsg_no_enter: sum(counter::MMSG_NO_ENTER),
        }
    }

    fn forget(&mut self, keys: &[StatsKey]) {
        for key in keys {
            // Already gone is fine: the process may have been flushed meanwhile.
            let _ = self.stats.remove(key);
        }
    }

    fn forget_kernel(&mut self, keys: &[KernelKey]) {
        for key in keys {
            let _ = self.kstats.remove(key);
        }
    }
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
    Some(match event.kind {
        event_kind::FORK => ProcEvent::Fork {
            parent: event.tgid,
            child: event.pid,
            comm,
        },
        event_kind::EXEC => ProcEvent::Exec {
            tgid: event.tgid,
            comm,
        },
        event_kind::FINAL_STATS => {
            zcprof_common::syscalls::get(event.syscall)?;
            ProcEvent::FinalStats {
                tgid: event.tgid,
                syscall: event.syscall,
                stats: Box::new(event.stats),
            }
        }
        event_kind::FINAL_KERNEL_STATS => {
            kernel::get(event.syscall)?;
            ProcEvent::FinalKernelStats {
                tgid: event.tgid,
                probe: event.syscall,
                stats: Box::new(event.stats),
            }
        }
        event_kind::EXIT => ProcEvent::Exit {
            tgid: event.tgid,
            comm,
        },
        _ => return None,
    })
}

fn comm_string(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

/// The running collector: batches come out, control goes in.
pub struct Handle {
    pub batches: mpsc::Receiver<Batch>,
    pub control: mpsc::Sender<Control>,
    pub task: JoinHandle<()>,
}

/// Runs the collector on its own task, sending a batch every `period` and on request.
/// Dropping the `Handle`'s control sender stops it (and detaches the probes).
pub fn spawn(collector: Collector, period: Duration) -> Handle {
    // Bounded: a consumer that falls behind makes the collector wait instead of buffering
    // without limit. While it waits it does not drain the ring buffer, so consumers must
    // stay quick (applying a batch is microseconds); a stall shows up as lost records.
    let (batch_tx, batches) = mpsc::channel(4);
    let (control, control_rx) = mpsc::channel(16);
    let task = tokio::spawn(run(collector, period, batch_tx, control_rx));
    Handle {
        batches,
        control,
        task,
    }
}

async fn run(
    mut c: Collector,
    period: Duration,
    batches: mpsc::Sender<Batch>,
    mut control: mpsc::Receiver<Control>,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if batches.send(c.batch(false)).await.is_err() {
                    break;
                }
            }
            ready = c.ring.readable_mut() => {
                match ready {
                    Ok(mut guard) => {
                        guard.clear_ready();
                    }
                    Err(err) => {
                        log::error!("ring buffer poll failed: {err}");
                        break;
                    }
                }
                c.drain();
            }
            request = control.recv() => match request {
                Some(Control::Flush) => {
                    if batches.send(c.batch(true)).await.is_err() {
                        break;
                    }
                }
                Some(Control::Forget(keys)) => c.forget(&keys),
                Some(Control::ForgetKernel(keys)) => c.forget_kernel(&keys),
                None => break,
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
            syscall: 1,
            ts_ns: 5,
            comm,
            stats: SyscallStats {
                calls: 3,
                ..SyscallStats::ZERO
            },
        }
    }

    #[test]
    fn decodes_each_kind() {
        assert_eq!(
            decode(&raw(&event(event_kind::FORK))),
            Some(ProcEvent::Fork {
                parent: 10,
                child: 11,
                comm: "dd".into()
            })
        );
        assert_eq!(
            decode(&raw(&event(event_kind::EXEC))),
            Some(ProcEvent::Exec {
                tgid: 10,
                comm: "dd".into()
            })
        );
        match decode(&raw(&event(event_kind::FINAL_STATS))) {
            Some(ProcEvent::FinalStats {
                tgid: 10,
                syscall: 1,
                stats,
            }) => assert_eq!(stats.calls, 3),
            other => panic!("{other:?}"),
        }
        match decode(&raw(&event(event_kind::FINAL_KERNEL_STATS))) {
            Some(ProcEvent::FinalKernelStats {
                tgid: 10,
                probe: 1,
                stats,
            }) => assert_eq!(stats.calls, 3),
            other => panic!("{other:?}"),
        }
        let mut bad = event(event_kind::FINAL_KERNEL_STATS);
        bad.syscall = kernel::COUNT as u32;
        assert_eq!(decode(&raw(&bad)), None);
        assert_eq!(
            decode(&raw(&event(event_kind::EXIT))),
            Some(ProcEvent::Exit {
                tgid: 10,
                comm: "dd".into()
            })
        );
    }

    #[test]
    fn rejects_short_unknown_and_out_of_range_records() {
        let bytes = raw(&event(event_kind::EXIT));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&raw(&event(99))), None);
        let mut bad = event(event_kind::FINAL_STATS);
        bad.syscall = 1000;
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
