//! The stacks layer (`--stacks`) against programs whose copies are known: the demos (built
//! with frame pointers), a C program that exits right after copying (also stripped, and
//! deleted while it runs), and a Go program (Go keeps frame pointers; its runtime makes
//! the syscalls itself, without libc). Each call site's bytes are checked against the
//! program's own count, within the sampling error the report states (2 × period ×
//! √samples, at least a period), and its name against the function that makes the copy.
//! Then `zcprof flame` (SVG, folded, differential) and `zcprof diff` on two recordings.

mod common;

use std::{path::Path, process::Command};

use common::{privileged, temp, zcprof};
use serde_json::Value;

/// A period small enough for many samples of a few MiB, large enough to stay cheap.
const PERIOD: u64 = 256 << 10;

/// `zcprof --stacks --stack-period 256KiB run --json -o FILE -- argv`: the summary, and
/// what the command printed.
fn run(argv: &[&str]) -> (Value, String) {
    run_with(&[], argv)
}

/// As [`run`], with zcprof's `flags` too.
fn run_with(flags: &[&str], argv: &[&str]) -> (Value, String) {
    let global: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--stacks", "--stack-period", "256KiB"])
        .collect();
    let argv: Vec<&std::ffi::OsStr> = argv.iter().map(std::ffi::OsStr::new).collect();
    common::run_json(&global, &argv, &[])
}

/// The stacks of process `pid` of one syscall.
fn stacks_of<'a>(summary: &'a Value, pid: u64, syscall: &str) -> Vec<&'a Value> {
    summary["stacks"]["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .filter(|s| s["pid"] == pid && s["syscall"] == syscall)
        .collect()
}

/// Bytes and samples of the stacks whose call site names `function`.
fn at(stacks: &[&Value], function: &str) -> (u64, u64) {
    stacks
        .iter()
        .filter(|s| {
            s["call_site"]
                .as_str()
                .expect("a string")
                .contains(function)
        })
        .fold((0, 0), |(b, n), s| {
            (
                b + s["bytes"].as_u64().expect("a count"),
                n + s["samples"].as_u64().expect("a count"),
            )
        })
}

/// Whether an estimate of `samples` periods is within the stated error of `truth`.
fn within(estimate: u64, samples: u64, truth: u64) -> bool {
    let error = 2 * zcprof_recording::sampling_error(samples, PERIOD);
    estimate.abs_diff(truth) <= error
}

/// The pid and per-syscall bytes of the demo's worker, from its ground truth.
fn worker(truth: &str) -> (u64, Value) {
    let truth: Value = serde_json::from_str(truth.trim()).expect("demo ground truth");
    let role = &truth["roles"][0];
    (
        role["pid"].as_u64().expect("a count"),
        role["syscalls"].clone(),
    )
}

/// The demo's file copy of 8 MiB in `mode` under `run --stacks`: the summary, the worker's
/// pid and its own count per syscall.
fn file_copy(mode: &str) -> (Value, u64, Value) {
    let demo = common::demo_bin();
    let demo = demo.to_str().expect("a UTF-8 path");
    let (summary, truth) = run(&[
        demo,
        "run",
        "file-copy",
        "--mode",
        mode,
        "--bytes",
        "8M",
        "--compact",
    ]);
    let (pid, syscalls) = worker(&truth);
    (summary, pid, syscalls)
}

#[test]
fn a_copying_demo_is_named_at_its_copy_and_its_bytes_are_within_the_error() {
    if !privileged("a_copying_demo_is_named_at_its_copy_and_its_bytes_are_within_the_error") {
        return;
    }
    let (summary, pid, syscalls) = file_copy("read-write");
    let stacks = &summary["stacks"];
    assert_eq!(stacks["period_bytes"], PERIOD);
    assert_eq!(stacks["lost_samples"], 0, "{stacks}");
    for syscall in ["read", "write"] {
        let truth = syscalls[syscall]["bytes"].as_u64().expect("a count");
        let of = stacks_of(&summary, pid, syscall);
        let (bytes, samples) = at(&of, "pass_read_write");
        assert!(
            within(bytes, samples, truth),
            "{syscall}: {bytes} B in {samples} samples at pass_read_write, the demo moved {truth}: {of:#?}"
        );
        let top = of
            .iter()
            .max_by_key(|s| s["bytes"].as_u64())
            .expect("a stack");
        let site = top["call_site"].as_str().expect("a string");
        assert!(
            site.starts_with(&format!("{syscall}() in ")) && site.contains("pass_read_write"),
            "{site}"
        );
        assert_eq!(
            top["truncated"], false,
            "frame pointers make whole stacks: {top:#}"
        );
        assert_eq!(top["family"], "copy");
    }
}

