//! Issue 18: zcprof is safe to run as root. Output paths that cannot be turned against the
//! machine (device nodes, FIFOs and links in a private mount namespace, links planted by a
//! real unprivileged user), every output-path check done before the workload runs, bounded
//! `diff` input, write errors on stdout/stderr as one line instead of a panic, no process
//! left behind (demo workers on SIGINT/SIGTERM, commands when zcprof is SIGKILLed), `serve`
//! answering with its descriptors exhausted, and `--pid`/`--comm` edge cases.

mod common;

use std::{
    ffi::CString,
    io::{BufRead as _, BufReader},
    os::unix::{ffi::OsStrExt as _, fs::PermissionsExt as _, process::ExitStatusExt as _},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use common::{Reaped, demo_bin, free_port, http_get, privileged, temp, zcprof};

/// stderr without zcprof's probe warnings (which depend on the kernel).
fn complaints(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.starts_with("zcprof: warning:"))
        .map(str::to_string)
        .collect()
}

/// Asserts `output` failed with `code` and one line (besides warnings) containing `needle`.
fn one_line_failure(what: &str, output: &Output, code: i32, needle: &str) {
    let lines = complaints(output);
    assert_eq!(output.status.code(), Some(code), "{what}: {lines:?}");
    assert_eq!(lines.len(), 1, "{what}: one line, got {lines:?}");
    assert!(lines[0].starts_with("zcprof: "), "{what}: {lines:?}");
    assert!(
        lines[0].contains(needle),
        "{what}: `{needle}` not in {lines:?}"
    );
}

/// Runs `cmd` (stdout discarded, stderr kept) and returns how it ended, killing it after
/// `limit`: a zcprof that waits forever (for input, or for a Ctrl-C that never comes) fails
/// the test instead of hanging it.
fn within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zcprof runs");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end within {limit:?}");
        }
        sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A fresh directory, removed (with whatever is in it) on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = temp(tag);
        std::fs::create_dir_all(&dir).expect("mkdir");
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `script` with `sh` in a private mount namespace (what it mounts is seen by it and
/// its children only), with `$ZCPROF` and `$WORK` set; returns its stdout as
/// `key value` pairs.
fn in_private_mounts(script: &str, work: &Path) -> Vec<(String, String)> {
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("ZCPROF", env!("CARGO_BIN_EXE_zcprof"))
        .env("WORK", work)
        .stderr(Stdio::inherit())
        .output()
        .expect("unshare (util-linux) runs");
    assert!(
        output.status.success(),
        "the namespace script failed: {:?}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no `{key}` in {pairs:?}"))
}

/// `record -o /dev/null` and `/dev/full` must not turn the device nodes into files, nor
/// `run -o /dev/stdout` replace the link (the summary reaches stdout), nor a FIFO become a
/// file. The nodes are real, on a tmpfs mounted over /dev in a private mount namespace, so
/// a zcprof that replaced them would not damage the machine's own.
#[test]
fn outputs_that_are_not_regular_files_are_written_in_place() {
    if !privileged("outputs_that_are_not_regular_files_are_written_in_place") {
        return;
    }
    let work = Scratch::new("devices");
    let script = r#"
        set -u
        mount -t tmpfs -o mode=755 zcprof-test-dev /dev || exit 99
        mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/full c 1 7 || exit 99
        ln -s /proc/self/fd/1 /dev/stdout && ln -s /proc/self/fd/2 /dev/stderr || exit 99
        "$ZCPROF" record -o /dev/null -- true 2>"$WORK/null.err"; echo "null-status $?"
        echo "null-kind $(stat -c %F /dev/null)"
        "$ZCPROF" record -o /dev/full -- true 2>"$WORK/full.err"; echo "full-status $?"
        echo "full-kind $(stat -c %F /dev/full)"
        "$ZCPROF" run -o /dev/stdout -- true >"$WORK/stdout.txt" 2>/dev/null; echo "stdout-status $?"
        echo "stdout-kind $(stat -c %F /dev/stdout)"
        mkfifo "$WORK/fifo"
        cat "$WORK/fifo" >"$WORK/fifo.out" &
        reader=$!
        "$ZCPROF" record -o "$WORK/fifo" -- true 2>/dev/null; echo "fifo-status $?"
        # A zcprof that replaced the FIFO never opened it: its reader would wait forever.
        ( sleep 10; kill $reader 2>/dev/null ) >/dev/null 2>&1 &
        killer=$!
        wait $reader
        kill $killer 2>/dev/null
        echo "fifo-kind $(stat -c %F "$WORK/fifo")"
    "#;
    let r = in_private_mounts(script, &work.0);
    assert_eq!(value(&r, "null-status"), "0", "{r:?}");
    assert_eq!(value(&r, "null-kind"), "character special file", "{r:?}");
    // /dev/full takes nothing: one line, status 1, and it is still the device.
    assert_eq!(value(&r, "full-status"), "1", "{r:?}");
    let full_err = std::fs::read_to_string(work.join("full.err")).expect("stderr");
    let lines: Vec<&str> = full_err
        .lines()
        .filter(|l| !l.starts_with("zcprof: warning:"))
        .collect();
    assert_eq!(lines.len(), 1, "{full_err}");
    assert!(lines[0].contains("No space left on device"), "{full_err}");
    assert_eq!(value(&r, "full-kind"), "character special file", "{r:?}");
    assert_eq!(value(&r, "stdout-status"), "0", "{r:?}");
    assert_eq!(value(&r, "stdout-kind"), "symbolic link", "{r:?}");
    let summary = std::fs::read_to_string(work.join("stdout.txt")).expect("stdout");
    assert!(
        summary.starts_with("zcprof run: `true` exited with status 0"),
        "the summary went through the descriptor: {summary:?}"
    );
    assert_eq!(value(&r, "fifo-status"), "0", "{r:?}");
    assert_eq!(value(&r, "fifo-kind"), "fifo", "{r:?}");
    let through_fifo = std::fs::read(work.join("fifo.out")).expect("fifo reader");
    zcprof_recording::parse(&through_fifo).expect("a recording came through the FIFO");
}

