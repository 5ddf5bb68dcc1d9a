//! Compiles `zcprof-ebpf` for the BPF target (nightly, `-Z build-std=core`, bpf-linker) into
//! OUT_DIR, where `src/probes.rs` embeds it with `include_bytes_aligned!`. The object is
//! always built from source, never committed. `AYA_BUILD_SKIP=1` skips it (e.g. for a quick
//! `cargo check`; the binary then fails to compile, because the object is missing).
//!
//! Also sets `ZCPROF_COMMIT`, the commit zcprof is built from, for `zcprof --version`.

use std::{path::Path, process::Command};

use anyhow::{Context as _, anyhow};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    println!("cargo:rustc-env=ZCPROF_COMMIT={}", commit());
    if std::env::var_os("AYA_BUILD_SKIP").is_none() && which_bpf_linker().is_none() {
        return Err(anyhow!(
            "bpf-linker is not on PATH: run `cargo xtask setup` (or the README's commands) to install it"
        ));
    }
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "zcprof-ebpf")
        .ok_or_else(|| anyhow!("the zcprof-ebpf package is not in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::default(),
    )
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|candidate| candidate.is_file())
}

/// `git rev-parse --short=12 HEAD` of the source tree; `$ZCPROF_COMMIT` when set (a packager
/// building from a tarball knows it); `unknown` outside git. Cargo is told to build again when
/// HEAD moves: the files that name the commit are watched (only those that exist, since a
/// missing watched file would make every build rerun this script and the eBPF build).
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=ZCPROF_COMMIT");
    if let Some(given) = std::env::var("ZCPROF_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
    {
        return given.trim().to_string();
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    // HEAD itself (per worktree), the branch it names, and packed-refs (shared).
    let mut watched = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watched.push(Path::new(&dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(Path::new(&common).join(branch));
        }
        watched.push(Path::new(&common).join("packed-refs"));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    commit
}
