//! Where the copy routines are: glibc's IFUNC-selected `memcpy`/`memmove`/`mempcpy`, and
//! Go's `runtime.memmove`, as file offsets in the binaries that hold them (what a uprobe
//! attaches at), and which of them a followed process runs.
//!
//! # glibc: resolved in zcprof's own process
//! `memcpy` is an IFUNC: its symbol is the resolver, which picks an implementation for the
//! CPU when the process starts (`__memmove_avx_unaligned_erms`, `…_evex_…`). A uprobe on
//! the symbol would count resolver calls, not copies. `dlsym` in zcprof's own process runs
//! the resolver and returns the implementation; its offset in the libc file zcprof maps is
//! where the copy is, for every process that maps the same file (same device and inode) on
//! this CPU. A process with another libc (another mount namespace, a container's image, a
//! `GLIBC_TUNABLES` hwcaps override of the choice) is reported not counted, with the file.
//! The resolution itself is `host::copy_routines::own_libc`, which the cpu layer's
//! classification of samples shares.
//!
//! # Go: by symbol
//! `runtime.memmove` is a plain function (`copy()` and slice growth call it), found in the
//! binary's symbol table; Go binaries are static and keep their symbols unless stripped.

use std::{
    fmt, fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use object::Object as _;
use zcprof_common::user::{self, program};

use crate::host::{
    copy_routines,
    maps::{self, Mapping},
};

/// One routine in one binary: where its uprobe goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routine {
    /// Its slot in `zcprof_common::user::NAMES`.
    pub slot: u32,
    /// The program that counts it (its calling convention).
    pub program: &'static str,
    /// The file offset of its first instruction.
    pub offset: u64,
}

impl Routine {
    pub fn name(&self) -> &'static str {
        user::NAMES[self.slot as usize]
    }
}

/// A file's identity: device (major, minor) and inode, as `/proc/PID/maps` gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    pub dev: (u32, u32),
    pub inode: u64,
}

impl FileId {
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        Ok(FileId::of_meta(&fs::metadata(path)?))
    }

    fn of_meta(meta: &fs::Metadata) -> FileId {
        let dev = meta.dev();
        FileId {
            dev: (libc::major(dev), libc::minor(dev)),
            inode: meta.ino(),
        }
    }

    fn of_mapping(m: &Mapping) -> FileId {
        FileId {
            dev: m.dev,
            inode: m.inode,
        }
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{:x} inode {}", self.dev.0, self.dev.1, self.inode)
    }
}

/// A binary holding copy routines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    /// A path zcprof can open it by.
    pub path: PathBuf,
    pub id: FileId,
    pub routines: Vec<Routine>,
}

/// This host's libc as zcprof maps it, with its copy routines as its resolvers chose them
/// (resolved once for every layer: [`copy_routines::own_libc`]).
pub fn host_libc() -> Result<Binary, String> {
    let libc = copy_routines::own_libc()?;
    let routines = libc
        .routines
        .iter()
        .filter_map(|r| {
            let named = |name: &str| r.names.iter().any(|n| n == name);
            // One implementation for several names is counted once, under them all.
            let slot = match (named("memcpy"), named("memmove"), named("mempcpy")) {
                (true, true, _) => user::MEMCPY_MEMMOVE,
                (true, false, _) => user::MEMCPY,
                (false, true, _) => user::MEMMOVE,
                (false, false, true) => user::MEMPCPY,
                (false, false, false) => return None,
            };
            Some(Routine {
                slot,
                program: program::C_COPY,
                offset: r.start,
            })
        })
        .collect();
    Ok(Binary {
        path: PathBuf::from(libc.path),
        id: FileId {
            dev: libc.dev,
            inode: libc.inode,
        },
        routines,
    })
}

