//! The fixed table of errnos the kernel side counts failed calls by: the ones a copy or
//! zero-copy syscall commonly returns, and "other" for the rest. A small fixed table keeps
//! the failure path a compare tree and one add, and the map value a fixed size.
//!
//! EAGAIN (= EWOULDBLOCK on Linux) and EINTR are [`would_block`]: a non-blocking socket or
//! an interrupted wait, the normal life of an event-driven server, not a failure. Every
//! figure that judges errors (the diff's verdict, `--fail-if errors`) leaves them out.

/// Number of errno slots, "other" included.
pub const SLOTS: usize = 11;

/// The name of each slot, as `errno(3)` spells it; the last is "other".
pub const NAMES: [&str; SLOTS] = [
    "EAGAIN",
    "EINTR",
    "EPIPE",
    "ECONNRESET",
    "EBADF",
    "EFAULT",
    "EINVAL",
    "ENOMEM",
    "ENOSPC",
    "EIO",
    "other",
];

/// The slot of "other": every errno not in the table.
pub const OTHER: usize = SLOTS - 1;

/// The slot of x86-64 Linux errno `errno` (a failed syscall returned `-errno`).
///
/// A `match`, as `syscalls::index_of`: a short compare tree the verifier accepts, run only
/// when a call failed.
#[inline(always)]
pub fn slot(errno: u64) -> usize {
    match errno {
        11 => 0,
        4 => 1,
        32 => 2,
        104 => 3,
        9 => 4,
        14 => 5,
        22 => 6,
        12 => 7,
        28 => 8,
        5 => 9,
        _ => OTHER,
    }
}

/// The slot's errno means "would block / interrupted" (EAGAIN, EINTR), not a failure.
pub fn would_block(slot: usize) -> bool {
    slot < 2
}

/// The slot named `name` (as in [`NAMES`]), or `None`.
pub fn slot_named(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_libc() {
        let expected = [
            ("EAGAIN", libc::EAGAIN),
            ("EINTR", libc::EINTR),
            ("EPIPE", libc::EPIPE),
            ("ECONNRESET", libc::ECONNRESET),
            ("EBADF", libc::EBADF),
            ("EFAULT", libc::EFAULT),
            ("EINVAL", libc::EINVAL),
            ("ENOMEM", libc::ENOMEM),
            ("ENOSPC", libc::ENOSPC),
            ("EIO", libc::EIO),
        ];
        assert_eq!(expected.len(), OTHER);
        for (i, (name, errno)) in expected.iter().enumerate() {
            assert_eq!(NAMES[i], *name);
            assert_eq!(slot(*errno as u64), i, "{name}");
            assert_eq!(slot_named(name), Some(i));
        }
        assert_eq!(libc::EWOULDBLOCK, libc::EAGAIN, "one slot for both");
        assert_eq!(slot(libc::ENOENT as u64), OTHER);
        assert_eq!(slot(0), OTHER);
        assert!(would_block(slot(libc::EAGAIN as u64)) && would_block(slot(libc::EINTR as u64)));
        assert!(!would_block(slot(libc::EPIPE as u64)) && !would_block(OTHER));
    }
}
