//! The syscall layer on the running kernel, through the library: real probes, real forked
//! workloads, and exact ground truth (each workload tallies the return value of every
//! counted syscall it makes; the profiler must attribute exactly that to its PID).

mod common;

use std::{
    ffi::CString,
    fs,
    sync::atomic::{AtomicU64, Ordering},
};

use common::{Child, Tally, TempFile, in_child, privileged, tcp_pair, triple};
use zcprof::{
    model::{Model, Origin, Process},
    probes::{Layer, State, SyscallProbe},
    session::Session,
};
use zcprof_common::{errno, syscalls};

fn start(mode: SyscallProbe) -> (tokio::runtime::Runtime, Session) {
    let (rt, session) = common::session(mode);
    // No silent fallback: the mode under test is the one attached, for every syscall.
    let via = match mode {
        SyscallProbe::Btf => "tp_btf",
        SyscallProbe::Raw => "raw_tracepoint",
        SyscallProbe::Tracepoint => "tracepoint",
    };
    let syscall_layer = &session.layers[0];
    assert_eq!(
        (syscall_layer.layer, syscall_layer.state),
        (Layer::Syscall, State::Live)
    );
    assert_eq!(syscall_layer.via, via);
    (rt, session)
}

/// The instance the test process forked with this PID.
fn process(model: &Model, pid: u32) -> &Process {
    let id = model
        .child_of(std::process::id(), pid)
        .unwrap_or_else(|| panic!("no process forked with pid {pid}"));
    model.process(id).expect("instance")
}

/// Every counted syscall of the child matches its tally, and nothing else was counted.
fn assert_exact(model: &Model, child: &Child, what: &str) {
    let p = process(model, child.pid);
    assert!(p.exited, "{what}: the exit was seen");
    assert_eq!(p.origin, Origin::Forked, "{what}: the fork was seen");
    for (i, sc) in syscalls::SYSCALLS.iter().enumerate() {
        let expected = (
            child.tally.calls[i],
            child.tally.bytes[i],
            child.tally.errors[i],
        );
        assert_eq!(
            triple(&p.totals.syscall[i]),
            expected,
            "{what}: {} (calls, bytes, errors)",
            sc.name
        );
        assert_eq!(
            p.totals.syscall[i].errno,
            child.tally.errno[i],
            "{what}: {} errors by errno {:?}",
            sc.name,
            errno::NAMES
        );
    }
}

fn c(path: &str) -> CString {
    CString::new(path).expect("no NUL")
}

fn iov(buf: &mut [u8]) -> libc::iovec {
    libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    }
}

/// The read and write families on files: chunked reads to EOF, a failed write, positional
/// and vectored variants.
fn file_workload() -> Child {
    let input = TempFile::new("in", 1_048_576 + 123);
    let output = TempFile::new("out", 0);
    let fd = input.open(libc::O_RDONLY);
    let out = output.open(libc::O_WRONLY);
    // SAFETY: open(2) of a NUL-terminated literal path.
    let devnull = unsafe { libc::open(c("/dev/null").as_ptr(), libc::O_WRONLY) };
    let mut buf = vec![0u8; 65_536];
    let mut a = vec![0u8; 100];
    let mut b = vec![0u8; 200];
    // SAFETY: the child only passes buffers that outlive it (`buf`, `a`, `b`) and their lengths, and descriptors opened above.
    let child = in_child(|t: &mut Tally| unsafe {
        let p = buf.as_mut_ptr().cast();
        while t.note("read", libc::read(fd, p, 65_536)) > 0 {}
        for _ in 0..100 {
            t.note("write", libc::write(devnull, p, 4096));
        }
        t.note("write", libc::write(-1, p, 10)); // EBADF: a call with an error
        t.note("pread64", libc::pread(fd, p, 1000, 5));
        t.note("pwrite64", libc::pwrite(out, p, 777, 0));
        let mut v = [iov(&mut a), iov(&mut b)];
        libc::lseek(fd, 0, libc::SEEK_SET);
        t.note("readv", libc::readv(fd, v.as_ptr(), 2));
        t.note("writev", libc::writev(devnull, v.as_ptr(), 2));
        t.note("preadv", libc::preadv(fd, v.as_mut_ptr(), 2, 10));
        t.note("pwritev", libc::pwritev(out, v.as_ptr(), 2, 1000));
        let r = libc::syscall(libc::SYS_preadv2, fd, v.as_ptr(), 2, 20, 0, 0);
        t.note("preadv2", r as isize);
        let r = libc::syscall(libc::SYS_pwritev2, out, v.as_ptr(), 2, 2000, 0, 0);
        t.note("pwritev2", r as isize);
        t.note("read", libc::read(fd, p, 0)); // a zero-byte success
    });
    // SAFETY: closing descriptors this test opened, after the child is done with them.
    unsafe {
        libc::close(fd);
        libc::close(out);
        libc::close(devnull);
    }
    // The tally must be what we meant to do, or the test proves nothing.
    assert_eq!(child.tally.get("read"), (18 + 1, 1_048_576 + 123, 0));
    assert_eq!(child.tally.get("write"), (101, 409_600, 1));
    assert_eq!(child.tally.get("preadv2"), (1, 300, 0));
    child
}

