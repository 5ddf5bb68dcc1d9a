//! The kernel's own accounting of each BPF program's run time (`BPF_ENABLE_STATS`), as
//! bpftop reads it: what the hook costs apart from what the program does.
//!
//! Statistics cost about 20 ns per program run (shared/notes/performance.md), so they are
//! on only in a pass of their own, never while the timed repetitions run. They are turned on
//! with `BPF_ENABLE_STATS`, whose fd keeps them on while it is open: closing it drops only
//! this reference, so a setting someone else made (`kernel.bpf_stats_enabled=1`) stays as
//! it was (bpftop #34: a tool that wrote the sysctl and died left it on).
//!
//! A profiler's programs are found through the fds its process holds
//! (`/proc/PID/fdinfo/*`, which carry `prog_id`, `run_time_ns` and `run_cnt`); their names
//! through `BPF_PROG_GET_FD_BY_ID` and `BPF_OBJ_GET_INFO_BY_FD`.

use std::{collections::BTreeMap, os::fd::FromRawFd as _, path::Path};

use anyhow::{Context as _, bail};

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_ENABLE_STATS: libc::c_long = 32;
const BPF_STATS_RUN_TIME: u32 = 0;

/// One program's counters as fdinfo shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// What one program did between two snapshots.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgRun {
    pub id: u32,
    pub name: String,
    pub runs: u64,
    pub run_time_ns: u64,
}

impl ProgRun {
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.run_time_ns as f64 / self.runs as f64)
    }
}

/// Statistics on while this lives.
pub struct Enabled {
    _fd: std::os::fd::OwnedFd,
}

pub fn enable() -> anyhow::Result<Enabled> {
    #[repr(C)]
    struct Attr {
        kind: u32,
    }
    let attr = Attr {
        kind: BPF_STATS_RUN_TIME,
    };
    // SAFETY: bpf(2) with a valid attribute of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_ENABLE_STATS,
            &raw const attr,
            size_of::<Attr>(),
        )
    };
    if fd < 0 {
        bail!("BPF_ENABLE_STATS: {}", std::io::Error::last_os_error());
    }
    Ok(Enabled {
        // SAFETY: a new fd the kernel returned to us alone.
        _fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) },
    })
}

/// `prog_id`, `run_time_ns` and `run_cnt` of a BPF program fd's fdinfo; `None` for any
/// other fd (a link's fdinfo names its program's id too, but has no counters).
pub fn parse_fdinfo(text: &str) -> Option<(u32, Counters)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let id = u32::try_from(field("prog_id")?).ok()?;
    Some((
        id,
        Counters {
            run_time_ns: field("run_time_ns")?,
            run_cnt: field("run_cnt")?,
        },
    ))
}

/// The BPF programs process `pid` holds, by id.
pub fn snapshot(pid: u32) -> BTreeMap<u32, Counters> {
    let dir = Path::new("/proc").join(pid.to_string()).join("fdinfo");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path())
            && let Some((id, c)) = parse_fdinfo(&text)
        {
            out.insert(id, c);
        }
    }
    out
}

/// What each program did between `before` and `after` (programs that ran only), most runs
/// first, named by `name`.
pub fn runs(
    before: &BTreeMap<u32, Counters>,
    after: &BTreeMap<u32, Counters>,
    name: impl Fn(u32) -> String,
) -> Vec<ProgRun> {
    let mut out: Vec<ProgRun> = after
        .iter()
        .filter_map(|(&id, a)| {
            let b = before.get(&id).copied().unwrap_or_default();
            let runs = a.run_cnt.saturating_sub(b.run_cnt);
            (runs > 0).then(|| ProgRun {
                id,
                name: name(id),
                runs,
                run_time_ns: a.run_time_ns.saturating_sub(b.run_time_ns),
            })
        })
        .collect();
    out.sort_by(|a, b| b.runs.cmp(&a.runs).then(a.id.cmp(&b.id)));
    out
}

/// A program's name (`bpf_prog_info.name`, at most 15 bytes), or `prog <id>` when it
/// cannot be read.
pub fn name(id: u32) -> String {
    prog_name(id).unwrap_or_else(|_| format!("prog {id}"))
}

fn prog_name(id: u32) -> anyhow::Result<String> {
    #[repr(C)]
    struct GetFd {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let attr = GetFd {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: bpf(2) with a valid attribute of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            &raw const attr,
            size_of::<GetFd>(),
        )
    };
    if fd < 0 {
        bail!("BPF_PROG_GET_FD_BY_ID: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a new fd the kernel returned to us alone.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    // `struct bpf_prog_info` up to its name: type, id, tag[8], two lengths, two pointers,
    // load_time, created_by_uid, nr_map_ids, map_ids, then name[16] at byte 64.
    let mut info = [0u8; 80];
    #[repr(C)]
    struct GetInfo {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    use std::os::fd::AsRawFd as _;
    let attr = GetInfo {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: info.len() as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: bpf(2) writes at most `info_len` bytes into `info`, which lives until after.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &raw const attr,
            size_of::<GetInfo>(),
        )
    };
    if rc < 0 {
        bail!(
            "BPF_OBJ_GET_INFO_BY_FD: {}",
            std::io::Error::last_os_error()
        );
    }
    let name = &info[64..80];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8(name[..end].to_vec()).context("program name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_of_a_program_and_of_anything_else() {
        let prog = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1057\nprog_type:\t26\nprog_jited:\t1\nprog_tag:\t3b185187f1855c4c\nmemlock:\t4096\nprog_id:\t412\nrun_time_ns:\t98765\nrun_cnt:\t1000\nrecursion_misses:\t0\nverified_insns:\t2\n";
        assert_eq!(
            parse_fdinfo(prog),
            Some((
                412,
                Counters {
                    run_time_ns: 98765,
                    run_cnt: 1000
                }
            ))
        );
        // Statistics never enabled: the fields are there and zero.
        let map = "pos:\t0\nflags:\t02000002\nmap_type:\t1\nkey_size:\t8\nmap_id:\t77\n";
        assert_eq!(parse_fdinfo(map), None);
        // A link to the same program: its id, no counters (it must not hide the program's).
        let link = "pos:\t0\nflags:\t02000000\nlink_type:\tperf\nlink_id:\t9\nprog_tag:\t3b185187f1855c4c\nprog_id:\t412\n";
        assert_eq!(parse_fdinfo(link), None);
        assert_eq!(parse_fdinfo("pos:\t0\nflags:\t02\n"), None);
    }

    #[test]
    fn runs_are_differences_of_programs_that_ran_most_first() {
        let c = |t, n| Counters {
            run_time_ns: t,
            run_cnt: n,
        };
        let before = BTreeMap::from([(1, c(100, 10)), (2, c(0, 0)), (3, c(5, 1))]);
        // 4 appeared between the snapshots (counted from zero); 3 did not run.
        let after = BTreeMap::from([
            (1, c(600, 20)),
            (2, c(9000, 100)),
            (3, c(5, 1)),
            (4, c(40, 2)),
        ]);
        let got = runs(&before, &after, |id| format!("p{id}"));
        let view: Vec<(u32, u64, u64)> =
            got.iter().map(|r| (r.id, r.runs, r.run_time_ns)).collect();
        assert_eq!(view, [(2, 100, 9000), (1, 10, 500), (4, 2, 40)]);
        assert_eq!(got[0].name, "p2");
        assert_eq!(got[0].ns_per_run(), Some(90.0));
        assert_eq!(got[1].ns_per_run(), Some(50.0));
    }
}
