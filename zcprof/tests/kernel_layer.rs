//! The kernel layer on the running kernel: which probes attach and how (per kernel), and
//! known workloads with exact ground truth. Runs on the host (where every function probe is
//! unavailable and only the `skb:skb_copy_datagram_iovec` tracepoint stands in) and in the
//! QEMU lab on Debian 6.1 and 6.12 kernels (`cargo xtask vmtest`), where fentry/fexit attach.
//!
//! Every assertion on a probe's bytes is made only when that probe attached; the per-kernel
//! expectations of *how* each probe attaches are in `expected_modes`.

mod common;

use std::{
    ffi::CString,
    io::Write as _,
    net::{TcpListener, TcpStream},
    os::{fd::AsRawFd as _, unix::process::CommandExt as _},
    process::Command,
};

use common::{TempFile, privileged};
use zcprof::{
    model::{Model, Process},
    probes::{Layer, Mechanism, ProbeStatus, SyscallProbe},
    session::Session,
};
use zcprof_common::{
    Counts,
    kernel::{self, id},
};

fn start() -> (tokio::runtime::Runtime, Session) {
    common::session(SyscallProbe::Raw)
}

/// How `function` attached, or `None`.
fn via<'a>(probes: &'a [ProbeStatus], function: &str) -> Option<&'a str> {
    probes
        .iter()
        .find(|p| p.layer == Layer::Kernel && p.probe == function)
        .unwrap_or_else(|| panic!("{function} has no status"))
        .via()
        .map(Mechanism::name)
}

fn process(model: &Model, pid: u32) -> &Process {
    let id = model
        .child_of(std::process::id(), pid)
        .unwrap_or_else(|| panic!("no process forked with pid {pid}"));
    model.process(id).expect("instance")
}

fn probe(p: &Process, index: u32) -> &Counts {
    &p.totals.kernel[index as usize]
}

fn syscall_bytes(p: &Process, name: &str) -> u64 {
    p.totals.syscall[common::index(name)].bytes
}

/// Prints what every kernel probe saw for `p`, so a lab log shows the numbers behind a
/// failure (and the ones no assertion covers).
fn show(what: &str, p: &Process) {
    for (k, s) in kernel::PROBES.iter().zip(p.totals.kernel.slots().iter()) {
        if s.calls > 0 {
            eprintln!(
                "{what} (pid {}): {:<30} calls {:>6} bytes {:>9} errors {}",
                p.tgid, k.name, s.calls, s.bytes, s.errors
            );
        }
    }
}

/// Forks a child that runs `work` (raw syscalls only) and `_exit`s with its return value.
fn fork(work: impl FnOnce() -> i32) -> u32 {
    // SAFETY: the child only runs `work` (raw syscalls, no allocation) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = work();
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    pid as u32
}

fn wait(pid: u32) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(
        // SAFETY: waitpid on our own child, with a valid out-pointer.
        unsafe { libc::waitpid(pid as i32, &mut status, 0) },
        pid as i32
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "workload {pid} failed: {status}"
    );
}

/// A connected loopback TCP pair: (client, server side).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// Sends exactly `n` bytes with send(2); 0 on success.
fn send_all(fd: i32, buf: &[u8], n: usize) -> i32 {
    let mut sent = 0;
    while sent < n {
        let chunk = (n - sent).min(buf.len());
        // SAFETY: `buf` is valid for `chunk` bytes.
        let r = unsafe { libc::send(fd, buf.as_ptr().cast(), chunk, 0) };
        if r <= 0 {
            return 1;
        }
        sent += r as usize;
    }
    0
}

/// Receives until EOF; 0 when exactly `n` bytes came.
fn recv_all(fd: i32, buf: &mut [u8], n: usize) -> i32 {
    let mut got = 0;
    loop {
        // SAFETY: `buf` is valid for its length.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r < 0 {
            return 1;
        }
        if r == 0 {
            break;
        }
        got += r as usize;
    }
    if got == n { 0 } else { 2 }
}