/// What the helper thread of [`threaded_workload`] needs: it writes `calls` bytes, one per
/// call, to `fd` and counts the writes that moved their byte in `ok`.
struct Helper {
    fd: i32,
    byte: u8,
    calls: u64,
    ok: AtomicU64,
    /// Where it runs: a CPU of its own when there are two, so that both threads update the
    /// process's counters at the same moment.
    cpus: Option<libc::cpu_set_t>,
}

/// CPU `n` alone, when this machine has more than one CPU.
fn only_cpu(n: usize) -> Option<libc::cpu_set_t> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    (online > 1).then(|| {
        // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET stays within it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(n, &mut set);
            set
        }
    })
}

/// Pins the calling thread to `cpus`, by raw syscall (see [`helper_thread`]).
///
/// # Safety
/// Allocation-free; safe to call in a forked child or a bare clone'd thread.
unsafe fn pin(cpus: &Option<libc::cpu_set_t>) {
    if let Some(set) = cpus {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: a valid cpu_set_t of `size` bytes; failing only leaves the thread unpinned.
        unsafe {
            libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                size,
                std::ptr::from_ref(set),
            )
        };
    }
}

extern "C" fn helper_thread(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `threaded_workload` passes a `Helper` that outlives the thread.
    let h = unsafe { &*arg.cast::<Helper>() };
    // SAFETY: allocation-free.
    unsafe { pin(&h.cpus) };
    for _ in 0..h.calls {
        // SAFETY: one byte from `h.byte` to an open descriptor. A raw syscall: this thread
        // shares the main thread's TLS (no CLONE_SETTLS), so it must not touch libc state.
        let r = unsafe { libc::syscall(libc::SYS_write, h.fd, &raw const h.byte, 1) };
        if r == 1 {
            h.ok.fetch_add(1, Ordering::Relaxed);
        }
    }
    0
}

