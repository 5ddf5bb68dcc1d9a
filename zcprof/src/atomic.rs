//! Writing output files so that an interrupted write never leaves a half file under the
//! final name: write a temporary file beside it, sync, then rename over.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

/// Fails early, before any work is done, when `path` could not be written later.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = parent(path);
    if !dir.is_dir() {
        bail!(
            "cannot write {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let probe = temp_name(path);
    fs::write(&probe, b"").with_context(|| format!("cannot write {}", path.display()))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Writes `contents` to `path` atomically, readable only by its owner (recordings may
/// name other users' processes).
pub fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let temp = temp_name(path);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&temp);
        return Err(err).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(".{name}.zcprof-tmp.{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("zcprof-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("out.json");
        write(&path, b"one").expect("first write");
        write(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn refuses_a_missing_directory() {
        let err = check_writable(Path::new("/nonexistent-zcprof-dir/x.json")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
