//! `zcprof generate PREFIX`: the man pages and the bash, zsh and fish completions, made from
//! the clap definition that parses the command line, so they cannot drift from it. `cargo
//! xtask dist` runs it on the release binary. It is not part of that definition (nor of
//! `--help`): a tool for packaging, not for users.
//!
//! Files go where an installation prefix keeps them, so that `cp -r PREFIX/share
//! /usr/local/` (or a package) installs them:
//! - `share/man/man1/zcprof.1`, and `zcprof-SUBCOMMAND.1` for each subcommand;
//! - `share/bash-completion/completions/zcprof`;
//! - `share/zsh/site-functions/_zcprof`;
//! - `share/fish/vendor_completions.d/zcprof.fish`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::{Arg, ArgMatches, CommandFactory as _, value_parser};
use clap_complete::Shell;

use super::Cli;

/// Where each shell looks for completions under a prefix, and the file name it expects.
const COMPLETIONS: [(Shell, &str, &str); 3] = [
    (Shell::Bash, "share/bash-completion/completions", "zcprof"),
    (Shell::Zsh, "share/zsh/site-functions", "_zcprof"),
    (
        Shell::Fish,
        "share/fish/vendor_completions.d",
        "zcprof.fish",
    ),
];
const MAN: &str = "share/man/man1";

pub const NAME: &str = "generate";

/// The subcommand, hidden, for the parser only.
pub fn command() -> clap::Command {
    clap::Command::new(NAME)
        .hide(true)
        .about("Write the man pages and shell completions under PREFIX (for `cargo xtask dist`)")
        .arg(
            Arg::new("prefix")
                .value_name("PREFIX")
                .required(true)
                .value_parser(value_parser!(PathBuf))
                .help("An installation prefix: PREFIX/share/man/man1, PREFIX/share/…"),
        )
}

/// Writes everything and prints each file's path.
pub fn run(args: &ArgMatches) -> anyhow::Result<ExitCode> {
    let prefix = args
        .get_one::<PathBuf>("prefix")
        .context("generate needs a PREFIX")?;
    for path in write_all(prefix)? {
        crate::stdio::println(&path.display().to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes every man page and completion file under `prefix`; returns their paths.
pub fn write_all(prefix: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut cmd = Cli::command();
    let man = prefix.join(MAN);
    fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("writing the man pages into {}", man.display()))?;
    let mut written = list(&man)?;
    for (shell, dir, name) in COMPLETIONS {
        let dir = prefix.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "zcprof", &mut script);
        let path = dir.join(name);
        fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The files of `dir`, sorted.
fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    files.sort();
    Ok(files)
}
