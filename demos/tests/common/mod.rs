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

/// True (with the demo's one-line reason printed) when the run exited 4: this kernel cannot
/// run the mode, and the caller skips it.
fn unsupported(args: &[&str], out: &Output) -> bool {
    let skip = out.status.code() == Some(i32::from(zcprof_demos::error::EXIT_UNSUPPORTED));
    if skip {
        eprintln!(
            "skipping {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    skip
}

/// As `run_ok`, but a mode this kernel cannot run (exit 4) is skipped: `None`, with the
/// demo's one-line reason printed.
pub fn run_supported(args: &[&str]) -> Option<Report> {
    let out = demo(args);
    if unsupported(args, &out) {
        return None;
    }
    assert!(
        out.status.success(),
        "zcprof-demo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(parse_report(&out.stdout))
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

/// One finished call as strace printed it: its name, its text (arguments and, for
/// recvmsg, the decoded message; an unfinished call's two halves joined) and its result.
#[derive(Clone, Debug)]
pub struct Call {
    pub name: String,
    pub text: String,
    pub ret: i64,
}

/// Per-pid calls in the order strace saw them finish.
pub type StraceCalls = HashMap<i32, Vec<Call>>;

/// The syscalls traced: the counted ones plus io_uring's own, which the io_uring modes make
/// instead (the demo tallies those in its `io_uring` section).
pub fn trace_filter() -> String {
    format!("trace={},io_uring_setup,io_uring_enter", strace_filter())
}

/// Runs the binary under `strace -f` limited to the traced syscalls; returns the
/// report and strace's calls, or `None` (with the reason printed) for a mode this kernel
/// cannot run.
pub fn run_under_strace(args: &[&str], trace_file: &Path) -> Option<(Report, StraceCalls)> {
    let filter = trace_filter();
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
    if unsupported(args, &out) {
        return None;
    }
    assert!(
        out.status.success(),
        "strace zcprof-demo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = parse_report(&out.stdout);
    let text = std::fs::read_to_string(trace_file).expect("read strace output");
    Some((report, parse_calls(&text)))
}

/// Parses `strace -f -o` lines such as
/// `123 read(3, ""..., 65536) = 65536`,
/// `123 write(4, ""..., 10 <unfinished ...>` / `123 <... write resumed>) = 10`,
/// `123 splice(3, NULL, 8, NULL, 65536, 0) = -1 EPIPE (Broken pipe)`.
/// An unfinished call is one call, when it resumes, with both halves as its text.
pub fn parse_calls(text: &str) -> StraceCalls {
    let mut calls = StraceCalls::new();
    let mut unfinished: HashMap<i32, String> = HashMap::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let pid: i32 = pid.parse().unwrap_or_else(|_| panic!("no pid in {line:?}"));
        let rest = rest.trim_start();
        if rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        if let Some(first) = rest.strip_suffix("<unfinished ...>") {
            unfinished.insert(pid, first.to_owned());
            continue;
        }
        let (name, text) = match rest.strip_prefix("<... ") {
            Some(resumed) => {
                let (name, tail) = resumed
                    .split_once(" resumed>")
                    .unwrap_or_else(|| panic!("bad resumed line {line:?}"));
                let head = unfinished.remove(&pid).unwrap_or_default();
                (name, format!("{head}{tail}"))
            }
            None => (
                rest.split_once('(')
                    .unwrap_or_else(|| panic!("bad call line {line:?}"))
                    .0,
                rest.to_owned(),
            ),
        };
        let (_, result) = text
            .rsplit_once(" = ")
            .unwrap_or_else(|| panic!("no result in {line:?}"));
        let ret: i64 = result
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("unparsable result in {line:?}"));
        calls.entry(pid).or_default().push(Call {
            name: name.to_owned(),
            text,
            ret,
        });
    }
    calls
}

/// Per-pid, per-syscall counters of `calls`, by the demo's rule.
pub fn tally(calls: &StraceCalls) -> StraceTally {
    calls
        .iter()
        .map(|(pid, calls)| {
            let mut map: BTreeMap<String, Counter> = BTreeMap::new();
            for c in calls {
                map.entry(c.name.clone()).or_default().record(c.ret);
            }
            (*pid, map)
        })
        .collect()
}

/// `tally(parse_calls(text))`.
pub fn parse_strace(text: &str) -> StraceTally {
    tally(&parse_calls(text))
}