/// A process that gains a second thread and loses it again, round after round, writing all
/// the while (the helper thread as well): the exit programs add a process's counts without
/// atomics while it has one thread and atomically while it has more
/// (`zcprof-ebpf/src/syscalls.rs`, `alone`), and no count may be lost at either edge.
fn threaded_workload() -> Child {
    // Enough rounds that plain adds from two threads at once would lose some (checked: with
    // `alone` always true, each of three runs lost between 160 and 2,900 of these writes).
    const ROUNDS: usize = 30;
    const CALLS: u64 = 20_000;
    const STACK: usize = 256 * 1024;
    // SAFETY: open(2) of a NUL-terminated literal path.
    let devnull = unsafe { libc::open(c("/dev/null").as_ptr(), libc::O_WRONLY) };
    // SAFETY: an anonymous private mapping for the helper thread's stack, checked below.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    assert_ne!(stack, libc::MAP_FAILED);
    let helper = Helper {
        fd: devnull,
        byte: 0,
        calls: CALLS,
        ok: AtomicU64::new(0),
        cpus: only_cpu(1),
    };
    let main_cpu = only_cpu(0);
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_CHILD_CLEARTID;
    let byte = [0u8; 1];
    // SAFETY: the child clones threads on the stack mapped above (one at a time: each round
    // waits until the kernel cleared `tid` at the thread's exit, after its last use of the
    // stack) and writes from `byte`, which outlives it, to the descriptor opened above.
    let child = in_child(|t: &mut Tally| unsafe {
        pin(&main_cpu);
        for _ in 0..ROUNDS {
            let mut tid: libc::pid_t = -1;
            let top = stack.cast::<u8>().add(STACK).cast();
            let arg = (&raw const helper).cast_mut().cast();
            let ptid = std::ptr::null_mut::<libc::pid_t>();
            let tls = std::ptr::null_mut::<libc::c_void>();
            if libc::clone(helper_thread, top, flags, arg, ptid, tls, &raw mut tid) < 0 {
                libc::_exit(3);
            }
            // Both threads write at once, then this one alone.
            for _ in 0..CALLS {
                t.note("write", libc::write(devnull, byte.as_ptr().cast(), 1));
            }
            loop {
                let now = std::ptr::read_volatile(&raw const tid);
                if now == 0 {
                    break;
                }
                libc::syscall(libc::SYS_futex, &raw const tid, libc::FUTEX_WAIT, now, 0);
            }
            for _ in 0..CALLS {
                t.note("write", libc::write(devnull, byte.as_ptr().cast(), 1));
            }
        }
        let ok = helper.ok.load(Ordering::Relaxed);
        let i = common::index("write");
        t.calls[i] += ok;
        t.bytes[i] += ok;
    });
    // SAFETY: unmapping and closing what this function made, after the child is done.
    unsafe {
        libc::munmap(stack, STACK);
        libc::close(devnull);
    }
    let calls = ROUNDS as u64 * CALLS * 3;
    assert_eq!(
        child.tally.get("write"),
        (calls, calls, 0),
        "every write moved its byte"
    );
    child
}

/// The socket families, including the message vectors of recvmmsg/sendmmsg.
fn socket_workload() -> Child {
    let mut fds = [0i32; 2];
    assert_eq!(
        // SAFETY: socketpair writes two descriptors into a two-element array.
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) },
        0
    );
    let [tx, rx] = fds;
    let mut bufs: Vec<Vec<u8>> = vec![vec![1u8; 100], vec![2u8; 200], vec![3u8; 300]];
    let mut rbufs: Vec<Vec<u8>> = vec![vec![0u8; 1000], vec![0u8; 1000], vec![0u8; 1000]];
    let mut iovs: Vec<libc::iovec> = bufs.iter_mut().map(|b| iov(b)).collect();
    let mut riovs: Vec<libc::iovec> = rbufs.iter_mut().map(|b| iov(b)).collect();
    // SAFETY: an all-zero mmsghdr/msghdr is a valid empty header (null pointers, zero lengths).
    let mut msgs: Vec<libc::mmsghdr> = (0..3).map(|_| unsafe { std::mem::zeroed() }).collect();
    // SAFETY: an all-zero mmsghdr/msghdr is a valid empty header (null pointers, zero lengths).
    let mut rmsgs: Vec<libc::mmsghdr> = (0..3).map(|_| unsafe { std::mem::zeroed() }).collect();
    for i in 0..3 {
        msgs[i].msg_hdr.msg_iov = &mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        rmsgs[i].msg_hdr.msg_iov = &mut riovs[i];
        rmsgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: an all-zero mmsghdr/msghdr is a valid empty header (null pointers, zero lengths).
    let mut one: libc::msghdr = unsafe { std::mem::zeroed() };
    one.msg_iov = iovs.as_mut_ptr();
    one.msg_iovlen = 2;
    // SAFETY: an all-zero mmsghdr/msghdr is a valid empty header (null pointers, zero lengths).
    let mut rone: libc::msghdr = unsafe { std::mem::zeroed() };
    rone.msg_iov = riovs.as_mut_ptr();
    rone.msg_iovlen = 1;
    let mut scratch = vec![0u8; 4096];
    // SAFETY: the child passes only buffers and headers built above, which outlive it.
    let child = in_child(|t: &mut Tally| unsafe {
        let s = scratch.as_mut_ptr().cast();
        t.note("sendto", libc::sendto(tx, s, 1234, 0, std::ptr::null(), 0));
        t.note(
            "recvfrom",
            libc::recvfrom(rx, s, 4096, 0, std::ptr::null_mut(), std::ptr::null_mut()),
        );
        t.note("sendmsg", libc::sendmsg(tx, &one, 0));
        t.note("recvmsg", libc::recvmsg(rx, &mut rone, 0));
        let sent = libc::sendmmsg(tx, msgs.as_mut_ptr(), 3, 0) as isize;
        let bytes: u64 = msgs
            .iter()
            .take(sent.max(0) as usize)
            .map(|m| m.msg_len as u64)
            .sum();
        t.note_mmsg("sendmmsg", sent, bytes);
        let mut receive = || {
            let got = libc::recvmmsg(
                rx,
                rmsgs.as_mut_ptr(),
                3,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            );
            let bytes: u64 = rmsgs
                .iter()
                .take(got.max(0) as usize)
                .map(|m| m.msg_len as u64)
                .sum();
            (got as isize, bytes)
        };
        let (got, bytes) = receive();
        t.note_mmsg("recvmmsg", got, bytes);
        // Nothing left to receive: an error (EAGAIN) counts as a call with an error.
        let (none, _) = receive();
        t.note_mmsg("recvmmsg", none, 0);
    });
    // SAFETY: closing descriptors this test opened, after the child is done with them.
    unsafe {
        libc::close(tx);
        libc::close(rx);
    }
    assert_eq!(child.tally.get("sendmmsg"), (1, 600, 0));
    assert_eq!(child.tally.get("recvmmsg"), (2, 600, 1));
    assert_eq!(child.tally.get("sendmsg"), (1, 300, 0));
    child
}

