//! Per-process totals of every counting layer, and the figures derived from them.
//!
//! [`Totals<S>`] is one layer's [`Counts`] per slot of its table `S` ([`Syscalls`]: per
//! syscall; [`KernelProbes`]: per kernel-layer counter); the type parameter keeps layers apart
//! so that no figure mixes them. [`Counters`] holds one `Totals` per counting layer: the
//! model attributes, subtracts and sums all of them at once, by layer, without code per layer.

use std::marker::PhantomData;

use serde::Serialize;
use zcprof_common::{
    Counts, HIST_BUCKETS, cpu, errno, flows, io_uring, kernel, mapped,
    syscalls::{self, Direction, Family, Row},
    user,
};
use zcprof_recording::MsgZerocopy;

use crate::probes::Layer;

/// Counts arithmetic used by the model.
pub trait CountsExt {
    fn add(&mut self, other: &Self);
    fn minus(&self, earlier: &Self) -> Self;
}

impl CountsExt for Counts {
    fn add(&mut self, other: &Self) {
        self.calls += other.calls;
        self.bytes += other.bytes;
        self.errors += other.errors;
        for (a, b) in self.hist.iter_mut().zip(other.hist.iter()) {
            *a += b;
        }
        for (a, b) in self.errno.iter_mut().zip(other.errno.iter()) {
            *a += b;
        }
    }

    /// `self - earlier`, saturating: cumulative counters never go back, but an entry that
    /// was deleted and recreated would, and must not produce a huge wrapped number.
    fn minus(&self, earlier: &Self) -> Self {
        let mut hist = [0; HIST_BUCKETS];
        for (i, h) in hist.iter_mut().enumerate() {
            *h = self.hist[i].saturating_sub(earlier.hist[i]);
        }
        let mut errno = [0; errno::SLOTS];
        for (i, e) in errno.iter_mut().enumerate() {
            *e = self.errno[i].saturating_sub(earlier.errno[i]);
        }
        Counts {
            calls: self.calls.saturating_sub(earlier.calls),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            errors: self.errors.saturating_sub(earlier.errors),
            hist,
            errno,
        }
    }
}

/// A counting layer's table of slots, as a type: what a `Key::slot` indexes.
pub trait Slots {
    /// Slots in the table.
    const LEN: usize;
}

/// The syscall layer's slots: [`syscalls::SYSCALLS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Syscalls {}

impl Slots for Syscalls {
    const LEN: usize = syscalls::COUNT;
}

/// The kernel layer's slots: [`kernel::PROBES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelProbes {}

impl Slots for KernelProbes {
    const LEN: usize = kernel::COUNT;
}

/// The io_uring layer's slots: [`io_uring::OPS`] (opcodes, then notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoUringOps {}

impl Slots for IoUringOps {
    const LEN: usize = io_uring::COUNT;
}

/// The mapped layer's slots: [`mapped::NAMES`] (`fault`, `map_pages`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappedSlots {}

impl Slots for MappedSlots {
    const LEN: usize = mapped::COUNT;
}

/// The user layer's slots: [`user::NAMES`] (copy routines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserSlots {}

impl Slots for UserSlots {
    const LEN: usize = user::COUNT;
}

/// The cpu layer's slots: [`cpu::NAMES`] (where samples landed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuSlots {}

impl Slots for CpuSlots {
    const LEN: usize = cpu::COUNT;
}

/// The flows layer's slots: [`flows::flow`] (descriptor kinds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowSlots {}

impl Slots for FlowSlots {
    const LEN: usize = flows::COUNT;
}

/// Everything one process did in one layer, per slot of the layer's table `S`.
///
/// Sparse: only the slots up to the last one counted are held (a prefix of the table; a
/// slot past it reads as zero), allocated at the first count, so a process pays for a
/// layer only if that layer saw it, and for the table only up to the highest slot it used.
/// A whole table costs `slots × size_of::<Counts>()` (the syscall layer's about 16 KiB),
/// and a process is kept in several copies (totals, interval, last tick): dense tables
/// made 10,000 processes that write once a second cost the daemon ~290 MiB and ~100 ms
/// of CPU per refresh (issue 15, `bench/README.md`), where most use one or two slots.
#[derive(Clone, Debug)]
pub struct Totals<S: Slots>(Vec<Counts>, PhantomData<S>);

