//! Forked worker processes and the shared page each one reports through.
//!
//! Why fork: the profiler attributes syscalls to a process, and a normal process makes
//! read/write calls the demo cannot see (the loader reading libc, stdout, std reading
//! /proc). A worker forked from the already-running, single-threaded parent inherits
//! everything it needs in memory and makes *only* the calls it tallies. It reports by
//! writing into a `MAP_SHARED | MAP_ANONYMOUS` page mapped before the fork (a pipe or
//! stdout would itself be a counted `write`) and leaves with `_exit`, which runs no
//! destructors and flushes nothing.
//!
//! Every file descriptor the scenario opens is registered here, so that each child can
//! close the ones it does not use (otherwise a pipe or socket never sees EOF) and the
//! parent can close its copies once all workers are running.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{DemoError, Result};
use crate::io::{Io, SysError};
use crate::syscalls::Tally;

/// Room for a worker's error message in its shared page.
const MESSAGE_CAP: usize = 512;

/// What a worker produced besides its syscalls. Zeroed memory is a valid value, which
/// matters because the page starts out zero-filled.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Bytes the worker copied in user space (memcpy, clone, to_vec), counted exactly.
    pub user_copy_bytes: u64,
    /// Useful payload bytes this role sent, received, or processed.
    pub payload_bytes: u64,
    /// File pages this role mapped in and touched through its one mapping of the input
    /// file (`mapping::Mapping::tallied`), the ground truth of zcprof's mapped layer; 0 for
    /// roles that map nothing.
    pub mapped_pages: u64,
    /// That file's `st_dev` and `st_ino` (valid when `mapped_pages` is non-zero).
    pub mapped_dev: u64,
    pub mapped_ino: u64,
    /// 1 when the kernel, not the worker's own loads, reads the mapping (write or send
    /// from it): see `mapping::Reader`.
    pub mapped_by_kernel: u64,
    /// Set by roles that check the payload, once everything they saw matched.
    pub verified: bool,
}

/// The layout of one worker's shared page.
#[repr(C)]
struct Slot {
    /// 0: never finished, 1: succeeded, 2: failed (see `message`).
    state: u32,
    message_len: u32,
    message: [u8; MESSAGE_CAP],
    start_ns: u64,
    end_ns: u64,
    stats: Stats,
    tally: Tally,
    /// Set by the parent once it has opened the worker's perf counters (or failed to):
    /// the worker starts its job only then.
    go: std::sync::atomic::AtomicU32,
}

const STATE_OK: u32 = 1;
const STATE_FAILED: u32 = 2;

/// A worker's error: a message the parent prints with the role's name.
#[derive(Debug)]
pub struct WorkerError(pub String);

impl WorkerError {
    pub fn msg(text: impl Into<String>) -> Self {
        WorkerError(text.into())
    }
}

impl From<SysError> for WorkerError {
    fn from(e: SysError) -> Self {
        WorkerError(e.to_string())
    }
}

impl From<io::Error> for WorkerError {
    fn from(e: io::Error) -> Self {
        WorkerError(e.to_string())
    }
}

pub type WorkerResult = std::result::Result<(), WorkerError>;

/// What a worker's closure gets: the tallying syscall layer and its stats.
pub struct Worker<'a> {
    pub io: Io<'a>,
    pub stats: &'a mut Stats,
}

impl Worker<'_> {
    /// Copies `src` into a new buffer and counts the bytes as a user-space copy.
    ///
    /// The copy is one call of libc's `memcpy` with the whole length, so that zcprof's user
    /// layer (`--user-copies`, uprobes on the libc copy routines) sees every counted byte:
    /// not inlined, the length is not a constant the compiler could expand into moves.
    #[inline(never)]
    pub fn copy_counted(&mut self, src: &[u8]) -> Vec<u8> {
        self.stats.user_copy_bytes += src.len() as u64;
        let mut out: Vec<u8> = Vec::with_capacity(src.len());
        // SAFETY: `out` has room for `src.len()` bytes, the two buffers are distinct
        // allocations, and every byte up to the new length is written by the copy.
        unsafe {
            libc::memcpy(out.as_mut_ptr().cast(), src.as_ptr().cast(), src.len());
            out.set_len(src.len());
        }
        out
    }
}

