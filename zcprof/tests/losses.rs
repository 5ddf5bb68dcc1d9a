//! Lost events are counted, not silent: a per-thread stash map that is full. In tracepoint
//! mode recvmmsg's `enter` keeps the message vector per thread until its `exit`; with more
//! threads inside recvmmsg at once than the stash holds, the enters that find it full are
//! counted (`stash_full`), their exits find no vector (`mmsg_no_enter`), and every call is
//! still counted. A test binary of its own: the test process itself makes the calls, and
//! nothing else in it may call recvmmsg meanwhile.

mod common;

use std::{
    os::fd::AsRawFd as _,
    time::{Duration, Instant},
};

use common::privileged;
use zcprof::{probes::SyscallProbe, report::Lost};
use zcprof_common::syscalls::{self, MMSG_ARGS_MAX_ENTRIES};

/// Threads in recvmmsg at once: more than the stash holds.
const THREADS: usize = MMSG_ARGS_MAX_ENTRIES as usize + 64;

#[test]
fn a_full_stash_map_is_a_counted_loss() {
    if !privileged("a_full_stash_map_is_a_counted_loss") {
        return;
    }
    let (rt, mut session) = common::session(SyscallProbe::Tracepoint);
    let me = std::process::id();
    let recvmmsg = syscalls::index_named("recvmmsg").expect("counted");
    let calls = |s: &zcprof::session::Session| {
        s.model
            .latest_instance(me)
            .and_then(|id| s.model.process(id))
            .map_or((0, 0), |p| {
                let c = &p.totals.syscall[recvmmsg];
                (c.calls, c.bytes)
            })
    };
    rt.block_on(session.flush()).expect("flush");
    let (calls_before, before) = (calls(&session), session.model.counters);

    // One UDP socket, connected to itself so that shutdown wakes every reader cleanly.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .connect(socket.local_addr().expect("address"))
        .expect("connect");
    let fd = socket.as_raw_fd();
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut buf = [0u8; 16];
                    let mut iov = libc::iovec {
                        iov_base: buf.as_mut_ptr().cast(),
                        iov_len: buf.len(),
                    };
                    // SAFETY: zeroed mmsghdr is valid; it points at our iovec only.
                    let mut msg: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    msg.msg_hdr.msg_iov = &mut iov;
                    msg.msg_hdr.msg_iovlen = 1;
                    // SAFETY: one valid mmsghdr; blocks until shutdown.
                    let n = unsafe { libc::recvmmsg(fd, &mut msg, 1, 0, std::ptr::null_mut()) };
                    (n, msg.msg_len)
                })
                .unwrap_or_else(|err| panic!("thread {i} of {THREADS}: {err}"))
        })
        .collect();
    // Wait until the enters the stash could not take have been counted.
    let wanted = (THREADS - MMSG_ARGS_MAX_ENTRIES as usize) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        rt.block_on(session.flush()).expect("flush");
        if session.model.counters.stash_full - before.stash_full >= wanted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of at least {wanted} failed stash inserts counted",
            session.model.counters.stash_full - before.stash_full
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: shutting down our own socket: each reader gets the end of the stream, one
    // empty message.
    assert_eq!(unsafe { libc::shutdown(fd, libc::SHUT_RDWR) }, 0);
    for t in threads {
        assert_eq!(t.join().expect("reader"), (1, 0), "one empty message");
    }
    rt.block_on(session.flush()).expect("flush");

    let after = session.model.counters;
    // Every call is counted, those whose vector was lost too; none moved a byte.
    let (calls_after, bytes_after) = calls(&session);
    assert_eq!(calls_after - calls_before.0, THREADS as u64);
    assert_eq!(bytes_after, calls_before.1);
    let stash_full = after.stash_full - before.stash_full;
    let no_enter = after.mmsg_no_enter - before.mmsg_no_enter;
    // At most the stash's size of the calls found room (other processes' calls only take
    // room away), and each call that did not exits without its vector.
    assert!(stash_full >= wanted, "stash_full {stash_full}");
    assert!(
        no_enter >= stash_full,
        "mmsg_no_enter {no_enter} < {stash_full}"
    );
    let lost = Lost::of(&session.model);
    assert!(lost.total >= stash_full + no_enter, "{lost:?}");
    assert!(lost.line().contains("stash map full"), "{}", lost.line());
    eprintln!(
        "{THREADS} readers: {stash_full} stash inserts failed, {no_enter} exits without enter"
    );
}
