//! The ground truth is exact: for every scenario and mode, the per-pid counts strace
//! sees for each worker equal the demo's JSON, call for call and byte for byte.
//! This is independent of zcprof, so zcprof can be tested against the JSON alone.

mod common;

use std::collections::BTreeMap;

use common::{StraceTally, parse_strace, run_under_strace};
use zcprof_demos::{Counter, Family, Report, Syscall};

/// A small odd size, so the last chunk is partial; a small chunk, so there are many
/// calls. Kept small because strace makes each syscall slow.
const BYTES: &str = "300013";
const CHUNK: &str = "16k";

fn check_scenario(scenario: &str) {
    let info = zcprof_demos::scenario(scenario).expect("scenario in catalogue");
    let dir = std::env::temp_dir().join(format!(
        "zcprof-demo-strace-{}-{scenario}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create trace dir");
    for mode in info.mode_names() {
        let trace = dir.join(format!("{mode}.trace"));
        let args = [
            "run",
            scenario,
            "--mode",
            mode,
            "--bytes",
            BYTES,
            "--chunk",
            CHUNK,
            "--compact",
        ];
        let (report, seen) = run_under_strace(&args, &trace);
        assert!(report.verified, "{scenario}/{mode} did not verify");
        assert_eq!(report.payload_bytes, 300013, "{scenario}/{mode}");
        compare(&report, &seen);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every worker's JSON tally equals strace's for its pid, with nothing extra on
/// either side.
fn compare(report: &Report, seen: &StraceTally) {
    let empty = BTreeMap::new();
    let parent = i32::try_from(report.parent_pid).expect("pid fits i32");
    for role in &report.roles {
        let strace = seen.get(&role.pid).unwrap_or(&empty);
        assert_eq!(
            &role.syscalls, strace,
            "{}/{} role {} (pid {}): JSON vs strace",
            report.scenario, report.mode, role.role, role.pid
        );
        // The family totals are consistent with the per-syscall map.
        let mut copy = Counter::default();
        for (name, c) in &role.syscalls {
            let s = Syscall::from_name(name).expect("known syscall name");
            if s.family() == Family::Copy {
                copy.add(c);
            }
        }
        assert_eq!(copy, role.copy_family);
    }
    // Every process strace saw is the parent or a reported worker: no hidden helper
    // processes doing I/O on the demo's behalf.
    for pid in seen.keys() {
        assert!(
            *pid == parent || report.roles.iter().any(|r| r.pid == *pid),
            "{}/{}: pid {pid} is neither the parent nor a worker",
            report.scenario,
            report.mode
        );
    }
}

#[test]
fn file_copy_matches_strace() {
    check_scenario("file-copy");
}

#[test]
fn file_read_matches_strace() {
    check_scenario("file-read");
}

#[test]
fn pipe_matches_strace() {
    check_scenario("pipe");
}

#[test]
fn file_serve_matches_strace() {
    check_scenario("file-serve");
}

#[test]
fn proxy_matches_strace() {
    check_scenario("proxy");
}

#[test]
fn in_process_matches_strace() {
    check_scenario("in-process");
}

/// A mismatch must be detectable: a report with one byte changed no longer matches.
#[test]
#[should_panic(expected = "JSON vs strace")]
fn comparison_can_fail() {
    let dir = std::env::temp_dir().join(format!("zcprof-demo-strace-neg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create trace dir");
    let trace = dir.join("t.trace");
    let args = [
        "run",
        "file-copy",
        "--mode",
        "read-write",
        "--bytes",
        "64k",
        "--compact",
    ];
    let (mut report, seen) = run_under_strace(&args, &trace);
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(c) = report.roles[0].syscalls.get_mut("write") {
        c.bytes += 1;
    }
    compare(&report, &seen);
}

#[test]
fn strace_parser_handles_unfinished_and_errors() {
    let text = "\
10 read(3, \"\"..., 65536) = 65536
11 tee(3, 6, 65536, 0 <unfinished ...>
10 write(4, \"\"..., 10 <unfinished ...>
11 <... tee resumed>)                = 65520
10 <... write resumed>)              = 7
10 splice(3, NULL, 8, NULL, 65536, 0) = -1 EPIPE (Broken pipe)
10 --- SIGCHLD {si_signo=SIGCHLD} ---
10 read(3, \"\", 65536)               = 0
";
    let t = parse_strace(text);
    let c = |calls, bytes, errors| Counter {
        calls,
        bytes,
        errors,
    };
    assert_eq!(t[&10]["read"], c(2, 65536, 0));
    assert_eq!(t[&10]["write"], c(1, 7, 0));
    assert_eq!(t[&10]["splice"], c(1, 0, 1));
    assert_eq!(t[&11]["tee"], c(1, 65520, 0));
    assert_eq!(t.len(), 2);
}