/// Monotonic nanoseconds; the same clock in every process, so workers' start and end
/// times can be compared.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC always exists (vDSO,
    // no traced syscall).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// A page mapped shared with one child; unmapped when dropped.
struct SharedSlot {
    ptr: NonNull<Slot>,
}

impl SharedSlot {
    fn new() -> Result<Self> {
        // SAFETY: an anonymous mapping with no address hint; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size_of::<Slot>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(DemoError::setup(
                "map a shared page for a worker",
                io::Error::last_os_error(),
            ));
        }
        // mmap never returns null for a non-fixed mapping, but check rather than assume.
        let ptr = NonNull::new(p.cast::<Slot>())
            .ok_or_else(|| DemoError::Run("mmap returned null".into()))?;
        Ok(SharedSlot { ptr })
    }
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from mmap of exactly this size and is unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), size_of::<Slot>()) };
    }
}

struct Child {
    role: &'static str,
    pid: libc::pid_t,
    slot: SharedSlot,
    /// The wait status once reaped.
    status: Option<i32>,
    /// CPU time the child used (from wait4), in seconds: user, system.
    cpu: (f64, f64),
    /// Page faults the child took (from wait4): minor, major.
    faults: (u64, u64),
    /// Its perf counters, when perf events are permitted.
    counters: Option<crate::perf::Counters>,
    /// What they counted, read once the child is reaped.
    perf: Option<crate::perf::PerfReport>,
}

/// What the parent learns about one finished worker.
#[derive(Clone, Debug)]
pub struct RoleOutcome {
    pub role: &'static str,
    pub pid: i32,
    pub tally: Tally,
    pub stats: Stats,
    pub start_ns: u64,
    pub end_ns: u64,
    /// CPU seconds the worker spent in user space and in the kernel: where the copy
    /// cost shows when the end-to-end rate is bound by another role.
    pub cpu_user_seconds: f64,
    pub cpu_system_seconds: f64,
    /// Page faults the worker took, as the kernel counts them for the process (every
    /// mapping: its binary, heap and stack too): served from memory, and with I/O.
    pub minor_faults: u64,
    pub major_faults: u64,
    /// The worker's perf counters (task-clock, page faults, and cycles/instructions where
    /// there is a PMU); `None` when perf events are not permitted.
    pub perf: Option<crate::perf::PerfReport>,
}

