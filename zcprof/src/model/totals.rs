//! Per-process totals of every counting layer, and the figures derived from them.
//!
//! [`Totals<S>`] is one layer's [`Counts`] per slot of its table `S` ([`Syscalls`]: per
//! syscall; [`KernelProbes`]: per kernel-layer counter); the type parameter keeps layers apart
//! so that no figure mixes them. [`Counters`] holds one `Totals` per counting layer: the
//! model attributes, subtracts and sums all of them at once, by layer, without code per layer.

use std::fmt;

use serde::Serialize;
use zcprof_common::{
    Counts, HIST_BUCKETS, errno, kernel,
    syscalls::{self, Direction, Family},
};

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
    /// `[Counts; N]` for the table's N slots (an associated type because an array length
    /// cannot yet be taken from a generic parameter's constant).
    type Array: Clone + fmt::Debug + PartialEq + Eq + AsRef<[Counts]> + AsMut<[Counts]>;
    const ZERO: Self::Array;
}

/// The syscall layer's slots: [`syscalls::SYSCALLS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Syscalls {}

impl Slots for Syscalls {
    type Array = [Counts; syscalls::COUNT];
    const ZERO: Self::Array = [Counts::ZERO; syscalls::COUNT];
}

/// The kernel layer's slots: [`kernel::PROBES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelProbes {}

impl Slots for KernelProbes {
    type Array = [Counts; kernel::COUNT];
    const ZERO: Self::Array = [Counts::ZERO; kernel::COUNT];
}

/// Everything one process did in one layer, per slot of the layer's table `S`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals<S: Slots>(pub S::Array);

impl<S: Slots> Totals<S> {
    pub fn zero() -> Self {
        Totals(S::ZERO)
    }

    pub fn is_zero(&self) -> bool {
        self.0.as_ref().iter().all(|s| s.calls == 0)
    }

    pub fn add(&mut self, other: &Self) {
        for (a, b) in self.0.as_mut().iter_mut().zip(other.0.as_ref()) {
            a.add(b);
        }
    }

    pub fn minus(&self, earlier: &Self) -> Self {
        let mut out = Self::zero();
        for ((o, now), then) in out
            .0
            .as_mut()
            .iter_mut()
            .zip(self.0.as_ref())
            .zip(earlier.0.as_ref())
        {
            *o = now.minus(then);
        }
        out
    }
}

impl Totals<Syscalls> {
    /// The syscall-layer figures these totals add up to.
    pub fn figures(&self) -> Figures {
        let mut f = Figures::default();
        for (sc, s) in syscalls::SYSCALLS.iter().zip(self.0.iter()) {
            match (sc.family, sc.direction) {
                (Family::Copy, Direction::KernelToUser) => f.copy_k2u_bytes += s.bytes,
                (Family::Copy, _) => f.copy_u2k_bytes += s.bytes,
                (Family::ZeroCopy, _) => f.zero_copy_bytes += s.bytes,
            }
            f.calls += s.calls;
            f.errors += s.errors;
            for (a, b) in f.errno.iter_mut().zip(s.errno.iter()) {
                *a += b;
            }
        }
        f
    }
}

impl Totals<KernelProbes> {
    /// The counters that fired, with their probe, in table order.
    pub fn fired(&self) -> impl Iterator<Item = (&'static kernel::KernelProbe, &Counts)> {
        kernel::PROBES
            .iter()
            .zip(self.0.iter())
            .filter(|(_, s)| s.calls > 0)
    }

    /// The kernel-copy figure: bytes copied each way by the counters of `role` (the copy
    /// primitives, or `__check_object_size` where no primitive attached), never both.
    pub fn copied(&self, role: kernel::Role) -> (u64, u64) {
        let mut k2u = 0;
        let mut u2k = 0;
        for (p, s) in kernel::PROBES.iter().zip(self.0.iter()) {
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

/// One process's totals in every counting layer (see `probes::counting_layers`). A new
/// counting layer adds its field here, in [`Counters::zero`], and its line in
/// `Counters::layers` and `Counters::layers_mut`; everything the model does with counts
/// goes through those (a test checks them against the table of layers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    pub syscall: Totals<Syscalls>,
    pub kernel: Totals<KernelProbes>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters::zero()
    }
}

impl Counters {
    pub fn zero() -> Self {
        Counters {
            syscall: Totals::zero(),
            kernel: Totals::zero(),
        }
    }

    /// Every layer's slots.
    fn layers(&self) -> [(Layer, &[Counts]); 2] {
        [
            (Layer::Syscall, self.syscall.0.as_ref()),
            (Layer::Kernel, self.kernel.0.as_ref()),
        ]
    }

    fn layers_mut(&mut self) -> [(Layer, &mut [Counts]); 2] {
        [
            (Layer::Syscall, self.syscall.0.as_mut()),
            (Layer::Kernel, self.kernel.0.as_mut()),
        ]
    }

    /// The counts at `slot` of `layer`; `None` for a layer that does not count or a slot
    /// outside its table.
    pub fn slot_mut(&mut self, layer: Layer, slot: u32) -> Option<&mut Counts> {
        self.layers_mut()
            .into_iter()
            .find(|(l, _)| *l == layer)?
            .1
            .get_mut(slot as usize)
    }

    /// Nothing was counted in any layer.
    pub fn is_zero(&self) -> bool {
        self.layers()
            .iter()
            .all(|(_, slots)| slots.iter().all(|s| s.calls == 0))
    }

    pub fn add(&mut self, other: &Counters) {
        for ((_, mine), (_, theirs)) in self.layers_mut().into_iter().zip(other.layers()) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.add(b);
            }
        }
    }

    pub fn minus(&self, earlier: &Counters) -> Counters {
        let mut out = self.clone();
        for ((_, now), (_, then)) in out.layers_mut().into_iter().zip(earlier.layers()) {
            for (a, b) in now.iter_mut().zip(then) {
                *a = a.minus(b);
            }
        }
        out
    }

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
    /// Copied from user memory into the kernel (write family).
    pub copy_u2k_bytes: u64,
    /// Moved without passing through user memory (sendfile, splice, …).
    pub zero_copy_bytes: u64,
    pub calls: u64,
    /// Calls that returned an error, would-block ones included.
    pub errors: u64,
    /// `errors` by errno slot ([`errno::NAMES`]).
    pub errno: [u64; errno::SLOTS],
}

impl Figures {
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
        let c = Counters::zero();
        let here: Vec<(Layer, usize)> = c.layers().iter().map(|(l, s)| (*l, s.len())).collect();
        let table: Vec<(Layer, usize)> = crate::probes::counting_layers()
            .map(|(l, counting)| (l, counting.slots))
            .collect();
        assert_eq!(here, table);
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
        assert_eq!(b.kernel.0[3].bytes, 20);
        assert_eq!(b.minus(&a), a);
        assert_eq!(
            a.used().collect::<Vec<_>>(),
            [(Layer::Syscall, 0), (Layer::Kernel, 3)]
        );
        assert!(Counters::zero().minus(&a).is_zero(), "saturating");
    }
}