/// Doctor on this kernel: every function has one status; where fentry and kprobes are both
/// impossible (this project's host) every function probe is unavailable with both reasons,
/// and the socket receive path is still seen through its tracepoint.
#[test]
fn doctor_reports_every_probe() {
    if !privileged("doctor_reports_every_probe") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_zcprof"))
        .args(["doctor", "--json"])
        .output()
        .expect("zcprof runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("doctor JSON");
    assert_eq!(doc["schema"], "zcprof.doctor/v1");
    assert!(doc["btf"]["parsable"].as_bool().is_some());
    let probes = doc["probes"].as_array().expect("probes");
    let release = doc["kernel_release"].as_str().expect("release").to_string();
    if expected_mode(&release, "filemap_read").is_some() {
        // The lab's kernels boot without lockdown, and the lab mounts securityfs.
        assert_eq!(doc["lockdown"], "none", "{release}");
        assert_eq!(doc["bpffs_mounted"], true);
        assert!(
            doc["kprobes_unavailable"].is_null(),
            "{}",
            doc["kprobes_unavailable"]
        );
    }
    for f in &kernel::FUNCTIONS {
        let mine: Vec<&serde_json::Value> = probes
            .iter()
            .filter(|p| p["layer"] == "kernel" && p["probe"] == f.function)
            .collect();
        assert_eq!(mine.len(), 1, "{}: one status", f.function);
        let p = mine[0];
        let reason = p["reason"].as_str().unwrap_or("");
        assert!(
            p["via"].is_string() || !reason.is_empty(),
            "{}: attached, or unavailable with a reason",
            f.function
        );
        if let Some(expected) = expected_mode(&release, f.function) {
            let got = p["via"].as_str().unwrap_or("unavailable");
            assert_eq!(got, expected, "{} on {release}: {reason}", f.function);
            if expected == "unavailable" && f.function.starts_with("_copy_") {
                assert!(reason.contains("notrace"), "{}: {reason}", f.function);
            }
        }
    }
    let kprobes = doc["kprobes_unavailable"].as_str();
    let no_fentry = probes.iter().any(|p| {
        p["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fentry: load refused: EPERM"))
    });
    if kprobes.is_some() && no_fentry {
        // This project's host kernel: nothing attaches by function.
        for p in probes.iter().filter(|p| p["layer"] == "kernel") {
            if p["probe"] == "skb_copy_datagram_iter" {
                assert_eq!(p["via"], "tracepoint", "the skb tracepoint stands in");
                continue;
            }
            assert!(p["via"].is_null(), "{p}");
            let reason = p["reason"].as_str().expect("reason");
            assert!(
                reason.contains("not in this kernel")
                    || (reason.contains("EPERM") && reason.contains("kprobes not configured")),
                "{p}"
            );
        }
    }
}