/// `Some` when `path` is an ELF file with `runtime.memmove` in its symbol table (a Go
/// program), `None` when it has no such symbol, `Err` when it cannot be read.
pub fn go_binary(path: &Path) -> Result<Option<Binary>, String> {
    let (data, id) =
        read_binary(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
    go_binary_in(path, &data, id)
}

/// The contents and identity of `path`, through one open file (a process's
/// `/proc/PID/exe` may vanish between two looks).
fn read_binary(path: &Path) -> std::io::Result<(Vec<u8>, FileId)> {
    use std::io::Read as _;
    let mut file = fs::File::open(path)?;
    let id = FileId::of_meta(&file.metadata()?);
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok((data, id))
}

/// What a process's executable says about its copy routines.
#[derive(Clone, Debug)]
struct Facts {
    /// Its `runtime.memmove`, or why it could not be parsed.
    go: Result<Option<Binary>, String>,
    /// It asks for a dynamic loader (it will map a libc).
    dynamic: bool,
}

/// Executables already looked at, by file: a shell loop execs the same few programs many
/// times, and each look reads the whole file.
#[derive(Debug, Default)]
pub struct Known(std::collections::HashMap<FileId, Facts>);

impl Known {
    /// Facts about the executable of process `tgid`, read once per file.
    fn of(&mut self, tgid: u32) -> std::io::Result<Facts> {
        use std::io::Read as _;
        let link = PathBuf::from(format!("/proc/{tgid}/exe"));
        let mut file = fs::File::open(&link)?;
        let id = FileId::of_meta(&file.metadata()?);
        if let Some(facts) = self.0.get(&id) {
            return Ok(facts.clone());
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        // Probed by its path, which outlives the process (the `exe` link does not).
        let path = fs::read_link(&link)
            .ok()
            .filter(|path| FileId::of(path).is_ok_and(|at| at == id))
            .unwrap_or(link);
        let facts = Facts {
            go: go_binary_in(&path, &data, id),
            dynamic: is_dynamic(&data),
        };
        self.0.insert(id, facts.clone());
        Ok(facts)
    }
}

/// [`go_binary`] of `path` whose contents are `data`.
fn go_binary_in(path: &Path, data: &[u8], id: FileId) -> Result<Option<Binary>, String> {
    let Some(offset) = copy_routines::go_memmove_offset(path, data)? else {
        return Ok(None);
    };
    Ok(Some(Binary {
        path: path.to_path_buf(),
        id,
        routines: vec![Routine {
            slot: user::GO_MEMMOVE,
            program: program::GO_MEMMOVE,
            offset,
        }],
    }))
}

/// Whether the ELF file `data` asks for a dynamic loader (`.interp`): it will map a libc.
fn is_dynamic(data: &[u8]) -> bool {
    object::File::parse(data).is_ok_and(|elf| elf.section_by_name(".interp").is_some())
}

/// What the user layer sees of one process's copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Its copies through these routines are counted.
    Counted(Vec<&'static str>),
    /// Its copies are not counted, and why.
    NotCounted(String),
    /// It could not be checked (it exited before its mappings were read): its copies are
    /// counted if it ran this host's libc or a probed Go binary.
    Unchecked(String),
}

/// Which of process `tgid`'s copy routines the layer can count, given the host libc it
/// probes (`None`: it could not be resolved), and the Go binary it runs, if any (to probe).
pub fn check_process(
    tgid: u32,
    libc: Option<&Binary>,
    known: &mut Known,
) -> (Coverage, Option<Binary>) {
    let unchecked = |why: String| (Coverage::Unchecked(why), None);
    // The binary first: once it is read, a process gone meanwhile shows as empty maps.
    let facts = match known.of(tgid) {
        Ok(facts) => facts,
        Err(err) => return unchecked(format!("its binary could not be read: {err}")),
    };
    let maps = match maps::executable(tgid) {
        // A zombie's maps read empty.
        Ok(maps) if maps.is_empty() => {
            return unchecked("it exited before its mappings were read".into());
        }
        Ok(maps) => maps,
        Err(err) => return unchecked(format!("its mappings could not be read: {err}")),
    };
    let mut counted = Vec::new();
    let mut why_not = None;
    let go = match facts.go {
        Ok(go) => go,
        Err(err) => {
            why_not = Some(err);
            None
        }
    };
    if let Some(go) = &go {
        counted.extend(go.routines.iter().map(Routine::name));
    }
    let mapped_libc = maps.iter().find(|m| m.is_file() && is_libc(m));
    match (mapped_libc, libc) {
        (Some(m), Some(host)) if FileId::of_mapping(m) == host.id => {
            counted.extend(host.routines.iter().map(Routine::name));
        }
        (Some(m), Some(host)) => {
            why_not = Some(format!(
                "it maps another libc ({}, {}) than the one whose IFUNCs zcprof resolved ({}, {})",
                m.path.as_deref().unwrap_or("?"),
                FileId::of_mapping(m),
                host.path.display(),
                host.id
            ));
        }
        (Some(_), None) => why_not = Some("this host's libc copy routines were not found".into()),
        // Just after exec the loader has not mapped the libc yet: the one it will map is
        // the file at the host libc's path in the process's root.
        (None, Some(host)) if go.is_none() && facts.dynamic => {
            let theirs = Path::new(&format!("/proc/{tgid}/root"))
                .join(host.path.strip_prefix("/").unwrap_or(&host.path));
            match FileId::of(&theirs) {
                Ok(id) if id == host.id => counted.extend(host.routines.iter().map(Routine::name)),
                _ => {
                    why_not = Some(format!(
                        "it will load a libc other than {} (another root or mount namespace)",
                        host.path.display()
                    ))
                }
            }
        }
        (None, _) if go.is_none() => {
            why_not.get_or_insert_with(|| {
                "a static binary with no libc and no runtime.memmove symbol: its copy routines cannot be found".into()
            });
        }
        (None, _) => {}
    }
    let coverage = match (counted.is_empty(), why_not) {
        (false, _) => Coverage::Counted(counted),
        (true, Some(why)) => Coverage::NotCounted(why),
        (true, None) => Coverage::NotCounted("no copy routine found".into()),
    };
    (coverage, go)
}

/// A libc mapping: `libc.so.6`, `libc-2.31.so`, musl's `libc.musl-x86_64.so.1`.
fn is_libc(m: &Mapping) -> bool {
    m.path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .is_some_and(|name| {
            name.starts_with("libc.so")
                || name.starts_with("libc-")
                || name.starts_with("libc.musl")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_this_hosts_libc_routines() {
        let libc = host_libc().expect("zcprof links glibc");
        assert!(libc.path.to_string_lossy().contains("libc"), "{libc:?}");
        let slots: Vec<u32> = libc.routines.iter().map(|r| r.slot).collect();
        assert!(
            slots.contains(&user::MEMCPY_MEMMOVE) || slots.contains(&user::MEMCPY),
            "{slots:?}"
        );
        assert!(libc.routines.iter().all(|r| r.offset > 0));
    }

    #[test]
    fn this_test_binary_is_counted_through_the_host_libc() {
        let libc = host_libc().expect("zcprof links glibc");
        let (coverage, go) = check_process(std::process::id(), Some(&libc), &mut Known::default());
        assert!(go.is_none());
        match coverage {
            Coverage::Counted(names) => assert!(!names.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_process_that_is_gone_is_reported() {
        let (coverage, _) = check_process(u32::MAX, None, &mut Known::default());
        assert!(matches!(coverage, Coverage::Unchecked(_)), "{coverage:?}");
    }
}
