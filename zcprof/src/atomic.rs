//! Output files (`-o` of `record`, `run` and `demo report`), written so that zcprof, which
//! runs as root, can never be turned against the machine through the path it writes.
//!
//! The rules (stated in the README, tested in `tests/safety.rs`):
//! - a new file, or an existing regular file, is written atomically: a temporary beside it
//!   (`O_CREAT|O_EXCL|O_NOFOLLOW`, an unpredictable name, mode 0600 from the start; the
//!   `tempfile` crate), synced, then renamed over the path, so an interrupted write never
//!   leaves half a file and whatever was there stays until the new file is complete;
//! - a character device or a FIFO is written in place (opened for writing, never created,
//!   truncated or replaced); one of zcprof's own descriptors (`/dev/stdout`, `/dev/fd/N`,
//!   `/proc/self/fd/N`) is written through that descriptor, as a shell redirection would;
//! - a directory (also a path ending in `/`), a block device or a socket is refused;
//! - a symbolic link anywhere on the path is followed only when root or zcprof's own user
//!   owns it (so a link someone else planted in `/tmp` is refused, whatever
//!   `fs.protected_symlinks` says); the file it leads to is then handled as above, so a link
//!   to a regular file stays a link and its target is replaced atomically.
//!
//! The path is walked one component at a time through directory descriptors (`openat`,
//! never a second lookup of the whole path), and the temporary is created and renamed
//! inside the directory descriptor the walk ended in, so a directory swapped for a link
//! after the walk cannot redirect the write. [`check_writable`] runs the same walk before
//! any probe loads and also checks that the file may be written and that its file system
//! has free space and inodes, so a bad `-o` costs nothing.

use std::{
    ffi::{OsStr, OsString},
    fs::File,
    io::{self, Write as _},
    os::{
        fd::{AsFd as _, OwnedFd},
        unix::{ffi::OsStrExt as _, fs::OpenOptionsExt as _},
    },
    path::{Component, Path, PathBuf},
};

use anyhow::{Context as _, anyhow};
use rustix::{
    fs::{self as rfs, Access, AtFlags, CWD, FileType, Mode, OFlags},
    io::Errno,
};

/// At most this many symbolic links on one path (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Fails early, before any work is done, when `path` could not be written later: it leads
/// where zcprof does not write (see the module's rules), its directory is missing or not
/// writable, the file exists and may not be written, or the file system is full.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let cannot = |why: String| anyhow!("cannot write {}: {why}", path.display());
    match resolve(path).map_err(cannot)? {
        Destination::Replace {
            dir,
            name,
            existing,
            shown,
        } => {
            if existing {
                rfs::accessat(&dir, &name, Access::WRITE_OK, AtFlags::EACCESS)
                    .map_err(|e| cannot(format!("{} may not be written ({e})", shown.display())))?;
            }
            let vfs = rfs::fstatvfs(&dir)
                .map_err(|e| cannot(format!("cannot inspect its file system ({e})")))?;
            // Root may use the blocks and inodes a file system reserves for it.
            let root = rustix::process::geteuid().is_root();
            let (blocks, inodes) = if root {
                (vfs.f_bfree, vfs.f_ffree)
            } else {
                (vfs.f_bavail, vfs.f_favail)
            };
            if vfs.f_files > 0 && inodes == 0 {
                return Err(cannot(format!(
                    "the file system of {} has no free inodes",
                    parent_shown(&shown).display()
                )));
            }
            if vfs.f_blocks > 0 && blocks == 0 {
                return Err(cannot(format!(
                    "the file system of {} is full",
                    parent_shown(&shown).display()
                )));
            }
            // The real test: a temporary can be created there (it is removed on drop).
            let _probe = temporary(&dir, &name).map_err(|e| {
                cannot(format!(
                    "cannot create a file in {} ({e})",
                    parent_shown(&shown).display()
                ))
            })?;
            Ok(())
        }
        Destination::InPlace {
            dir, name, shown, ..
        } => rfs::accessat(&dir, &name, Access::WRITE_OK, AtFlags::EACCESS)
            .map_err(|e| cannot(format!("{} may not be written ({e})", shown.display()))),
        Destination::Descriptor(fd) => writable_descriptor(fd).map(drop).map_err(cannot),
    }
}