/// A real unprivileged user plants links where root's `record -o` writes, in a sticky
/// world-writable directory like /tmp: at the temporary names today's pre-check used
/// (`.out.json.zcprof-tmp.PID` for the next 3000 pids) and at the output path itself.
/// The root-owned victim they point to must stay intact, and a link at the output path is
/// refused before the workload runs.
#[test]
fn planted_links_are_never_followed() {
    if !privileged("planted_links_are_never_followed") {
        return;
    }
    let dir = Scratch::new("planted");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .expect("ns_last_pid")
        .trim()
        .parse()
        .expect("a pid");
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("path");
    let mut plants: Vec<CString> = (last + 1..last + 3001)
        .map(|pid| cstr(&dir.join(&format!(".out.json.zcprof-tmp.{pid}"))))
        .collect();
    plants.push(cstr(&dir.join("planted.json")));
    let target = cstr(&victim);
    // SAFETY: the child makes raw syscalls only (the strings are prepared) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: as above; 65534 is `nobody`.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                libc::_exit(2);
            }
            for plant in &plants {
                if libc::symlink(target.as_ptr(), plant.as_ptr()) != 0 {
                    libc::_exit(3);
                }
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "nobody planted the links: {status}"
    );
    let owner = |p: &Path| {
        std::os::unix::fs::MetadataExt::uid(&std::fs::symlink_metadata(p).expect("lstat"))
    };
    assert_eq!(owner(&dir.join("planted.json")), 65534);

    let out = dir.join("out.json");
    let output = zcprof()
        .args(["record", "-o"])
        .arg(&out)
        .args(["--", "true"])
        .output()
        .expect("zcprof runs");
    assert!(output.status.success(), "{:?}", complaints(&output));
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    zcprof_recording::parse(&std::fs::read(&out).expect("written")).expect("a recording");

    let mark = dir.join("mark");
    let output = zcprof()
        .args(["record", "-o"])
        .arg(dir.join("planted.json"))
        .args(["--", "touch"])
        .arg(&mark)
        .output()
        .expect("zcprof runs");
    one_line_failure(
        "a planted link",
        &output,
        1,
        "symbolic link owned by uid 65534",
    );
    assert!(
        !mark.exists(),
        "the workload ran before the path was refused"
    );
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    assert!(
        std::fs::symlink_metadata(dir.join("planted.json"))
            .expect("lstat")
            .is_symlink()
    );
}