/// MSG_ZEROCOPY on loopback TCP: sends with the flag go to their own rows, and the
/// notifications the child reads from its error queue (the kernel always copies on
/// loopback) to `msg_zerocopy_copied`; a flagged send on a socket without `SO_ZEROCOPY`
/// is requested but never notified. The child parses each notification itself.
fn msg_zerocopy_workload() -> Child {
    let (tx, rx) = tcp_pair(true);
    let (plain_tx, plain_rx) = tcp_pair(false);
    let mut data = vec![7u8; 40_000];
    let mut sink = vec![0u8; 1 << 20];
    let mut control = [0u8; 256];
    let mut data_iov = iov(&mut data);
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut send_hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    send_hdr.msg_iov = &mut data_iov;
    send_hdr.msg_iovlen = 1;
    // SAFETY: the child passes only buffers and headers built above, which outlive it.
    let child = in_child(|t: &mut Tally| unsafe {
        let d = data.as_ptr().cast();
        let zc = libc::MSG_ZEROCOPY;
        t.note(
            "sendto_zerocopy",
            libc::sendto(tx, d, 10_000, zc, std::ptr::null(), 0),
        );
        t.note(
            "sendto_zerocopy",
            libc::sendto(tx, d, 20_000, zc, std::ptr::null(), 0),
        );
        t.note("sendmsg_zerocopy", libc::sendmsg(tx, &send_hdr, zc));
        t.note("sendto", libc::sendto(tx, d, 5_000, 0, std::ptr::null(), 0));
        // Without SO_ZEROCOPY the kernel ignores the flag and copies, and says nothing.
        t.note(
            "sendto_zerocopy",
            libc::sendto(plain_tx, d, 3_000, zc, std::ptr::null(), 0),
        );
        let mut got = 0;
        while got < 75_000 {
            let n = t.note("read", libc::read(rx, sink.as_mut_ptr().cast(), sink.len()));
            assert!(n > 0);
            got += n;
        }
        let n = t.note(
            "read",
            libc::read(plain_rx, sink.as_mut_ptr().cast(), sink.len()),
        );
        assert_eq!(n, 3_000);
        // Three sends to notify (ids 0..=2), possibly in several notifications.
        let mut notified = 0;
        let mut attempts = 0;
        while notified < 3 && attempts < 2000 {
            attempts += 1;
            let mut hdr: libc::msghdr = std::mem::zeroed();
            hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_controllen = control.len();
            let r = t.note("recvmsg", libc::recvmsg(tx, &mut hdr, libc::MSG_ERRQUEUE));
            if r < 0 {
                libc::usleep(1000);
                continue;
            }
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            assert!(!cmsg.is_null());
            let ee = libc::CMSG_DATA(cmsg)
                .cast::<libc::sock_extended_err>()
                .read_unaligned();
            assert_eq!(ee.ee_origin, 5, "SO_EE_ORIGIN_ZEROCOPY");
            let sends = u64::from(ee.ee_data - ee.ee_info + 1);
            let row = if ee.ee_code & 1 == 1 {
                "msg_zerocopy_copied"
            } else {
                "msg_zerocopy_done"
            };
            t.calls[common::index(row)] += sends;
            notified += sends;
        }
        assert_eq!(notified, 3, "every zero-copy send was notified");
    });
    // SAFETY: closing descriptors this test opened, after the child is done with them.
    unsafe {
        for fd in [tx, rx, plain_tx, plain_rx] {
            libc::close(fd);
        }
    }
    assert_eq!(child.tally.get("sendto_zerocopy"), (3, 33_000, 0));
    assert_eq!(child.tally.get("sendmsg_zerocopy"), (1, 40_000, 0));
    assert_eq!(
        child.tally.get("msg_zerocopy_copied").0,
        3,
        "loopback always copies"
    );
    child
}

