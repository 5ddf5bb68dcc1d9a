//! Reads a whole `Key -> Counts` hash map with `BPF_MAP_LOOKUP_BATCH` (Linux 5.6): a few
//! hundred entries per syscall, where aya's iterator makes two (`GET_NEXT_KEY`, then
//! `LOOKUP_ELEM`) per entry, each with its kernel-side allocations. At 10,000 live
//! processes that was 20,000 syscalls per refresh (issue 15, `bench/README.md`). aya 0.14
//! has no batch call, so this is bpf(2) itself.
//!
//! An entry deleted meanwhile (its process exited) is simply not returned; the kernel
//! copies each value as a lookup does, so a value can be torn in the same way (the caller
//! settles it). A kernel that refuses the command says so with [`BatchError::Unsupported`]
//! and the caller falls back to the iterator.

use std::{io, os::fd::AsRawFd as _, os::fd::BorrowedFd};

use zcprof_common::{Counts, Key};

/// `enum bpf_cmd`'s `BPF_MAP_LOOKUP_BATCH` (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// The kernel's ENOTSUPP (not in libc: it never reaches user space but from bpf(2)).
const ENOTSUPP: i32 = 524;
/// Entries asked for per call: about 94 KiB of buffers, reused across reads.
const CHUNK: usize = 256;

/// `union bpf_attr`'s `batch` member.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The kernel (or this map type) has no batch lookup: use the iterator.
    #[error("BPF_MAP_LOOKUP_BATCH is not supported here: {0}")]
    Unsupported(io::Error),
    #[error("BPF_MAP_LOOKUP_BATCH failed: {0}")]
    Failed(io::Error),
}

/// The keys and values buffers, kept between reads so that a refresh allocates nothing.
pub struct Buffers {
    keys: Vec<Key>,
    values: Vec<Counts>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            keys: vec![Key { tgid: 0, slot: 0 }; CHUNK],
            values: vec![Counts::ZERO; CHUNK],
        }
    }
}

/// Calls `each` with every entry of the hash map `map` (keys [`Key`], values [`Counts`]).
/// On an error nothing more is read, but `each` may have seen part of the map.
pub fn read_all(
    map: BorrowedFd<'_>,
    buffers: &mut Buffers,
    mut each: impl FnMut(Key, Counts),
) -> Result<(), BatchError> {
    // The position is a bucket index for hash maps (a u32); 8 bytes leave room to spare.
    let mut position = 0u64;
    let mut next = 0u64;
    let mut first = true;
    loop {
        let chunk = buffers.keys.len().min(buffers.values.len());
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                (&raw const position) as u64
            },
            out_batch: (&raw mut next) as u64,
            keys: buffers.keys.as_mut_ptr() as u64,
            values: buffers.values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: map.as_raw_fd() as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: `attr` points at buffers of `count` keys and values of the map's own key
        // and value types (both `Pod`: any bytes the kernel writes are valid), and at two
        // live u64s for the position; all outlive the call.
        let err = unsafe { bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) }.err();
        let errno = err.as_ref().and_then(io::Error::raw_os_error);
        // On success, and on ENOENT (the end of the map), `count` entries were filled.
        if err.is_none() || errno == Some(libc::ENOENT) {
            let filled = (attr.count as usize).min(chunk);
            for (key, value) in buffers.keys[..filled].iter().zip(&buffers.values[..filled]) {
                each(*key, *value);
            }
        }
        match errno {
            None => {}
            Some(libc::ENOENT) => return Ok(()),
            // One bucket holds more entries than a chunk: ask again with more room.
            Some(libc::ENOSPC) if attr.count == 0 => {
                buffers.keys.resize(chunk * 2, Key { tgid: 0, slot: 0 });
                buffers.values.resize(chunk * 2, Counts::ZERO);
                continue;
            }
            Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP) if first => {
                return Err(BatchError::Unsupported(
                    err.unwrap_or_else(io::Error::last_os_error),
                ));
            }
            Some(_) => {
                return Err(BatchError::Failed(
                    err.unwrap_or_else(io::Error::last_os_error),
                ));
            }
        }
        position = next;
        first = false;
    }
}

/// bpf(2) with `attr` as its attribute union.
///
/// # Safety
/// Every pointer in `attr` must be valid for what `cmd` reads and writes through it.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, writable value of its own size; the pointers inside it
    // are the caller's promise.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd as _, FromRawFd as _, OwnedFd};

    use super::*;

    /// A `Key -> Counts` BPF hash map of `max` entries, or `None` (with a printed reason)
    /// where this process may not create one.
    #[allow(
        clippy::print_stderr,
        reason = "a skipped test says why, on the test's own stderr"
    )]
    fn hash_map(max: u32) -> Option<OwnedFd> {
        #[repr(C)]
        struct Create {
            map_type: u32,
            key_size: u32,
            value_size: u32,
            max_entries: u32,
        }
        const BPF_MAP_CREATE: libc::c_long = 0;
        const BPF_MAP_TYPE_HASH: u32 = 1;
        let mut attr = Create {
            map_type: BPF_MAP_TYPE_HASH,
            key_size: size_of::<Key>() as u32,
            value_size: size_of::<Counts>() as u32,
            max_entries: max,
        };
        // SAFETY: a plain attribute struct without pointers.
        match unsafe { bpf(BPF_MAP_CREATE, &mut attr) } {
            // SAFETY: a new fd nobody else owns.
            Ok(fd) => Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
            Err(err) => {
                eprintln!("skipping: BPF_MAP_CREATE failed ({err}): needs root or CAP_BPF");
                None
            }
        }
    }

    fn insert(map: BorrowedFd<'_>, key: Key, value: Counts) {
        #[repr(C)]
        struct Update {
            map_fd: u32,
            _pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
        let mut attr = Update {
            map_fd: map.as_raw_fd() as u32,
            _pad: 0,
            key: (&raw const key) as u64,
            value: (&raw const value) as u64,
            flags: 0,
        };
        // SAFETY: key and value outlive the call and have the map's sizes.
        unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.unwrap();
    }

    #[test]
    fn reads_every_entry_once_across_chunks() {
        let Some(map) = hash_map(4096) else { return };
        let mut buffers = Buffers::default();
        let mut seen = Vec::new();
        read_all(map.as_fd(), &mut buffers, |k, _| seen.push(k)).unwrap();
        assert!(seen.is_empty(), "an empty map reads as nothing");
        // More entries than a chunk, so the position is carried from call to call.
        let n = CHUNK as u32 * 5 + 17;
        for i in 0..n {
            let value = Counts {
                calls: u64::from(i),
                bytes: u64::from(i) * 3,
                ..Counts::ZERO
            };
            insert(
                map.as_fd(),
                Key {
                    tgid: 1000 + i / 3,
                    slot: i % 3,
                },
                value,
            );
        }
        let mut got = std::collections::BTreeMap::new();
        read_all(map.as_fd(), &mut buffers, |k, v| {
            assert!(got.insert((k.tgid, k.slot), v).is_none(), "{k:?} twice");
        })
        .unwrap();
        assert_eq!(got.len(), n as usize);
        for i in 0..n {
            let v = got[&(1000 + i / 3, i % 3)];
            assert_eq!((v.calls, v.bytes), (u64::from(i), u64::from(i) * 3));
        }
    }
}