/// Equal when every slot is: a shorter prefix equals a longer one whose tail is zero.
impl<S: Slots> PartialEq for Totals<S> {
    fn eq(&self, other: &Self) -> bool {
        let (short, long) = if self.0.len() <= other.0.len() {
            (&self.0, &other.0)
        } else {
            (&other.0, &self.0)
        };
        long[..short.len()] == short[..] && long[short.len()..].iter().all(|c| *c == Counts::ZERO)
    }
}

impl<S: Slots> Eq for Totals<S> {}

impl<S: Slots> std::ops::Index<usize> for Totals<S> {
    type Output = Counts;
    /// A slot past the counted prefix is zero; past the table, a bug (panics as an array
    /// index would).
    fn index(&self, slot: usize) -> &Counts {
        assert!(slot < S::LEN, "slot {slot} outside a table of {}", S::LEN);
        self.0.get(slot).unwrap_or(&Counts::ZERO)
    }
}

/// Writing a slot allocates the prefix up to it.
impl<S: Slots> std::ops::IndexMut<usize> for Totals<S> {
    fn index_mut(&mut self, slot: usize) -> &mut Counts {
        assert!(slot < S::LEN, "slot {slot} outside a table of {}", S::LEN);
        self.grow(slot + 1);
        &mut self.0[slot]
    }
}

impl<S: Slots> Totals<S> {
    pub fn zero() -> Self {
        Totals(Vec::new(), PhantomData)
    }

    /// The counted prefix of the table, in table order: every slot up to the last one
    /// counted (empty when nothing was). A slot past it is zero.
    pub fn slots(&self) -> &[Counts] {
        &self.0
    }

    /// Slot `slot`, writable (the prefix grows up to it); `None` outside the table.
    pub fn slot_mut(&mut self, slot: usize) -> Option<&mut Counts> {
        (slot < S::LEN).then(|| &mut self[slot])
    }

    /// Holds at least the first `len` slots: exactly that many, no spare capacity (a
    /// `Vec` would round a first slot up to four).
    fn grow(&mut self, len: usize) {
        if self.0.len() < len {
            self.0.reserve_exact(len - self.0.len());
            self.0.resize(len, Counts::ZERO);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|s| s.calls == 0)
    }

    pub fn add(&mut self, other: &Self) {
        self.grow(other.0.len());
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            a.add(b);
        }
    }

    pub fn minus(&self, earlier: &Self) -> Self {
        let mut out = Vec::with_capacity(self.0.len());
        out.extend(
            self.0
                .iter()
                .enumerate()
                .map(|(i, now)| match earlier.0.get(i) {
                    Some(then) if then == now => Counts::ZERO,
                    Some(then) => now.minus(then),
                    None => *now,
                }),
        );
        Totals(out, PhantomData)
    }
}

impl Totals<Syscalls> {
    /// The syscall-layer figures these totals add up to.
    pub fn figures(&self) -> Figures {
        let mut f = Figures::default();
        let z = &mut f.msg_zerocopy;
        for (sc, s) in syscalls::SYSCALLS.iter().zip(self.slots()) {
            match (sc.family, sc.direction, sc.row) {
                (Family::Copy, Direction::KernelToUser, _) => f.copy_k2u_bytes += s.bytes,
                (Family::Copy, _, _) => f.copy_u2k_bytes += s.bytes,
                (Family::ZeroCopy, _, _) => f.zero_copy_bytes += s.bytes,
                (Family::ZeroCopyRequested, _, _) => {
                    z.requested_bytes += s.bytes;
                    z.requested_sends += s.calls - s.errors;
                }
                (Family::Notice, _, Row::Notification { copied }) => {
                    *(if copied {
                        &mut z.copied_sends
                    } else {
                        &mut z.done_sends
                    }) += s.calls;
                    // Not calls: the recvmsg that read them is counted in its own row.
                    continue;
                }
                (Family::Notice, _, _) => continue,
                (Family::Control, _, _) => {}
            }
            f.calls += s.calls;
            f.errors += s.errors;
            for (a, b) in f.errno.iter_mut().zip(s.errno.iter()) {
                *a += b;
            }
        }
        f.split_zero_copy_sends();
        f
    }
}