/// Writes `contents` to `path` by the module's rules: atomically (mode 0600: recordings may
/// name other users' processes) for a new or regular file, in place for a character device
/// or FIFO, through the descriptor for zcprof's own `/dev/stdout` and the like.
pub fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let writing = || format!("writing {}", path.display());
    match resolve(path).map_err(|why| anyhow!("cannot write {}: {why}", path.display()))? {
        Destination::Replace { dir, name, .. } => {
            let mut temp = temporary(&dir, &name).with_context(writing)?;
            temp.write_all(contents).with_context(writing)?;
            temp.as_file().sync_all().with_context(writing)?;
            // rename(2) inside the directory the walk ended in: it replaces whatever is at
            // the name now (a link planted since the walk included) without following it.
            temp.persist(dir_path(&dir).join(&name))
                .map_err(|e| e.error)
                .with_context(writing)?;
            // Make the rename itself durable; some file systems cannot sync a directory.
            if let Ok(d) = rfs::openat(&dir, ".", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
                let _ = rfs::fsync(d);
            }
            Ok(())
        }
        Destination::InPlace {
            dir,
            name,
            kind,
            shown,
        } => {
            let fd = rfs::openat(
                &dir,
                &name,
                OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io::Error::from)
            .with_context(writing)?;
            // Whatever was opened must still be what the walk found: never a regular file
            // written without the atomic rename, never a link.
            let now = rfs::fstat(&fd)
                .map_err(io::Error::from)
                .with_context(writing)?;
            if !matches!(
                FileType::from_raw_mode(now.st_mode),
                FileType::CharacterDevice | FileType::Fifo
            ) {
                return Err(anyhow!(
                    "cannot write {}: {} was a {kind} and changed while zcprof ran",
                    path.display(),
                    shown.display()
                ));
            }
            File::from(fd).write_all(contents).with_context(writing)
        }
        Destination::Descriptor(fd) => {
            let fd = writable_descriptor(fd)
                .map_err(|why| anyhow!("cannot write {}: {why}", path.display()))?;
            File::from(fd).write_all(contents).with_context(writing)
        }
    }
}

/// Where an output path leads, found without following a link zcprof does not trust.
enum Destination {
    /// Nothing is at `name` in `dir` yet, or a regular file (`existing`) that is replaced
    /// through a temporary in `dir`.
    Replace {
        dir: OwnedFd,
        name: OsString,
        existing: bool,
        /// The resolved path, for messages.
        shown: PathBuf,
    },
    /// A character device or FIFO, written where it is.
    InPlace {
        dir: OwnedFd,
        name: OsString,
        kind: &'static str,
        shown: PathBuf,
    },
    /// Descriptor N of zcprof itself (`/proc/<zcprof>/fd/N`).
    Descriptor(i32),
}

