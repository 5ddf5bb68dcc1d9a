//! A private temporary directory per run, removed when dropped (also on error paths),
//! and the free-space check done before anything is written.
//!
//! Forked workers never drop it: they leave through `_exit`, so only the parent removes
//! the directory, after every worker has been reaped.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{DemoError, Result};

/// Unique within the process; with the pid and time, unique on the machine.
static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<base>/zcprof-demo-<pid>-<nanos>-<n>`, failing rather than reusing one.
    pub fn new_in(base: &Path) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("zcprof-demo-{}-{nanos}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(DemoError::setup(
                        format!("create a temporary directory in {}", base.display()),
                        e,
                    ));
                }
            }
        }
        Err(DemoError::Run(format!(
            "could not find an unused temporary directory name in {}",
            base.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: there is no one to report a failure to during unwinding.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Bytes available to unprivileged users on the filesystem holding `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> Result<u64> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| DemoError::InvalidInput {
        what: "temporary directory",
        reason: format!("{} contains a NUL byte", dir.display()),
    })?;
    // SAFETY: statvfs is plain data; all-zero is a valid value to overwrite.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(DemoError::setup(
            format!("statvfs {}", dir.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_are_unique_and_removed() {
        let base = std::env::temp_dir();
        let a = TempDir::new_in(&base).unwrap();
        let b = TempDir::new_in(&base).unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path().join("f"), b"x").unwrap();
        let pa = a.path().to_owned();
        drop(a);
        assert!(!pa.exists());
        assert!(free_bytes(b.path()).unwrap() > 0);
    }
}
