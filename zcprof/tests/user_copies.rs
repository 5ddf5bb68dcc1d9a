//! The user layer (`--user-copies`) against programs whose copies are known exactly: a C
//! program calling memcpy/memmove/mempcpy with sizes that take the IFUNC implementation's
//! different paths (16 B, 4 KiB, 1 MiB), the `in-process` demo (every `copy_counted` byte
//! is one libc memcpy), a Go program copying with `copy()` or re-slicing, and a static
//! binary without symbols (reported, not fatal). The C and Go programs are built here with
//! Debian's gcc and golang-go: host only (the lab's guest has neither).

mod common;

use std::{path::Path, process::Command};

use common::{demo_bin, in_lab, privileged, temp, zcprof};
use serde_json::Value;

/// `zcprof --user-copies run --json -- ARGV`, validated against its schema: the summary and
/// the command's stdout.
fn run(argv: &[&str]) -> (Value, String) {
    let argv: Vec<&std::ffi::OsStr> = argv.iter().map(std::ffi::OsStr::new).collect();
    common::run_json(&["--user-copies"], &argv, &[])
}

/// The user layer's object of process `pid`.
fn user_of(summary: &Value, pid: u64) -> &Value {
    let p = summary["processes"]
        .as_array()
        .expect("an array")
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("no process {pid} in {summary:#}"));
    &p["user"]
}

/// `(calls, bytes)` of the routines named in `names` (memcpy and memmove are one probe
/// where glibc resolves both to one implementation).
fn routines(user: &Value, names: &[&str]) -> (u64, u64) {
    let probes = user["probes"].as_object().expect("an object");
    names
        .iter()
        .filter_map(|n| probes.get(*n))
        .fold((0, 0), |(c, b), e| {
            (
                c + e["calls"].as_u64().expect("a count"),
                b + e["bytes"].as_u64().expect("a count"),
            )
        })
}

/// Calls in the log2 bucket whose low bound is `low`, over the routines in `names`.
fn bucket(user: &Value, names: &[&str], low: u64) -> u64 {
    let probes = user["probes"].as_object().expect("an object");
    names
        .iter()
        .filter_map(|n| probes.get(*n))
        .flat_map(|e| e["hist"].as_array().expect("an array").iter())
        .filter(|h| h["low"] == low)
        .map(|h| h["count"].as_u64().expect("a count"))
        .sum()
}

const MEMCPY: &[&str] = &["memcpy/memmove", "memcpy", "memmove"];

/// Copies with known sizes through calls the compiler cannot inline (volatile function
/// pointers): 100 × 16 B, 10 × 4 KiB, 3 × 1 MiB memcpy, 7 × 4 KiB memmove, 5 × 3000 B
/// mempcpy; with an argument, it waits 300 ms first (so that zcprof reads its mappings).
const C_PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *(*volatile cpy)(void *, const void *, size_t) = memcpy;
static void *(*volatile mov)(void *, const void *, size_t) = memmove;
static void *(*volatile pcpy)(void *, const void *, size_t) = mempcpy;
int main(int argc, char **argv) {
    size_t big = 1 << 20;
    char *a = malloc(big), *b = malloc(big);
    if (argc > 1) usleep(300000);
    memset(a, 1, big);
    for (int i = 0; i < 100; i++) cpy(b, a, 16);
    for (int i = 0; i < 10; i++) cpy(b, a, 4096);
    for (int i = 0; i < 3; i++) cpy(b, a, big);
    for (int i = 0; i < 7; i++) mov(b + 1, b, 4096);
    for (int i = 0; i < 5; i++) pcpy(b, a, 3000);
    return b[5] == 1 ? 0 : 1;
}
"#;

fn c_program(dir: &Path, flags: &[&str]) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("as the test set it up");
    let src = dir.join("copies.c");
    std::fs::write(&src, C_PROGRAM).expect("as the test set it up");
    let bin = dir.join("copies");
    let status = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .args(flags)
        .status()
        .expect("gcc runs (Debian's gcc: `cargo xtask setup`)");
    assert!(status.success(), "compiling the test program");
    bin
}