impl Totals<KernelProbes> {
    /// The counters that fired, with their probe, in table order.
    pub fn fired(&self) -> impl Iterator<Item = (&'static kernel::KernelProbe, &Counts)> {
        kernel::PROBES
            .iter()
            .zip(self.slots())
            .filter(|(_, s)| s.calls > 0)
    }

    /// The kernel-copy figure: bytes copied each way by the counters of `role` (the copy
    /// primitives, or `__check_object_size` where no primitive attached), never both.
    pub fn copied(&self, role: kernel::Role) -> (u64, u64) {
        let mut k2u = 0;
        let mut u2k = 0;
        for (p, s) in kernel::PROBES.iter().zip(self.slots()) {
            if p.role != role {
                continue;
            }
            match p.direction {
                Direction::KernelToUser => k2u += s.bytes,
                Direction::UserToKernel => u2k += s.bytes,
                Direction::KernelToKernel => {}
            }
        }
        (k2u, u2k)
    }
}

impl Totals<IoUringOps> {
    /// The slots that counted something, with their opcode, in table order.
    pub fn fired(&self) -> impl Iterator<Item = (&'static io_uring::Op, &Counts)> {
        io_uring::OPS
            .iter()
            .zip(self.slots())
            .filter(|(_, s)| s.calls > 0)
    }

    /// [`fired`](Self::fired) without the detector's slot: the requests that completed
    /// (the detector's calls are [`unseen_calls`](Self::unseen_calls)).
    pub fn requests(&self) -> impl Iterator<Item = (&'static io_uring::Op, &Counts)> {
        io_uring::OPS
            .iter()
            .zip(self.slots())
            .enumerate()
            .filter(|&(slot, (_, s))| slot != io_uring::ENTER_SEEN as usize && s.calls > 0)
            .map(|(_, fired)| fired)
    }

    /// The io_uring figures: bytes by family as the syscall layer sums them, calls and
    /// errors of every request (the `Notice` slots, notifications and the detector's calls,
    /// are not requests). SEND_ZC/SENDMSG_ZC bytes are zero-copy requested and split as the
    /// syscall layer splits `MSG_ZEROCOPY` ([`MsgZerocopy::unconfirmed_bytes`]): copied
    /// unless a notification reported usage and said the kernel did not copy.
    pub fn figures(&self) -> Figures {
        let mut f = Figures::default();
        let z = &mut f.msg_zerocopy;
        for (op, s) in io_uring::OPS.iter().zip(self.slots()) {
            match (op.family, op.direction) {
                (Family::Copy, Direction::KernelToUser) => f.copy_k2u_bytes += s.bytes,
                (Family::Copy, _) => f.copy_u2k_bytes += s.bytes,
                (Family::ZeroCopyRequested, _) => {
                    z.requested_bytes += s.bytes;
                    z.requested_sends += s.calls - s.errors;
                }
                (Family::ZeroCopy, _) => f.zero_copy_bytes += s.bytes,
                (Family::Notice, _) => continue,
                (Family::Control, _) => {}
            }
            f.calls += s.calls;
            f.errors += s.errors;
            for (a, b) in f.errno.iter_mut().zip(s.errno.iter()) {
                *a += b;
            }
        }
        // Only a usage report tells "no copy"; a copied one is a report too.
        let copied = self.calls(io_uring::NOTIF_COPIED);
        f.msg_zerocopy.copied_sends = copied;
        f.msg_zerocopy.done_sends = self.calls(io_uring::NOTIF_REPORTED).saturating_sub(copied);
        f.split_zero_copy_sends();
        f
    }

