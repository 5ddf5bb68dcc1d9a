//! Processes zcprof starts end with it: a command under `run`/`record`, a `zcprof-demo` run
//! (`demo run`, `demo report`, the dashboard's demos tab). zcprof runs as root; a workload
//! it leaves behind keeps cores busy (or a socket bound) long after the user thinks it is
//! gone.
//!
//! Two mechanisms, both set up between fork and exec:
//! - `PR_SET_PDEATHSIG`: the kernel signals the child when zcprof dies, even by SIGKILL.
//!   It fires when the *thread* that forked the child exits, so children are spawned from
//!   zcprof's main thread (its runtime is single-threaded: `cli::run`), which lives as long
//!   as zcprof. zcprof may die between fork and the prctl: the child then checks that its
//!   parent is still zcprof and otherwise does not start.
//! - a process group of its own for `zcprof-demo` ([`Group`]), so that its workers can be
//!   signalled and killed together, and the terminal's Ctrl-C reaches zcprof alone, which
//!   forwards it. A user's command stays in zcprof's group (it may read the terminal).
//!
//! The death signal is SIGTERM: a command's own clean-up (a server stopping its workers, a
//! build stopping its compilers) and `zcprof-demo`'s (it kills its workers, which have their
//! own SIGKILL death signal, and removes its temporary files) then runs.

use std::{io, time::Duration};

use rustix::process::{self, Pid, Signal};

/// Makes the child of `command` receive `signal` when zcprof dies, and not start at all if
/// zcprof is already gone by the time it runs.
pub fn die_with_zcprof(command: &mut tokio::process::Command, signal: Signal) {
    let zcprof = process::getpid();
    // SAFETY: between fork and exec the closure makes two raw syscalls (prctl, getppid) and
    // builds an io::Error from a number: nothing allocates or takes a lock.
    unsafe {
        command.pre_exec(move || {
            process::set_parent_process_death_signal(Some(signal))?;
            if process::getppid() != Some(zcprof) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// A child's process group (the child leads it: `process_group(0)`), killed when this is
/// dropped, whatever ended the run: every member the child left behind goes with it.
pub struct Group(Pid);

impl Group {
    /// The group led by the child with `pid` (spawned with `process_group(0)`).
    pub fn led_by(pid: u32) -> Option<Group> {
        Pid::from_raw(i32::try_from(pid).ok()?).map(Group)
    }

    /// Sends `signal` to every member.
    pub fn signal(&self, signal: Signal) {
        let _ = process::kill_process_group(self.0, signal);
    }

    /// Whether any member (a zombie included) is left.
    pub fn alive(&self) -> bool {
        process::test_kill_process_group(self.0).is_ok()
    }

    /// Waits up to `grace` for the group to empty (its leader must have been reaped, or it
    /// counts as a member), then kills what is left.
    pub async fn end_within(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.signal(Signal::KILL);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}

/// The rustix signal for a number from [`crate::session::Signals`] (SIGINT or SIGTERM).
pub fn signal_of(number: i32) -> Signal {
    if number == libc::SIGINT {
        Signal::INT
    } else {
        Signal::TERM
    }
}