/// tracefs gone and not mountable, as for a least-privilege user (CAP_BPF and CAP_PERFMON,
/// no CAP_SYS_ADMIN) on a system that never mounted it: `doctor` runs in a private mount
/// namespace with every tracefs mount detached and CAP_SYS_ADMIN out of its bounding set.
/// The syscall layer still runs (tp_btf needs no tracefs), each tracepoint says tracefs is
/// missing, and nothing crashes. Without the ftrace list zcprof cannot know a function is
/// notrace, so on the lab's Debian kernels it loads the fexit program for `_copy_to_user`
/// and the kernel refuses the attach: that is the "loads but fails to attach" case, and the
/// reason must say so.
#[test]
fn without_tracefs_every_probe_says_why() {
    if !privileged("without_tracefs_every_probe_says_why") {
        return;
    }
    let mut doctor = Command::new(env!("CARGO_BIN_EXE_zcprof"));
    doctor.args(["doctor", "--json"]);
    // SAFETY: only raw syscalls run between fork and exec.
    unsafe { doctor.pre_exec(common::hide_tracefs) };
    let out = doctor.output().expect("zcprof runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("doctor JSON");
    assert!(
        doc["tracefs"].is_null(),
        "tracefs hidden: {}",
        doc["tracefs"]
    );
    assert_eq!(doc["privileges"]["cap_sys_admin"], false);
    let warnings = doc["warnings"].to_string();
    assert!(
        warnings.contains("tracefs is unavailable") && warnings.contains("not permitted"),
        "the warning names tracefs and why it could not be mounted: {warnings}"
    );
    let probes = doc["probes"].as_array().expect("probes");
    let status = |layer: &str, probe: &str| -> (Option<String>, String) {
        let p = probes
            .iter()
            .find(|p| p["layer"] == layer && p["probe"] == probe)
            .unwrap_or_else(|| panic!("{layer} {probe} has no status: {stdout}"));
        (
            p["via"].as_str().map(str::to_string),
            p["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        status("syscall", "tp_btf:sys_exit").0.as_deref(),
        Some("tp_btf")
    );
    for p in probes.iter().filter(|p| p["layer"] == "lifecycle") {
        assert!(p["via"].is_null(), "{p}");
        assert!(
            p["reason"].as_str().unwrap_or("").contains("tracefs"),
            "{p}"
        );
    }
    let (via, reason) = status("kernel", "skb_copy_datagram_iter");
    if via.as_deref() != Some("fentry") {
        assert!(reason.contains("tracefs is unavailable"), "{reason}");
    }
    let release = doc["kernel_release"].as_str().expect("release");
    if expected_mode(release, "_copy_to_user") == Some("unavailable") {
        let (via, reason) = status("kernel", "_copy_to_user");
        assert_eq!(via, None, "{reason}");
        assert!(
            reason.contains("fexit: attach failed") && !reason.contains("notrace:"),
            "the fexit program loaded and the kernel refused the attach: {reason}"
        );
        assert_eq!(
            status("kernel", "__check_object_size").0.as_deref(),
            Some("fentry"),
            "fentry needs no tracefs"
        );
    }
}

/// How each function attaches on the lab's Debian kernels (`None`: not pinned down).
/// Debian builds the lib/ copy primitives notrace; everything else on the list is traceable.
fn expected_mode(release: &str, function: &str) -> Option<&'static str> {
    if !release.ends_with("-cloud-amd64") {
        return None;
    }
    let is_612 = release.starts_with("6.12.");
    let is_61 = release.starts_with("6.1.");
    if !(is_61 || is_612) {
        return None;
    }
    Some(match function {
        "_copy_to_user" | "_copy_from_user" | "_copy_to_iter" | "_copy_from_iter"
        | "copy_page_to_iter" => "unavailable",
        "__check_object_size" | "skb_copy_datagram_iter" | "skb_copy_datagram_from_iter" => {
            "fentry"
        }
        "filemap_read"
        | "pipe_read"
        | "pipe_write"
        | "do_splice"
        | "do_sendfile"
        | "splice_direct_to_actor"
        | "iter_file_splice_write" => "fexit",
        "splice_to_socket" if is_612 => "fexit",
        "splice_to_socket" => "unavailable",
        _ => return None,
    })
}

/// Every workload under one session: attaching the kernel layer costs seconds under the lab's
/// TCG emulation, so it is done once. Each workload runs in its own forked processes and
/// asserts on their PIDs only, so they cannot disturb each other.
#[test]
fn workloads_match_their_ground_truth() {
    if !privileged("workloads_match_their_ground_truth") {
        return;
    }
    let (rt, mut session) = start();
    tcp_receive_and_send_exact(&rt, &mut session);
    getsockopt_copy_exact(&rt, &mut session);
    pipe_exact(&rt, &mut session);
    sendfile_has_no_user_copy(&rt, &mut session);
    file_read_exact(&rt, &mut session);
    assert_eq!(
        session.model.counters.lost(),
        0,
        "no lost events: {:?}",
        session.model.counters
    );
}

/// Loopback TCP, N bytes each way: the receiver's socket copy and the sender's user copy.
fn tcp_receive_and_send_exact(rt: &tokio::runtime::Runtime, session: &mut Session) {
    const N: usize = 3_000_000;
    let (client, server) = tcp_pair();
    let (cfd, sfd) = (client.as_raw_fd(), server.as_raw_fd());
    let out = vec![7u8; 65_536];
    let mut inbuf = vec![0u8; 65_536];
    let receiver = fork(|| {
        // SAFETY: closing our copy of the sending end so EOF can arrive.
        unsafe { libc::close(cfd) };
        recv_all(sfd, &mut inbuf, N)
    });
    let sender = fork(|| {
        let rc = send_all(cfd, &out, N);
        // SAFETY: closing the socket ends the stream.
        unsafe { libc::shutdown(cfd, libc::SHUT_WR) };
        rc
    });
    drop(client);
    drop(server);
    wait(sender);
    wait(receiver);
    rt.block_on(session.flush()).expect("flush");
    let m = &session.model;
    let (r, s) = (process(m, receiver), process(m, sender));
    show("tcp receiver", r);
    show("tcp sender", s);
    // The syscall layer is unaffected by the kernel layer.
    assert_eq!(syscall_bytes(r, "recvfrom"), N as u64);
    assert_eq!(syscall_bytes(s, "sendto"), N as u64);
    if via(&session.probes, "skb_copy_datagram_iter").is_some() {
        // tcp_recvmsg copies each chunk with skb_copy_datagram_msg(skb, off, msg, used).
        assert_eq!(probe(r, id::SKB_COPY_DATAGRAM_ITER).bytes, N as u64);
    }
    if via(&session.probes, "__check_object_size").is_some() {
        // skb → simple_copy_to_iter → copy_to_iter: every receive copy is checked; the
        // receiver makes no other copy_to_user of non-constant size.
        assert_eq!(probe(r, id::CHECK_OBJECT_SIZE_TO_USER).bytes, N as u64);
        // tcp_sendmsg copies from the iovec with copy_from_iter_full(_nocache), checked.
        assert_eq!(probe(s, id::CHECK_OBJECT_SIZE_FROM_USER).bytes, N as u64);
    }
}

/// getsockopt(TCP_INFO) copies `min(optlen, sizeof(tcp_info))` with copy_to_user: a
/// non-constant size, so the hardened-usercopy check sees every byte.
fn getsockopt_copy_exact(rt: &tokio::runtime::Runtime, session: &mut Session) {
    const CALLS: u64 = 50;
    let (client, _server) = tcp_pair();
    let fd = client.as_raw_fd();
    let mut info = vec![0u8; 512];
    let mut lens = [0u32; 1];
    // Learn the size this kernel copies (the ground truth) before forking.
    let mut len: libc::socklen_t = info.len() as libc::socklen_t;
    // SAFETY: `info` is valid for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    lens[0] = len;
    let child = fork(|| {
        for _ in 0..CALLS {
            let mut l: libc::socklen_t = info.len() as libc::socklen_t;
            // SAFETY: as above.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_INFO,
                    info.as_mut_ptr().cast(),
                    &mut l,
                )
            };
            if rc != 0 || l != lens[0] {
                return 1;
            }
        }
        0
    });
    wait(child);
    rt.block_on(session.flush()).expect("flush");
    let p = process(&session.model, child);
    show("getsockopt", p);
    if via(&session.probes, "__check_object_size").is_some() {
        assert_eq!(
            probe(p, id::CHECK_OBJECT_SIZE_TO_USER).bytes,
            CALLS * len as u64,
            "{CALLS} × {len} bytes of tcp_info"
        );
    }
    if via(&session.probes, "_copy_to_user").is_some() {
        assert!(probe(p, id::COPY_TO_USER).bytes >= CALLS * len as u64);
    }
}