/// The zero-copy family: sendfile, splice, vmsplice, tee, copy_file_range.
fn zero_copy_workload() -> Child {
    let input = TempFile::new("zc-in", 300_000);
    let output = TempFile::new("zc-out", 0);
    let fd = input.open(libc::O_RDONLY);
    let out = output.open(libc::O_WRONLY);
    // SAFETY: open(2) of a NUL-terminated literal path.
    let devnull = unsafe { libc::open(c("/dev/null").as_ptr(), libc::O_WRONLY) };
    let mut p1 = [0i32; 2];
    let mut p2 = [0i32; 2];
    // SAFETY: pipe writes two descriptors into a two-element array.
    assert_eq!(unsafe { libc::pipe(p1.as_mut_ptr()) }, 0);
    // SAFETY: pipe writes two descriptors into a two-element array.
    assert_eq!(unsafe { libc::pipe(p2.as_mut_ptr()) }, 0);
    let mut page = vec![7u8; 4096];
    let v = [iov(&mut page)];
    // SAFETY: the child passes only `page` (through `v`), offsets on its stack and descriptors opened above.
    let child = in_child(|t: &mut Tally| unsafe {
        let mut off: libc::off_t = 0;
        t.note("sendfile", libc::sendfile(out, fd, &mut off, 100_000));
        t.note("sendfile", libc::sendfile(-1, fd, &mut off, 10)); // EBADF
        let mut in_off: libc::loff_t = 100_000;
        let mut out_off: libc::loff_t = 0;
        let n = libc::copy_file_range(fd, &mut in_off, out, &mut out_off, 50_000, 0);
        t.note("copy_file_range", n);
        let mut foff: libc::loff_t = 0;
        let moved = libc::splice(fd, &mut foff, p1[1], std::ptr::null_mut(), 65_536, 0);
        t.note("splice", moved);
        t.note(
            "splice",
            libc::splice(
                p1[0],
                std::ptr::null_mut(),
                devnull,
                std::ptr::null_mut(),
                65_536,
                0,
            ),
        );
        t.note("vmsplice", libc::vmsplice(p1[1], v.as_ptr(), 1, 0));
        t.note("tee", libc::tee(p1[0], p2[1], 4096, 0));
        t.note(
            "splice",
            libc::splice(
                p1[0],
                std::ptr::null_mut(),
                devnull,
                std::ptr::null_mut(),
                4096,
                0,
            ),
        );
        t.note(
            "splice",
            libc::splice(
                p2[0],
                std::ptr::null_mut(),
                devnull,
                std::ptr::null_mut(),
                4096,
                0,
            ),
        );
    });
    // SAFETY: closing descriptors this test opened, after the child is done with them.
    unsafe {
        for fd in [fd, out, devnull, p1[0], p1[1], p2[0], p2[1]] {
            libc::close(fd);
        }
    }
    assert_eq!(child.tally.get("sendfile"), (2, 100_000, 1));
    assert_eq!(child.tally.get("splice"), (4, 65_536 * 2 + 4096 * 2, 0));
    assert_eq!(child.tally.get("tee"), (1, 4096, 0));
    child
}