fn seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// Set by the SIGINT/SIGTERM handler so that the parent stops waiting, kills the
/// workers and unwinds normally (removing the temporary directory).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Makes Ctrl-C and SIGTERM end a run cleanly instead of leaving temporary files.
pub fn install_interrupt_handler() {
    let handler: extern "C" fn(libc::c_int) = on_interrupt;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// Starts workers and collects their outcomes. Dropping it kills and reaps any worker
/// still running, so an error in the parent never leaves processes behind.
#[derive(Default)]
pub struct Spawner {
    fds: Vec<OwnedFd>,
    children: Vec<Child>,
}

impl Spawner {
    /// Takes ownership of a descriptor the workers will share; returns its number.
    pub fn register(&mut self, fd: impl Into<OwnedFd>) -> RawFd {
        let fd = fd.into();
        let raw = fd.as_raw_fd();
        self.fds.push(fd);
        raw
    }

    /// Forks a worker that runs `job`, keeping only the registered descriptors in
    /// `keep` open. The caller must be single-threaded (checked in `runner`).
    pub fn spawn<F>(&mut self, role: &'static str, keep: &[RawFd], job: F) -> Result<()>
    where
        F: FnOnce(&mut Worker<'_>) -> WorkerResult,
    {
        let slot = SharedSlot::new()?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the process is single-threaded (runner checks /proc/self/task), so the
        // child may allocate and run arbitrary Rust code after fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(DemoError::setup(
                format!("fork the {role} worker"),
                io::Error::last_os_error(),
            ));
        }
        if pid == 0 {
            self.run_child(parent, &slot, keep, job);
        }
        let counters = crate::perf::Counters::open(pid).ok();
        // SAFETY: the page stays mapped while `slot` lives; the flag is an atomic.
        unsafe { slot.ptr.as_ref() }
            .go
            .store(1, std::sync::atomic::Ordering::Release);
        self.children.push(Child {
            role,
            pid,
            slot,
            status: None,
            cpu: (0.0, 0.0),
            faults: (0, 0),
            counters,
            perf: None,
        });
        Ok(())
    }

    /// The child side of `spawn`; never returns.
    fn run_child<F>(&self, parent: libc::pid_t, slot: &SharedSlot, keep: &[RawFd], job: F) -> !
    where
        F: FnOnce(&mut Worker<'_>) -> WorkerResult,
    {
        // A worker must not outlive the demo (Ctrl-C, SIGKILL): it could block forever
        // on a peer that is gone. prctl and getppid are not counted syscalls.
        // SAFETY: plain prctl/getppid calls; _exit if the parent is already gone.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            // The parent catches SIGINT/SIGTERM to clean up; workers just die.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
        for fd in &self.fds {
            let raw = fd.as_raw_fd();
            if !keep.contains(&raw) {
                // SAFETY: closing our inherited copy; the OwnedFd is never dropped in this
                // process because we leave through _exit.
                unsafe { libc::close(raw) };
            }
        }
        // SAFETY: the page is mapped, zero-filled (a valid Slot), and in this process
        // nothing else refers to it.
        let slot = unsafe { &mut *slot.ptr.as_ptr() };
        // Until the parent has its counters on this process (sched_yield is no counted
        // syscall).
        while slot.go.load(std::sync::atomic::Ordering::Acquire) == 0 {
            // SAFETY: no preconditions.
            unsafe { libc::sched_yield() };
        }
        slot.start_ns = now_ns();
        let result = {
            let mut worker = Worker {
                io: Io::new(&mut slot.tally),
                stats: &mut slot.stats,
            };
            catch_unwind(AssertUnwindSafe(|| job(&mut worker)))
        };
        slot.end_ns = now_ns();
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.0),
            Err(_) => Some("panicked".to_owned()),
        };
        let code = match failure {
            None => {
                slot.state = STATE_OK;
                0
            }
            Some(message) => {
                let n = message.len().min(MESSAGE_CAP);
                slot.message[..n].copy_from_slice(&message.as_bytes()[..n]);
                slot.message_len = n as u32;
                slot.state = STATE_FAILED;
                1
            }
        };
        // SAFETY: _exit ends the process without running destructors or atexit
        // handlers, which could otherwise flush inherited stdio buffers (a write).
        unsafe { libc::_exit(code) }
    }

    /// Closes the parent's copies of all registered descriptors, so that EOF reaches
    /// the workers once their peers finish.
    pub fn close_parent_fds(&mut self) {
        self.fds.clear();
    }

    /// Waits for every worker. If one fails, the others are killed (they could be
    /// blocked on it forever) and its message becomes the error.
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<RoleOutcome>> {
        self.close_parent_fds();
        let deadline = Instant::now() + timeout;
        let mut failure: Option<DemoError> = None;
        while self.children.iter().any(|c| c.status.is_none()) {
            let mut progressed = false;
            for child in self.children.iter_mut().filter(|c| c.status.is_none()) {
                let mut status = 0;
                // SAFETY: rusage is plain data; all-zero is a valid value to overwrite.
                let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
                // SAFETY: valid out-pointers; the pid is our own child.
                let r = unsafe { libc::wait4(child.pid, &mut status, libc::WNOHANG, &mut usage) };
                if r == child.pid {
                    child.status = Some(status);
                    child.cpu = (seconds(usage.ru_utime), seconds(usage.ru_stime));
                    let count = |n: libc::c_long| u64::try_from(n).unwrap_or(0);
                    child.faults = (count(usage.ru_minflt), count(usage.ru_majflt));
                    child.perf = child.counters.as_mut().and_then(|c| c.read());
                    progressed = true;
                    if failure.is_none() {
                        failure = child_failure(child);
                    }
                } else if r < 0 {
                    return Err(DemoError::setup(
                        format!("wait for the {} worker", child.role),
                        io::Error::last_os_error(),
                    ));
                }
            }
            if failure.is_none() && INTERRUPTED.load(Ordering::Relaxed) {
                failure = Some(DemoError::Run("interrupted".into()));
            }
            if failure.is_some() {
                self.kill_remaining();
                break;
            }
            if Instant::now() > deadline {
                self.kill_remaining();
                return Err(DemoError::Run(format!(
                    "workers did not finish within {} s and were killed",
                    timeout.as_secs()
                )));
            }
            if !progressed {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(self
            .children
            .iter()
            .map(|c| {
                // SAFETY: the child has been reaped, so nothing writes the page any more.
                let slot = unsafe { c.slot.ptr.as_ref() };
                RoleOutcome {
                    role: c.role,
                    pid: c.pid,
                    tally: slot.tally,
                    stats: slot.stats,
                    start_ns: slot.start_ns,
                    end_ns: slot.end_ns,
                    cpu_user_seconds: c.cpu.0,
                    cpu_system_seconds: c.cpu.1,
                    minor_faults: c.faults.0,
                    major_faults: c.faults.1,
                    perf: c.perf,
                }
            })
            .collect())
    }

    /// Kills and reaps every worker not yet reaped.
    fn kill_remaining(&mut self) {
        for child in self.children.iter_mut().filter(|c| c.status.is_none()) {
            let mut status = 0;
            // SAFETY: the pid is our own unreaped child, so it cannot have been reused.
            unsafe {
                libc::kill(child.pid, libc::SIGKILL);
                libc::waitpid(child.pid, &mut status, 0);
            }
            child.status = Some(status);
        }
    }
}

/// The error for a reaped child that did not succeed, if it did not.
fn child_failure(child: &Child) -> Option<DemoError> {
    // SAFETY: the child has been reaped; the page is ours alone.
    let slot = unsafe { child.slot.ptr.as_ref() };
    let status = child.status.unwrap_or(0);
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if exited_ok && slot.state == STATE_OK {
        return None;
    }
    let message = if slot.state == STATE_FAILED {
        let n = (slot.message_len as usize).min(MESSAGE_CAP);
        String::from_utf8_lossy(&slot.message[..n]).into_owned()
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    };
    Some(DemoError::Worker {
        role: child.role.to_owned(),
        message,
    })
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.kill_remaining();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Forking inside the multi-threaded test harness is unsafe in general, so the
    // fork paths are exercised through the binary in tests/; here only pure parts.
    #[test]
    fn zeroed_slot_is_unfinished() {
        let slot = SharedSlot::new().unwrap();
        // SAFETY: fresh anonymous mapping, zero-filled, not shared with anyone yet.
        let s = unsafe { slot.ptr.as_ref() };
        assert_eq!(s.state, 0);
        assert!(!s.stats.verified);
        assert!(s.tally.to_map().is_empty());
    }

    #[test]
    fn copy_counted_counts_exactly() {
        let mut tally = Tally::default();
        let mut stats = Stats::default();
        let mut w = Worker {
            io: Io::new(&mut tally),
            stats: &mut stats,
        };
        let v = w.copy_counted(&[1, 2, 3]);
        let _ = w.copy_counted(&v);
        assert_eq!(stats.user_copy_bytes, 6);
    }
}
