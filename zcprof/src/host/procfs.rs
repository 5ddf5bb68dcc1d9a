//! What `/proc` says about a process: its name and parent (for processes that started before
//! zcprof, whose fork was not seen), its command line and executable, whether it exists.

use std::{
    fs,
    time::{Duration, Instant},
};

use crate::model::{ProcInfo, ProcSource};

/// Reads `/proc/<tgid>/stat`.
pub struct Procfs;

impl ProcSource for Procfs {
    fn lookup(&self, tgid: u32) -> Option<ProcInfo> {
        let stat = fs::read_to_string(format!("/proc/{tgid}/stat")).ok()?;
        parse_stat(&stat)
    }

    fn alive(&self, tgid: u32) -> bool {
        exists(tgid)
    }

    fn thread_name(&self, tgid: u32, tid: u32) -> Option<String> {
        let comm = fs::read_to_string(format!("/proc/{tgid}/task/{tid}/comm")).ok()?;
        Some(comm.trim_end_matches('\n').to_string())
    }
}

/// `pid (comm) state ppid …`: comm may contain spaces and parentheses, so split at the last
/// `)`.
fn parse_stat(stat: &str) -> Option<ProcInfo> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(ProcInfo { comm, ppid })
}

/// The arguments of a live process (`/proc/PID/cmdline`); empty when it is gone, a kernel
/// thread, or unreadable.
pub fn args(tgid: u32) -> Vec<String> {
    fs::read(format!("/proc/{tgid}/cmdline")).map_or_else(|_| Vec::new(), |raw| split_args(&raw))
}

/// The command line of a live process, arguments joined by spaces.
pub fn cmdline(tgid: u32) -> Option<String> {
    let args = args(tgid);
    (!args.is_empty()).then(|| args.join(" "))
}

/// NUL-separated arguments; empty ones are dropped, bytes that are not UTF-8 replaced.
fn split_args(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The path of a live process's executable (`/proc/PID/exe`), as it sees it, without the
/// kernel's ` (deleted)` suffix.
pub fn exe(tgid: u32) -> Option<String> {
    let link = fs::read_link(format!("/proc/{tgid}/exe")).ok()?;
    let link = link.to_string_lossy();
    Some(link.strip_suffix(" (deleted)").unwrap_or(&link).to_string())
}

/// Every process now, as `(tgid, ppid)` (processes that vanish while /proc is read are
/// left out).
pub fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|tgid| Some((tgid, Procfs.lookup(tgid)?.ppid)))
        .collect()
}

/// `roots` and every process now descended from one of them, by /proc's parent links, in
/// no particular order.
pub fn descendants(roots: &[u32], all: &[(u32, u32)]) -> Vec<u32> {
    let mut tree: std::collections::HashSet<u32> = roots.iter().copied().collect();
    loop {
        let before = tree.len();
        for &(tgid, ppid) in all {
            if tree.contains(&ppid) {
                tree.insert(tgid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    tree.into_iter().collect()
}

/// Whether a process with this PID exists now.
pub fn exists(tgid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{tgid}")).exists()
}

/// zcprof's own CPU use between samples: the process's CPU clock (user + system time of
/// every thread, as /proc/self/stat's utime + stime but in nanoseconds, and without a read
/// that zcprof's own probes would count), for the cost `top` and the dashboard show apart.
#[derive(Default)]
pub struct SelfCpu {
    last: Option<(Instant, Duration)>,
}

impl SelfCpu {
    pub fn new() -> Self {
        Self::default()
    }

    /// Percent of one CPU since the previous sample (`None` for the first).
    pub fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let cpu = own_cpu_time()?;
        let (then, before) = self.last.replace((now, cpu))?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0).then(|| cpu.saturating_sub(before).as_secs_f64() / wall * 100.0)
    }
}

/// `CLOCK_PROCESS_CPUTIME_ID`: CPU time of this process, all threads.
fn own_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_follow_parent_links_in_any_order() {
        // 4 is listed before its parent 3; 9 is not under 1.
        let all = [(4, 3), (2, 1), (3, 2), (9, 8), (1, 0)];
        let mut d = descendants(&[2], &all);
        d.sort_unstable();
        assert_eq!(d, vec![2, 3, 4]);
        // This test's own process is in the real /proc, with its parent.
        let me = std::process::id();
        assert!(processes().contains(&(me, std::os::unix::process::parent_id())));
    }

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let info = parse_stat("42 (a (b) c) S 7 42 42 0 -1").expect("parses");
        assert_eq!(
            info,
            ProcInfo {
                comm: "a (b) c".into(),
                ppid: 7
            }
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let info = Procfs.lookup(me).expect("own stat");
        assert_eq!(info.ppid, std::os::unix::process::parent_id());
        assert!(exists(me));
        assert!(cmdline(me).is_some());
        assert_eq!(args(me).first(), std::env::args().next().as_ref());
        assert_eq!(args(u32::MAX), Vec::<String>::new());
        let current = std::env::current_exe().unwrap();
        assert_eq!(exe(me).as_deref(), current.to_str());
        assert_eq!(exe(u32::MAX), None);
    }

    #[test]
    fn arguments_are_nul_separated() {
        assert_eq!(split_args(b"dd\0if=/dev/zero\0\0"), ["dd", "if=/dev/zero"]);
        assert_eq!(split_args(b""), Vec::<String>::new());
        assert_eq!(split_args(b"a\xff\0"), ["a\u{fffd}"]);
    }
}
