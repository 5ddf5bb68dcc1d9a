//! Every scenario × mode runs, delivers exactly the requested payload, verifies it,
//! prints well-formed JSON, and moves bytes through the syscall families its mode
//! promises (checked against a table written here, not taken from the catalogue).

mod common;

use common::{all_cases, demo, parse_report, run_ok, run_supported};
use zcprof_demos::zerocopy::{Sends, Via};
use zcprof_demos::{Counter, Report, RoleReport};

const BYTES: u64 = 1_000_003;

fn role<'r>(report: &'r Report, name: &str) -> &'r RoleReport {
    report
        .roles
        .iter()
        .find(|r| r.role == name)
        .unwrap_or_else(|| panic!("{}/{}: no role {name}", report.scenario, report.mode))
}

fn bytes(role: &RoleReport, syscall: &str) -> u64 {
    role.syscalls.get(syscall).map_or(0, |c| c.bytes)
}

/// Roles that must make no copy-family syscall at all in each mode.
fn copy_free(scenario: &str, mode: &str) -> &'static [&'static str] {
    match (scenario, mode) {
        ("file-serve", "sendfile" | "io-uring-splice") => &["server"],
        ("proxy", "splice") => &["proxy"],
        ("pipe", "tee") => &["relay"],
        ("pipe", "vmsplice") => &["producer", "relay"],
        ("file-copy", "copy-file-range" | "sendfile") => &["worker"],
        ("file-read", "mmap") => &["worker"],
        ("in-process", _) => &["worker"],
        _ => &[],
    }
}

/// Where the payload must show up, per mode: (role, syscall, multiple of payload).
fn expected_flow(scenario: &str, mode: &str) -> &'static [(&'static str, &'static str, u64)] {
    match (scenario, mode) {
        ("file-serve", "read-write") => &[
            ("server", "read", 1),
            ("server", "write", 1),
            ("client", "read", 1),
        ],
        ("file-serve", "mmap-write") => &[
            ("server", "read", 0),
            ("server", "write", 1),
            ("client", "read", 1),
        ],
        ("file-serve", "sendfile") => &[("server", "sendfile", 1), ("client", "read", 1)],
        // io_uring: the server makes no read/write-family syscall at all.
        ("file-serve", "io-uring-splice" | "io-uring-send-zc") => &[
            ("server", "read", 0),
            ("server", "write", 0),
            ("server", "splice", 0),
            ("client", "read", 1),
        ],
        // MSG_ZEROCOPY is still a send; the error-queue reads return no data.
        ("file-serve", "msg-zerocopy") => &[
            ("server", "sendto", 1),
            ("server", "recvmsg", 0),
            ("server", "read", 0),
            ("client", "read", 1),
        ],
        ("proxy", "fresh-buffer" | "reused-buffer") => &[
            ("source", "write", 1),
            ("proxy", "read", 1),
            ("proxy", "write", 1),
            ("sink", "read", 1),
        ],
        ("proxy", "splice") => &[
            ("source", "write", 1),
            ("proxy", "splice", 2),
            ("sink", "read", 1),
        ],
        ("pipe", "read-write") => &[
            ("producer", "write", 1),
            ("relay", "read", 1),
            ("relay", "write", 2),
            ("consumer-a", "read", 1),
            ("consumer-b", "read", 1),
        ],
        ("pipe", "tee") => &[
            ("producer", "write", 1),
            ("relay", "tee", 1),
            ("relay", "splice", 1),
            ("consumer-a", "read", 1),
            ("consumer-b", "read", 1),
        ],
        ("pipe", "vmsplice") => &[
            ("producer", "vmsplice", 1),
            ("relay", "tee", 1),
            ("relay", "splice", 1),
            ("consumer-a", "read", 1),
            ("consumer-b", "read", 1),
        ],
        ("file-copy", "read-write") => &[("worker", "read", 1), ("worker", "write", 1)],
        ("file-copy", "copy-file-range") => &[("worker", "copy_file_range", 1)],
        ("file-copy", "sendfile") => &[("worker", "sendfile", 1)],
        ("file-copy", "io-uring" | "io-uring-sqpoll") => {
            &[("worker", "read", 0), ("worker", "write", 0)]
        }
        ("file-read", "read") => &[("worker", "pread64", 1)],
        ("file-read", "mmap") => &[("worker", "pread64", 0), ("worker", "read", 0)],
        ("in-process", _) => &[],
        _ => panic!("no expectations for {scenario}/{mode}: add them"),
    }
}