    /// SEND_ZC notifications that did not report usage (the application did not ask for
    /// reports, or zcprof could not read whether it did): they say nothing of a copy.
    pub fn unreported_notifications(&self) -> u64 {
        let reported = self
            .calls(io_uring::NOTIF_REPORTED)
            .max(self.calls(io_uring::NOTIF_COPIED));
        self.calls(io_uring::NOTIF).saturating_sub(reported)
    }

    fn calls(&self, slot: u32) -> u64 {
        self[slot as usize].calls
    }

    /// `io_uring_setup`/`io_uring_enter` calls the detector saw: the process used io_uring
    /// while the layer was unavailable.
    pub fn unseen_calls(&self) -> u64 {
        self.calls(io_uring::ENTER_SEEN)
    }
}

impl Totals<MappedSlots> {
    /// The slots, with their names, in table order (both, counted or not).
    pub fn named(&self) -> impl Iterator<Item = (&'static str, &Counts)> {
        mapped::NAMES
            .iter()
            .enumerate()
            .map(|(slot, name)| (*name, &self[slot]))
    }

    /// File pages mapped in (every slot's bytes are whole pages).
    pub fn pages(&self) -> u64 {
        self.bytes() / mapped::PAGE_SIZE
    }

    /// [`Totals::pages`] in bytes: its own figure, never copied or zero-copy bytes.
    pub fn bytes(&self) -> u64 {
        self.slots().iter().map(|s| s.bytes).sum()
    }

    /// Tracepoint events seen.
    pub fn events(&self) -> u64 {
        self.slots().iter().map(|s| s.calls).sum()
    }
}

impl Totals<UserSlots> {
    /// The routines that counted a copy, with their names, in table order.
    pub fn fired(&self) -> impl Iterator<Item = (&'static str, &Counts)> {
        user::NAMES
            .iter()
            .zip(self.slots())
            .filter(|(_, s)| s.calls > 0)
            .map(|(name, s)| (*name, s))
    }

    /// Bytes the routines were asked to copy: its own figure, never the syscall layer's.
    pub fn bytes(&self) -> u64 {
        self.slots().iter().map(|s| s.bytes).sum()
    }

    /// Calls of the routines.
    pub fn calls(&self) -> u64 {
        self.slots().iter().map(|s| s.calls).sum()
    }
}

/// A process's CPU samples by where they landed (the cpu layer), and the shares derived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CpuShares {
    /// Samples in all (each one period of cpu-clock of this process).
    pub samples: u64,
    pub kernel_samples: u64,
    pub kernel_copy_samples: u64,
    pub user_samples: u64,
    pub user_copy_samples: u64,
    /// User samples the kernel could not place in a file (anonymous or JIT code, no build
    /// ID, the address space's lock busy): counted in `user_samples`, never as copies.
    pub user_unresolved_samples: u64,
    /// The CPU time the samples stand for, in ns (the sum of their periods).
    pub cpu_ns: u64,
}

impl CpuShares {
    /// Share of the process's samples in kernel copy routines, `None` without samples.
    pub fn kernel_copy_share(&self) -> Option<f64> {
        share(self.kernel_copy_samples, self.samples)
    }

    /// Share of the process's samples in user-space copy routines.
    pub fn user_copy_share(&self) -> Option<f64> {
        share(self.user_copy_samples, self.samples)
    }

    /// The binomial standard error of a share of `self.samples` samples: `sqrt(p(1-p)/n)`,
    /// at most `0.5 / sqrt(n)`.
    pub fn error(&self, share: f64) -> f64 {
        if self.samples == 0 {
            return 0.0;
        }
        (share * (1.0 - share) / self.samples as f64).sqrt()
    }
}

fn share(hits: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| hits as f64 / n as f64)
}

