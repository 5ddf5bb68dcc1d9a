//! The command line: listing, and bad input that must fail with exactly one line on
//! stderr, a non-zero exit, and no temporary files left behind.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, demo};

#[test]
fn list_prints_every_scenario_and_json_catalogue() {
    let out = demo(&["list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for s in zcprof_demos::scenarios() {
        assert!(text.contains(s.name), "{}", s.name);
    }
    let out = demo(&["list", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 6);
    for s in arr {
        for key in [
            "name",
            "description",
            "roles",
            "modes",
            "baseline",
            "seed_claim",
        ] {
            assert!(s.get(key).is_some(), "{key} in {s}");
        }
    }
}

/// Runs with TMPDIR set to a fresh empty directory and returns (exit code, stderr).
fn fails_cleanly(args: &[&str]) -> (i32, String) {
    let tmp = std::env::temp_dir().join(format!(
        "zcprof-demo-cli-{}-{}",
        std::process::id(),
        args.join("_").replace(['/', ' '], "")
    ));
    std::fs::create_dir_all(&tmp).expect("create TMPDIR");
    let out = Command::new(BIN)
        .args(args)
        .env("TMPDIR", &tmp)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line, got {stderr:?}"
    );
    assert!(stderr.starts_with("zcprof-demo: "), "{stderr:?}");
    assert!(out.stdout.is_empty(), "{args:?}: no report on failure");
    assert_empty(&tmp);
    let _ = std::fs::remove_dir(&tmp);
    (out.status.code().unwrap_or(-1), stderr)
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).expect("read TMPDIR").collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn bad_input_is_one_line_and_non_zero() {
    let (code, err) = fails_cleanly(&["run", "nosuch", "--mode", "x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown scenario 'nosuch'") && err.contains("file-serve"),
        "{err}"
    );

    let (code, err) = fails_cleanly(&["nosuch", "--mode", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown scenario"), "{err}");

    let (code, err) = fails_cleanly(&["run", "pipe", "--mode", "sendfile"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no mode 'sendfile'") && err.contains("vmsplice"),
        "{err}"
    );

    let (_, err) = fails_cleanly(&["run", "pipe", "--mode", "tee", "--bytes", "0"]);
    assert!(err.contains("greater than 0"), "{err}");
    let (_, err) = fails_cleanly(&["run", "pipe", "--mode", "tee", "--chunk", "0"]);
    assert!(err.contains("greater than 0"), "{err}");
    let (_, err) = fails_cleanly(&["run", "pipe", "--mode", "tee", "--bytes", "12Q"]);
    assert!(err.contains("12Q"), "{err}");
    let (_, err) = fails_cleanly(&["run", "pipe", "--mode", "tee", "--seconds", "-1"]);
    assert!(err.contains("-1") || err.contains("seconds"), "{err}");
    let (_, err) = fails_cleanly(&[
        "run",
        "pipe",
        "--mode",
        "tee",
        "--bytes",
        "1k",
        "--seconds",
        "1",
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
    let (_, err) = fails_cleanly(&["run", "pipe"]);
    assert!(err.contains("--mode"), "{err}");
}

#[test]
fn too_large_for_the_disk_leaves_nothing_behind() {
    for scenario in ["file-copy", "file-serve", "file-read"] {
        let mode = zcprof_demos::scenario(scenario).expect("known").baseline;
        let (code, err) = fails_cleanly(&[scenario, "--mode", mode, "--bytes", "1000T"]);
        assert_eq!(code, 2);
        assert!(err.contains("free disk"), "{err}");
    }
}

#[test]
fn unbindable_address_is_reported() {
    // 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind fails.
    for scenario in ["file-serve", "proxy"] {
        let mode = zcprof_demos::scenario(scenario).expect("known").baseline;
        let (code, err) = fails_cleanly(&[
            scenario,
            "--mode",
            mode,
            "--bytes",
            "1M",
            "--bind",
            "192.0.2.1",
        ]);
        assert_eq!(code, 1);
        assert!(
            err.contains("cannot bind a TCP socket to 192.0.2.1:0"),
            "{err}"
        );
    }
}

/// Runs the demo with `io_uring_setup` failing with `errno`, as on a kernel built without
/// io_uring (ENOSYS) or with `kernel.io_uring_disabled=2` (EPERM): a seccomp filter
/// installed in the child before exec makes the kernel return that error.
fn without_io_uring(args: &[&str], errno: u32) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    const LOAD_NR: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let filter = [
        // seccomp_data.nr is at offset 0 (x86-64 only, like the rest of the demos).
        libc::sock_filter {
            code: LOAD_NR,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: JEQ,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | errno,
        },
        libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let tmp = std::env::temp_dir().join(format!(
        "zcprof-demo-cli-nouring-{}-{errno}",
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp).expect("create TMPDIR");
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("TMPDIR", &tmp);
    // SAFETY: between fork and exec the closure makes only two prctl calls on memory it
    // owns (async-signal-safe; no allocation).
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run under seccomp");
    assert_empty(&tmp);
    let _ = std::fs::remove_dir(&tmp);
    out
}

#[test]
fn a_kernel_without_io_uring_makes_the_io_uring_modes_unsupported() {
    for (errno, why) in [
        (libc::ENOSYS, "this kernel has no io_uring"),
        (libc::EPERM, "io_uring is disabled here"),
    ] {
        for (scenario, mode) in [
            ("file-copy", "io-uring"),
            ("file-serve", "io-uring-splice"),
            ("file-serve", "io-uring-send-zc"),
        ] {
            let out = without_io_uring(&[scenario, "--mode", mode, "--bytes", "64k"], errno as u32);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(4), "{scenario}/{mode}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "zcprof-demo: {scenario}/{mode} is not supported by this kernel (Linux "
                )) && stderr.contains(why),
                "{stderr}"
            );
            assert!(out.stdout.is_empty());
        }
        // The modes that do not use io_uring are unaffected.
        let out = without_io_uring(
            &["file-serve", "--mode", "msg-zerocopy", "--bytes", "64k"],
            errno as u32,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn interrupt_cleans_up_workers_and_temp_files() {
    let tmp = std::env::temp_dir().join(format!("zcprof-demo-cli-int-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("create TMPDIR");
    let child = Command::new(BIN)
        .args(["file-copy", "--mode", "read-write", "--seconds", "20"])
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the run has made its directory, then interrupt it.
    let started = std::time::Instant::now();
    while std::fs::read_dir(&tmp).map_or(0, Iterator::count) == 0 {
        assert!(started.elapsed().as_secs() < 10, "run never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signalling our own child process by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    assert!(
        started.elapsed().as_secs() < 10,
        "interrupt was not honoured"
    );
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "zcprof-demo: interrupted"
    );
    assert_empty(&tmp);
    let _ = std::fs::remove_dir(&tmp);
}