/// A pipe: N bytes written by one process and read by another.
fn pipe_exact(rt: &tokio::runtime::Runtime, session: &mut Session) {
    const N: usize = 1_000_000;
    let mut fds = [0i32; 2];
    // SAFETY: a two-int array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [rfd, wfd] = fds;
    let out = vec![3u8; 65_536];
    let mut inbuf = vec![0u8; 65_536];
    let reader = fork(|| {
        // SAFETY: our copy of the write end must go for EOF to arrive.
        unsafe { libc::close(wfd) };
        let mut got = 0usize;
        loop {
            // SAFETY: valid buffer.
            let r = unsafe { libc::read(rfd, inbuf.as_mut_ptr().cast(), inbuf.len()) };
            if r <= 0 {
                break;
            }
            got += r as usize;
        }
        if got == N { 0 } else { 1 }
    });
    let writer = fork(|| {
        let mut sent = 0;
        while sent < N {
            let chunk = (N - sent).min(out.len());
            // SAFETY: valid buffer.
            let r = unsafe { libc::write(wfd, out.as_ptr().cast(), chunk) };
            if r <= 0 {
                return 1;
            }
            sent += r as usize;
        }
        0
    });
    // SAFETY: the parent's copies of both ends.
    unsafe {
        libc::close(rfd);
        libc::close(wfd);
    }
    wait(writer);
    wait(reader);
    rt.block_on(session.flush()).expect("flush");
    let m = &session.model;
    let (r, w) = (process(m, reader), process(m, writer));
    show("pipe reader", r);
    show("pipe writer", w);
    assert_eq!(syscall_bytes(r, "read"), N as u64);
    assert_eq!(syscall_bytes(w, "write"), N as u64);
    if via(&session.probes, "pipe_read").is_some() {
        assert_eq!(probe(r, id::PIPE_READ).bytes, N as u64);
    }
    if via(&session.probes, "pipe_write").is_some() {
        assert_eq!(probe(w, id::PIPE_WRITE).bytes, N as u64);
    }
}