impl Totals<CpuSlots> {
    /// The slots, with their names, in table order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, &Counts)> {
        cpu::NAMES
            .iter()
            .enumerate()
            .map(|(slot, name)| (*name, &self[slot]))
    }

    /// The samples by where they landed.
    pub fn shares(&self) -> CpuShares {
        let n = |slot: u32| self[slot as usize].calls;
        let kernel = n(cpu::KERNEL_COPY) + n(cpu::KERNEL);
        let user = n(cpu::USER_COPY) + n(cpu::USER) + n(cpu::USER_UNRESOLVED);
        CpuShares {
            samples: kernel + user,
            kernel_samples: kernel,
            kernel_copy_samples: n(cpu::KERNEL_COPY),
            user_samples: user,
            user_copy_samples: n(cpu::USER_COPY),
            user_unresolved_samples: n(cpu::USER_UNRESOLVED),
            cpu_ns: self.slots().iter().map(|s| s.bytes).sum(),
        }
    }
}

impl Totals<FlowSlots> {
    /// The flows that counted something, with their slot, in table order.
    pub fn fired(&self) -> impl Iterator<Item = (u32, flows::Flow, &Counts)> {
        self.slots()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.calls > 0)
            .filter_map(|(slot, s)| Some((slot as u32, flows::flow(slot as u32)?, s)))
    }

    /// The flow that moved the most bytes; ties go to the first in the table, so a frame
    /// names the same one every time. `None` when no flow moved a byte (a read at EOF is
    /// a call of its flow, not a flow anyone looks for).
    pub fn biggest(&self) -> Option<(flows::Flow, &Counts)> {
        self.fired().filter(|(_, _, s)| s.bytes > 0).fold(
            None,
            |best: Option<(flows::Flow, &Counts)>, (_, f, s)| match best {
                Some((_, b)) if b.bytes >= s.bytes => best,
                _ => Some((f, s)),
            },
        )
    }

    /// Bytes sent out through sockets, copied or not ([`flows::delivers`]).
    pub fn delivered_bytes(&self) -> u64 {
        self.fired()
            .filter(|(slot, _, _)| flows::delivers(*slot))
            .map(|(_, _, s)| s.bytes)
            .sum()
    }
}

/// A flow's name, as recordings key it: `copy file -> user`, `sendfile file -> tcp`.
pub fn flow_name(f: &flows::Flow) -> String {
    format!("{} {} -> {}", f.how, f.from, f.to)
}

/// ` (sendfile)`: how a flow moved its bytes, for text that prints `from → to` beside it;
/// empty for a copy, which such text means by default.
pub fn flow_how(f: &flows::Flow) -> String {
    match f.how {
        "copy" => String::new(),
        how => format!(" ({how})"),
    }
}

/// Declares [`Counters`]: one [`Totals`] field per counting layer, and the methods that treat
/// all of them alike. A new counting layer adds one line to the invocation below; everything
/// the model does with counts goes through these methods (a test checks the fields against
/// the table of layers).
macro_rules! counters {
    ($($field:ident: $slots:ty => $layer:ident,)+) => {
        /// One process's totals in every counting layer (see `probes::counting_layers`).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Counters {
            $(pub $field: Totals<$slots>,)+
        }

        impl Counters {
            pub fn zero() -> Self {
                Counters {
                    $($field: Totals::zero(),)+
                }
            }

            /// Every layer's slots (zeros for a layer that counted nothing).
            fn layers(&self) -> Vec<(Layer, &[Counts])> {
                vec![$((Layer::$layer, self.$field.slots()),)+]
            }

            /// Nothing was counted in any layer. Without `layers()`'s `Vec`: this runs for
            /// every process several times a refresh.
            pub fn is_zero(&self) -> bool {
                true $(&& self.$field.is_zero())+
            }

            /// Every layer's table length.
            #[cfg(test)]
            fn table_lens() -> Vec<(Layer, usize)> {
                vec![$((Layer::$layer, <$slots as Slots>::LEN),)+]
            }

            /// The counts at `slot` of `layer`; `None` for a layer that does not count or a
            /// slot outside its table.
            pub fn slot_mut(&mut self, layer: Layer, slot: u32) -> Option<&mut Counts> {
                let slot = slot as usize;
                match layer {
                    $(Layer::$layer => self.$field.slot_mut(slot),)+
                    _ => None,
                }
            }

            pub fn add(&mut self, other: &Counters) {
                $(self.$field.add(&other.$field);)+
            }

            pub fn minus(&self, earlier: &Counters) -> Counters {
                Counters {
                    $($field: self.$field.minus(&earlier.$field),)+
                }
            }
        }
    };
}