/// Issue 12 point 4, the nginx case: reads of a non-blocking TCP socket with nothing to
/// read fail with EAGAIN. They are counted by errno, as "would block", not as failures.
fn nonblocking_workload() -> Child {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    server.set_nonblocking(true).expect("O_NONBLOCK");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&server);
    let mut buf = [0u8; 512];
    // SAFETY: the child passes only `buf` and a descriptor that outlive it.
    let child = in_child(|t: &mut Tally| unsafe {
        let p = buf.as_mut_ptr().cast();
        for _ in 0..5 {
            t.note("read", libc::read(fd, p, buf.len()));
        }
        for _ in 0..3 {
            t.note(
                "recvfrom",
                libc::recvfrom(
                    fd,
                    p,
                    buf.len(),
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ),
            );
        }
        t.note("write", libc::write(fd, p, 0)); // a success among the failures
    });
    drop((client, server));
    let eagain = errno::slot(libc::EAGAIN as u64);
    assert_eq!(child.tally.get("read"), (5, 0, 5));
    assert_eq!(child.tally.errno[common::index("read")][eagain], 5);
    assert_eq!(child.tally.errno[common::index("recvfrom")][eagain], 3);
    child
}

fn exact_ground_truth(mode: SyscallProbe, test: &str) {
    if !privileged(test) {
        return;
    }
    let (rt, mut session) = start(mode);
    let files = file_workload();
    let sockets = socket_workload();
    let zero_copy = zero_copy_workload();
    let nonblocking = nonblocking_workload();
    let msg_zerocopy = msg_zerocopy_workload();
    rt.block_on(session.flush()).expect("flush");
    let m = &session.model;
    assert_exact(m, &files, "file workload");
    assert_exact(m, &sockets, "socket workload");
    assert_exact(m, &zero_copy, "zero-copy workload");
    assert_exact(m, &nonblocking, "non-blocking workload");
    assert_exact(m, &msg_zerocopy, "MSG_ZEROCOPY workload");
    // The kernel copied every notified send, and nobody confirmed the one without
    // SO_ZEROCOPY: all 73,000 requested bytes count as copied, none as zero-copy.
    let f = process(m, msg_zerocopy.pid).totals.syscall.figures();
    assert_eq!(
        (
            f.msg_zerocopy.requested_bytes,
            f.msg_zerocopy.requested_sends
        ),
        (73_000, 4)
    );
    assert_eq!(
        (f.msg_zerocopy.copied_sends, f.msg_zerocopy.done_sends),
        (3, 0)
    );
    assert_eq!(f.copy_u2k_bytes, 73_000 + 5_000);
    assert_eq!(f.zero_copy_bytes, 0);
    // What run, record and diff show: the 8 EAGAINs by name, apart from failures.
    let layer = zcprof::report::figures::syscall_layer(&process(m, nonblocking.pid).totals.syscall);
    assert_eq!(
        (
            layer.totals.errors,
            layer.totals.would_block,
            layer.totals.failures()
        ),
        (8, 8, 0)
    );
    assert_eq!(layer.totals.errno, [("EAGAIN".to_string(), 8)].into());
    assert_eq!(
        layer.syscalls["read"].errno,
        [("EAGAIN".to_string(), 5)].into()
    );
    let files = zcprof::report::figures::syscall_layer(&process(m, files.pid).totals.syscall);
    assert_eq!(
        (files.totals.would_block, files.totals.failures()),
        (0, 1),
        "the EBADF write is a failure"
    );
    assert_eq!(files.totals.errno, [("EBADF".to_string(), 1)].into());
    let f = process(m, zero_copy.pid).totals.syscall.figures();
    assert_eq!(
        f.copied_bytes(),
        0,
        "the zero-copy workload copied nothing through syscalls"
    );
    assert_eq!(
        f.zero_copy_bytes,
        100_000 + 50_000 + 65_536 * 2 + 4096 * 3 + 4096
    );
    assert_eq!(m.counters.lost(), 0, "no lost events: {:?}", m.counters);
    assert_eq!(m.malformed, 0);
}

#[test]
fn btf_raw_tracepoint_counts_exactly() {
    exact_ground_truth(SyscallProbe::Btf, "btf_raw_tracepoint_counts_exactly");
}

