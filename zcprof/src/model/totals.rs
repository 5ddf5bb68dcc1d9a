//! Per-process totals (one `SyscallStats` per counted syscall) and the figures derived from
//! them: bytes copied each way, bytes moved without a copy, calls.

use serde::Serialize;
use zcprof_common::{
    HIST_BUCKETS, SyscallStats, kernel,
    syscalls::{self, Direction, Family},
};

/// Everything one process did, per syscall (indexed like `syscalls::SYSCALLS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals(pub [SyscallStats; syscalls::COUNT]);

/// Stats arithmetic used by the model.
pub trait StatsExt {
    fn add(&mut self, other: &Self);
    fn minus(&self, earlier: &Self) -> Self;
}

impl StatsExt for SyscallStats {
    fn add(&mut self, other: &Self) {
        self.calls += other.calls;
        self.bytes += other.bytes;
        self.errors += other.errors;
        for (a, b) in self.hist.iter_mut().zip(other.hist.iter()) {
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
        SyscallStats {
            calls: self.calls.saturating_sub(earlier.calls),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            errors: self.errors.saturating_sub(earlier.errors),
            hist,
        }
    }
}

impl Totals {
    pub fn zero() -> Self {
        Totals([SyscallStats::ZERO; syscalls::COUNT])
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|s| s.calls == 0)
    }

    pub fn add(&mut self, other: &Totals) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            a.add(b);
        }
    }

    pub fn minus(&self, earlier: &Totals) -> Totals {
        let mut out = Totals::zero();
        for (i, o) in out.0.iter_mut().enumerate() {
            *o = self.0[i].minus(&earlier.0[i]);
        }
        out
    }

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
        }
        f
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
    pub errors: u64,
}

impl Figures {
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
    }
}

/// Everything one process did per kernel-layer probe (indexed like `kernel::PROBES`). Kept
/// apart from [`Totals`], which stays the syscall layer's, so that no figure mixes layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelTotals(pub [SyscallStats; kernel::COUNT]);

impl KernelTotals {
    pub fn zero() -> Self {
        KernelTotals([SyscallStats::ZERO; kernel::COUNT])
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|s| s.calls == 0)
    }

    pub fn add(&mut self, other: &KernelTotals) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            a.add(b);
        }
    }

    pub fn minus(&self, earlier: &KernelTotals) -> KernelTotals {
        let mut out = KernelTotals::zero();
        for (i, o) in out.0.iter_mut().enumerate() {
            *o = self.0[i].minus(&earlier.0[i]);
        }
        out
    }

    /// The counters that fired, with their probe, in table order.
    pub fn fired(&self) -> impl Iterator<Item = (&'static kernel::KernelProbe, &SyscallStats)> {
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
