//! The binaries and libraries seen mapped in observed processes, each held open so that it
//! can still be read after every process that mapped it has exited, or after it was deleted
//! or replaced on disk.
//!
//! A file is opened through `/proc/PID/map_files/START-END`, which reaches exactly the
//! mapped file even when it was unlinked or lives in another mount namespace (root only),
//! else through `/proc/PID/root/PATH`. It is read back through `/proc/self/fd/N` of that
//! handle. Files are told apart by (device, inode) as the maps show them, and a second file
//! with a build ID already known is not kept (it has the same code). At most [`MAX_FILES`]
//! are held; over that the least recently used one is closed.

use std::{
    collections::HashMap,
    fs::File,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::host::maps::Mapping;

/// Files held open at most. Each costs a descriptor here and one in blazesym once its
/// symbols were read (with its parsed symbol tables and DWARF), so a few hundred stays far
/// below the usual descriptor limit while covering the libraries of many processes.
pub const MAX_FILES: usize = 256;

/// A GNU build ID as the kernel reports it: 20 bytes, a shorter one zero padded.
pub type BuildId = [u8; 20];

/// Identifies a known file for as long as the table lives (never reused).
pub type FileId = u64;

/// A file's device and inode, as `/proc/PID/maps` prints them.
type Inode = ((u32, u32), u64);

pub struct KnownFile {
    /// The path of the first process that mapped it (its module name in reports).
    pub path: Arc<str>,
    pub build_id: Option<BuildId>,
    /// Its size in bytes: a frame "in" it at a larger offset is not in it (the kernel
    /// resolves a garbage address, e.g. one a walk without frame pointers read, to the
    /// next mapping above it).
    pub size: u64,
    /// The file ranges of its executable segments (`PT_LOAD` with `PF_X`): where a code
    /// address can be.
    pub code: Vec<(u64, u64)>,
    handle: File,
    last_used: u64,
}

impl KnownFile {
    /// A path that reads this file as long as it is held.
    pub fn read_path(&self) -> PathBuf {
        fd_path(&self.handle)
    }
}

pub struct Files {
    /// At most this many held ([`MAX_FILES`]; fewer in tests).
    cap: usize,
    files: HashMap<FileId, KnownFile>,
    by_build_id: HashMap<BuildId, FileId>,
    by_inode: HashMap<Inode, FileId>,
    next: FileId,
    clock: u64,
    /// Read paths of files closed since [`Files::take_closed`] was last called.
    closed: Vec<PathBuf>,
}

impl Default for Files {
    fn default() -> Self {
        Files::with_cap(MAX_FILES)
    }
}

impl Files {
    fn with_cap(cap: usize) -> Self {
        Files {
            cap,
            files: HashMap::new(),
            by_build_id: HashMap::new(),
            by_inode: HashMap::new(),
            next: 0,
            clock: 0,
            closed: Vec::new(),
        }
    }

    /// The file of `mapping`, a file-backed mapping of the live process `pid`: the one
    /// already known, or opened now; `None` when it cannot be opened.
    pub fn learn(&mut self, pid: u32, mapping: &Mapping) -> Option<FileId> {
        let inode = (mapping.dev, mapping.inode);
        if let Some(&id) = self.by_inode.get(&inode) {
            self.touch(id);
            return Some(id);
        }
        let path = mapping.path.as_deref()?;
        let handle = open(pid, mapping, path)?;
        let build_id = read_build_id(&fd_path(&handle));
        if let Some(&id) = build_id.as_ref().and_then(|b| self.by_build_id.get(b)) {
            self.by_inode.insert(inode, id);
            self.touch(id);
            return Some(id);
        }
        if self.files.len() >= self.cap {
            self.close_least_recent();
        }
        let id = self.next;
        self.next += 1;
        self.clock += 1;
        let size = handle.metadata().map_or(u64::MAX, |m| m.len());
        let code = code_ranges(&handle);
        self.files.insert(
            id,
            KnownFile {
                path: path.into(),
                build_id,
                size,
                code,
                handle,
                last_used: self.clock,
            },
        );
        self.by_inode.insert(inode, id);
        if let Some(build_id) = build_id {
            self.by_build_id.insert(build_id, id);
        }
        Some(id)
    }

    pub fn by_build_id(&mut self, build_id: &BuildId) -> Option<FileId> {
        let id = *self.by_build_id.get(build_id)?;
        self.touch(id);
        Some(id)
    }

    pub fn get(&self, id: FileId) -> Option<&KnownFile> {
        self.files.get(&id)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The read paths of the files closed since the last call, for blazesym to forget
    /// (their descriptor numbers will be reused).
    pub fn take_closed(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.closed)
    }

    fn touch(&mut self, id: FileId) {
        self.clock += 1;
        if let Some(file) = self.files.get_mut(&id) {
            file.last_used = self.clock;
        }
    }

    fn close_least_recent(&mut self) {
        let Some(id) = super::least_recent(&self.files, |f| f.last_used) else {
            return;
        };
        if let Some(file) = self.files.remove(&id) {
            self.closed.push(file.read_path());
            self.by_inode.retain(|_, v| *v != id);
            if let Some(build_id) = file.build_id {
                self.by_build_id.remove(&build_id);
            }
        }
    }
}

fn fd_path(handle: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()))
}

