//! The `zcprof` binary: parses the command line and hands over to the library. Errors reach
//! the user as one line (`zcprof: what failed: why`) and a non-zero exit status.

#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `zcprof top | head` would panic on the first write after
    // `head` exits. Restore the default, as other Unix tools have it: end quietly. (Sockets
    // are unaffected: std and tokio send with MSG_NOSIGNAL.)
    // SAFETY: setting a signal disposition to SIG_DFL before any thread is started.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    match zcprof::cli::run() {
        Ok(code) => code,
        Err(err) => zcprof::stdio::exit_on_error(&err),
    }
}
