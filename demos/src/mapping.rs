//! A read-only mapping of a demo's input file, for the modes that use the page-cache pages
//! in place (checksum them, write or send from them) instead of reading them into a buffer.
//!
//! mmap and munmap are not counted syscalls; the file is made by the parent before the
//! workers start and never written while they run, so the mapping's bytes are stable (which
//! zero-copy sends need until their notifications arrive).

use std::os::fd::RawFd;

use crate::worker::WorkerError;

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