/// `--kernel-stacks`: the file-serve demo's client receives its 8 MiB from TCP loopback,
/// which the kernel layer sees at `skb_copy_datagram_iter` (its tracepoint on the host,
/// fentry or a kprobe in the lab). Its kernel-layer stacks there must show the TCP receive
/// path above the client's own read, and their bytes must be within the sampling error of
/// the kernel layer's exact count for the client; the syscall layer's stacks must be as
/// without the flag (never mixed with the kernel layer's).
#[test]
fn kernel_stacks_show_the_kernel_path_of_a_copy_under_the_programs_call_site() {
    if !privileged("kernel_stacks_show_the_kernel_path_of_a_copy_under_the_programs_call_site") {
        return;
    }
    let demo = common::demo_bin();
    let demo = demo.to_str().expect("a UTF-8 path");
    let (summary, truth) = run_with(
        &["--kernel-stacks"],
        &[
            demo,
            "run",
            "file-serve",
            "--mode",
            "read-write",
            "--bytes",
            "8M",
            "--compact",
        ],
    );
    let truth: Value = serde_json::from_str(truth.trim()).expect("demo ground truth");
    let client = truth["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["role"] == "client")
        .expect("a client");
    let pid = client["pid"].as_u64().expect("a count");
    let process = summary["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("the client in the summary");
    let counted = process["kernel"]["probes"]["skb_copy_datagram_iter"]["bytes"]
        .as_u64()
        .expect("the kernel layer counts the client's receive");
    assert!(counted >= 8 << 20, "{process:#}");
    let kernel: Vec<&Value> = stacks_of(&summary, pid, "skb_copy_datagram_iter")
        .into_iter()
        .filter(|s| s["layer"] == "kernel")
        .collect();
    let (bytes, samples) = at(&kernel, "receive_verify");
    assert!(
        within(bytes, samples, counted),
        "{bytes} B in {samples} samples, the kernel layer counted {counted}: {kernel:#?}"
    );
    let top = kernel
        .iter()
        .max_by_key(|s| s["bytes"].as_u64())
        .expect("a kernel stack");
    let site = top["call_site"].as_str().expect("a string");
    assert!(
        site.starts_with("skb_copy_datagram_iter ← ") && site.contains(" (kernel) in "),
        "{site}"
    );
    let names: Vec<&str> = top["kernel_frames"]
        .as_array()
        .expect("kernel frames")
        .iter()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert!(
        names.contains(&"tcp_recvmsg") && names.iter().any(|n| n.contains("read")),
        "the TCP receive path under a read: {names:?}"
    );
    // The syscall layer's stacks of the same read are still there, without kernel frames.
    let syscall = stacks_of(&summary, pid, "read");
    assert!(!syscall.is_empty());
    assert!(
        syscall
            .iter()
            .all(|s| s["layer"] == "syscall" && s.get("kernel_frames").is_none()),
        "{syscall:#?}"
    );
}

#[test]
fn a_zero_copy_demo_has_no_copy_call_site_of_its_payload() {
    if !privileged("a_zero_copy_demo_has_no_copy_call_site_of_its_payload") {
        return;
    }
    let (summary, pid, syscalls) = file_copy("copy-file-range");
    let all: Vec<&Value> = summary["stacks"]["stacks"]
        .as_array()
        .expect("as the test set it up")
        .iter()
        .filter(|s| s["pid"] == pid)
        .collect();
    let copied: u64 = all
        .iter()
        .filter(|s| {
            s["family"] == "copy" && s["call_site"].as_str().expect("a string").contains("pass_")
        })
        .map(|s| s["bytes"].as_u64().expect("a count"))
        .sum();
    assert_eq!(copied, 0, "{all:#?}");
    let truth = syscalls["copy_file_range"]["bytes"]
        .as_u64()
        .expect("a count");
    let of = stacks_of(&summary, pid, "copy_file_range");
    let (bytes, samples) = at(&of, "pass_copy_file_range");
    assert!(within(bytes, samples, truth), "{bytes} vs {truth}: {of:#?}");
    assert!(of.iter().all(|s| s["family"] == "zero_copy"), "{of:#?}");
}

/// A C program that reads `MIB` MiB in `copy_then_leave` and exits at once; built with
/// frame pointers (and a GNU build ID, Debian's gcc default).
const C_PROGRAM: &str = r#"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
static char buf[1 << 20];
__attribute__((noinline)) static void copy_then_leave(int fd, int mib) {
    for (int i = 0; i < mib; i++)
        if (read(fd, buf, sizeof buf) != sizeof buf) _exit(1);
}
int main(int argc, char **argv) {
    int fd = open("/dev/zero", O_RDONLY);
    copy_then_leave(fd, atoi(argv[1]));
    if (argc > 2) { unlink(argv[0]); }
    _exit(0);
}
"#;

/// Compiles [`C_PROGRAM`] into `dir`, stripped when asked.
fn c_program(dir: &Path, strip: bool) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("as the test set it up");
    let src = dir.join("copier.c");
    std::fs::write(&src, C_PROGRAM).expect("as the test set it up");
    let bin = dir.join("copier");
    let mut cc = Command::new("gcc");
    cc.args(["-O1", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src);
    if strip {
        cc.arg("-s");
    }
    let status = cc
        .status()
        .expect("gcc runs (Debian's gcc: `cargo xtask setup`)");
    assert!(status.success(), "compiling the test program");
    bin
}

#[test]
fn a_process_that_exits_right_after_copying_is_still_symbolized() {
    if !privileged("a_process_that_exits_right_after_copying_is_still_symbolized") {
        return;
    }
    let dir = temp("stacks-c");
    let bin = c_program(&dir, false);
    for _ in 0..3 {
        let (summary, _) = run(&[bin.to_str().expect("a UTF-8 path"), "8"]);
        let pid = summary["processes"][0]["pid"].as_u64().expect("a count");
        let of = stacks_of(&summary, pid, "read");
        let (bytes, samples) = at(&of, "copy_then_leave (copier.c:");
        assert!(within(bytes, samples, 8 << 20), "{bytes} B: {of:#?}");
        // Every frame of the program's own is named (libc's local symbols are not, in a
        // libc without its symbol table).
        for s in &of {
            for f in s["frames"].as_array().expect("an array") {
                if f["module"].as_str().expect("a string").ends_with("/copier") {
                    assert!(f["function"].is_string(), "{f:#}");
                }
            }
        }
        assert_eq!(of[0]["truncated"], false, "{:#}", of[0]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_binary_deleted_while_it_runs_is_still_symbolized() {
    if !privileged("a_binary_deleted_while_it_runs_is_still_symbolized") {
        return;
    }
    let dir = temp("stacks-deleted");
    let bin = c_program(&dir, false);
    // The program unlinks itself after copying, before it exits.
    let (summary, _) = run(&[bin.to_str().expect("a UTF-8 path"), "4", "unlink"]);
    assert!(!bin.exists());
    let pid = summary["processes"][0]["pid"].as_u64().expect("a count");
    let of = stacks_of(&summary, pid, "read");
    let (bytes, samples) = at(&of, "copy_then_leave");
    assert!(within(bytes, samples, 4 << 20), "{bytes} B: {of:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stripped_binary_gives_module_and_offset_frames_counted_as_unresolved() {
    if !privileged("a_stripped_binary_gives_module_and_offset_frames_counted_as_unresolved") {
        return;
    }
    let dir = temp("stacks-stripped");
    let bin = c_program(&dir, true);
    let (summary, _) = run(&[bin.to_str().expect("a UTF-8 path"), "4"]);
    let pid = summary["processes"][0]["pid"].as_u64().expect("a count");
    let of = stacks_of(&summary, pid, "read");
    let bytes: u64 = of
        .iter()
        .map(|s| s["bytes"].as_u64().expect("a count"))
        .sum();
    let samples: u64 = of
        .iter()
        .map(|s| s["samples"].as_u64().expect("a count"))
        .sum();
    assert!(within(bytes, samples, 4 << 20), "{of:#?}");
    let frames = of[0]["frames"].as_array().expect("an array");
    let unnamed = frames
        .iter()
        .filter(|f| {
            f["function"].is_null() && f["module"].as_str().expect("a string").ends_with("copier")
        })
        .count();
    assert!(
        unnamed > 0,
        "the program's own frames have no names: {frames:#?}"
    );
    assert!(
        of[0]["call_site"]
            .as_str()
            .expect("a string")
            .contains("copier+0x"),
        "{:#}",
        of[0]
    );
    assert!(
        summary["stacks"]["unresolved_frames"]
            .as_u64()
            .expect("a count")
            >= unnamed as u64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Go program reading 8 MiB through `os.File.Read` in `main.copyChunks`.
const GO_PROGRAM: &str = r#"package main

import "os"

//go:noinline
func copyChunks(f *os.File, buf []byte, n int) {
	for i := 0; i < n; i++ {
		if _, err := f.Read(buf); err != nil {
			os.Exit(1)
		}
	}
}

func main() {
	f, err := os.Open("/dev/zero")
	if err != nil {
		os.Exit(1)
	}
	copyChunks(f, make([]byte, 1<<20), 8)
}
"#;

#[test]
fn a_go_program_is_named_at_its_own_function_past_the_runtime() {
    if !privileged("a_go_program_is_named_at_its_own_function_past_the_runtime") {
        return;
    }
    if common::in_lab() {
        // The lab's guest has no Go toolchain; the program is built on the host only.
        return;
    }
    let dir = temp("stacks-go");
    let bin = common::go_program(&dir, GO_PROGRAM, "gocopier");
    let (summary, _) = run(&[bin.to_str().expect("a UTF-8 path")]);
    let pid = summary["processes"][0]["pid"].as_u64().expect("a count");
    let of = stacks_of(&summary, pid, "read");
    let (bytes, samples) = at(&of, "read() in main.copyChunks (main.go:");
    assert!(within(bytes, samples, 8 << 20), "{bytes} B: {of:#?}");
    let top = of
        .iter()
        .max_by_key(|s| s["bytes"].as_u64())
        .expect("as the test set it up");
    let names: Vec<&str> = top["frames"]
        .as_array()
        .expect("as the test set it up")
        .iter()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert!(names.contains(&"os.(*File).Read"), "{names:?}");
    assert!(names.contains(&"main.main"), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fails unless `xml` is well-formed XML (tags balanced, names matching).
fn well_formed(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0i64;
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "every element is closed");
}

/// `zcprof --stacks record -o FILE -- argv`.
fn record(argv: &[&str], out: &Path) {
    let output = zcprof()
        .args(["--stacks", "--stack-period", "256KiB", "record", "-o"])
        .arg(out)
        .arg("--")
        .args(argv)
        .output()
        .expect("zcprof runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn flame_graphs_and_the_diff_name_the_call_sites_a_change_removed() {
    if !privileged("flame_graphs_and_the_diff_name_the_call_sites_a_change_removed") {
        return;
    }
    let demo = common::demo_bin();
    let demo = demo.to_str().expect("a UTF-8 path");
    let (before, after) = (temp("stacks-before"), temp("stacks-after"));
    record(
        &[
            demo,
            "run",
            "file-copy",
            "--mode",
            "read-write",
            "--bytes",
            "8M",
        ],
        &before,
    );
    record(
        &[
            demo,
            "run",
            "file-copy",
            "--mode",
            "copy-file-range",
            "--bytes",
            "8M",
        ],
        &after,
    );
    // The recording's stacks follow its schema and its parser reads them back.
    let text = std::fs::read(&before).expect("as the test set it up");
    let parsed = zcprof_recording::parse(&text).expect("the recording parses");
    let stacks = parsed.stacks.as_ref().expect("recorded with --stacks");
    assert!(!stacks.stacks.is_empty());

    let svg = temp("stacks-svg");
    let status = zcprof()
        .args(["flame"])
        .arg(&before)
        .arg("-o")
        .arg(&svg)
        .status()
        .expect("as the test set it up");
    assert!(status.success());
    let svg_text = std::fs::read_to_string(&svg).expect("as the test set it up");
    well_formed(&svg_text);
    assert!(
        svg_text.contains("pass_read_write"),
        "the copying function is in the graph"
    );

    let folded = temp("stacks-folded");
    let status = zcprof()
        .args(["flame", "--folded"])
        .arg(&before)
        .arg("-o")
        .arg(&folded)
        .status()
        .expect("as the test set it up");
    assert!(status.success());
    let folded_text = std::fs::read_to_string(&folded).expect("as the test set it up");
    let line = folded_text
        .lines()
        .find(|l| l.contains("pass_read_write") && l.contains(";read() "))
        .unwrap_or_else(|| panic!("{folded_text}"));
    assert!(line.starts_with("zcprof-demo;"), "{line}");

    let diff_svg = temp("stacks-diff-svg");
    let status = zcprof()
        .args(["flame", "--diff"])
        .arg(&before)
        .arg(&after)
        .arg("-o")
        .arg(&diff_svg)
        .status()
        .expect("as the test set it up");
    assert!(status.success());
    well_formed(&std::fs::read_to_string(&diff_svg).expect("as the test set it up"));

    let output = zcprof()
        .args(["diff", "--json"])
        .arg(&before)
        .arg(&after)
        .output()
        .expect("as the test set it up");
    let d: Value = serde_json::from_slice(&output.stdout).expect("diff JSON");
    let gone: Vec<&Value> = d["call_sites"]["changed"]
        .as_array()
        .expect("call sites compared")
        .iter()
        .filter(|c| c["bytes"]["status"] == "gone")
        .collect();
    assert!(
        gone.iter().any(|c| c["call_site"]
            .as_str()
            .expect("a string")
            .starts_with("read() in ")
            && c["call_site"]
                .as_str()
                .expect("a string")
                .contains("pass_read_write")),
        "{:#}",
        d["call_sites"]
    );
    let output = zcprof()
        .arg("diff")
        .arg(&before)
        .arg(&after)
        .output()
        .expect("as the test set it up");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("call sites (stacks layer"), "{text}");
    for f in [before, after, svg, folded, diff_svg] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    common::fails(
        &["--stacks", "--stack-period", "0", "top"],
        2,
        "--stack-period",
    );
    common::fails(
        &["--stacks", "--stack-period", "100", "top"],
        2,
        "512B to 1GiB",
    );
    common::fails(
        &["--stacks", "--stack-period", "2G", "top"],
        2,
        "512B to 1GiB",
    );
    common::fails(&["--stack-period", "12parsecs", "top"], 2, "12parsecs");
    // A recording made without --stacks.
    let plain = temp("stacks-plain");
    std::fs::write(
        &plain,
        include_str!("../../fuzz/seeds/recording_parser/file-copy-read-write.json"),
    )
    .expect("as the test set it up");
    let out = temp("stacks-plain-svg");
    let (p, o) = (
        plain.to_str().expect("a UTF-8 path"),
        out.to_str().expect("a UTF-8 path"),
    );
    common::fails(&["flame", p, "-o", o], 2, "has no stacks: record it with");
    common::fails(&["flame", "--diff", p, "-o", o], 2, "BEFORE and AFTER");
    common::fails(
        &["flame", "/nonexistent/rec.json", "-o", o],
        2,
        "no such file",
    );
    assert!(!out.exists());
    let _ = std::fs::remove_file(plain);
}