counters! {
    syscall: Syscalls => Syscall,
    flows: FlowSlots => Flows,
    kernel: KernelProbes => Kernel,
    io_uring: IoUringOps => IoUring,
    mapped: MappedSlots => Mapped,
    user: UserSlots => User,
    cpu: CpuSlots => Cpu,
}

impl Default for Counters {
    fn default() -> Self {
        Counters::zero()
    }
}

impl Counters {
    /// `(layer, slot)` of every slot that counted something.
    pub fn used(&self) -> impl Iterator<Item = (Layer, u32)> + '_ {
        self.layers().into_iter().flat_map(|(layer, slots)| {
            slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.calls > 0)
                .map(move |(i, _)| (layer, i as u32))
        })
    }
}

/// Bytes and calls, summed over syscalls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Copied from the kernel into user memory (read family).
    pub copy_k2u_bytes: u64,
    /// Copied from user memory into the kernel (write family, and the `MSG_ZEROCOPY` bytes
    /// that no notification confirmed, [`MsgZerocopy::unconfirmed_bytes`]).
    pub copy_u2k_bytes: u64,
    /// Moved without passing through user memory (sendfile, splice, …, and the confirmed
    /// share of `MSG_ZEROCOPY` bytes).
    pub zero_copy_bytes: u64,
    /// `MSG_ZEROCOPY` sends and their notifications.
    pub msg_zerocopy: MsgZerocopy,
    pub calls: u64,
    /// Calls that returned an error, would-block ones included.
    pub errors: u64,
    /// `errors` by errno slot ([`errno::NAMES`]).
    pub errno: [u64; errno::SLOTS],
}

impl Figures {
    /// Adds the zero-copy sends' bytes: copied until notifications say otherwise.
    fn split_zero_copy_sends(&mut self) {
        let unconfirmed = self.msg_zerocopy.unconfirmed_bytes();
        self.copy_u2k_bytes += unconfirmed;
        self.zero_copy_bytes += self.msg_zerocopy.requested_bytes - unconfirmed;
    }

    /// Errors that mean "would block / interrupted" (EAGAIN, EINTR), not failures.
    pub fn would_block(&self) -> u64 {
        would_block(&self.errno)
    }

    /// Errors that are failures: `errors` without [`Figures::would_block`].
    pub fn failures(&self) -> u64 {
        self.errors.saturating_sub(self.would_block())
    }

    pub fn copied_bytes(&self) -> u64 {
        self.copy_k2u_bytes + self.copy_u2k_bytes
    }

    /// Share of moved bytes that moved without a copy; `None` when nothing moved.
    pub fn zero_copy_ratio(&self) -> Option<f64> {
        let moved = self.copied_bytes() + self.zero_copy_bytes;
        (moved > 0).then(|| self.zero_copy_bytes as f64 / moved as f64)
    }

    pub fn add(&mut self, other: &Figures) {
        self.copy_k2u_bytes += other.copy_k2u_bytes;
        self.copy_u2k_bytes += other.copy_u2k_bytes;
        self.zero_copy_bytes += other.zero_copy_bytes;
        self.msg_zerocopy.add_into(
            &other.msg_zerocopy,
            &mut self.copy_u2k_bytes,
            &mut self.zero_copy_bytes,
        );
        self.calls += other.calls;
        self.errors += other.errors;
        for (a, b) in self.errno.iter_mut().zip(other.errno.iter()) {
            *a += b;
        }
    }
}