/// `record -o` a directory, `dir/`, a path under a file (ENOTDIR), an immutable file, a
/// full file system, one without free inodes and a read-only one: each refused in one line
/// before the probes load, so the workload (which would leave a mark) never runs.
#[test]
fn output_paths_are_checked_before_the_workload_runs() {
    if !privileged("output_paths_are_checked_before_the_workload_runs") {
        return;
    }
    let work = Scratch::new("paths");
    std::fs::create_dir(work.join("dir")).expect("dir");
    std::fs::write(work.join("file"), b"").expect("file");
    let immutable = work.join("immutable.json");
    std::fs::write(&immutable, b"keep").expect("file");
    let chattr = |flag: &str| {
        Command::new("chattr")
            .arg(flag)
            .arg(&immutable)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(chattr("+i"), "chattr +i (e2fsprogs) on the scratch file");
    // However the test ends, the scratch directory must stay removable.
    struct Mutable<'a>(&'a dyn Fn(&str) -> bool);
    impl Drop for Mutable<'_> {
        fn drop(&mut self) {
            (self.0)("-i");
        }
    }
    let _mutable = Mutable(&chattr);
    let cases: [(PathBuf, &str); 4] = [
        (work.join("dir"), "is a directory"),
        (
            PathBuf::from(format!("{}/", work.join("new.json").display())),
            "ends with `/`",
        ),
        (work.join("file/out.json"), "is not a directory"),
        (immutable.clone(), "may not be written"),
    ];
    for (i, (path, needle)) in cases.iter().enumerate() {
        let mark = work.join(&format!("mark-{i}"));
        let output = zcprof()
            .args(["record", "-o"])
            .arg(path)
            .args(["--", "touch"])
            .arg(&mark)
            .output()
            .expect("zcprof runs");
        one_line_failure(&path.display().to_string(), &output, 1, needle);
        assert!(!mark.exists(), "{}: the workload ran first", path.display());
    }
    assert_eq!(std::fs::read(&immutable).expect("read"), b"keep");

    let script = r#"
        set -u
        mkdir -p "$WORK/full" "$WORK/noinodes" "$WORK/ro"
        mount -t tmpfs -o size=64k zcprof-test-full "$WORK/full" || exit 99
        dd if=/dev/zero of="$WORK/full/fill" bs=4k 2>/dev/null
        mount -t tmpfs -o size=1m,nr_inodes=4 zcprof-test-inodes "$WORK/noinodes" || exit 99
        i=0; while touch "$WORK/noinodes/f$i" 2>/dev/null; do i=$((i+1)); done
        mount --bind "$WORK/ro" "$WORK/ro" && mount -o remount,ro,bind "$WORK/ro" || exit 99
        for case in full noinodes ro; do
            "$ZCPROF" record -o "$WORK/$case/out.json" -- touch "$WORK/mark-$case" 2>"$WORK/$case.err"
            echo "$case $?"
            if [ -e "$WORK/mark-$case" ]; then echo "$case-ran yes"; else echo "$case-ran no"; fi
        done
    "#;
    let r = in_private_mounts(script, &work.0);
    for (case, needle) in [
        ("full", "is full"),
        ("noinodes", "no free inodes"),
        ("ro", "Read-only file system"),
    ] {
        let err = std::fs::read_to_string(work.join(&format!("{case}.err"))).expect("stderr");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("zcprof: warning:"))
            .collect();
        assert_eq!(value(&r, case), "1", "{case}: {err}");
        assert_eq!(lines.len(), 1, "{case}: {err}");
        assert!(lines[0].contains(needle), "{case}: `{needle}` not in {err}");
        assert_eq!(
            value(&r, &format!("{case}-ran")),
            "no",
            "{case}: the workload ran first"
        );
    }
}

/// Every command that prints, with stdout on /dev/full (ENOSPC): one line and status 1
/// (`diff`: 2), never a panic; `run`'s summary to a full stderr: status 1.
#[test]
fn write_errors_are_one_line_not_a_panic() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    let mut cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["demo", "list"], 1),
        (vec!["demo", "list", "--json"], 1),
        (vec!["--help"], 1),
    ];
    let work = Scratch::new("write-errors");
    let recording = work.join("a.json");
    let recording_arg = recording.to_string_lossy().into_owned();
    if privileged("write_errors_are_one_line_not_a_panic") {
        let made = zcprof()
            .args(["record", "-o", &recording_arg, "--", "true"])
            .output()
            .expect("zcprof record");
        assert!(made.status.success(), "{:?}", complaints(&made));
        cases.extend([
            (vec!["top", "--json", "-i", "10ms"], 1),
            (vec!["top", "--once", "-i", "10ms"], 1),
            (vec!["top", "--csv", "-i", "10ms"], 1),
            (vec!["doctor"], 1),
            (vec!["doctor", "--json"], 1),
            (vec!["diff", &recording_arg, &recording_arg], 2),
            (vec!["diff", "--json", &recording_arg, &recording_arg], 2),
        ]);
        let output = zcprof()
            .args(["run", "--", "true"])
            .stderr(full())
            .output()
            .expect("zcprof run");
        assert_eq!(output.status.code(), Some(1), "the summary was lost");
    }
    for (args, code) in cases {
        let output = zcprof()
            .args(&args)
            .stdout(full())
            .output()
            .expect("zcprof runs");
        one_line_failure(
            &args.join(" "),
            &output,
            code,
            "cannot write to stdout: No space left on device",
        );
    }
}

