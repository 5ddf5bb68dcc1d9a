//! A read-only mapping of a demo's input file, for the modes that use the page-cache pages
//! in place (checksum them, write or send from them) instead of reading them into a buffer.
//!
//! mmap and munmap are not counted syscalls; the file is made by the parent before the
//! workers start and never written while they run, so the mapping's bytes are stable (which
//! zero-copy sends need until their notifications arrive).
//!
//! A worker maps the file once, however many passes it makes, and its modes read every page
//! of the mapping: so the file pages it maps in are exactly `ceil(len / page size)`, which
//! [`Mapping::tallied`] records as the ground truth of zcprof's mapped layer (whose
//! high-water rule would not count a second mapping of the same file again).

use std::{fs::File, os::fd::RawFd, os::unix::fs::MetadataExt as _};

use crate::error::{DemoError, Result};
use crate::worker::{Stats, WorkerError};

/// Which file a mapping maps, as `stat` names it; taken by the parent before the fork.
#[derive(Clone, Copy, Debug)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(file: &File) -> Result<FileId> {
        let meta = file
            .metadata()
            .map_err(|e| DemoError::setup("stat the input file", e))?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// Who reads the pages of a mapping: what decides whether zcprof's mapped layer can count
/// them exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// The worker's own loads (a checksum over the mapping): every page faults in the
    /// worker, and the mapped layer counts exactly `ceil(len / page size)`.
    Worker,
    /// The kernel, inside a syscall (write, send, SEND_ZC from the mapping): measured on
    /// 6.18, the kernel maps some of those pages without `mm_filemap_fault` or
    /// `mm_filemap_map_pages` firing, so the mapped layer may count fewer (never more).
    Kernel,
}

/// The page size (sysconf reads the auxiliary vector: no syscall).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// A read-only private mapping of the first `len` bytes of a file, unmapped when dropped.
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    pub fn new(file: RawFd, len: u64) -> Result<Mapping, WorkerError> {
        let len = usize::try_from(len).map_err(|_| WorkerError::msg("file too large to map"))?;
        // SAFETY: a fresh read-only private mapping of an open file, no address hint; the
        // result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(WorkerError::msg(format!(
                "mmap: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Mapping { ptr, len })
    }

    /// Maps the file like [`Mapping::new`] and tallies its pages in `stats`: the caller
    /// reads every page of this, its only mapping of the file.
    pub fn tallied(
        stats: &mut Stats,
        file: RawFd,
        id: FileId,
        len: u64,
        reader: Reader,
    ) -> std::result::Result<Mapping, WorkerError> {
        let map = Mapping::new(file, len)?;
        stats.mapped_pages += len.div_ceil(page_size());
        stats.mapped_dev = id.dev;
        stats.mapped_ino = id.ino;
        stats.mapped_by_kernel = u64::from(reader == Reader::Kernel);
        Ok(map)
    }

    /// The mapped bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: `len` readable bytes stay mapped until drop, and nothing writes the file
        // while a worker runs (see the module header).
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what was mapped, once; no slice of it outlives `self`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}
