//! The `zcprof` binary as a user runs it: `run` against strace's ground truth, process
//! trees, exit statuses, signals, `top` output, and one-line errors for bad input.

mod common;

use std::{
    process::{Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use common::{fails, has_child_named, privileged, temp, zcprof};
use serde_json::Value;

/// Runs `zcprof run --json -o FILE -- cmd…` and returns its exit status and summary.
fn run_json(cmd: &[&str]) -> (Output, Value) {
    let out_file = temp(&format!("run-{}", cmd[0].replace('/', "_")));
    let output = zcprof()
        .args(["run", "--json", "-o"])
        .arg(&out_file)
        .arg("--")
        .args(cmd)
        .output()
        .expect("zcprof runs");
    let text = std::fs::read_to_string(&out_file).unwrap_or_else(|err| {
        panic!(
            "no summary ({err}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let _ = std::fs::remove_file(&out_file);
    (
        output,
        serde_json::from_str(&text).expect("summary is JSON"),
    )
}

fn syscall(process: &Value, name: &str) -> (u64, u64) {
    let s = &process["syscall"]["syscalls"][name];
    (
        s["calls"].as_u64().unwrap_or(0),
        s["bytes"].as_u64().unwrap_or(0),
    )
}

/// Sums of `read` and `write` return values per strace, for the same command.
fn strace_read_write(cmd: &[&str]) -> ((u64, u64), (u64, u64)) {
    let trace = temp("strace");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=read,write", "-o"])
        .arg(&trace)
        .args(cmd)
        .status()
        .expect("strace is installed (cargo xtask setup installs it)");
    assert!(status.success());
    let text = std::fs::read_to_string(&trace).expect("trace");
    let _ = std::fs::remove_file(&trace);
    let (mut read, mut write) = ((0, 0), (0, 0));
    for line in text.lines() {
        let Some((call, ret)) = line.rsplit_once(" = ") else {
            continue;
        };
        let Ok(ret) = ret.split_whitespace().next().unwrap_or("").parse::<i64>() else {
            continue;
        };
        let slot = if call.contains(" read(") {
            &mut read
        } else if call.contains(" write(") {
            &mut write
        } else {
            continue;
        };
        slot.0 += 1;
        slot.1 += ret.max(0) as u64;
    }
    (read, write)
}

/// The acceptance check: dd's totals equal strace's, and the writes are exactly
/// 65,536,000 bytes.
#[test]
fn dd_matches_strace() {
    if !privileged("dd_matches_strace") {
        return;
    }
    let cmd = [
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64k",
        "count=1000",
        "status=none",
    ];
    let (output, summary) = run_json(&cmd);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let processes = summary["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 1, "dd forks nothing");
    let dd = &processes[0];
    assert_eq!(dd["comm"], "dd");
    let (read, write) = strace_read_write(&cmd);
    assert_eq!(syscall(dd, "write"), (1000, 65_536_000));
    assert_eq!(syscall(dd, "write"), write, "writes: zcprof vs strace");
    assert_eq!(
        syscall(dd, "read"),
        read,
        "reads: zcprof vs strace (the loader's included)"
    );
    assert_eq!(summary["lost"]["total"], 0);
    // Every lost-event counter is in the object, the stash maps' too.
    for kind in [
        "ringbuf_full",
        "stats_map_full",
        "mmsg_unreadable",
        "mmsg_no_enter",
        "stash_full",
        "malformed_records",
    ] {
        assert_eq!(summary["lost"][kind], 0, "{kind}");
    }
    assert_eq!(summary["layers"][0]["layer"], "syscall");
    assert_eq!(summary["layers"][0]["state"], "live");
    assert_eq!(
        summary["total"]["syscall"]["totals"]["copy_u2k_bytes"],
        65_536_000
    );
}

/// Children and grandchildren are followed; each keeps its own totals.
#[test]
fn run_follows_descendants() {
    if !privileged("run_follows_descendants") {
        return;
    }
    let script = "dd if=/dev/zero of=/dev/null bs=1k count=10 status=none; \
                  (dd if=/dev/zero of=/dev/null bs=1k count=20 status=none) && true";
    let (output, summary) = run_json(&["sh", "-c", script]);
    assert!(output.status.success());
    let processes = summary["processes"].as_array().expect("processes");
    let mut dd_writes: Vec<(u64, u64)> = processes
        .iter()
        .filter(|p| p["comm"] == "dd")
        .map(|p| syscall(p, "write"))
        .collect();
    dd_writes.sort();
    assert_eq!(dd_writes, vec![(10, 10_240), (20, 20_480)], "{summary:#}");
    let total = &summary["total"]["syscall"]["syscalls"]["write"];
    let all: u64 = processes.iter().map(|p| syscall(p, "write").1).sum();
    assert_eq!(
        total["bytes"].as_u64(),
        Some(all),
        "the total is the sum of the tree"
    );
}

#[test]
fn run_exits_with_the_commands_status() {
    if !privileged("run_exits_with_the_commands_status") {
        return;
    }
    let (output, summary) = run_json(&["sh", "-c", "exit 3"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(summary["exit_code"], 3);
    let (output, summary) = run_json(&["sh", "-c", "kill -9 $$"]);
    assert_eq!(output.status.code(), Some(137));
    assert_eq!(summary["signal"], 9);
    // The text summary names the command shell-quoted, as a shell would read it back.
    let text = zcprof()
        .args(["run", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .expect("zcprof run");
    assert_eq!(text.status.code(), Some(143));
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.contains("zcprof run: `sh -c 'kill -TERM $$'` was killed by signal 15"),
        "{stderr}"
    );
}

/// Ctrl-C reaches zcprof and the command; the summary is still written, marked interrupted.
#[test]
fn interrupted_run_still_writes_its_summary() {
    if !privileged("interrupted_run_still_writes_its_summary") {
        return;
    }
    let out_file = temp("interrupted");
    let mut child = zcprof()
        .args(["run", "--json", "-o"])
        .arg(&out_file)
        .args([
            "--",
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=1k count=5 status=none; exec sleep 30",
        ])
        .spawn()
        .expect("zcprof runs");
    // Wait until the probes are attached and the command runs (its sleep exists). A bound,
    // not a pause: in the lab two TCG guests now share the host's cores (and builds may run
    // beside them), and 20 s was already known to be tight there under load.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has_child_named(child.id(), "sleep") {
        assert!(Instant::now() < deadline, "the command never started");
        sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on the child this test spawned; no memory is involved.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().expect("zcprof exits");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("summary written"))
            .expect("JSON");
    let _ = std::fs::remove_file(&out_file);
    assert_eq!(summary["interrupted"], true);
    // zcprof forwarded SIGINT to the shell-turned-sleep, which died of it.
    assert_eq!(status.code(), Some(130));
    let processes = summary["processes"].as_array().expect("processes");
    let dd = processes
        .iter()
        .find(|p| p["comm"] == "dd")
        .expect("dd was seen");
    assert_eq!(syscall(dd, "write"), (5, 5120));
}

/// `top --once --json` prints one frame in which a busy process shows its copy rates.
#[test]
fn top_json_shows_a_busy_process() {
    if !privileged("top_json_shows_a_busy_process") {
        return;
    }
    let mut busy = Command::new("dd")
        .args([
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4k",
            "count=50000000",
            "status=none",
        ])
        .spawn()
        .expect("dd");
    let output = zcprof()
        .args(["top", "--once", "--json", "--interval", "300ms", "--pid"])
        .arg(busy.id().to_string())
        .output()
        .expect("zcprof top");
    let _ = busy.kill();
    let _ = busy.wait();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object per interval");
    let frame: Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(frame["schema"], "zcprof.top/v1");
    let errors: Vec<String> = common::top_schema()
        .iter_errors(&frame)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "schema/top.v1.json: {errors:?}\n{frame:#}"
    );
    // The schema has teeth: a wrong copy source and a missing layer object are rejected.
    let mut bad = frame.clone();
    bad["machine"]["kernel"]["copy_source"] = "breakdown".into();
    assert!(!common::top_schema().is_valid(&bad));
    let mut bad = frame.clone();
    bad["machine"]
        .as_object_mut()
        .expect("machine")
        .remove("kernel");
    assert!(!common::top_schema().is_valid(&bad));
    let processes = frame["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 1, "--pid filters: {frame:#}");
    let dd = &processes[0];
    assert_eq!(dd["comm"], "dd");
    assert!(
        dd["syscall"]["copy_k2u_bytes_per_s"]
            .as_f64()
            .unwrap_or(0.0)
            > 1e6
    );
    assert!(
        dd["syscall"]["copy_u2k_bytes_per_s"]
            .as_f64()
            .unwrap_or(0.0)
            > 1e6
    );
    assert_eq!(dd["syscall"]["zero_copy_ratio"], 0.0);
}

/// SIGTERM stops `top` cleanly, after printing the interval it cut short.
#[test]
fn top_stops_on_sigterm_with_a_partial_frame() {
    if !privileged("top_stops_on_sigterm_with_a_partial_frame") {
        return;
    }
    let child = zcprof()
        .args(["top", "--json", "--interval", "10s"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("zcprof top");
    sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the child this test spawned; no memory is involved.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().expect("exits");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let frame: Value = serde_json::from_str(stdout.trim()).expect("one JSON frame");
    assert_eq!(frame["partial"], true);
}

/// Without tracefs (gone, and not mountable without CAP_SYS_ADMIN) `run` still counts the
/// command through the syscall layer and says what it cannot see: the lifecycle layer is
/// unavailable, so short-lived children are missed.
#[test]
fn run_without_tracefs_says_what_it_misses() {
    if !privileged("run_without_tracefs_says_what_it_misses") {
        return;
    }
    let mut run = zcprof();
    run.args([
        "run",
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4k",
        "count=10",
        "status=none",
    ]);
    // SAFETY: only raw syscalls run between fork and exec.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut run, common::hide_tracefs) };
    let out = run.output().expect("zcprof runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("tracefs is unavailable"), "{stderr}");
    // The summary goes to stderr: stdout is the command's.
    assert!(
        stderr.contains(
            // task_newtask, sched_process_exec and one sched_process_exit per counting layer
            // (syscall, kernel, io_uring and mapped totals): too many to list on one line.
            "lifecycle layer: unavailable (6 probes unavailable: see `zcprof doctor`)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("no fork records (task_newtask unavailable)"),
        "{stderr}"
    );
    assert!(stderr.contains("no exit records"), "{stderr}");
    // dd itself is the command's own process, so its bytes are still exact.
    // The summary goes to stderr: stdout is the command's.
    assert!(
        stderr.contains("40,960"),
        "dd's 10 × 4 KiB writes: {stdout}"
    );
}

#[test]
fn bad_input_gets_one_line_and_a_nonzero_exit() {
    fails(&["top", "--interval", "0"], 2, "at least 10ms");
    fails(&["top", "--interval", "soon"], 2, "not a duration");
    fails(&["top", "--limit", "-3"], 2, "-3");
    fails(&["frobnicate"], 2, "frobnicate");
    fails(&["run"], 2, "CMD");
    fails(
        &["run", "--", "definitely-not-a-command-zcprof"],
        127,
        "command not found",
    );
    if privileged("bad_input_gets_one_line_and_a_nonzero_exit") {
        fails(
            &["top", "--pid", "999999999"],
            1,
            "no process with pid 999999999",
        );
        fails(
            &["--btf", "/nonexistent/vmlinux", "top", "--once"],
            1,
            "BTF file /nonexistent/vmlinux does not exist",
        );
        let corrupt = temp("corrupt-btf");
        std::fs::write(&corrupt, b"not btf at all").expect("write");
        let corrupt_arg = corrupt.to_string_lossy().into_owned();
        fails(
            &["--btf", &corrupt_arg, "top", "--once"],
            1,
            "is not valid BTF",
        );
        let _ = std::fs::remove_file(&corrupt);
        fails(
            &["run", "-o", "/nonexistent-dir/out.json", "--", "true"],
            1,
            "does not exist",
        );
    }
}

/// Without privileges zcprof says so in one sentence, before touching anything.
#[test]
fn unprivileged_users_are_told_to_use_sudo() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        fails(&["top", "--once"], 1, "sudo");
        return;
    }
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_zcprof"))
        .args(["top", "--once"])
        .output()
        .expect("setpriv (util-linux) runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("run it with sudo"), "{stderr}");
}

/// Output cut short by a closed pipe (`zcprof … | head`) ends quietly, without a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let mut child = zcprof()
        .args(["demo", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zcprof runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--version` names the commit zcprof was built from, so a bug report or a recording's
/// reader knows which code made the numbers.
#[test]
fn version_names_the_commit() {
    let out = zcprof().arg("--version").output().expect("zcprof runs");
    assert!(out.status.success());
    let built = env!("ZCPROF_COMMIT");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("zcprof {} (commit {built})\n", env!("CARGO_PKG_VERSION"))
    );
    // Where the sources are a git checkout (not in the kernel lab's guest), it is HEAD's.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    match head {
        Some(head) => assert_eq!(built, String::from_utf8_lossy(&head.stdout).trim()),
        None => eprintln!("no git checkout here: built from {built}"),
    }
}
