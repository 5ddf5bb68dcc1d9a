//! The syscalls zcprof counts, and the per-process tally a demo worker keeps of them.
//!
//! This is the pure half of the tallying layer (the other half, `io`, makes the calls).
//! The rule is the profiler's rule, so the two can be compared exactly: every call adds
//! one to `calls`; a return value `>= 0` adds itself to `bytes` (so partial writes count
//! what was really moved); a negative return adds one to `errors` and nothing to `bytes`.
//!
//! `Tally` is `#[repr(C)]` and plain data because it lives in a `MAP_SHARED` page that a
//! forked worker writes and its parent reads after `waitpid`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::uring::UringTally;
use crate::zerocopy::ZeroCopyTally;

/// Whether a syscall moves bytes through a user buffer or between kernel objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// The kernel copies between a user buffer and a kernel buffer (read, write, …).
    Copy,
    /// The data moves between kernel objects without a user buffer (sendfile, splice, …).
    ZeroCopy,
}

macro_rules! syscalls {
    ($($variant:ident => $name:literal, $family:ident;)*) => {
        /// One traced syscall. The discriminant indexes `Tally::counters`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum Syscall { $($variant),* }

        impl Syscall {
            /// Every traced syscall, in index order.
            pub const ALL: &'static [Syscall] = &[$(Syscall::$variant),*];

            /// The name strace and the kernel's tracepoints use (x86_64 `sendfile` is
            /// the `sendfile64` tracepoint, but strace prints `sendfile`).
            pub const fn name(self) -> &'static str {
                match self { $(Syscall::$variant => $name),* }
            }

            /// Which family zcprof files this syscall under.
            pub const fn family(self) -> Family {
                match self { $(Syscall::$variant => Family::$family),* }
            }
        }
    };
}

syscalls! {
    Read => "read", Copy;
    Write => "write", Copy;
    Pread64 => "pread64", Copy;
    Pwrite64 => "pwrite64", Copy;
    Readv => "readv", Copy;
    Writev => "writev", Copy;
    Preadv => "preadv", Copy;
    Pwritev => "pwritev", Copy;
    Preadv2 => "preadv2", Copy;
    Pwritev2 => "pwritev2", Copy;
    Recvfrom => "recvfrom", Copy;
    Sendto => "sendto", Copy;
    Recvmsg => "recvmsg", Copy;
    Sendmsg => "sendmsg", Copy;
    Recvmmsg => "recvmmsg", Copy;
    Sendmmsg => "sendmmsg", Copy;
    Sendfile => "sendfile", ZeroCopy;
    Splice => "splice", ZeroCopy;
    Vmsplice => "vmsplice", ZeroCopy;
    Tee => "tee", ZeroCopy;
    CopyFileRange => "copy_file_range", ZeroCopy;
}

/// Number of traced syscalls (the length of `Tally::counters`).
pub const SYSCALL_COUNT: usize = Syscall::ALL.len();

/// The comma-separated list to give `strace -e trace=`.
pub fn strace_filter() -> String {
    Syscall::ALL
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(",")
}

impl Syscall {
    /// Looks a syscall up by the name strace prints.
    pub fn from_name(name: &str) -> Option<Syscall> {
        Syscall::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// Calls, bytes and errors of one syscall, exactly as the profiler counts them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub calls: u64,
    pub bytes: u64,
    pub errors: u64,
}

impl Counter {
    /// Adds one call that returned `ret` (bytes moved, or a negative error).
    pub fn record(&mut self, ret: i64) {
        self.calls += 1;
        match u64::try_from(ret) {
            Ok(bytes) => self.bytes += bytes,
            Err(_) => self.errors += 1,
        }
    }

    /// Adds another counter into this one.
    pub fn add(&mut self, other: &Counter) {
        self.calls += other.calls;
        self.bytes += other.bytes;
        self.errors += other.errors;
    }

    pub fn is_zero(&self) -> bool {
        *self == Counter::default()
    }
}

/// One worker's ground truth: counters for every traced syscall, plus what no syscall
/// return value shows: its io_uring requests and completions (`uring`) and its zero-copy
/// sends with their notifications (`zerocopy`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    counters: [Counter; SYSCALL_COUNT],
    pub uring: UringTally,
    pub zerocopy: ZeroCopyTally,
}

impl Tally {
    /// Records one call of `syscall` that returned `ret`.
    pub fn record(&mut self, syscall: Syscall, ret: i64) {
        self.counters[syscall as usize].record(ret);
    }

    pub fn get(&self, syscall: Syscall) -> Counter {
        self.counters[syscall as usize]
    }

    /// The sum over one family.
    pub fn family_total(&self, family: Family) -> Counter {
        let mut total = Counter::default();
        for &s in Syscall::ALL.iter().filter(|s| s.family() == family) {
            total.add(&self.get(s));
        }
        total
    }

    /// The non-zero counters by syscall name: the shape the JSON report prints.
    pub fn to_map(&self) -> BTreeMap<String, Counter> {
        Syscall::ALL
            .iter()
            .filter(|&&s| !self.get(s).is_zero())
            .map(|&s| (s.name().to_owned(), self.get(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_counts_bytes_and_errors() {
        let mut t = Tally::default();
        t.record(Syscall::Write, 65536);
        t.record(Syscall::Write, 1000); // a partial write counts what it moved
        t.record(Syscall::Write, -1);
        t.record(Syscall::Write, 0); // EOF-like zero is a call, not an error
        assert_eq!(
            t.get(Syscall::Write),
            Counter {
                calls: 4,
                bytes: 66536,
                errors: 1
            }
        );
        assert!(t.get(Syscall::Read).is_zero());
    }

    #[test]
    fn families_sum_only_their_members() {
        let mut t = Tally::default();
        t.record(Syscall::Read, 10);
        t.record(Syscall::Sendto, 5);
        t.record(Syscall::Splice, 7);
        t.record(Syscall::Sendfile, -11);
        assert_eq!(
            t.family_total(Family::Copy),
            Counter {
                calls: 2,
                bytes: 15,
                errors: 0
            }
        );
        assert_eq!(
            t.family_total(Family::ZeroCopy),
            Counter {
                calls: 2,
                bytes: 7,
                errors: 1
            }
        );
    }

    #[test]
    fn map_lists_only_nonzero_by_strace_name() {
        let mut t = Tally::default();
        t.record(Syscall::CopyFileRange, 3);
        let m = t.to_map();
        assert_eq!(m.len(), 1);
        assert_eq!(m["copy_file_range"].bytes, 3);
    }

    #[test]
    fn names_are_unique_and_round_trip() {
        assert_eq!(SYSCALL_COUNT, 21);
        for &s in Syscall::ALL {
            assert_eq!(Syscall::from_name(s.name()), Some(s));
        }
        assert_eq!(strace_filter().split(',').count(), 21);
    }
}
