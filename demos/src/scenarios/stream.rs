//! Worker jobs shared by the streaming scenarios: send the pattern through a
//! descriptor with `write`, and receive-and-verify with `read`.
//!
//! These are the copying ends that stay the same across a scenario's modes (the
//! file-serve client, the proxy's source and sink, the pipe consumers), so that only
//! the role under study changes between modes.

use std::os::fd::RawFd;

use crate::pattern::Pattern;
use crate::plan::Budget;
use crate::worker::{Worker, WorkerError, WorkerResult};

/// Marks a stream that is not a repeated file: positions map straight onto the pattern.
pub const NO_PERIOD: u64 = u64::MAX;

/// True if `data` is what the stream holds at `pos`, where the stream repeats its
/// first `period` bytes (a file served several times) or never repeats (`NO_PERIOD`).
pub fn verify_at(pattern: &Pattern, period: u64, mut pos: u64, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        let off = pos % period;
        let take = usize::try_from(period - off).map_or(data.len(), |left| left.min(data.len()));
        if !pattern.matches(off, &data[..take]) {
            return false;
        }
        pos += take as u64;
        data = &data[take..];
    }
    true
}

/// Writes the pattern to `fd` until the budget is spent. The one copy per byte is the
/// kernel's copy out of the (reused, never modified) pattern block.
pub fn send_pattern(
    w: &mut Worker<'_>,
    fd: RawFd,
    pattern: &Pattern,
    budget: Budget,
    chunk: usize,
) -> WorkerResult {
    let mut sent = 0u64;
    loop {
        let want = budget.next_len(sent, chunk);
        if want == 0 {
            return Ok(());
        }
        let part = pattern.slice_at(sent, want);
        w.io.write_all(fd, part)?;
        sent += part.len() as u64;
        w.stats.payload_bytes = sent;
    }
}

/// Reads `fd` to EOF into one reused buffer, checking every byte against the pattern
/// in place (no user-space copy).
pub fn receive_verify(
    w: &mut Worker<'_>,
    fd: RawFd,
    pattern: &Pattern,
    period: u64,
    chunk: usize,
) -> WorkerResult {
    let mut buf = vec![0u8; chunk];
    let mut received = 0u64;
    loop {
        let n = match w.io.read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        if !verify_at(pattern, period, received, &buf[..n]) {
            return Err(WorkerError::msg(format!(
                "payload mismatch in the {n} bytes at offset {received}"
            )));
        }
        received += n as u64;
        w.stats.payload_bytes = received;
    }
    w.stats.verified = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_verification_wraps_at_the_period() {
        let p = Pattern::new();
        let period = 1000u64;
        let mut stream = p.slice_at(0, 1000).to_vec();
        stream.extend_from_slice(p.slice_at(0, 1000));
        assert!(verify_at(&p, period, 0, &stream));
        assert!(verify_at(&p, period, 990, &stream[990..1020]));
        assert!(!verify_at(&p, NO_PERIOD, 990, &stream[990..1020]));
        assert!(verify_at(&p, NO_PERIOD, 0, &stream[..1000]));
    }
}