/// Opens the mapped file: through map_files first (the very inode mapped, even deleted or
/// in another mount namespace), then by its path in the process's root.
fn open(pid: u32, mapping: &Mapping, path: &str) -> Option<File> {
    File::open(format!(
        "/proc/{pid}/map_files/{}",
        mapping.map_files_name()
    ))
    .or_else(|_| File::open(format!("/proc/{pid}/root{path}")))
    .ok()
}

/// The file ranges of `file`'s executable segments, from its ELF program headers (in its
/// first page, where linkers put them); none when it is not ELF.
fn code_ranges(file: &File) -> Vec<(u64, u64)> {
    use std::os::unix::fs::FileExt as _;

    use object::{
        Endianness,
        elf::{FileHeader64, PF_X, PT_LOAD},
        read::elf::{FileHeader as _, ProgramHeader as _},
    };
    let mut head = vec![0u8; 4096];
    let n = file.read_at(&mut head, 0).unwrap_or(0);
    head.truncate(n);
    let data = &head[..];
    let Ok(header) = FileHeader64::<Endianness>::parse(data) else {
        return Vec::new();
    };
    let (Ok(endian), Ok(headers)) = (
        header.endian(),
        header
            .endian()
            .and_then(|e| header.program_headers(e, data)),
    ) else {
        return Vec::new();
    };
    headers
        .iter()
        .filter(|p| p.p_type(endian) == PT_LOAD && p.p_flags(endian) & PF_X != 0)
        .map(|p| {
            let start = p.p_offset(endian);
            (start, start.saturating_add(p.p_filesz(endian)))
        })
        .collect()
}

/// The file's GNU build ID, padded or cut to the kernel's 20 bytes; `None` without one (Go
/// binaries linked internally carry only Go's own build ID) or when it is not ELF.
fn read_build_id(path: &Path) -> Option<BuildId> {
    let found = blazesym::helper::read_elf_build_id(path).ok()??;
    let mut id = [0; 20];
    let n = found.len().min(id.len());
    id[..n].copy_from_slice(&found[..n]);
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::maps;

    #[test]
    fn the_least_recently_used_file_is_closed_past_the_cap() {
        let me = std::process::id();
        let mappings = maps::executable(me).unwrap();
        let mut distinct = mappings.iter().filter(|m| m.is_file()).collect::<Vec<_>>();
        distinct.dedup_by_key(|m| (m.dev, m.inode));
        let [first, second, ..] = distinct[..] else {
            panic!("this test binary maps fewer than two files: {mappings:#?}");
        };
        let mut files = Files::with_cap(1);
        let a = files.learn(me, first).unwrap();
        let a_build_id = files.get(a).unwrap().build_id.unwrap();
        let a_path = files.get(a).unwrap().read_path();
        assert_eq!(files.learn(me, first), Some(a), "known by its inode");
        assert_eq!(files.by_build_id(&a_build_id), Some(a));
        let b = files.learn(me, second).unwrap();
        assert_ne!(a, b);
        assert_eq!(files.len(), 1);
        assert_eq!(files.take_closed(), vec![a_path]);
        assert_eq!(files.by_build_id(&a_build_id), None);
        assert!(files.get(a).is_none() && files.get(b).is_some());
        // Learnt anew, it gets a new identity (cached look-ups of the old one never match).
        let again = files.learn(me, first).unwrap();
        assert!(again != a && again != b);
    }
}