/// sendfile N bytes file → TCP socket: no user copy; the zero-copy internals see N, and the
/// sender's checked user copies stay far below N (the payload never crosses to user space).
fn sendfile_has_no_user_copy(rt: &tokio::runtime::Runtime, session: &mut Session) {
    const N: usize = 2_000_000;
    let file = TempFile::new("sendfile", N);
    let (client, server) = tcp_pair();
    let (cfd, sfd) = (client.as_raw_fd(), server.as_raw_fd());
    let in_fd = file.open(libc::O_RDONLY);
    let mut inbuf = vec![0u8; 65_536];
    let receiver = fork(|| {
        // SAFETY: closing our copy of the sending end so EOF can arrive.
        unsafe { libc::close(cfd) };
        recv_all(sfd, &mut inbuf, N)
    });
    let sender = fork(|| {
        let mut sent = 0usize;
        while sent < N {
            // SAFETY: valid fds; a null offset uses and advances the file position.
            let r = unsafe { libc::sendfile(cfd, in_fd, std::ptr::null_mut(), N - sent) };
            if r <= 0 {
                return 1;
            }
            sent += r as usize;
        }
        // SAFETY: ends the stream.
        unsafe { libc::shutdown(cfd, libc::SHUT_WR) };
        0
    });
    drop(client);
    drop(server);
    // SAFETY: our copy of the file.
    unsafe { libc::close(in_fd) };
    wait(sender);
    wait(receiver);
    rt.block_on(session.flush()).expect("flush");
    let m = &session.model;
    let s = process(m, sender);
    show("sendfile sender", s);
    show("sendfile receiver", process(m, receiver));
    assert_eq!(syscall_bytes(s, "sendfile"), N as u64);
    if via(&session.probes, "do_sendfile").is_some() {
        assert_eq!(probe(s, id::DO_SENDFILE).bytes, N as u64);
    }
    if via(&session.probes, "splice_direct_to_actor").is_some() {
        assert_eq!(probe(s, id::SPLICE_DIRECT_TO_ACTOR).bytes, N as u64);
    }
    if via(&session.probes, "__check_object_size").is_some() {
        let user = probe(s, id::CHECK_OBJECT_SIZE_FROM_USER).bytes
            + probe(s, id::CHECK_OBJECT_SIZE_TO_USER).bytes;
        assert!(
            user < (N / 10) as u64,
            "sendfile copied {user} bytes via user"
        );
    }
}

