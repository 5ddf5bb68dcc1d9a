//! How much work a run does, and how workers decide when to stop.
//!
//! `--bytes N` means: the stream carries exactly N bytes, or the file is N bytes and is
//! processed once. `--seconds S` means: streams keep going until S seconds after the
//! workers start; file jobs repeat whole passes over a `PASS_BYTES` file until then (a
//! pass that has begun is finished, so runs can overshoot S by one pass).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// File size (and in-process buffer size) used per pass in `--seconds` runs.
pub const PASS_BYTES: u64 = 16 << 20;

/// The default amount of work when neither `--bytes` nor `--seconds` is given.
pub const DEFAULT_BYTES: u64 = 16 << 20;

/// The default size of each read/write/splice request.
pub const DEFAULT_CHUNK: usize = 64 << 10;

/// The largest chunk accepted (one chunk is one user buffer).
pub const MAX_CHUNK: usize = 256 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    Bytes(u64),
    Seconds(f64),
}

/// A validated run request.
#[derive(Clone, Debug)]
pub struct Plan {
    pub amount: Amount,
    pub chunk: usize,
    /// Address TCP sockets bind to (port 0 always: the kernel picks a free port).
    pub bind: Ipv4Addr,
}

impl Plan {
    /// The size of the file or buffer one pass works on.
    pub fn pass_bytes(&self) -> u64 {
        match self.amount {
            Amount::Bytes(n) => n,
            Amount::Seconds(_) => PASS_BYTES,
        }
    }

    /// The stopping rule for workers, fixed at the moment the workers are started.
    pub fn budget(&self) -> Budget {
        match self.amount {
            Amount::Bytes(n) => Budget::Bytes(n),
            Amount::Seconds(s) => Budget::Until(Instant::now() + Duration::from_secs_f64(s)),
        }
    }
}

/// When a producing worker stops. `Instant` is CLOCK_MONOTONIC, so a deadline taken in
/// the parent means the same moment in a forked child.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Produce exactly this many stream bytes / do exactly one pass.
    Bytes(u64),
    /// Keep producing (or keep starting passes) until this moment.
    Until(Instant),
}

impl Budget {
    /// How many bytes to request next, given `done` bytes produced so far: 0 means
    /// stop. Never more than `chunk`.
    pub fn next_len(&self, done: u64, chunk: usize) -> usize {
        match *self {
            Budget::Bytes(total) => {
                usize::try_from(total.saturating_sub(done)).map_or(chunk, |left| left.min(chunk))
            }
            Budget::Until(t) => {
                if Instant::now() < t {
                    chunk
                } else {
                    0
                }
            }
        }
    }

    /// Whether to start another whole pass after `passes` completed ones.
    pub fn another_pass(&self, passes: u64) -> bool {
        match *self {
            Budget::Bytes(_) => passes == 0,
            Budget::Until(t) => passes == 0 || Instant::now() < t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_budget_ends_exactly() {
        let b = Budget::Bytes(150);
        assert_eq!(b.next_len(0, 64), 64);
        assert_eq!(b.next_len(128, 64), 22);
        assert_eq!(b.next_len(150, 64), 0);
        assert_eq!(b.next_len(200, 64), 0);
        assert!(b.another_pass(0));
        assert!(!b.another_pass(1));
    }

    #[test]
    fn time_budget_always_does_one_pass() {
        let past = Budget::Until(Instant::now());
        assert_eq!(past.next_len(0, 64), 0);
        assert!(past.another_pass(0));
        assert!(!past.another_pass(1));
        let future = Budget::Until(Instant::now() + Duration::from_secs(60));
        assert_eq!(future.next_len(1 << 40, 64), 64);
        assert!(future.another_pass(5));
    }
}
