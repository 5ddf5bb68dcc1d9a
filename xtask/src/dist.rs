//! `cargo xtask dist [--out DIR]`: what an installation needs, in one directory laid out like
//! an installation prefix (default `target/dist/`): the release binaries `bin/zcprof` and
//! `bin/zcprof-demo` (which zcprof looks for beside itself), and the man pages and shell
//! completions that `zcprof generate` makes from zcprof's own command-line definition
//! (`share/man/man1/`, `share/bash-completion/`, `share/zsh/`, `share/fish/`).
//!
//! `cp -r target/dist/* /usr/local/` installs it. The eBPF object is inside `zcprof`.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, bail};

use crate::util::{build, build_release, stdout_of, target_dir};

/// The binaries an installation needs (the benchmark's `zcbench` is not one of them).
const BINARIES: [&str; 2] = ["zcprof", "zcprof-demo"];

#[derive(clap::Args)]
pub struct Args {
    /// Where to write [default: target/dist]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Build the dev profile instead of release. For the test suite: the layout, man pages
    /// and completions are the same, and CI is spared a second, optimised build of the whole
    /// workspace (minutes on two cores). Not for installing.
    #[arg(long, hide = true)]
    dev: bool,
}

pub fn run_dist(args: Args) -> anyhow::Result<()> {
    let default = target_dir().join("dist");
    let out = args.out.unwrap_or_else(|| default.clone());
    if out == default && out.exists() {
        // Ours alone: start from nothing, so no file of an older build is left in it. A
        // directory the user named is written into, never emptied.
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let packages = ["zcprof", "zcprof-demos"];
    let release = if args.dev {
        build(&packages, false, "building the binaries")?
    } else {
        build_release(&packages, "building the release binaries")?
    };
    let bin = out.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    for name in BINARIES {
        let from = release.join(name);
        let to = bin.join(name);
        fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    let written = stdout_of(
        std::process::Command::new(bin.join("zcprof"))
            .arg("generate")
            .arg(&out),
    )?;
    if written.trim().is_empty() {
        bail!("zcprof generate wrote nothing into {}", out.display());
    }
    println!("dist: {}", out.display());
    for name in BINARIES {
        println!("  {}", bin.join(name).display());
    }
    print!("{}", indent(&written));
    Ok(())
}

fn indent(lines: &str) -> String {
    lines.lines().map(|l| format!("  {l}\n")).collect()
}