#[test]
fn a_c_programs_memcpy_memmove_and_mempcpy_are_counted_exactly() {
    if !privileged("a_c_programs_memcpy_memmove_and_mempcpy_are_counted_exactly") || in_lab() {
        return;
    }
    let dir = temp("user-c");
    let bin = c_program(&dir, &[]);
    let (summary, _) = run(&[bin.to_str().expect("a UTF-8 path")]);
    let pid = summary["processes"][0]["pid"].as_u64().expect("a count");
    let user = user_of(&summary, pid);
    let copies = 100 * 16 + 10 * 4096 + 3 * (1 << 20) + 7 * 4096;
    assert_eq!(routines(user, MEMCPY), (120, copies), "{user:#}");
    assert_eq!(routines(user, &["mempcpy"]), (5, 5 * 3000), "{user:#}");
    assert_eq!(bucket(user, MEMCPY, 16), 100, "{user:#}");
    assert_eq!(bucket(user, MEMCPY, 4096), 17, "{user:#}");
    assert_eq!(bucket(user, MEMCPY, 1 << 20), 3, "{user:#}");
    assert_eq!(user["bytes"], copies + 5 * 3000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `zcprof-demo in-process` under the user layer: `(summary, worker pid, demo report)`.
fn in_process(mode: &str, bytes: &str) -> (Value, u64, Value) {
    let demo = demo_bin();
    let (summary, stdout) = run(&[
        demo.to_str().expect("a UTF-8 path"),
        "run",
        "in-process",
        "--mode",
        mode,
        "--bytes",
        bytes,
        "--compact",
    ]);
    let report: Value = serde_json::from_str(stdout.trim()).expect("the demo's JSON report");
    let worker = report["roles"][0]["pid"]
        .as_u64()
        .expect("the worker's pid");
    (summary, worker, report)
}

#[test]
fn in_process_copy_mode_counts_every_copy_counted_byte() {
    if !privileged("in_process_copy_mode_counts_every_copy_counted_byte") {
        return;
    }
    let (summary, worker, report) = in_process("copy", "4M");
    let role = &report["roles"][0];
    let payload = role["payload_bytes"].as_u64().expect("a count");
    let chunk = report["chunk_bytes"].as_u64().expect("a count");
    assert_eq!(
        chunk,
        64 << 10,
        "the default chunk, whose log2 bucket is 64-128 KiB"
    );
    let packets = payload / chunk;
    // The ground truth: a 24-byte header and four payloads per packet.
    let truth = role["user_copy_bytes"].as_u64().expect("a count");
    assert_eq!(truth, packets * (24 + 4 * chunk));
    let user = user_of(&summary, worker);
    // Every counted copy is one memcpy of its exact size: the headers are the only 16-31 B
    // copies of the worker and the payloads its only 64-128 KiB ones (its other memcpy
    // calls, allocation and formatting, are of other sizes).
    assert_eq!(bucket(user, MEMCPY, 16), packets, "{user:#}");
    assert_eq!(bucket(user, MEMCPY, 64 << 10), 4 * packets, "{user:#}");
    // Bytes: the counted ones plus the rest, each of those below 64 KiB and not in 16-31.
    let (calls, bytes) = routines(user, MEMCPY);
    let rest_calls = calls - 5 * packets;
    let rest_bytes = bytes
        .checked_sub(truth)
        .unwrap_or_else(|| panic!("{bytes} B counted, fewer than the demo's {truth}: {user:#}"));
    assert!(
        rest_bytes < rest_calls * (64 << 10),
        "{rest_bytes} B in {rest_calls} other calls: {user:#}"
    );
}

#[test]
fn in_process_slice_mode_makes_no_copies_of_its_sizes() {
    if !privileged("in_process_slice_mode_makes_no_copies_of_its_sizes") {
        return;
    }
    let (summary, worker, report) = in_process("slice", "4M");
    assert_eq!(report["roles"][0]["user_copy_bytes"], 0);
    let user = user_of(&summary, worker);
    assert_eq!(bucket(user, MEMCPY, 16), 0, "{user:#}");
    assert_eq!(bucket(user, MEMCPY, 64 << 10), 0, "{user:#}");
    let (_, bytes) = routines(user, MEMCPY);
    assert!(bytes < 64 << 10, "{bytes} B: {user:#}");
}

/// Copies 1 MiB eight times with `copy()`, or takes eight re-slices of it (`slice`).
const GO_PROGRAM: &str = r#"package main

import "os"

var sink []byte

//go:noinline
func work(mode string, src, dst []byte) {
	for i := 0; i < 8; i++ {
		if mode == "copy" {
			copy(dst, src)
			sink = dst
		} else {
			sink = src[i : len(src)-i]
		}
	}
}

func main() {
	src := make([]byte, 1<<20)
	dst := make([]byte, 1<<20)
	work(os.Args[1], src, dst)
}
"#;

#[test]
fn a_go_programs_copy_is_counted_and_its_slicing_is_not() {
    if !privileged("a_go_programs_copy_is_counted_and_its_slicing_is_not") || in_lab() {
        return;
    }
    let dir = temp("user-go");
    let bin = common::go_program(&dir, GO_PROGRAM, "gocopies");
    let bin = bin.to_str().expect("a UTF-8 path");
    for (mode, copies) in [("copy", 8), ("slice", 0)] {
        let (summary, _) = run(&[bin, mode]);
        let pid = summary["processes"][0]["pid"].as_u64().expect("a count");
        let user = user_of(&summary, pid);
        let go = &["runtime.memmove"];
        assert_eq!(bucket(user, go, 1 << 20), copies, "{mode}: {user:#}");
        let (_, bytes) = routines(user, go);
        assert!(bytes >= copies << 20, "{mode}: {user:#}");
        assert!(bytes < (copies << 20) + (1 << 20), "{mode}: {user:#}");
        // Checked at its spawn, unless it was gone by then (it runs for a millisecond).
        let coverage = &summary["user_copies"]["processes"][0];
        if coverage["unchecked"].is_null() {
            assert_eq!(coverage["counted"][0], "runtime.memmove", "{coverage:#}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_static_binary_without_symbols_is_reported_not_fatal() {
    if !privileged("a_static_binary_without_symbols_is_reported_not_fatal") || in_lab() {
        return;
    }
    let dir = temp("user-static");
    let bin = c_program(&dir, &["-static", "-s"]);
    // It waits before copying, so its mappings are read while it runs.
    let (summary, _) = run(&[bin.to_str().expect("a UTF-8 path"), "wait"]);
    let pid = summary["processes"][0]["pid"].as_u64().expect("a count");
    let coverage = summary["user_copies"]["processes"]
        .as_array()
        .expect("an array")
        .iter()
        .find(|c| c["pid"] == pid)
        .unwrap_or_else(|| panic!("process {pid} not checked: {summary:#}"));
    let why = coverage["not_counted"].as_str().expect("a reason");
    assert!(why.contains("static binary"), "{why}");
    assert_eq!(user_of(&summary, pid)["bytes"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_layer_is_off_by_default_and_doctor_says_so() {
    if !privileged("the_layer_is_off_by_default_and_doctor_says_so") {
        return;
    }
    let out = zcprof().arg("doctor").output().expect("zcprof runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "user copies off by default (--user-copies turns it on): would attach uprobes"
        ),
        "{text}"
    );
    assert!(text.contains("libc"), "{text}");
    assert!(
        !text.contains("\nuser   "),
        "no user-layer probe attached: {text}"
    );
}