/// Where the payload must show up in io_uring completions, per mode: (role, opcode,
/// multiple of payload). Roles not listed set up no ring.
fn expected_io_uring(scenario: &str, mode: &str) -> &'static [(&'static str, &'static str, u64)] {
    match (scenario, mode) {
        ("file-copy", "io-uring" | "io-uring-sqpoll") => {
            &[("worker", "READ", 1), ("worker", "WRITE", 1)]
        }
        // file -> pipe, then pipe -> socket.
        ("file-serve", "io-uring-splice") => &[("server", "SPLICE", 2)],
        ("file-serve", "io-uring-send-zc") => &[("server", "SEND_ZC", 1)],
        _ => &[],
    }
}

/// The roles whose sends were requested zero-copy, and how.
fn expected_zerocopy(scenario: &str, mode: &str) -> Option<(&'static str, Via)> {
    match (scenario, mode) {
        ("file-serve", "msg-zerocopy") => Some(("server", Via::MsgZerocopy)),
        ("file-serve", "io-uring-send-zc") => Some(("server", Via::IoUringSendZc)),
        _ => None,
    }
}

/// The io_uring and zero-copy sections: present exactly where the mode uses them, every
/// request completed once without error, and over loopback every zero-copy send reported
/// copied by the kernel (Documentation/networking/msg_zerocopy.rst).
fn check_io_uring_and_zerocopy(report: &Report) {
    let (scenario, mode) = (report.scenario.as_str(), report.mode.as_str());
    let rings = expected_io_uring(scenario, mode);
    for r in &report.roles {
        let what = format!("{scenario}/{mode}/{}", r.role);
        let want: Vec<_> = rings.iter().filter(|(role, ..)| *role == r.role).collect();
        match &r.io_uring {
            None => assert!(want.is_empty(), "{what}: no io_uring section"),
            Some(u) => {
                assert!(
                    !want.is_empty(),
                    "{what}: an io_uring section it should not have"
                );
                assert_eq!((u.setup.calls, u.setup.errors), (1, 0), "{what}");
                assert_eq!(u.enter.errors, 0, "{what}");
                let names: Vec<&str> = want.iter().map(|(_, op, _)| *op).collect();
                assert_eq!(
                    u.ops.keys().map(String::as_str).collect::<Vec<_>>(),
                    names,
                    "{what}"
                );
                for &&(_, op, times) in &want {
                    let o = &u.ops[op];
                    assert_eq!(o.bytes, BYTES * times, "{what}: {op} bytes");
                    assert_eq!((o.calls, o.errors), (o.submitted, 0), "{what}: {op}");
                }
            }
        }
        let zc = expected_zerocopy(scenario, mode).filter(|(role, _)| *role == r.role);
        match (&r.zerocopy, zc) {
            (None, None) => {}
            (Some(z), Some((_, via))) => {
                assert_eq!(z.via, via, "{what}");
                assert_eq!(z.requested.bytes, BYTES, "{what}");
                assert_eq!(z.requested.errors, 0, "{what}");
                assert!(z.notifications >= 1, "{what}");
                assert_eq!(
                    z.copied,
                    Sends {
                        sends: z.requested.calls,
                        bytes: BYTES
                    },
                    "{what}: over loopback the kernel copies every zero-copy send"
                );
                assert_eq!(z.not_copied, Sends::default(), "{what}");
                if via == Via::IoUringSendZc {
                    // One notification per SEND_ZC request, each a CQE of its own.
                    let op = &r.io_uring.as_ref().expect("a ring").ops["SEND_ZC"];
                    assert_eq!(z.notifications, op.notifications, "{what}");
                    assert_eq!(z.requested.calls, op.calls, "{what}");
                    assert_eq!(z.notifications, z.requested.calls, "{what}");
                }
            }
            (got, want) => panic!("{what}: zerocopy section {got:?}, expected {want:?}"),
        }
    }
}

