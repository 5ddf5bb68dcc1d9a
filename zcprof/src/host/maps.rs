//! What `/proc/PID/maps` says about a process's executable mappings: which file (or
//! pseudo-region such as `[vdso]`) backs each range of code, and from which file offset. The
//! stacks layer turns a bare instruction address into a file offset with it.

use std::{fs, io};

/// One executable mapping, as a line of `/proc/PID/maps` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The range of virtual addresses, `start..end`.
    pub start: u64,
    pub end: u64,
    /// The file offset mapped at `start`.
    pub offset: u64,
    /// The backing file's device (major, minor) and inode; inode 0 for anonymous memory
    /// and pseudo-regions.
    pub dev: (u32, u32),
    pub inode: u64,
    /// The path as the process sees it (in its mount namespace), without the kernel's
    /// ` (deleted)` suffix; a pseudo-region's name (`[vdso]`); `None` for anonymous memory.
    pub path: Option<String>,
    /// The file was unlinked after it was mapped.
    pub deleted: bool,
}

impl Mapping {
    /// Backed by a file (rather than anonymous memory or a pseudo-region).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.as_deref().is_some_and(|p| p.starts_with('/'))
    }

    /// The file offset of the address `addr`, which must be in this mapping.
    pub fn file_offset(&self, addr: u64) -> u64 {
        addr - self.start + self.offset
    }

    /// The name of this mapping's entry in `/proc/PID/map_files`.
    pub fn map_files_name(&self) -> String {
        format!("{:x}-{:x}", self.start, self.end)
    }
}

/// The executable mappings of a live process, in address order.
pub fn executable(tgid: u32) -> io::Result<Vec<Mapping>> {
    fs::read_to_string(format!("/proc/{tgid}/maps")).map(|text| parse_executable(&text))
}

/// The executable mappings in the text of a maps file; lines that do not parse are skipped.
pub fn parse_executable(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(parse_line)
        .filter(|(perms, _)| perms.as_bytes().get(2) == Some(&b'x'))
        .map(|(_, mapping)| mapping)
        .collect()
}

/// `start-end perms offset major:minor inode   path`: the path is the rest of the line
/// (it may contain spaces), padded from the inode by spaces.
fn parse_line(line: &str) -> Option<(&str, Mapping)> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (word, tail) = trimmed.split_at(end);
        rest = tail;
        word
    };
    let (start, end) = field().split_once('-')?;
    let perms = field();
    let offset = field();
    let (major, minor) = field().split_once(':')?;
    let inode = field().parse().ok()?;
    let path = rest.trim_start();
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(path) => (path, true),
        None => (path, false),
    };
    let mapping = Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev: (
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
        ),
        inode,
        path: (!path.is_empty()).then(|| path.to_string()),
        deleted,
    };
    Some((perms, mapping))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c8a00000-55d0c8a02000 r--p 00000000 fd:01 1835019                    /usr/bin/sleep
55d0c8a02000-55d0c8a06000 r-xp 00002000 fd:01 1835019                    /usr/bin/sleep
7f3b1c228000-7f3b1c3ad000 r-xp 00028000 fd:01 1843362                    /usr/lib/x86_64-linux-gnu/libc.so.6
7f3b1c5f0000-7f3b1c5f1000 r-xp 00001000 00:2a 77                         /tmp/dir with space/prog (deleted)
7f3b1c600000-7f3b1c601000 rwxp 00000000 00:00 0 
7ffd5a5f3000-7ffd5a5f5000 r-xp 00000000 00:00 0                          [vdso]
garbage
";

    #[test]
    fn keeps_executable_mappings_with_their_files() {
        let maps = parse_executable(MAPS);
        assert_eq!(maps.len(), 5);
        assert_eq!(
            maps[0],
            Mapping {
                start: 0x55d0c8a02000,
                end: 0x55d0c8a06000,
                offset: 0x2000,
                dev: (0xfd, 1),
                inode: 1835019,
                path: Some("/usr/bin/sleep".into()),
                deleted: false,
            }
        );
        assert_eq!(maps[0].file_offset(0x55d0c8a02010), 0x2010);
        assert_eq!(maps[0].map_files_name(), "55d0c8a02000-55d0c8a06000");
        assert!(maps[1].is_file());
    }

    #[test]
    fn deleted_files_paths_with_spaces_and_anonymous_code() {
        let maps = parse_executable(MAPS);
        assert_eq!(maps[2].path.as_deref(), Some("/tmp/dir with space/prog"));
        assert!(maps[2].deleted && maps[2].is_file());
        assert_eq!(maps[3].path, None);
        assert!(!maps[3].is_file());
        assert_eq!(maps[4].path.as_deref(), Some("[vdso]"));
        assert!(!maps[4].is_file());
    }

    #[test]
    fn reads_this_process() {
        let maps = executable(std::process::id()).unwrap();
        let here = reads_this_process as *const () as u64;
        assert!(
            maps.iter()
                .any(|m| (m.start..m.end).contains(&here) && m.is_file()),
            "{here:#x} not in {maps:#x?}"
        );
    }
}
