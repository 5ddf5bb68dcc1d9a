//! The `zcprof` binary: parses the command line and hands over to the library. Errors reach
//! the user as one line (`zcprof: what failed: why`) and a non-zero exit status.

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    match zcprof::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("zcprof: {err:#}");
            ExitCode::FAILURE
        }
    }
}