#[test]
fn every_mode_delivers_and_verifies_the_payload() {
    for (scenario, mode) in all_cases() {
        let Some(report) = run_supported(&[
            "run",
            scenario,
            "--mode",
            mode,
            "--bytes",
            &BYTES.to_string(),
            "--chunk",
            "32k",
        ]) else {
            continue;
        };
        let info = zcprof_demos::scenario(scenario).expect("known");
        assert_eq!(report.scenario, scenario);
        assert_eq!(report.mode, mode);
        assert_eq!(report.baseline, info.baseline == mode);
        assert!(report.verified, "{scenario}/{mode}");
        assert_eq!(report.payload_bytes, BYTES, "{scenario}/{mode}");
        assert_eq!(report.requested_bytes, Some(BYTES));
        assert!(report.wall_seconds > 0.0 && report.throughput_bytes_per_sec > 0.0);
        let roles: Vec<&str> = report.roles.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(roles, info.roles, "{scenario}/{mode}");
        let mut pids: Vec<i32> = report.roles.iter().map(|r| r.pid).collect();
        pids.dedup();
        assert_eq!(pids.len(), report.roles.len(), "one process per role");
        assert!(pids.iter().all(|&p| p > 0 && p as u32 != report.parent_pid));

        for r in &report.roles {
            assert_eq!(
                r.syscalls.values().map(|c| c.errors).sum::<u64>(),
                0,
                "{scenario}/{mode}/{}",
                r.role
            );
        }
        for name in copy_free(scenario, mode) {
            assert_eq!(
                role(&report, name).copy_family,
                Counter::default(),
                "{scenario}/{mode}: {name} must make no copy-family syscalls"
            );
        }
        // The catalogue makes the same promise zcprof will rely on.
        let promised = info.mode(mode).expect("mode").copy_free_roles;
        assert_eq!(
            promised,
            copy_free(scenario, mode),
            "{scenario}/{mode} catalogue"
        );
        for &(name, syscall, times) in expected_flow(scenario, mode) {
            assert_eq!(
                bytes(role(&report, name), syscall),
                BYTES * times,
                "{scenario}/{mode}: {name} {syscall}"
            );
        }
        check_io_uring_and_zerocopy(&report);
        // Every worker process faults in at least its own stack and heap after the fork
        // (how many more a mapping adds depends on fault-around and folio sizes).
        for r in &report.roles {
            let faults = r.minor_faults + r.major_faults;
            assert!(faults > 0, "{scenario}/{mode}/{}: no page fault", r.role);
        }
    }
}

#[test]
fn in_process_counts_user_copies_exactly() {
    // 100000 bytes in 4 KiB packets: 24 full packets and one of 1696 bytes.
    let copy = run_ok(&[
        "in-process",
        "--mode",
        "copy",
        "--bytes",
        "100000",
        "--chunk",
        "4k",
    ]);
    let packets = 100_000u64.div_ceil(4096);
    assert_eq!(packets, 25);
    assert_eq!(copy.roles[0].user_copy_bytes, 24 * packets + 4 * 100_000);
    let slice = run_ok(&[
        "in-process",
        "--mode",
        "slice",
        "--bytes",
        "100000",
        "--chunk",
        "4k",
    ]);
    assert_eq!(slice.roles[0].user_copy_bytes, 0);
    // Only in-process copies in user space.
    for (scenario, mode) in [("proxy", "fresh-buffer"), ("file-serve", "mmap-write")] {
        let r = run_ok(&[scenario, "--mode", mode, "--bytes", "100k"]);
        assert!(r.roles.iter().all(|r| r.user_copy_bytes == 0));
    }
}

#[test]
fn seconds_mode_runs_repeated_passes_and_stops() {
    for (scenario, mode) in [
        ("pipe", "vmsplice"),
        ("file-read", "mmap"),
        ("file-serve", "sendfile"),
        ("file-serve", "msg-zerocopy"),
        ("file-copy", "io-uring"),
    ] {
        let started = std::time::Instant::now();
        let Some(report) = run_supported(&[scenario, "--mode", mode, "--seconds", "0.3"]) else {
            continue;
        };
        assert!(report.verified, "{scenario}/{mode}");
        assert!(report.payload_bytes > 0);
        assert_eq!(report.requested_seconds, Some(0.3));
        assert!(
            // The deadline is set just before the forks, so the first worker may start a
            // little after it was taken.
            report.wall_seconds >= 0.25,
            "{scenario}/{mode}: {}",
            report.wall_seconds
        );
        assert!(started.elapsed().as_secs_f64() < 20.0);
    }
}

#[test]
fn demos_run_concurrently() {
    let children: Vec<_> = ["file-serve", "proxy", "file-copy", "pipe"]
        .iter()
        .zip(["sendfile", "splice", "read-write", "tee"])
        .map(|(s, m)| {
            std::process::Command::new(common::BIN)
                .args([s, "--mode", m, "--bytes", "2M", "--compact"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success());
        assert!(parse_report(&out.stdout).verified);
    }
}

#[test]
fn shorthand_equals_run_subcommand() {
    let out = demo(&["file-read", "--mode", "read", "--bytes", "64k"]);
    assert!(out.status.success());
    assert_eq!(parse_report(&out.stdout).payload_bytes, 65536);
}
