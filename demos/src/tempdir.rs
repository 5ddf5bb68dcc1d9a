//! A private temporary directory per run, removed when dropped (also on error paths),
//! and the free-space check done before anything is written.
//!
//! Forked workers never drop it: they leave through `_exit`, so only the parent removes
//! the directory, after every worker has been reaped.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{DemoError, Result};

/// A fresh `zcprof-demo-XXXXXX` directory (created with O_EXCL semantics and mode 0700 by the
/// `tempfile` crate), removed with its contents on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new_in(base: &Path) -> Result<Self> {
        tempfile::Builder::new()
            .prefix("zcprof-demo-")
            .tempdir_in(base)
            .map(TempDir)
            .map_err(|e| {
                DemoError::setup(
                    format!("create a temporary directory in {}", base.display()),
                    e,
                )
            })
    }

    pub fn path(&self) -> &Path {
        self.0.path()
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