/// Walks `path` component by component from a directory descriptor, following only
/// trusted links, and says where it leads or, in one clause, why zcprof will not write it.
fn resolve(path: &Path) -> Result<Destination, String> {
    let text = path.as_os_str().as_bytes();
    if text.is_empty() {
        return Err("the path is empty".into());
    }
    if text.ends_with(b"/") {
        return Err("it names a directory (it ends with `/`)".into());
    }
    let (mut dir, mut at) = if path.is_absolute() {
        (open_dir_at(CWD, OsStr::new("/"))?, PathBuf::from("/"))
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the working directory ({e})"))?;
        (open_dir_at(CWD, OsStr::new("."))?, cwd)
    };
    // Messages name the component at fault, or say "it" when that is the path given.
    let given = at.join(path);
    let it = |here: &Path| {
        if here == given {
            "it".to_string()
        } else {
            here.display().to_string()
        }
    };
    // Components still to walk, the next one last.
    let mut pending = components(path);
    let mut links = 0;
    while let Some(name) = pending.pop() {
        let last = pending.is_empty();
        if name == ".." {
            dir = open_dir_at(&dir, &name)?;
            at.pop();
            continue;
        }
        let here = at.join(&name);
        if let Some(fd) = own_descriptor(&at, &name) {
            if !last {
                return Err(format!("{} is not a directory", it(&here)));
            }
            return Ok(Destination::Descriptor(fd));
        }
        let st = match rfs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) if last => {
                return Ok(Destination::Replace {
                    dir,
                    name,
                    existing: false,
                    shown: here,
                });
            }
            Err(Errno::NOENT) => {
                return Err(format!("the directory {} does not exist", here.display()));
            }
            Err(e) => return Err(format!("{} ({e})", it(&here))),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err("too many levels of symbolic links".into());
                }
                trusted(&st, &it(&here))?;
                let target = rfs::readlinkat(&dir, &name, Vec::new())
                    .map_err(|e| format!("cannot read the link {} ({e})", here.display()))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.is_relative() && target.as_os_str().as_bytes().contains(&b':') {
                    // /proc/PID/fd/N of another process, or not ours: `pipe:[123]`.
                    return Err(format!(
                        "{} leads to {}, not to a file zcprof can write",
                        it(&here),
                        target.display()
                    ));
                }
                if last && target.as_os_str().as_bytes().ends_with(b"/") {
                    return Err(format!(
                        "{} leads to a directory ({})",
                        it(&here),
                        target.display()
                    ));
                }
                if target.is_absolute() {
                    dir = open_dir_at(CWD, OsStr::new("/"))?;
                    at = PathBuf::from("/");
                }
                pending.extend(components(&target));
            }
            FileType::Directory if last => {
                return Err(format!("{} is a directory", it(&here)));
            }
            FileType::Directory => {
                dir = open_dir_at(&dir, &name)?;
                at = here;
            }
            _ if !last => return Err(format!("{} is not a directory", it(&here))),
            FileType::RegularFile => {
                return Ok(Destination::Replace {
                    dir,
                    name,
                    existing: true,
                    shown: here,
                });
            }
            FileType::CharacterDevice | FileType::Fifo => {
                let kind = if FileType::from_raw_mode(st.st_mode) == FileType::Fifo {
                    "FIFO"
                } else {
                    "character device"
                };
                return Ok(Destination::InPlace {
                    dir,
                    name,
                    kind,
                    shown: here,
                });
            }
            FileType::BlockDevice => {
                return Err(format!(
                    "{} is a block device, which zcprof never writes over",
                    it(&here)
                ));
            }
            FileType::Socket => return Err(format!("{} is a socket", it(&here))),
            FileType::Unknown => {
                return Err(format!("{} is not a file zcprof can write", it(&here)));
            }
        }
    }
    // Every component was `.`/`..`, or the last link led to one: a directory.
    Err("it names a directory".into())
}

/// A path's components, reversed (the next to walk last); `.` is dropped.
fn components(path: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    names.reverse();
    names
}

fn open_dir_at(dir: impl std::os::fd::AsFd, name: &OsStr) -> Result<OwnedFd, String> {
    rfs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open the directory {} ({e})", name.to_string_lossy()))
}

/// A link is followed only when root or zcprof's effective user owns it: anyone else could
/// have planted it (in `/tmp`, say) to make root write where they cannot.
fn trusted(link: &rfs::Stat, here: &str) -> Result<(), String> {
    let euid = rustix::process::geteuid().as_raw();
    if link.st_uid == 0 || link.st_uid == euid {
        return Ok(());
    }
    Err(format!(
        "{here} is a symbolic link owned by uid {}, and zcprof follows only links owned by root or by its own user (give the path it leads to)",
        link.st_uid
    ))
}

/// `N` when `at/name` is `/proc/<zcprof>/fd/N` (or a thread's `…/task/T/fd/N`): where
/// `/dev/stdout`, `/dev/fd/N` and `/proc/self/fd/N` lead.
fn own_descriptor(at: &Path, name: &OsStr) -> Option<i32> {
    let fd: i32 = name.to_str()?.parse().ok()?;
    let own = PathBuf::from(format!("/proc/{}", std::process::id()));
    let rest = at.strip_prefix(&own).ok()?;
    let parts: Vec<&OsStr> = rest.iter().collect();
    let is_fd_dir = match parts.as_slice() {
        [fd_dir] => *fd_dir == "fd",
        [task, tid, fd_dir] => {
            *task == "task"
                && tid.to_str().is_some_and(|t| t.parse::<u32>().is_ok())
                && *fd_dir == "fd"
        }
        _ => false,
    };
    is_fd_dir.then_some(fd)
}

