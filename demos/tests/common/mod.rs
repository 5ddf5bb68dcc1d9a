//! Helpers shared by the integration tests: running the real `zcprof-demo` binary,
//! and parsing `strace -f` output into per-pid syscall tallies.

#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Output};

use zcprof_demos::syscalls::strace_filter;
use zcprof_demos::{Counter, Report};

pub const BIN: &str = env!("CARGO_BIN_EXE_zcprof-demo");

/// Every scenario and mode, from the catalogue.
pub fn all_cases() -> Vec<(&'static str, &'static str)> {
    zcprof_demos::scenarios()
        .iter()
        .flat_map(|s| s.modes.iter().map(move |m| (s.name, m.name)))
        .collect()
}

/// Runs the binary with `args`.
pub fn demo(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run zcprof-demo")
}

/// Runs a scenario and parses its report, failing with stderr on a non-zero exit.
pub fn run_ok(args: &[&str]) -> Report {
    let out = demo(args);
    assert!(
        out.status.success(),
        "zcprof-demo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_report(&out.stdout)
}

pub fn parse_report(stdout: &[u8]) -> Report {
    // Well-formed JSON first (a clear message if not), then the schema.
    let value: serde_json::Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    });
    serde_json::from_value(value).expect("JSON matches the Report schema")
}

/// Per-pid, per-syscall counters as strace saw them.
pub type StraceTally = HashMap<i32, BTreeMap<String, Counter>>;

/// Runs the binary under `strace -f` limited to the traced syscalls; returns the
/// report and strace's tallies.
pub fn run_under_strace(args: &[&str], trace_file: &Path) -> (Report, StraceTally) {
    let filter = format!("trace={}", strace_filter());
    let out = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-s",
            "0",
            "-e",
            &filter,
            "-e",
            "signal=none",
            "-o",
        ])
        .arg(trace_file)
        .arg(BIN)
        .args(args)
        .output()
        .expect("run strace (is /usr/bin/strace installed?)");
    assert!(
        out.status.success(),
        "strace zcprof-demo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = parse_report(&out.stdout);
    let text = std::fs::read_to_string(trace_file).expect("read strace output");
    (report, parse_strace(&text))
}

/// Parses `strace -f -o` lines such as
/// `123 read(3, ""..., 65536) = 65536`,
/// `123 write(4, ""..., 10 <unfinished ...>` / `123 <... write resumed>) = 10`,
/// `123 splice(3, NULL, 8, NULL, 65536, 0) = -1 EPIPE (Broken pipe)`.
/// An unfinished call is counted once, when it resumes.
pub fn parse_strace(text: &str) -> StraceTally {
    let mut tally = StraceTally::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let pid: i32 = pid.parse().unwrap_or_else(|_| panic!("no pid in {line:?}"));
        let rest = rest.trim_start();
        if rest.starts_with("---") || rest.starts_with("+++") || rest.ends_with("<unfinished ...>")
        {
            continue;
        }
        let name = match rest.strip_prefix("<... ") {
            Some(resumed) => {
                resumed
                    .split_once(" resumed>")
                    .unwrap_or_else(|| panic!("bad resumed line {line:?}"))
                    .0
            }
            None => {
                rest.split_once('(')
                    .unwrap_or_else(|| panic!("bad call line {line:?}"))
                    .0
            }
        };
        let (_, result) = rest
            .rsplit_once(" = ")
            .unwrap_or_else(|| panic!("no result in {line:?}"));
        let ret: i64 = result
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("unparsable result in {line:?}"));
        tally
            .entry(pid)
            .or_default()
            .entry(name.to_owned())
            .or_default()
            .record(ret);
    }
    tally
}
