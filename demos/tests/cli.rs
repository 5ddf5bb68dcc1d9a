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
