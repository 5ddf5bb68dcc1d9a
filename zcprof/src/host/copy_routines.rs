//! The copy routines of user-space programs: where in which file glibc's `memcpy`,
//! `memmove` and `mempcpy` and Go's `runtime.memmove` are, as file-offset ranges, and for
//! a process, as the address ranges they are mapped at. The cpu layer classifies samples
//! by them; the user-space copy layer needs the same routines (one place to resolve them).
//!
//! glibc's routines are IFUNCs: the symbol is the resolver, and the code that copies is an
//! implementation it picks for this CPU (`__memmove_avx_unaligned_erms`, …), which Debian's
//! libc does not name in `.dynsym`. [`own_libc`] asks the dynamic linker of zcprof's own
//! process (`dlsym` runs the resolver) and turns the address into an offset in the same
//! file: a process that maps the same libc file on the same machine picks the same one. A
//! routine ends where its sized symbol ends, else where the `.eh_frame` FDE covering its
//! start ends (every function has one), extended over the functions that follow while
//! each FDE is small (below 512 bytes) and the next starts within 64 bytes, up to the
//! first large one (glibc's non-ERMS memmove is only the head of the ERMS variant's body,
//! a few stubs further). Another libc file cannot be resolved this way and
//! is reported as such. Go binaries carry `runtime.memmove` with its size in `.symtab`.

use std::{collections::HashMap, ffi::CStr, fs, path::Path};

use gimli::{BaseAddresses, EhFrame, LittleEndian, UnwindSection as _};
use object::{Object as _, ObjectSection as _, ObjectSegment as _, ObjectSymbol as _};

use crate::host::maps::{self, Mapping};

/// A GNU build ID as the kernel reports it: 20 bytes, a shorter one zero padded.
pub type BuildId = [u8; 20];

/// glibc's copy entry points, resolved through the dynamic linker.
pub const LIBC_ROUTINES: [&CStr; 3] = [c"memcpy", c"memmove", c"mempcpy"];
/// Go's copy routine (`copy()`, and every slice/array copy the compiler does not inline).
pub const GO_ROUTINE: &str = "runtime.memmove";

/// One copy routine in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routine {
    /// The names that resolve to it (memcpy and memmove often share one implementation).
    pub names: Vec<String>,
    /// File offsets, `start..end`.
    pub start: u64,
    pub end: u64,
    /// Where `end` comes from.
    pub end_from: EndFrom,
}

/// How a routine's end was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndFrom {
    /// The ELF symbol's size.
    Symbol,
    /// The `.eh_frame` FDE covering its start.
    Fde,
}

/// A file with copy routines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFile {
    pub path: String,
    /// Device (major, minor) and inode, as /proc/PID/maps prints them.
    pub dev: (u32, u32),
    pub inode: u64,
    /// `None`: the kernel cannot name this file's samples (no GNU build ID).
    pub build_id: Option<BuildId>,
    pub routines: Vec<Routine>,
}

/// The resolved copy routines of the libc zcprof itself runs with, resolved once per
/// process: the layers ask again after their uprobes attach (the user layer's session), and
/// then every `memcpy` of parsing libc's symbols again would trap into the uprobe on
/// zcprof's own libc (seen: ~13 s of system time in a debug build before a `--user-copies`
/// session started).
pub fn own_libc() -> Result<CopyFile, String> {
    static OWN: std::sync::OnceLock<Result<CopyFile, String>> = std::sync::OnceLock::new();
    OWN.get_or_init(resolve_own_libc).clone()
}

fn resolve_own_libc() -> Result<CopyFile, String> {
    // SAFETY: dlopen with RTLD_NOLOAD only returns a handle to a library already loaded.
    let handle = unsafe { libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return Err("libc.so.6 is not loaded in zcprof (not a glibc system?)".into());
    }
    let mappings = maps::executable(std::process::id())
        .map_err(|err| format!("reading /proc/self/maps: {err}"))?;
    let mut file: Option<(Mapping, Vec<(String, u64)>)> = None;
    for name in LIBC_ROUTINES {
        // SAFETY: a valid handle and a NUL-terminated name; the result is only an address.
        let addr = unsafe { libc::dlsym(handle, name.as_ptr()) } as u64;
        let Some(m) = mappings.iter().find(|m| m.start <= addr && addr < m.end) else {
            return Err(format!(
                "{} resolved outside any mapped file",
                name.to_string_lossy()
            ));
        };
        let entry = file.get_or_insert_with(|| (m.clone(), Vec::new()));
        if (entry.0.dev, entry.0.inode) != (m.dev, m.inode) {
            return Err("memcpy, memmove and mempcpy resolve into different files".into());
        }
        entry
            .1
            .push((name.to_string_lossy().into_owned(), m.file_offset(addr)));
    }
    let (mapping, entries) = file.ok_or("no routines")?;
    let path = mapping.path.clone().unwrap_or_default();
    let data = fs::read(format!("/proc/self/map_files/{}", mapping.map_files_name()))
        .or_else(|_| fs::read(&path))
        .map_err(|err| format!("reading {path}: {err}"))?;
    let elf = Elf::parse(&data).map_err(|err| format!("{path}: {err}"))?;
    let mut routines: Vec<Routine> = Vec::new();
    for (name, start) in entries {
        if let Some(r) = routines.iter_mut().find(|r| r.start == start) {
            r.names.push(name);
            continue;
        }
        let (end, end_from) = elf.end_of(start).ok_or_else(|| {
            format!("{path}: no sized symbol or FDE covers {name} (offset {start:#x})")
        })?;
        routines.push(Routine {
            names: vec![name],
            start,
            end,
            end_from,
        });
    }
    Ok(CopyFile {
        path,
        dev: mapping.dev,
        inode: mapping.inode,
        build_id: build_id(&data),
        routines,
    })
}

