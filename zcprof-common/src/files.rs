//! Per-file attribution (`run --files`, which turns the flows layer on): the bytes each
//! process moved through each file or socket, per `(process, device, inode)` in `FILES`.
//!
//! It rides on the flows layer's descriptor lookup (`zcprof-ebpf/src/flows.rs`): the same
//! call that learns a descriptor's kind has its `struct file` and inode at hand, so the
//! extra cost is one map update per descriptor, and, once per new `(process, file)`, a
//! bounded read of the file's last path component (`f_path.dentry->d_name`), so that a
//! file is named even when its process is gone before user space could look at
//! /proc/PID/fd. User space adds full paths and socket peers from /proc while the process
//! runs (best effort), reads the map at each batch and deletes the entries of processes
//! that have exited. A full map is a counted loss (`counter::STATS_FULL`).

use crate::mapped::FileKey;

/// Name of the `FileKey -> FileBytes` hash map.
pub const FILES_MAP: &str = "FILES";
/// Bound of `FILES`: `(process, file)` pairs of live processes (and of exited ones until
/// user space has read them).
pub const FILES_MAX_ENTRIES: u32 = 16_384;
/// Bytes of a file's last path component kept (NUL-terminated; longer names are cut).
pub const NAME_LEN: usize = 48;

/// Value of `FILES`: what one process moved through one file since its entry was made.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileBytes {
    /// Successful counted calls that used the file (a sendfile/splice counts for both of
    /// its descriptors).
    pub calls: u64,
    /// Bytes that came out of the file: read family, and the input of sendfile/splice.
    pub read_bytes: u64,
    /// Bytes that went into it: write family, `MSG_ZEROCOPY` sends, the output of
    /// sendfile/splice.
    pub written_bytes: u64,
    /// Its kind (`crate::flows::kind`).
    pub kind: u32,
    pub _pad: u32,
    /// Its last path component as the kernel's dentry had it when the entry was made
    /// (`TCP`, `UDP`, `[eventfd]`… for sockets and anonymous inodes), NUL-padded.
    pub name: [u8; NAME_LEN],
}
const _: () = assert!(core::mem::size_of::<FileBytes>() == 32 + NAME_LEN);

impl FileBytes {
    pub const ZERO: FileBytes = FileBytes {
        calls: 0,
        read_bytes: 0,
        written_bytes: 0,
        kind: 0,
        _pad: 0,
        name: [0; NAME_LEN],
    };
}

/// The map's key: one file (`s_dev`, `i_ino`) in one process.
pub type Key = FileKey;

/// Globals user space sets before loading: the switch, and struct offsets from BTF.
pub mod global {
    /// 1 with `run --files` (and the flows layer on).
    pub const ON: &str = "FILES_ON";
    /// `file.f_path.dentry`.
    pub const FILE_DENTRY: &str = "FILES_FILE_DENTRY";
    /// `dentry.d_name.name`.
    pub const DENTRY_NAME: &str = "FILES_DENTRY_NAME";
    /// `inode.i_ino`.
    pub const INODE_INO: &str = "FILES_INODE_INO";
    /// `super_block.s_dev`.
    pub const SB_DEV: &str = "FILES_SB_DEV";
}