#[test]
fn raw_tracepoint_counts_exactly() {
    exact_ground_truth(SyscallProbe::Raw, "raw_tracepoint_counts_exactly");
}

#[test]
fn per_syscall_tracepoints_count_exactly() {
    exact_ground_truth(
        SyscallProbe::Tracepoint,
        "per_syscall_tracepoints_count_exactly",
    );
}

/// The default probe mode's exit program adds a single-threaded process's counts without
/// atomics; a process that keeps gaining and losing a thread is still counted exactly (the
/// other modes share that code, and their exact tests load it).
#[test]
fn threads_coming_and_going_are_counted_exactly() {
    if !privileged("threads_coming_and_going_are_counted_exactly") {
        return;
    }
    let (rt, mut session) = start(SyscallProbe::Btf);
    let threaded = threaded_workload();
    rt.block_on(session.flush()).expect("flush");
    let m = &session.model;
    assert_exact(m, &threaded, "a process gaining and losing a thread");
    assert_eq!(m.counters.lost(), 0, "no lost events: {:?}", m.counters);
}

/// A busy neighbour running at the same time is not attributed to the workload, and the
/// workload is not attributed to it.
#[test]
fn other_processes_are_not_attributed() {
    if !privileged("other_processes_are_not_attributed") {
        return;
    }
    let (rt, mut session) = start(SyscallProbe::Raw);
    let mut noise = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            "of=/dev/null",
            "bs=512",
            "count=400000",
            "status=none",
        ])
        .spawn()
        .expect("dd runs");
    let files = file_workload();
    assert!(noise.wait().expect("dd").success());
    rt.block_on(session.flush()).expect("flush");
    let m = &session.model;
    assert_exact(m, &files, "file workload beside dd");
    let dd = process(m, noise.id());
    let (calls, bytes, _) = triple(&dd.totals.syscall[common::index("write")]);
    assert_eq!(
        (calls, bytes),
        (400_000, 400_000 * 512),
        "dd's writes are its own"
    );
}

/// When a PID is reused, the second process starts from zero: the kernel flushed and
/// deleted the first one's entries at its exit.
#[test]
fn reused_pids_are_not_merged() {
    if !privileged("reused_pids_are_not_merged") {
        return;
    }
    let (rt, mut session) = start(SyscallProbe::Raw);
    // SAFETY: open(2) of a NUL-terminated literal path.
    let devnull = unsafe { libc::open(c("/dev/null").as_ptr(), libc::O_WRONLY) };
    let buf = vec![0u8; 1000];
    // SAFETY: the child writes from `buf`, which outlives it, to the descriptor opened above.
    let first = in_child(|t| unsafe {
        t.note("write", libc::write(devnull, buf.as_ptr().cast(), 1000));
    });
    // Make the next fork get the same PID (root may set ns_last_pid). Another process may
    // fork in between, so try a few times.
    let mut second = None;
    for _ in 0..20 {
        fs::write("/proc/sys/kernel/ns_last_pid", (first.pid - 1).to_string())
            .expect("ns_last_pid");
        // SAFETY: the child writes from `buf`, which outlives it, to the descriptor opened above.
        let child = in_child(|t| unsafe {
            t.note("write", libc::write(devnull, buf.as_ptr().cast(), 10));
            t.note("write", libc::write(devnull, buf.as_ptr().cast(), 10));
        });
        if child.pid == first.pid {
            second = Some(child);
            break;
        }
    }
    // SAFETY: closing the descriptor this test opened, after both children are done.
    unsafe { libc::close(devnull) };
    let second = second.expect("could not get the same pid again in 20 tries");
    rt.block_on(session.flush()).expect("flush");
    let m = &session.model;
    let both: Vec<&Process> = m
        .processes()
        .filter(|p| p.tgid == first.pid && p.ppid == Some(std::process::id()))
        .collect();
    assert_eq!(both.len(), 2, "two instances of pid {}", first.pid);
    assert_eq!(
        triple(&both[0].totals.syscall[common::index("write")]),
        first.tally.get("write")
    );
    assert_eq!(
        triple(&both[1].totals.syscall[common::index("write")]),
        second.tally.get("write")
    );
}