/// `runtime.memmove` of the Go binary at `path` (mapped as `mapping`); `Ok(None)` when
/// the file is not a Go binary (or has no symbol table left).
pub fn go_binary(path: &Path, dev: (u32, u32), inode: u64) -> Result<Option<CopyFile>, String> {
    let data = fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
    let elf = Elf::parse(&data).map_err(|err| format!("{}: {err}", path.display()))?;
    let Some((start, size)) = elf.go_memmove(path)? else {
        return Ok(None);
    };
    let (end, end_from) = if size > 0 {
        (start + size, EndFrom::Symbol)
    } else {
        elf.end_of(start)
            .ok_or_else(|| format!("{}: {GO_ROUTINE} has no size", path.display()))?
    };
    Ok(Some(CopyFile {
        path: path.display().to_string(),
        dev,
        inode,
        build_id: build_id(&data),
        routines: vec![Routine {
            names: vec![GO_ROUTINE.into()],
            start,
            end,
            end_from,
        }],
    }))
}

/// The file offset of the `runtime.memmove` that the ELF file `data` (read from `path`)
/// defines: where the user layer's uprobe goes. `None` when it defines none.
pub fn go_memmove_offset(path: &Path, data: &[u8]) -> Result<Option<u64>, String> {
    let elf =
        Elf::parse(data).map_err(|err| format!("{} is not an ELF file: {err}", path.display()))?;
    Ok(elf.go_memmove(path)?.map(|(start, _)| start))
}

/// The copy routines of the processes on this machine: zcprof's libc, and the Go binaries
/// that running processes execute (one entry per file); files it could not resolve with the
/// reason (another libc than zcprof's, a Go binary without a build ID, …).
pub fn machine() -> (Vec<CopyFile>, Vec<(String, String)>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<((u32, u32), u64), ()> = HashMap::new();
    match own_libc() {
        Ok(libc) => {
            seen.insert((libc.dev, libc.inode), ());
            found.push(libc);
        }
        Err(why) => problems.push(("libc".to_string(), why)),
    }
    let pids = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    for pid in pids {
        let Ok(mappings) = maps::executable(pid) else {
            continue;
        };
        for m in mappings.iter().filter(|m| m.is_file()) {
            if seen.insert((m.dev, m.inode), ()).is_some() {
                continue;
            }
            let path = m.path.clone().unwrap_or_default();
            let name = path.rsplit('/').next().unwrap_or("");
            if name.starts_with("libc.so") || name.starts_with("libc-") {
                problems.push((
                    path,
                    "another libc file than zcprof's: its IFUNC choice is not known".into(),
                ));
                continue;
            }
            // Only a process's main program can be a Go binary (Go links statically).
            let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.as_deref() != Some(Path::new(&path)) {
                continue;
            }
            let read = format!("/proc/{pid}/map_files/{}", m.map_files_name());
            match go_binary(Path::new(&read), m.dev, m.inode) {
                Ok(Some(mut go)) => {
                    go.path = path;
                    found.push(go);
                }
                Ok(None) => {}
                Err(why) => problems.push((path, why)),
            }
        }
    }
    (found, problems)
}

/// Where `files`' routines are mapped in process `pid`: `(routine names, start..end)`
/// address ranges, from /proc/PID/maps.
pub fn address_ranges(pid: u32, files: &[CopyFile]) -> Vec<(Vec<String>, u64, u64)> {
    let Ok(mappings) = maps::executable(pid) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in &mappings {
        let Some(file) = files.iter().find(|f| (f.dev, f.inode) == (m.dev, m.inode)) else {
            continue;
        };
        let mapped = m.offset..m.offset + (m.end - m.start);
        for r in &file.routines {
            if mapped.contains(&r.start) {
                let start = m.start + (r.start - m.offset);
                out.push((r.names.clone(), start, start + (r.end - r.start)));
            }
        }
    }
    out
}

/// The file's GNU build ID, padded or cut to the kernel's 20 bytes.
fn build_id(data: &[u8]) -> Option<BuildId> {
    let obj = object::File::parse(data).ok()?;
    let found = obj.build_id().ok()??;
    let mut id = [0; 20];
    let n = found.len().min(id.len());
    id[..n].copy_from_slice(&found[..n]);
    Some(id)
}

/// An FDE smaller than this is taken for a head that continues in the next function.
const SMALL_HEAD: u64 = 512;
/// How far after such a head the next function may start (alignment padding).
const PADDING: u64 = 64;
/// Most small FDEs followed from a routine's start.
const MAX_HEADS: usize = 8;

