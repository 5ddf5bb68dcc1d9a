//! `cargo xtask dist`, through the real `xtask` binary: the release binaries, the man pages
//! and the bash, zsh and fish completions are written, and every subcommand that `zcprof
//! --help` lists has its man page and appears in every completion file.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommand names in the `Commands:` block of `zcprof --help` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A man page's text with roff's escaped hyphens (`zcprof\-top`) made plain.
fn read_man(path: &Path) -> String {
    read(path).replace("\\-", "-")
}

#[test]
fn dist_writes_binaries_man_pages_and_completions() {
    let out = tempfile::tempdir().expect("temp dir");
    let printed = run(Command::new(env!("CARGO_BIN_EXE_xtask"))
        // `--dev`: the suite's own build, not a second optimised one (the files are the same).
        .args(["dist", "--dev", "--out"])
        .arg(out.path()));
    let prefix = out.path();
    let zcprof = prefix.join("bin/zcprof");
    assert!(prefix.join("bin/zcprof-demo").is_file(), "{printed}");

    let version = run(Command::new(&zcprof).arg("--version"));
    assert!(
        version.starts_with("zcprof ") && version.contains(" (commit "),
        "{version}"
    );

    let names = subcommands(&run(Command::new(&zcprof).arg("--help")));
    // The list is read from the binary; this guards against reading nothing.
    for expected in ["top", "run", "demo", "record", "diff", "serve", "doctor"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let man = prefix.join("share/man/man1");
    let main_page = read_man(&man.join("zcprof.1"));
    let completions: Vec<(PathBuf, String)> = [
        "share/bash-completion/completions/zcprof",
        "share/zsh/site-functions/_zcprof",
        "share/fish/vendor_completions.d/zcprof.fish",
    ]
    .iter()
    .map(|p| (prefix.join(p), read(&prefix.join(p))))
    .collect();
    for name in &names {
        let page = man.join(format!("zcprof-{name}.1"));
        assert!(
            read_man(&page).contains(&format!("zcprof-{name}")),
            "{}",
            page.display()
        );
        assert!(
            main_page.contains(&format!("zcprof-{name}(1)")),
            "zcprof.1 lists {name}"
        );
        for (path, text) in &completions {
            assert!(
                text.contains(name.as_str()),
                "{} completes {name}",
                path.display()
            );
        }
    }
    // The packaging command itself is no part of what users see.
    for (path, text) in &completions {
        assert!(!text.contains("generate"), "{}", path.display());
    }
    assert!(!main_page.contains("generate"));
    assert!(
        printed.contains("zcprof.fish"),
        "dist lists what it wrote: {printed}"
    );
}