/// `zcprof top --json | head -1`: the reader goes away and zcprof ends quietly, without a
/// panic or a message: by SIGPIPE (status 141 in a shell), or, when SIGPIPE is blocked (a
/// mask inherited from whatever started zcprof, which main's SIG_DFL does not undo), by the
/// EPIPE its write gets instead: status 141 and nothing on stderr.
#[test]
fn a_closed_pipe_ends_quietly() {
    if !privileged("a_closed_pipe_ends_quietly") {
        return;
    }
    for blocked in [false, true] {
        let mut cmd = zcprof();
        cmd.args(["top", "--json", "-i", "50ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if blocked {
            // SAFETY: between fork and exec the closure only fills a signal set on its
            // stack and calls sigprocmask(2), both async-signal-safe.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGPIPE);
                    if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("zcprof top");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("a frame");
        assert!(
            first.starts_with("{\"schema\":\"zcprof.top/v1\""),
            "{first}"
        );
        // The reader is gone (dropped above); the next frame's write ends zcprof.
        let output = child.wait_with_output().expect("exits");
        let status = output.status;
        if blocked {
            assert_eq!(status.code(), Some(141), "SIGPIPE blocked: {status:?}");
        } else {
            assert!(
                status.signal() == Some(libc::SIGPIPE) || matches!(status.code(), Some(0 | 141)),
                "{status:?}"
            );
        }
        assert!(
            complaints(&output).is_empty(),
            "blocked {blocked}: {:?}",
            complaints(&output)
        );
    }
}

/// Every pid under `root`, found through /proc's children lists.
fn descendants(root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                todo.push(child);
            }
        }
    }
    found
}