/// An ELF file, for file offsets, symbols and FDEs.
struct Elf<'a> {
    obj: object::File<'a>,
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, object::Error> {
        Ok(Elf {
            obj: object::File::parse(data)?,
        })
    }

    /// The virtual address (in the file's own layout) of a file offset.
    fn vaddr_of(&self, offset: u64) -> Option<u64> {
        self.obj.segments().find_map(|s| {
            let (off, size) = s.file_range();
            (off <= offset && offset < off + size).then(|| s.address() + (offset - off))
        })
    }

    /// The file offset of a virtual address.
    fn offset_of(&self, vaddr: u64) -> Option<u64> {
        self.obj.segments().find_map(|s| {
            let (off, size) = s.file_range();
            let start = s.address();
            (start <= vaddr && vaddr < start + size).then(|| off + (vaddr - start))
        })
    }

    /// The file offset and symbol size of the `runtime.memmove` the file defines (`path`
    /// names it in errors); `None` when it defines none (not a Go binary, or stripped).
    fn go_memmove(&self, path: &Path) -> Result<Option<(u64, u64)>, String> {
        let Some(sym) = self
            .obj
            .symbols()
            .find(|s| s.name() == Ok(GO_ROUTINE) && s.is_definition())
        else {
            return Ok(None);
        };
        let start = self.offset_of(sym.address()).ok_or_else(|| {
            format!(
                "{}: {GO_ROUTINE} is outside the file's segments",
                path.display()
            )
        })?;
        Ok(Some((start, sym.size())))
    }

    /// The end (file offset) of the function starting at file offset `start`: its sized
    /// symbol, else its FDE.
    fn end_of(&self, start: u64) -> Option<(u64, EndFrom)> {
        let vaddr = self.vaddr_of(start)?;
        let sized = self
            .obj
            .dynamic_symbols()
            .chain(self.obj.symbols())
            .find(|s| s.address() == vaddr && s.size() > 0);
        if let Some(sym) = sized {
            return Some((start + sym.size(), EndFrom::Symbol));
        }
        let section = self.obj.section_by_name(".eh_frame")?;
        let data = section.data().ok()?;
        let eh_frame = EhFrame::new(data, LittleEndian);
        let mut bases = BaseAddresses::default().set_eh_frame(section.address());
        if let Some(text) = self.obj.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        let fde_at = |addr: u64| {
            eh_frame
                .fde_for_address(&bases, addr, EhFrame::cie_from_offset)
                .ok()
        };
        let first = fde_at(vaddr)?;
        let (mut end, mut last_len) = (first.end_address(), first.len());
        // A head or stub that jumps into a body shared with the entry points after it:
        // glibc's `__memmove_sse2_unaligned` / `__memmove_avx_unaligned` (chosen without
        // ERMS, e.g. under QEMU's TCG) are only the small-size head, their larger sizes
        // run in the `_erms` variant's body, which follows after a few stubs
        // (`__memcpy_chk`, …) and alignment padding; `mempcpy` is a jump into memmove.
        // Small FDEs are followed until the first large one, which ends the routine.
        for _ in 0..MAX_HEADS {
            if last_len >= SMALL_HEAD {
                break;
            }
            // Functions start 16-byte aligned.
            let Some(next) = (end.next_multiple_of(16)..end + PADDING)
                .step_by(16)
                .find_map(fde_at)
            else {
                break;
            };
            (end, last_len) = (next.end_address(), next.len());
        }
        Some((start + (end - vaddr), EndFrom::Fde))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_libc_routines_are_resolved_with_their_ends() {
        let libc = own_libc().expect("this test runs with glibc");
        assert!(libc.path.contains("libc"), "{}", libc.path);
        assert!(libc.build_id.is_some(), "Debian's libc has a build ID");
        let names: Vec<&str> = libc
            .routines
            .iter()
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect();
        for name in ["memcpy", "memmove", "mempcpy"] {
            assert!(names.contains(&name), "{names:?}");
        }
        for r in &libc.routines {
            // An implementation is hundreds of bytes to a few KiB, never a whole library.
            assert!(r.end > r.start && r.end - r.start < 64 << 10, "{r:?}");
        }
        // memcpy's implementation copies: an address inside it is in the ranges.
        let me = std::process::id();
        let ranges = address_ranges(me, &[libc]);
        assert!(!ranges.is_empty());
        // SAFETY: as in own_libc.
        let handle =
            unsafe { libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        // SAFETY: a valid handle and a NUL-terminated name.
        let memcpy = unsafe { libc::dlsym(handle, c"memcpy".as_ptr()) } as u64;
        assert!(
            ranges.iter().any(|(_, s, e)| *s <= memcpy && memcpy < *e),
            "{ranges:x?} {memcpy:x}"
        );
    }

    #[test]
    fn a_binary_without_runtime_memmove_is_not_go() {
        let exe = std::env::current_exe().expect("the test binary");
        assert_eq!(go_binary(&exe, (0, 0), 0), Ok(None));
    }
}
