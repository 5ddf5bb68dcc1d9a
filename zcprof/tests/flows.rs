//! The flows layer (`--flows`) on the running kernel: a forked workload moves bytes through
//! every kind of descriptor, each kind through syscalls of its own, and tallies every
//! return value; the layer must put exactly those bytes in exactly those flows, in every
//! syscall probe mode.

mod common;

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use serde_json::Value;

use common::{Child, TempFile, in_child, privileged, tcp_pair};
use zcprof::{
    model::{Model, Process, flow_name},
    probes::{Layer, State, SyscallProbe},
};

/// Which syscall of the workload moved bytes through which flow: each syscall is used on
/// one kind of descriptor only, so its tally is the flow's ground truth.
const FLOWS: [(&str, &str); 15] = [
    ("read", "copy file -> user"),
    ("pwrite64", "copy user -> file"),
    ("write", "copy user -> tcp"),
    ("recvfrom", "copy tcp -> user"),
    ("sendto", "copy user -> unix"),
    ("recvmsg", "copy unix -> user"),
    ("sendmsg", "copy user -> udp"),
    ("recvmmsg", "copy udp -> user"),
    ("writev", "copy user -> pipe"),
    ("readv", "copy pipe -> user"),
    ("pwritev", "copy user -> char"),
    ("preadv2", "copy anon -> user"),
    ("sendfile", "sendfile file -> tcp"),
    ("splice", "splice tcp -> pipe"),
    ("sendto_zerocopy", "msg_zerocopy user -> tcp"),
];

fn fd_pair(domain: i32, kind: i32) -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into a two-element array.
    let made = unsafe { libc::socketpair(domain, kind, 0, fds.as_mut_ptr()) };
    assert_eq!(made, 0);
    (fds[0], fds[1])
}

/// A connected loopback UDP pair `(sender, receiver)`.
fn udp_pair() -> (i32, i32) {
    // SAFETY: plain socket calls on descriptors this function owns; the addresses are
    // sockaddr_in values of the right length.
    unsafe {
        let rx = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as u16;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        assert_eq!(libc::bind(rx, (&raw const addr).cast(), len), 0);
        let mut bound = len;
        libc::getsockname(rx, (&raw mut addr).cast(), &mut bound);
        let tx = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert_eq!(libc::connect(tx, (&raw const addr).cast(), len), 0);
        (tx, rx)
    }
}