/// Calls in an errno table that returned EAGAIN or EINTR.
pub fn would_block(by_slot: &[u64; errno::SLOTS]) -> u64 {
    (0..errno::SLOTS)
        .filter(|&i| errno::would_block(i))
        .map(|i| by_slot[i])
        .sum()
}

/// An errno table by name, non-zero slots only (the shape of recordings' `errno` objects).
pub fn errno_names(by_slot: &[u64; errno::SLOTS]) -> zcprof_recording::SortedMap<u64> {
    errno::NAMES
        .iter()
        .zip(by_slot)
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| (name.to_string(), *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn would_block_errnos_agree_with_the_recording_format() {
        let named: Vec<&str> = (0..errno::SLOTS)
            .filter(|&i| errno::would_block(i))
            .map(|i| errno::NAMES[i])
            .collect();
        assert_eq!(named, zcprof_recording::WOULD_BLOCK);
        let mut by_slot = [0; errno::SLOTS];
        by_slot[errno::slot(libc::EAGAIN as u64)] = 3;
        by_slot[errno::slot(libc::EINTR as u64)] = 2;
        by_slot[errno::slot(libc::EPIPE as u64)] = 1;
        assert_eq!(would_block(&by_slot), 5);
        let names = errno_names(&by_slot);
        assert_eq!(zcprof_recording::would_block(&names), 5);
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn every_counting_layer_has_its_slots_here() {
        let here = Counters::table_lens();
        // The threads layer's slots pack a thread id: it keeps its own per-thread tables.
        let table: Vec<(Layer, usize)> = crate::probes::counting_layers()
            .filter(|(l, _)| *l != Layer::Threads)
            .map(|(l, counting)| (l, counting.slots))
            .collect();
        assert_eq!(here, table);
    }

    /// Issue 15: a process holds only the prefix of a table up to the last slot it used,
    /// and reads the same as with the whole table.
    #[test]
    fn totals_hold_the_used_prefix_and_read_as_the_whole_table() {
        let one = Counts {
            calls: 1,
            bytes: 10,
            ..Counts::ZERO
        };
        let mut t = Totals::<Syscalls>::zero();
        t[1] = one;
        assert_eq!(t.slots().len(), 2);
        assert_eq!(t.0.capacity(), 2, "no spare slots");
        assert_eq!(t[Syscalls::LEN - 1], Counts::ZERO, "past the prefix");
        assert!(t.slot_mut(Syscalls::LEN).is_none());
        // A longer prefix whose tail is zero is the same totals.
        let mut longer = t.clone();
        longer[5] = Counts::ZERO;
        assert_eq!(longer, t);
        assert_eq!(t, longer);
        longer[5].calls = 1;
        assert_ne!(longer, t);
        // Against a shorter earlier, the missing slots were zero; equal slots give zero.
        let mut later = t.clone();
        later[1].calls = 3;
        later[3] = one;
        let d = later.minus(&t);
        assert_eq!(
            (d[1].calls, d[1].bytes, d[3], d[2]),
            (2, 0, one, Counts::ZERO)
        );
        assert!(t.minus(&t).is_zero());
        assert!(Totals::<Syscalls>::zero().minus(&t).slots().is_empty());
        let mut sum = Totals::<Syscalls>::zero();
        sum.add(&later);
        sum.add(&t);
        assert_eq!((sum[1].calls, sum[3].calls), (4, 1));
    }

    #[test]
    fn add_minus_and_slots_cover_every_layer() {
        let mut a = Counters::zero();
        let one = Counts {
            calls: 1,
            bytes: 10,
            ..Counts::ZERO
        };
        *a.slot_mut(Layer::Syscall, 0).expect("slot") = one;
        *a.slot_mut(Layer::Kernel, 3).expect("slot") = one;
        assert!(a.slot_mut(Layer::Lifecycle, 0).is_none());
        assert!(a.slot_mut(Layer::Kernel, kernel::COUNT as u32).is_none());
        let mut b = a.clone();
        b.add(&a);
        assert_eq!(b.kernel[3].bytes, 20);
        assert_eq!(b.minus(&a), a);
        assert_eq!(
            a.used().collect::<Vec<_>>(),
            [(Layer::Syscall, 0), (Layer::Kernel, 3)]
        );
        assert!(Counters::zero().minus(&a).is_zero(), "saturating");
        let only_syscalls = Counters::zero().minus(&Counters::zero());
        assert!(
            only_syscalls.kernel.0.is_empty(),
            "nothing counted, nothing allocated"
        );
        let mut c = Counters::zero();
        c.add(&a);
        assert_eq!(c, a);
        *c.slot_mut(Layer::Syscall, 1).expect("slot") = one;
        assert!(!c.kernel.0.is_empty() && !c.syscall.0.is_empty());
        let mut d = Counters::zero();
        assert!(d.slot_mut(Layer::Kernel, kernel::COUNT as u32).is_none());
        assert!(
            d.kernel.0.is_empty(),
            "an out-of-range slot allocates nothing"
        );
        assert_eq!(d, Counters::zero());
    }

    #[test]
    fn the_biggest_flow_moved_the_most_bytes_and_ties_go_to_the_first() {
        use zcprof_common::flows::{WRITE_TO, kind};
        let mut t = Totals::<FlowSlots>::zero();
        assert!(t.biggest().is_none());
        let set = |t: &mut Totals<FlowSlots>, slot: u32, calls: u64, bytes: u64| {
            t[slot as usize] = Counts {
                calls,
                bytes,
                ..Counts::ZERO
            };
        };
        // A read at EOF: a call, no bytes, no biggest flow.
        set(&mut t, kind::FILE, 1, 0);
        assert!(t.biggest().is_none());
        set(&mut t, WRITE_TO + kind::TCP, 2, 500);
        set(&mut t, WRITE_TO + kind::PIPE, 1, 500);
        let (f, s) = t.biggest().expect("a flow");
        assert_eq!((flow_name(&f).as_str(), s.bytes), ("copy user -> tcp", 500));
        set(&mut t, kind::FILE, 3, 501);
        let (f, _) = t.biggest().expect("a flow");
        assert_eq!(flow_name(&f), "copy file -> user");
    }

    #[test]
    fn send_zc_bytes_are_copied_unless_a_usage_report_says_otherwise() {
        use zcprof_common::io_uring::opcode::SEND_ZC;
        let mut c = Counters::zero();
        let set = |c: &mut Counters, slot: u32, calls: u64, bytes: u64| {
            *c.slot_mut(Layer::IoUring, slot).expect("slot") = Counts {
                calls,
                bytes,
                ..Counts::ZERO
            };
        };
        // Four sends of 1 KiB; four notifications, three of which reported usage, one of
        // them a copy.
        set(&mut c, u32::from(SEND_ZC), 4, 4096);
        set(&mut c, io_uring::NOTIF, 4, 0);
        set(&mut c, io_uring::NOTIF_REPORTED, 3, 0);
        set(&mut c, io_uring::NOTIF_COPIED, 1, 0);
        let f = c.io_uring.figures();
        assert_eq!(f.calls, 4, "notifications are not requests");
        assert_eq!(f.msg_zerocopy.requested_sends, 4);
        assert_eq!(
            (f.msg_zerocopy.done_sends, f.msg_zerocopy.copied_sends),
            (2, 1)
        );
        assert_eq!(
            f.zero_copy_bytes, 2048,
            "the two sends reported sent from the pages"
        );
        assert_eq!(f.copy_u2k_bytes, 2048, "copied, and not reported");
        assert_eq!(c.io_uring.unreported_notifications(), 1);
        // No usage reports: every byte counts as copied.
        set(&mut c, io_uring::NOTIF_REPORTED, 0, 0);
        set(&mut c, io_uring::NOTIF_COPIED, 0, 0);
        let f = c.io_uring.figures();
        assert_eq!((f.copy_u2k_bytes, f.zero_copy_bytes), (4096, 0));
        assert_eq!(c.io_uring.unreported_notifications(), 4);
    }
}