/// A duplicate of zcprof's descriptor `fd` when it is open for writing (sharing its offset
/// and `O_APPEND`, as a shell redirection's writes would).
fn writable_descriptor(fd: i32) -> Result<OwnedFd, String> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a plain number touches no memory; an unopened
    // number fails with EBADF. The new descriptor is ours alone and owned below.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(format!(
            "zcprof's descriptor {fd} is not open ({})",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: `dup` was just returned by the kernel and nothing else owns it.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    let flags = rfs::fcntl_getfl(&owned).map_err(|e| format!("descriptor {fd}: {e}"))?;
    if flags & OFlags::RWMODE == OFlags::RDONLY {
        return Err(format!("zcprof's descriptor {fd} is open only for reading"));
    }
    Ok(owned)
}

/// A new temporary file in `dir`, named after the final `name` with an unpredictable
/// part: created `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600, removed on drop unless persisted.
fn temporary(dir: &OwnedFd, name: &OsStr) -> io::Result<tempfile::NamedTempFile> {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".zcprof-tmp")
        .rand_bytes(12)
        .make_in(dir_path(dir), |path| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
        })
}

/// The directory behind `dir` as a path the kernel resolves to that very directory
/// (`/proc/self/fd/N`), for APIs that take paths.
fn dir_path(dir: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd as _;
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()))
}

fn parent_shown(shown: &Path) -> &Path {
    shown.parent().unwrap_or(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt as _};

    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zcprof-atomic-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn writes_replaces_and_leaves_no_temp() {
        let dir = scratch("replace");
        let path = dir.join("out.json");
        check_writable(&path).expect("writable");
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
    fn a_link_to_a_regular_file_stays_a_link() {
        let dir = scratch("link");
        let target = dir.join("run-5.json");
        let link = dir.join("latest.json");
        fs::write(&target, b"old").expect("target");
        std::os::unix::fs::symlink("run-5.json", &link).expect("link");
        write(&link, b"new").expect("write through the link");
        assert!(fs::symlink_metadata(&link).expect("lstat").is_symlink());
        assert_eq!(fs::read(&target).expect("read"), b"new");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn relative_paths_and_dot_dot_are_walked() {
        let dir = scratch("relative");
        fs::create_dir_all(dir.join("a/b")).expect("mkdir");
        let path = dir.join("a/b/../out.json");
        write(&path, b"x").expect("write");
        assert_eq!(fs::read(dir.join("a/out.json")).expect("read"), b"x");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn refuses_what_is_not_a_file() {
        let dir = scratch("refuse");
        let message = |p: &Path| check_writable(p).unwrap_err().to_string();
        assert!(
            message(&dir).contains("is a directory"),
            "{}",
            message(&dir)
        );
        let slash = PathBuf::from(format!("{}/", dir.join("new.json").display()));
        assert!(message(&slash).contains("ends with `/`"));
        fs::write(dir.join("file"), b"").expect("file");
        assert!(message(&dir.join("file/out.json")).contains("is not a directory"));
        assert!(message(Path::new("")).contains("empty"));
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn refuses_a_missing_directory() {
        let err = check_writable(Path::new("/nonexistent-zcprof-dir/x.json")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn own_descriptors() {
        let pid = std::process::id();
        let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
        assert_eq!(own_descriptor(&fd_dir, OsStr::new("1")), Some(1));
        let task = PathBuf::from(format!("/proc/{pid}/task/{pid}/fd"));
        assert_eq!(own_descriptor(&task, OsStr::new("2")), Some(2));
        assert_eq!(
            own_descriptor(Path::new("/proc/1/fd"), OsStr::new("1")),
            None
        );
        assert_eq!(own_descriptor(&fd_dir, OsStr::new("x")), None);
        assert_eq!(own_descriptor(Path::new("/tmp"), OsStr::new("1")), None);
    }
}