/// Bytes through a file, TCP, a Unix socket, UDP, a pipe, /dev/null and an eventfd, with
/// copies, sendfile, splice and a `MSG_ZEROCOPY` send.
fn workload() -> Child {
    let input = TempFile::new("flows-in", 300_000);
    let output = TempFile::new("flows-out", 0);
    let file = input.open(libc::O_RDONLY);
    let out = output.open(libc::O_WRONLY);
    let (tcp_tx, tcp_rx) = tcp_pair(true);
    let (unix_a, unix_b) = fd_pair(libc::AF_UNIX, libc::SOCK_STREAM);
    let (udp_tx, udp_rx) = udp_pair();
    let mut pipe = [0; 2];
    // SAFETY: pipe writes two descriptors into a two-element array.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let null = CString::new("/dev/null").expect("no NUL");
    // SAFETY: a valid path.
    let devnull = unsafe { libc::open(null.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    // SAFETY: no pointers.
    let efd = unsafe { libc::eventfd(3, libc::EFD_CLOEXEC) };
    assert!(devnull >= 0 && efd >= 0);
    let mut buf = vec![0u8; 65_536];
    let mut small = [0u8; 8];
    let child = in_child(|t| {
        let p = buf.as_mut_ptr();
        let n = buf.len();
        // SAFETY: raw syscalls on descriptors and buffers prepared above; every length is
        // within `buf`.
        unsafe {
            // file -> user, to EOF; user -> file.
            while t.note("read", libc::read(file, p.cast(), n)) > 0 {}
            t.note("pwrite64", libc::pwrite(out, p.cast(), 40_000, 0));
            // user -> tcp, tcp -> user; a MSG_ZEROCOPY send; file -> tcp by sendfile.
            t.note("write", libc::write(tcp_tx, p.cast(), 20_000));
            t.note(
                "sendto_zerocopy",
                libc::sendto(
                    tcp_tx,
                    p.cast(),
                    7_000,
                    libc::MSG_ZEROCOPY,
                    std::ptr::null(),
                    0,
                ),
            );
            let mut offset: libc::off_t = 0;
            t.note(
                "sendfile",
                libc::sendfile(tcp_tx, file, &mut offset, 50_000),
            );
            let mut got = 0;
            while got < 20_000 + 7_000 + 50_000 - 10_000 {
                let want = (67_000 - got).min(n);
                got += t.note(
                    "recvfrom",
                    libc::recvfrom(
                        tcp_rx,
                        p.cast(),
                        want,
                        0,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    ),
                ) as usize;
            }
            // The last 10,000 bytes: tcp -> pipe by splice, then pipe -> user.
            let mut moved = 0;
            while moved < 10_000 {
                moved += t.note(
                    "splice",
                    libc::splice(
                        tcp_rx,
                        std::ptr::null_mut(),
                        pipe[1],
                        std::ptr::null_mut(),
                        10_000 - moved,
                        0,
                    ),
                ) as usize;
            }
            // user -> pipe, pipe -> user (the spliced bytes too).
            let mut v = libc::iovec {
                iov_base: p.cast(),
                iov_len: 3_000,
            };
            t.note("writev", libc::writev(pipe[1], &v, 1));
            v.iov_len = n;
            let mut drained = 0;
            while drained < 13_000 {
                drained += t.note("readv", libc::readv(pipe[0], &v, 1)) as usize;
            }
            // user -> unix, unix -> user.
            t.note(
                "sendto",
                libc::sendto(unix_a, p.cast(), 5_000, 0, std::ptr::null(), 0),
            );
            let mut got = 0;
            while got < 5_000 {
                let mut v = libc::iovec {
                    iov_base: p.cast(),
                    iov_len: 5_000 - got,
                };
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut v;
                msg.msg_iovlen = 1;
                got += t.note("recvmsg", libc::recvmsg(unix_b, &mut msg, 0)) as usize;
            }
            // user -> udp, udp -> user.
            let mut v = libc::iovec {
                iov_base: p.cast(),
                iov_len: 1_200,
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut v;
            msg.msg_iovlen = 1;
            t.note("sendmsg", libc::sendmsg(udp_tx, &msg, 0));
            let mut m: libc::mmsghdr = std::mem::zeroed();
            m.msg_hdr = msg;
            (*m.msg_hdr.msg_iov).iov_len = n;
            let got = libc::recvmmsg(udp_rx, &mut m, 1, 0, std::ptr::null_mut());
            t.note_mmsg("recvmmsg", got as isize, u64::from(m.msg_len));
            // user -> char; anon -> user (the eventfd's 8-byte counter).
            let v = libc::iovec {
                iov_base: p.cast(),
                iov_len: 4_096,
            };
            t.note("pwritev", libc::pwritev(devnull, &v, 1, 0));
            let v = libc::iovec {
                iov_base: small.as_mut_ptr().cast(),
                iov_len: small.len(),
            };
            t.note("preadv2", libc::preadv2(efd, &v, 1, -1, 0));
        }
    });
    for fd in [
        file, out, tcp_tx, tcp_rx, unix_a, unix_b, udp_tx, udp_rx, pipe[0], pipe[1], devnull, efd,
    ] {
        // SAFETY: closing descriptors this test opened.
        unsafe { libc::close(fd) };
    }
    for (name, _) in FLOWS {
        assert_eq!(child.tally.get(name).2, 0, "{name} failed");
    }
    assert_eq!(child.tally.get("read").1, 300_000);
    assert_eq!(child.tally.get("preadv2"), (1, 8, 0));
    assert_eq!(child.tally.get("recvmmsg"), (1, 1_200, 0));
    child
}

fn process(model: &Model, pid: u32) -> &Process {
    let id = model
        .child_of(std::process::id(), pid)
        .unwrap_or_else(|| panic!("no process forked with pid {pid}"));
    model.process(id).expect("instance")
}

fn exact_flows(mode: SyscallProbe, test: &str) {
    if !privileged(test) {
        return;
    }
    let (rt, mut session) = common::session_with(mode, true);
    let layer = session
        .layers
        .iter()
        .find(|l| l.layer == Layer::Flows)
        .expect("the flows layer is listed when asked for");
    assert_eq!(layer.state, State::Live, "{layer:?}");
    let child = workload();
    rt.block_on(session.flush()).expect("flush");
    let p = process(&session.model, child.pid);
    assert!(p.exited);
    let counted: Vec<(String, u64, u64)> = p
        .totals
        .flows
        .fired()
        .map(|(_, f, s)| (flow_name(&f), s.calls, s.bytes))
        .collect();
    let mut expected: Vec<(String, u64, u64)> = FLOWS
        .iter()
        .map(|(name, flow)| {
            let (calls, bytes, _) = child.tally.get(name);
            (flow.to_string(), calls, bytes)
        })
        .collect();
    let order = |v: &mut Vec<(String, u64, u64)>| v.sort();
    let mut counted = counted;
    order(&mut counted);
    order(&mut expected);
    assert_eq!(counted, expected, "{mode:?}: (flow, calls, bytes)");
    let delivered: u64 = ["write", "sendto_zerocopy", "sendfile", "sendto", "sendmsg"]
        .iter()
        .map(|name| child.tally.get(name).1)
        .sum();
    assert_eq!(p.totals.flows.delivered_bytes(), delivered);
    // The flows are a breakdown of the syscall layer's bytes: the same sum.
    let syscall_bytes: u64 = p.totals.syscall.slots().iter().map(|s| s.bytes).sum();
    let flow_bytes: u64 = counted.iter().map(|(_, _, b)| b).sum();
    assert_eq!(flow_bytes, syscall_bytes);
    assert_eq!(
        session.model.counters.lost(),
        0,
        "no lost events: {:?}",
        session.model.counters
    );
}

#[test]
fn flows_are_exact_with_the_btf_raw_tracepoint() {
    exact_flows(
        SyscallProbe::Btf,
        "flows_are_exact_with_the_btf_raw_tracepoint",
    );
}

#[test]
fn flows_are_exact_with_the_raw_tracepoint() {
    exact_flows(SyscallProbe::Raw, "flows_are_exact_with_the_raw_tracepoint");
}

#[test]
fn flows_are_exact_with_per_syscall_tracepoints() {
    exact_flows(
        SyscallProbe::Tracepoint,
        "flows_are_exact_with_per_syscall_tracepoints",
    );
}

/// Without `--flows` the layer is not listed and counts nothing.
#[test]
fn no_flows_unless_asked() {
    if !privileged("no_flows_unless_asked") {
        return;
    }
    let (rt, mut session) = common::session(SyscallProbe::Btf);
    assert!(session.layers.iter().all(|l| l.layer != Layer::Flows));
    let child = workload();
    rt.block_on(session.flush()).expect("flush");
    let p = process(&session.model, child.pid);
    assert!(p.totals.flows.is_zero());
    assert!(p.totals.syscall.slots().iter().any(|s| s.bytes > 0));
}

/// The demo's ground truth as flows: each file-serve role moves its bytes through one kind
/// of descriptor per syscall (the server reads the file and writes or sendfile()s to TCP,
/// the client reads TCP).
fn demo_flows(role: &zcprof_demos::RoleReport) -> Vec<(String, u64, u64)> {
    let mut flows: Vec<(String, u64, u64)> = role
        .syscalls
        .iter()
        .map(|(name, c)| {
            let flow = match (role.role.as_str(), name.as_str()) {
                ("server", "read" | "pread64") => "copy file -> user",
                ("server", "write" | "sendto") => "copy user -> tcp",
                ("server", "sendfile") => "sendfile file -> tcp",
                ("client", "read" | "recvfrom") => "copy tcp -> user",
                other => panic!("no flow expected for {other:?}"),
            };
            (flow.to_string(), c.calls - c.errors, c.bytes)
        })
        .collect();
    flows.sort();
    flows
}

/// `zcprof record --flows -o FILE -- zcprof-demo run file-serve --mode MODE ARGS…`.
fn record(mode: &str, args: &[&str], extra: &[&str]) -> (zcprof_demos::Report, PathBuf) {
    let out = common::temp(&format!("flows-{mode}"));
    let output = common::zcprof()
        .args(["record", "--flows", "-o"])
        .arg(&out)
        .args(extra)
        .arg("--")
        .arg(common::demo_bin())
        .args(["run", "file-serve", "--mode", mode, "--compact"])
        .args(args)
        .output()
        .expect("zcprof runs");
    assert!(
        output.status.success(),
        "record: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: zcprof_demos::Report =
        serde_json::from_slice(&output.stdout).expect("the demo's report");
    assert!(report.verified);
    (report, out)
}

/// `zcprof diff BEFORE AFTER --json`, checked against its schema.
fn diff_json(before: &Path, after: &Path) -> Value {
    let output = common::zcprof()
        .arg("diff")
        .args([before, after])
        .arg("--json")
        .output()
        .expect("diff");
    let d: Value = serde_json::from_slice(&output.stdout).expect("diff JSON");
    let schema: Value =
        serde_json::from_str(include_str!("../../schema/diff.v1.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema");
    assert!(validator.is_valid(&d), "the diff violates its schema: {d}");
    d
}

fn recorded_flows(rec: &Value, pid: u64) -> Vec<(String, u64, u64)> {
    let p = rec["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("process {pid} recorded"));
    let mut flows: Vec<(String, u64, u64)> = p["layers"]["flows"]["probes"]
        .as_object()
        .expect("a flows layer")
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                e["calls"].as_u64().expect("calls"),
                e["bytes"].as_u64().expect("bytes"),
            )
        })
        .collect();
    flows.sort();
    flows
}

/// `run --flows --json` validates against its schema and names each worker's flows exactly;
/// `record --flows` of the copying and the sendfile server carries them, and `diff` lists
/// the flows that vanished and appeared.
#[test]
fn run_record_and_diff_carry_flows() {
    if !privileged("run_record_and_diff_carry_flows") {
        return;
    }
    // To a file: stderr also carries the warnings of layers a kernel lacks.
    let summary = common::temp("flows-run");
    let output = common::zcprof()
        .args(["run", "--flows", "--json", "-o"])
        .arg(&summary)
        .arg("--")
        .arg(common::demo_bin())
        .args(["run", "file-serve", "--mode", "read-write", "--bytes", "1M"])
        .args(["--compact"])
        .output()
        .expect("zcprof runs");
    assert!(output.status.success());
    let report: zcprof_demos::Report =
        serde_json::from_slice(&output.stdout).expect("the demo's report");
    let run: Value = serde_json::from_slice(&std::fs::read(&summary).expect("the summary"))
        .expect("the run's JSON");
    let errors: Vec<String> = common::run_schema()
        .iter_errors(&run)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        run["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .any(|l| l["layer"] == "flows" && l["state"] == "live"),
        "{}",
        run["layers"]
    );
    for role in &report.roles {
        let p = run["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .find(|p| p["pid"] == role.pid)
            .expect("the worker");
        let mut seen: Vec<(String, u64, u64)> = p["flows"]["probes"]
            .as_object()
            .expect("flows")
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    e["calls"].as_u64().unwrap_or(0),
                    e["bytes"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(seen, demo_flows(role), "{}", role.role);
        let delivered = p["flows"]["totals"]["delivered_bytes"].as_u64();
        let expected = if role.role == "server" { 1 << 20 } else { 0 };
        assert_eq!(delivered, Some(expected), "{}", role.role);
    }

    let (copying, before) = record("read-write", &["--bytes", "1M"], &[]);
    let (zero_copy, after) = record("sendfile", &["--bytes", "1M"], &[]);
    for (report, path) in [(&copying, &before), (&zero_copy, &after)] {
        let rec: Value =
            serde_json::from_slice(&std::fs::read(path).expect("recording")).expect("JSON");
        for role in &report.roles {
            assert_eq!(
                recorded_flows(&rec, role.pid as u64),
                demo_flows(role),
                "{} of {}",
                role.role,
                report.mode
            );
        }
        zcprof_recording::parse(&std::fs::read(path).expect("recording"))
            .expect("zcprof reads its recording back");
    }
    let d = diff_json(&before, &after);
    let server = d["processes"]
        .as_array()
        .expect("process groups")
        .iter()
        .find(|g| {
            g["changed"]
                .as_array()
                .is_some_and(|c| c.iter().any(|e| e["layer"] == "flows"))
        })
        .expect("a group whose flows changed");
    let change = |name: &str| {
        server["changed"]
            .as_array()
            .expect("changed")
            .iter()
            .find(|e| e["layer"] == "flows" && e["name"] == name)
            .map(|e| e["status"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        change("copy user -> tcp").as_deref(),
        Some("gone"),
        "{server}"
    );
    assert_eq!(change("sendfile file -> tcp").as_deref(), Some("appeared"));
    assert_eq!(change("copy file -> user").as_deref(), Some("gone"));
}

/// Time-bounded recordings of different runtimes, both with the flows layer: the diff
/// compares per byte delivered through sockets, as measured, and says so.
#[test]
fn time_bounded_recordings_compare_per_delivered_byte() {
    if !privileged("time_bounded_recordings_compare_per_delivered_byte") {
        return;
    }
    let run = |mode: &str, seconds: &str, duration: &str| {
        let out = common::temp(&format!("flows-bounded-{mode}"));
        let status = common::zcprof()
            .args(["record", "--flows", "--duration", duration, "-o"])
            .arg(&out)
            .arg("--")
            .arg(common::demo_bin())
            .args(["run", "file-serve", "--mode", mode, "--seconds", seconds])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("zcprof runs");
        assert!(status.success());
        out
    };
    let before = run("read-write", "5", "1s");
    let after = run("sendfile", "5", "2s");
    let d = diff_json(&before, &after);
    assert_eq!(d["unit"]["per"], "delivered_byte", "{}", d["verdict"]);
    let measured = d["unit"]["measured_delivered_bytes"]
        .as_array()
        .expect("measured");
    assert!(measured.iter().all(|n| n.as_u64().is_some_and(|n| n > 0)));
    let verdict = d["verdict"].as_str().expect("verdict");
    assert!(
        verdict.contains("measured by the flows layer") && verdict.contains("fell"),
        "{verdict}"
    );
}

/// `top --json --flows`: each process's flows per second, against the schema.
#[test]
fn top_json_carries_flows() {
    if !privileged("top_json_carries_flows") {
        return;
    }
    let (_top, lines) = common::lines_of(&["--flows", "top", "--json", "-i", "300ms"]);
    let first = lines
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("a first frame");
    assert!(first.contains("zcprof.top/v1"));
    let _load = common::Reaped(
        std::process::Command::new(common::demo_bin())
            .args([
                "run",
                "file-serve",
                "--mode",
                "read-write",
                "--seconds",
                "3",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the demo"),
    );
    let schema = common::top_schema();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut delivered = false;
    while !delivered && std::time::Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(5)) else {
            continue;
        };
        let frame: Value = serde_json::from_str(&line).expect("JSON");
        assert!(schema.is_valid(&frame), "{frame}");
        for p in frame["processes"].as_array().expect("processes") {
            let flows = &p["flows"];
            assert!(
                flows.is_object(),
                "every process has flows with --flows: {p}"
            );
            let to_tcp = flows["by_flow"]["copy user -> tcp"]["bytes_per_s"]
                .as_f64()
                .unwrap_or(0.0);
            if to_tcp > 0.0 {
                assert!(
                    flows["delivered_bytes_per_s"].as_f64() >= Some(to_tcp),
                    "{p}"
                );
                delivered = true;
            }
        }
    }
    assert!(delivered, "no frame showed the server's user -> tcp flow");
}

/// Two forked workloads of one flow each, for the live frames: a reader of a 300 kB file to
/// EOF (`copy file -> user`), and a writer of 40 kB to TCP (`copy user -> tcp`, delivered).
/// Each moves bytes through that flow only, so in every interval the flow's rate is the
/// process's copy rate; with their tallies.
fn one_flow_each() -> [(Child, &'static str); 2] {
    let input = TempFile::new("top-flow", 300_000);
    let file = input.open(libc::O_RDONLY);
    let mut buf = vec![0u8; 65_536];
    let reader = in_child(|t| {
        // SAFETY: a descriptor and a buffer prepared above.
        while t.note("read", unsafe {
            libc::read(file, buf.as_mut_ptr().cast(), buf.len())
        }) > 0
        {}
    });
    let (tx, rx) = tcp_pair(false);
    let writer = in_child(|t| {
        // SAFETY: a connected socket and a buffer longer than the write; 40 kB fits in the
        // loopback connection's buffers, so nobody needs to read it first.
        t.note("write", unsafe {
            libc::write(tx, buf.as_ptr().cast(), 40_000)
        });
    });
    for fd in [file, tx, rx] {
        // SAFETY: closing descriptors this test opened.
        unsafe { libc::close(fd) };
    }
    assert_eq!(reader.tally.get("read").1, 300_000);
    [(reader, "copy file -> user"), (writer, "copy user -> tcp")]
}

/// Whether `sum`, rates × rounded intervals added up, is `truth` (the CSV rounds
/// `interval_s` to the millisecond: about 0.2 % of a 300 ms interval).
fn adds_up(sum: f64, truth: u64) -> bool {
    (sum - truth as f64).abs() <= truth as f64 * 0.003 + 1.0
}

/// `top --csv --flows`: each process row carries its biggest flow, to the byte its copy
/// rate (the workload's only bytes), and over the rows the workload's tally; the writer's
/// delivered bytes are that flow's, and the machine row delivers at least as much.
#[test]
fn top_csv_carries_each_process_biggest_flow() {
    use std::time::{Duration, Instant};

    if !privileged("top_csv_carries_each_process_biggest_flow") {
        return;
    }
    let (_top, rows) = common::lines_of(&["--flows", "top", "--csv", "-i", "300ms"]);
    // Printed once the probes are attached.
    let header = rows
        .recv_timeout(Duration::from_secs(120))
        .expect("the CSV header");
    let column = |name: &str| common::csv_column(&header, name);
    let (pid, interval) = (column("pid"), column("interval_s"));
    let (delivered, top_flow, top_rate) = (
        column("delivered_bytes_per_s"),
        column("top_flow"),
        column("top_flow_bytes_per_s"),
    );
    let workloads = one_flow_each();
    let copy_columns = [
        column("copy_k2u_bytes_per_s"),
        column("copy_u2k_bytes_per_s"),
    ];
    let truth = [
        workloads[0].0.tally.get("read").1,
        workloads[1].0.tally.get("write").1,
    ];
    let mut sums = [0.0f64; 2];
    let mut writer_delivered = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sums.iter().zip(truth).all(|(s, t)| adds_up(*s, t)) {
        let row = rows
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the rows never added up to {truth:?}: {sums:?}"));
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(cols.len(), header.split(',').count(), "{row}");
        if cols[3] == "machine" {
            if let Some(w) = writer_delivered.take() {
                let all: f64 = cols[delivered].parse().expect("machine delivered");
                assert!(
                    all >= w,
                    "the machine delivered less than the writer: {row}"
                );
            }
            continue;
        }
        let Some(i) = workloads
            .iter()
            .position(|(c, _)| cols[pid] == c.pid.to_string())
        else {
            continue;
        };
        let flow = workloads[i].1;
        // Only the reader's read at EOF can make an interval without a byte.
        if cols[top_flow].is_empty() {
            assert_eq!(cols[copy_columns[i]], "0.0", "no flow, no bytes: {row}");
            continue;
        }
        assert_eq!(cols[top_flow], flow, "{row}");
        assert_eq!(cols[top_rate], cols[copy_columns[i]], "{row}");
        let seconds: f64 = cols[interval].parse().expect("interval_s");
        sums[i] += cols[top_rate].parse::<f64>().expect("a rate") * seconds;
        let d: f64 = cols[delivered].parse().expect("delivered");
        if i == 1 {
            assert_eq!(cols[delivered], cols[top_rate], "all it sent: {row}");
            writer_delivered = Some(d);
        } else {
            assert_eq!(d, 0.0, "a reader delivers nothing: {row}");
        }
    }
}

/// Text `top --flows`: under each workload's row, its one flow at the rate of the row's
/// copy column (the same bytes over the same interval, so the same text), and every frame's
/// header says where that line comes from.
#[test]
fn top_text_shows_each_process_biggest_flow() {
    use std::time::{Duration, Instant};

    if !privileged("top_text_shows_each_process_biggest_flow") {
        return;
    }
    // Not a terminal: text frames, not the dashboard.
    let (_top, lines) = common::lines_of(&["--flows", "top", "-i", "300ms"]);
    let first = lines
        .recv_timeout(Duration::from_secs(120))
        .expect("a first frame");
    assert!(first.starts_with("zcprof top · "), "{first}");
    let workloads = one_flow_each();
    let expected = ["↳ file → user", "↳ user → tcp"];
    let mut seen = [false; 2];
    let (mut frames, mut explained) = (0, 0);
    let mut previous = first;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().all(|s| *s) {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("a workload's flow line never showed: {seen:?}"));
        frames += usize::from(line.starts_with("zcprof top · "));
        explained += usize::from(
            line == "↳ under a row: its biggest flow in the interval (flows layer, --flows)",
        );
        let row: Vec<&str> = previous.split_whitespace().collect();
        if let Some(i) = workloads
            .iter()
            .position(|(c, _)| row.first() == Some(&c.pid.to_string().as_str()))
        {
            // PID COMM COPY K→U (two words) COPY U→K (two words) …
            let copied = [row[2..4].join(" "), row[4..6].join(" ")][i].clone();
            if line.trim_start().starts_with('↳') {
                assert_eq!(
                    line,
                    format!("         {} {copied}", expected[i]),
                    "{previous}"
                );
                seen[i] = true;
            } else {
                // Only the reader's read at EOF can make an interval without a byte.
                assert_eq!(copied, "0 B/s", "a row with bytes and no flow: {previous}");
            }
        }
        previous = line;
    }
    // The first frame's, and each later one's (the last may be cut before its line).
    assert!(
        (frames..=frames + 1).contains(&explained),
        "{explained} of {} frames say where the flow lines come from",
        frames + 1
    );
}