/// Reading a file of N bytes through the page cache. `filemap_read` serves ramfs, ext4 and
/// most block filesystems but not tmpfs (shmem has its own read_iter), so the lab mounts a
/// ramfs for this; elsewhere the assertion is skipped with the reason.
fn file_read_exact(rt: &tokio::runtime::Runtime, session: &mut Session) {
    const N: usize = 1_048_576 + 4321;
    let dir = std::env::temp_dir().join(format!("zcprof-ramfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let c = CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: valid NUL-terminated strings.
    let mounted = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c.as_ptr(),
            c"ramfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    } == 0;
    let path = dir.join("data");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&vec![5u8; N]))
        .expect("write");
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid path.
    let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    let mut buf = vec![0u8; 65_536];
    let reader = fork(|| {
        let mut got = 0usize;
        loop {
            // SAFETY: valid buffer.
            let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                break;
            }
            got += r as usize;
        }
        if got == N { 0 } else { 1 }
    });
    wait(reader);
    rt.block_on(session.flush()).expect("flush");
    // SAFETY: our fd; then undo the mount.
    unsafe {
        libc::close(fd);
        if mounted {
            libc::umount(c.as_ptr());
        }
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    let p = process(&session.model, reader);
    show("file reader", p);
    assert_eq!(syscall_bytes(p, "read"), N as u64);
    if via(&session.probes, "filemap_read").is_some() {
        if mounted {
            assert_eq!(probe(p, id::FILEMAP_READ).bytes, N as u64);
        } else {
            eprintln!("file_read_exact: cannot mount ramfs; filemap_read bytes not asserted");
        }
    }
}

/// `kernel.io_uring_disabled=2` (Linux 6.6+) is said by `doctor`, so an io_uring layer that
/// counts nothing on such a machine reads as the truth it is. The setting is restored
/// whatever happens (no other test of this binary uses io_uring, and cargo runs test
/// binaries one at a time).
#[test]
fn doctor_says_when_io_uring_is_disabled() {
    const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";
    if !privileged("doctor_says_when_io_uring_is_disabled") {
        return;
    }
    let Ok(before) = std::fs::read_to_string(SYSCTL) else {
        eprintln!("skipping: this kernel has no {SYSCTL} (before Linux 6.6)");
        return;
    };
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write(SYSCTL, &self.0);
        }
    }
    let _restore = Restore(before.trim().to_string());
    let doctor = |json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zcprof"));
        cmd.arg("doctor");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("zcprof doctor");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    for (value, says) in [
        (
            "2",
            "kernel.io_uring_disabled=2: no process can create rings",
        ),
        ("0", "enabled for every process"),
    ] {
        std::fs::write(SYSCTL, value).expect("setting kernel.io_uring_disabled");
        let doc: serde_json::Value = serde_json::from_str(&doctor(true)).expect("doctor JSON");
        assert_eq!(doc["io_uring_disabled"].as_u64(), value.parse().ok());
        let text = doctor(false);
        let line = text
            .lines()
            .find(|l| l.starts_with("io_uring "))
            .unwrap_or_else(|| panic!("an io_uring line: {text}"));
        assert!(line.contains(says), "{line}");
    }
}
