//! `cargo xtask run -- ARGS`: set up, build zcprof (release) and run it as root with ARGS.

use std::process::Command;

use anyhow::Context as _;

use crate::{
    setup,
    util::{build_release, is_root},
};

pub fn run_zcprof(args: &[String]) -> anyhow::Result<std::process::ExitCode> {
    setup::run()?;
    let binary = build_release(&["zcprof", "zcprof-demos"], "building zcprof")?.join("zcprof");
    let mut command = if is_root() {
        Command::new(binary)
    } else {
        let mut c = Command::new("sudo");
        c.arg(binary);
        c
    };
    let status = command.args(args).status().context("starting zcprof")?;
    Ok(std::process::ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8,
    ))
}