/// Processes SIGKILLed when the test ends however it ends: what a failing test would
/// otherwise leave running on a shared machine.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if runs(pid) {
                // SAFETY: kill(2) with a number; at worst ESRCH.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// Whether `pid` runs (exists and is not a zombie).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.chars().next()))
        .flatten()
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Polls `done` every 20 ms until it holds, or fails after `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    common::wait_for(what, limit, Duration::from_millis(20), || {
        done().then_some(())
    });
}

/// `zcprof demo run pipe --bytes 1T`, then SIGTERM, SIGINT or SIGKILL to zcprof: the demo
/// and its workers end with it (a signal is passed to the demo's process group; a SIGKILL
/// reaches the demo as its death signal), and zcprof's status says which signal.
#[test]
fn demo_workers_end_with_zcprof() {
    if !privileged("demo_workers_end_with_zcprof") {
        return;
    }
    let demo = demo_bin();
    for (signal, status) in [
        (libc::SIGTERM, Some(143)),
        (libc::SIGINT, Some(130)),
        (libc::SIGKILL, None),
    ] {
        let mut cmd = zcprof();
        cmd.args(["demo", "run", "pipe", "--bytes", "1T"])
            .env("ZCPROF_DEMO", &demo)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The demo and its four workers.
        let ended = signalled_leaves_nothing(&mut cmd, signal, |zc| descendants(zc).len() >= 5);
        assert_eq!(ended.code(), status, "signal {signal}");
    }
}

/// Starts `cmd` (zcprof), waits until `started(its pid)`, sends it `signal` and returns how
/// it ended, once every process it had started has ended too (or fails after 5 s).
fn signalled_leaves_nothing(
    cmd: &mut Command,
    signal: i32,
    started: impl Fn(u32) -> bool,
) -> std::process::ExitStatus {
    let child = cmd.spawn().expect("zcprof starts");
    let zc = child.id();
    let mut child = Reaped(child);
    wait_for("its processes start", Duration::from_secs(30), || {
        started(zc)
    });
    let tree = descendants(zc);
    let _cleanup = KillOnDrop(tree.clone());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(zc as i32, signal) };
    let ended = child.0.wait().expect("zcprof exits");
    wait_for(
        &format!("signal {signal}: none left of {tree:?}"),
        Duration::from_secs(5),
        || !tree.iter().any(|&p| runs(p)),
    );
    ended
}

/// `record -- CMD` killed with SIGKILL: the command does not run on under pid 1.
#[test]
fn a_recorded_command_ends_when_zcprof_is_killed() {
    if !privileged("a_recorded_command_ends_when_zcprof_is_killed") {
        return;
    }
    let work = Scratch::new("killed");
    let mut cmd = zcprof();
    cmd.args(["record", "-o"])
        .arg(work.join("out.json"))
        .args(["--", "sleep", "300"])
        .stderr(Stdio::null());
    signalled_leaves_nothing(&mut cmd, libc::SIGKILL, |zc| {
        common::has_child_named(zc, "sleep")
    });
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(") ").expect("comm").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `(comm) `: state is field 3, utime 14, stime 15 (1-based).
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// `serve` with 100 descriptors and 300 idle connections held open: it does not spin, and
/// a scrape (a real HTTP client) still gets the metrics.
#[test]
fn serve_keeps_answering_without_descriptors() {
    if !privileged("serve_keeps_answering_without_descriptors") {
        return;
    }
    let port = free_port();
    let child = Command::new("prlimit")
        .args([
            "--nofile=100:100",
            env!("CARGO_BIN_EXE_zcprof"),
            "serve",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-i", "200ms"])
        .stderr(Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) runs zcprof serve");
    let pid = child.id();
    let _serve = Reaped(child);
    wait_for("serve answers", Duration::from_secs(30), || {
        http_get(port, "/metrics").is_some_and(|(code, _)| code == 200)
    });
    let idle: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert_eq!(idle.len(), 300, "the backlog took every connection");
    let before = cpu_seconds(pid);
    let started = Instant::now();
    let (code, body) = http_get(port, "/metrics").expect("a scrape is answered");
    let waited = started.elapsed();
    assert_eq!(code, 200);
    assert!(body.contains("zcprof_"), "{body}");
    assert!(
        waited < Duration::from_secs(3),
        "the scrape took {waited:?}"
    );
    sleep(Duration::from_secs(2));
    let used = cpu_seconds(pid) - before;
    let wall = started.elapsed().as_secs_f64();
    assert!(
        used < 0.5 * wall,
        "serve used {used:.2} s of CPU in {wall:.2} s with its descriptors exhausted"
    );
    drop(idle);
}

/// A `--pid` target that exits while the probes attach: nothing can be recorded, and
/// `record` says so (status 1, no file) instead of writing 0 processes with status 0.
#[test]
fn a_pid_that_exits_while_attaching_is_reported() {
    if !privileged("a_pid_that_exits_while_attaching_is_reported") {
        return;
    }
    let work = Scratch::new("vanished");
    let handoff = work.join("zcprof.pid");
    let out = work.join("out.json");
    // The target waits for zcprof's pid, then until zcprof has created its first BPF map
    // (the probes are loading), and exits: always during the attach, however slow.
    let script = r#"
        while [ ! -s "$HANDOFF" ]; do sleep 0.01; done
        z=$(cat "$HANDOFF")
        while ! ls -l "/proc/$z/fd" 2>/dev/null | grep -q 'anon_inode:bpf'; do sleep 0.005; done
    "#;
    let mut target = Command::new("sh")
        .args(["-c", script])
        .env("HANDOFF", &handoff)
        .spawn()
        .expect("sh");
    let target_pid = target.id();
    // Reap it the moment it exits: a zombie would still look alive in /proc.
    let reaper = std::thread::spawn(move || target.wait());
    let zc = zcprof()
        .args(["record", "-o"])
        .arg(&out)
        .args(["--pid", &target_pid.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("zcprof record");
    std::fs::write(&handoff, zc.id().to_string()).expect("handoff");
    let output = zc.wait_with_output().expect("zcprof exits");
    let _ = reaper.join();
    one_line_failure(
        "a vanished target",
        &output,
        1,
        &format!("process {target_pid} exited while the probes attached"),
    );
    assert!(!out.exists(), "no recording of nothing is written");
}

/// `--comm ''` would match every process: refused as bad input (status 2, one line), for
/// `top` and `record` alike, before anything loads (today's main ran both until stopped).
#[test]
fn an_empty_comm_is_refused() {
    let work = Scratch::new("empty-comm");
    let out = work.join("never-written.json");
    let out = out.to_string_lossy();
    for args in [
        vec!["top", "--comm", ""],
        vec!["top", "--once", "-c", ""],
        vec!["record", "-o", &out, "--comm", ""],
    ] {
        let output = within(zcprof().args(&args), Duration::from_secs(30));
        one_line_failure(
            &format!("{args:?}"),
            &output,
            2,
            "an empty name would match every process",
        );
    }
    assert!(!work.join("never-written.json").exists());
}

/// `diff` reads recordings only from regular files and up to `--max-size`: a link to
/// /dev/zero and a FIFO are refused at once (not read until memory runs out, nor waited
/// on), a file over the limit is refused without being read.
#[test]
fn diff_reads_only_bounded_regular_files() {
    let work = Scratch::new("diff-input");
    let zero = work.join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
    let fifo = work.join("fifo.json");
    let c = CString::new(fifo.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let big = work.join("big.json");
    // Sparse: 257 MiB that take no disk.
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(257 << 20))
        .expect("sparse file");
    let small = work.join("small.json");
    std::fs::write(&small, vec![b' '; 1000]).expect("file");
    let run = |args: &[&Path], extra: &[&str]| {
        within(
            zcprof().arg("diff").args(args).args(extra),
            Duration::from_secs(20),
        )
    };
    one_line_failure(
        "/dev/zero",
        &run(&[&zero, &zero], &[]),
        2,
        "it is a character device",
    );
    one_line_failure("a FIFO", &run(&[&fifo, &fifo], &[]), 2, "it is a FIFO");
    one_line_failure(
        "257 MiB",
        &run(&[&big, &big], &[]),
        2,
        "it is 257.0 MiB, more than the 256.0 MiB that diff reads (--max-size raises the limit)",
    );
    one_line_failure(
        "--max-size",
        &run(&[&small, &small], &["--max-size", "512"]),
        2,
        "more than the 512 B",
    );
}

/// Two 50 MB recordings (a real one's processes, repeated) diff in bounded memory: a peak
/// under 3 times their combined size (it was about 29 times: 5.8 GB for one 200 MB
/// recording; two of those now take 738 MB and 9.6 s in a release build), and in well under
/// a minute even in a debug build.
#[test]
fn diff_of_large_recordings_stays_small() {
    if !privileged("diff_of_large_recordings_stays_small") {
        return;
    }
    let work = Scratch::new("diff-large");
    let seed = work.join("seed.json");
    let made = zcprof()
        .args(["record", "-o"])
        .arg(&seed)
        .args([
            "--",
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=4k count=10 status=none",
        ])
        .output()
        .expect("zcprof record");
    assert!(made.status.success(), "{:?}", complaints(&made));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&seed).expect("seed")).expect("JSON");
    let processes: Vec<String> = doc["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(!processes.is_empty());
    doc["processes"] = serde_json::json!([]);
    let text = doc.to_string();
    let (head, tail) = text
        .split_once("\"processes\":[]")
        .expect("the processes field");
    let big = work.join("big.json");
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).expect("create"));
        write!(f, "{head}\"processes\":[").expect("write");
        let mut size = 0;
        for (i, p) in processes.iter().cycle().enumerate() {
            if size >= 50_000_000 {
                break;
            }
            if i > 0 {
                f.write_all(b",").expect("write");
            }
            f.write_all(p.as_bytes()).expect("write");
            size += p.len() + 1;
        }
        write!(f, "]{tail}").expect("write");
    }
    let size = std::fs::metadata(&big).expect("stat").len();
    let started = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also reports its peak RSS"
    )]
    let child = zcprof()
        .arg("diff")
        .arg(&big)
        .arg(&big)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("zcprof diff");
    let pid = i32::try_from(child.id()).expect("a pid");
    let mut status = 0;
    // SAFETY: rusage is plain data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 reaps our own child and writes only to the two locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let seconds = started.elapsed().as_secs_f64();
    let peak = usage.ru_maxrss as u64 * 1024;
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "diff failed: {status}"
    );
    eprintln!(
        "diff of two {:.0} MB recordings: {seconds:.1} s, peak RSS {:.0} MB",
        size as f64 / 1e6,
        peak as f64 / 1e6
    );
    assert!(
        peak < 3 * 2 * size,
        "peak RSS {peak} B for two recordings of {size} B each"
    );
    assert!(seconds < 60.0, "{seconds:.1} s");
}
