//! The guest's root filesystem: busybox, the caller's binaries with their shared libraries, extra
//! files, and a generated `/init` that runs the caller's commands between console markers.
//!
//! The tree is described in memory (guest path → where its bytes come from) and streamed into a
//! newc archive, so nothing is copied twice and a 200 MB bpftrace with LLVM costs one read. One
//! archive serves every kernel: the Debian cloud kernels have everything the lab uses built in
//! (initramfs, 8250 serial console, devtmpfs, tracefs, debugfs, bpffs, kprobes, BTF), so no
//! kernel modules go in.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::BufWriter,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use super::{cpio::NewcWriter, host::BUSYBOX, markers};

/// Where a guest path's content comes from.
#[derive(Debug, Clone)]
enum Source {
    Dir,
    /// A host file, copied with its permission bits (symlinks on the host are followed).
    Host(PathBuf),
    Inline {
        data: Vec<u8>,
        perm: u32,
    },
    Symlink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
}

/// A file the caller wants in the guest beyond the binaries.
#[derive(Debug, Clone)]
pub struct ExtraFile {
    pub host: PathBuf,
    /// Absolute path in the guest; a directory on the host is copied recursively under it.
    pub guest: String,
}

impl ExtraFile {
    /// Parses `HOST[:GUEST]`; without GUEST the file keeps its absolute host path.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let (host, guest) = match spec.split_once(':') {
            Some((h, g)) => (PathBuf::from(h), g.to_string()),
            None => {
                let abs = std::path::absolute(spec).with_context(|| format!("resolving {spec}"))?;
                (PathBuf::from(spec), abs.to_string_lossy().into_owned())
            }
        };
        if !guest.starts_with('/') {
            bail!("guest path in --file {spec:?} must be absolute");
        }
        Ok(Self { host, guest })
    }
}

/// The archive's contents, keyed by guest path without the leading `/`. A BTreeMap writes
/// parents before children because a path sorts before everything it prefixes.
#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, Source>,
}

impl Tree {
    fn insert(&mut self, guest: &str, source: Source) {
        let path = guest.trim_start_matches('/').to_string();
        // Parents are implied; creating them here keeps callers from having to.
        let mut parent = Path::new(&path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            self.entries
                .entry(p.to_string_lossy().into_owned())
                .or_insert(Source::Dir);
            parent = p.parent();
        }
        self.entries.insert(path, source);
    }

    fn contains(&self, guest: &str) -> bool {
        self.entries.contains_key(guest.trim_start_matches('/'))
    }

    /// Lines of `guest <- source`, written beside a kept archive for debugging.
    pub fn manifest(&self) -> String {
        let mut out = String::new();
        for (path, source) in &self.entries {
            let from = match source {
                Source::Dir => "dir".to_string(),
                Source::Host(p) => p.display().to_string(),
                Source::Inline { data, .. } => format!("generated, {} bytes", data.len()),
                Source::Symlink(t) => format!("-> {t}"),
                Source::CharDevice { major, minor } => format!("char {major}:{minor}"),
            };
            out.push_str(&format!("/{path}\t{from}\n"));
        }
        out
    }

    pub fn write(&self, archive: &Path) -> anyhow::Result<u64> {
        let file =
            File::create(archive).with_context(|| format!("creating {}", archive.display()))?;
        let mut w = NewcWriter::new(BufWriter::with_capacity(1 << 20, file));
        for (path, source) in &self.entries {
            let res = match source {
                Source::Dir => w.dir(path, 0o755),
                Source::Symlink(target) => w.symlink(path, target),
                Source::CharDevice { major, minor } => w.char_device(path, 0o600, *major, *minor),
                Source::Inline { data, perm } => {
                    w.file(path, *perm, data.len() as u64, &mut &data[..])
                }
                Source::Host(host) => {
                    let mut f =
                        File::open(host).with_context(|| format!("opening {}", host.display()))?;
                    let meta = f.metadata()?;
                    w.file(path, meta.permissions().mode() & 0o7777, meta.len(), &mut f)
                }
            };
            res.with_context(|| format!("writing /{path} into {}", archive.display()))?;
        }
        w.finish().context("finishing the initramfs")?;
        Ok(fs::metadata(archive)?.len())
    }
}

/// Everything that goes into the guest.
pub struct Contents<'a> {
    /// `(release, host path)` of each kernel's build config, installed as
    /// `/boot/config-<release>`: libbpf (kconfig externs) and `bpftool feature probe` read the
    /// running kernel's from there. All kernels' go into the one shared archive; each guest
    /// finds its own by `uname -r`.
    pub kernel_configs: &'a [(String, PathBuf)],
    pub bins: &'a [PathBuf],
    pub files: &'a [ExtraFile],
    pub commands: &'a [String],
}

pub fn build(contents: &Contents) -> anyhow::Result<Tree> {
    let mut tree = Tree::default();
    for dir in [
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "etc",
        "sys/fs/bpf",
        "sys/kernel/tracing",
    ] {
        tree.insert(dir, Source::Dir);
    }
    // The kernel opens /dev/console for init's stdin/out/err before /init can mount devtmpfs;
    // without this node init would run with no output at all.
    tree.insert("dev/console", Source::CharDevice { major: 5, minor: 1 });
    tree.insert(
        "etc/passwd",
        inline("root:x:0:0:root:/root:/bin/sh\n", 0o644),
    );
    tree.insert("etc/group", inline("root:x:0:\n", 0o644));

    for (release, config) in contents.kernel_configs {
        tree.insert(
            &format!("boot/config-{release}"),
            Source::Host(config.clone()),
        );
    }
    for bin in contents.bins {
        let name = bin
            .file_name()
            .with_context(|| format!("--bin {} has no file name", bin.display()))?
            .to_string_lossy()
            .into_owned();
        tree.insert(&format!("bin/{name}"), Source::Host(bin.clone()));
        for lib in shared_libraries(bin)? {
            let guest = lib.to_string_lossy().into_owned();
            // Stored under the path ldd printed (the loader's search path or the interpreter
            // path in the ELF), with the host's symlinks resolved into plain files.
            tree.insert(&guest, Source::Host(lib));
        }
    }
    for extra in contents.files {
        add_host_path(&mut tree, &extra.host, &extra.guest)?;
    }

    tree.insert("bin/busybox", Source::Host(PathBuf::from(BUSYBOX)));
    let applets = crate::util::stdout_of(Command::new(BUSYBOX).arg("--list-full"))?;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        // The caller's binaries win over busybox's applets of the same name.
        if !tree.contains(applet) && applet != "bin/busybox" {
            tree.insert(applet, Source::Symlink("/bin/busybox".to_string()));
        }
    }

    for (i, command) in contents.commands.iter().enumerate() {
        tree.insert(
            &format!("vmtest/cmd/{}", i + 1),
            inline(&format!("{command}\n"), 0o755),
        );
    }
    tree.insert("init", inline(&init_script(contents.commands.len()), 0o755));
    Ok(tree)
}

fn inline(text: &str, perm: u32) -> Source {
    Source::Inline {
        data: text.as_bytes().to_vec(),
        perm,
    }
}

fn add_host_path(tree: &mut Tree, host: &Path, guest: &str) -> anyhow::Result<()> {
    let meta = fs::metadata(host).with_context(|| format!("--file {}", host.display()))?;
    if !meta.is_dir() {
        tree.insert(guest, Source::Host(host.to_path_buf()));
        return Ok(());
    }
    tree.insert(guest, Source::Dir);
    for entry in fs::read_dir(host).with_context(|| format!("reading {}", host.display()))? {
        let entry = entry?;
        let child = format!(
            "{}/{}",
            guest.trim_end_matches('/'),
            entry.file_name().to_string_lossy()
        );
        add_host_path(tree, &entry.path(), &child)?;
    }
    Ok(())
}

/// The shared objects `bin` loads, per `ldd`, including the dynamic loader.
pub fn shared_libraries(bin: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .with_context(|| format!("running ldd {}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // ldd exits 1 for static executables and says so on either stream, depending on version.
    if text.contains("not a dynamic executable") || stderr.contains("not a dynamic executable") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        bail!(
            "ldd {} failed: {}",
            bin.display(),
            crate::util::last_line(&out.stderr)
        );
    }
    parse_ldd(&text).map_err(|e| anyhow::anyhow!("ldd {}: {e}", bin.display()))
}

/// Parses ldd's listing. Lines are `name => /path (0x…)`, `/path/to/ld.so (0x…)` for the
/// loader, `linux-vdso.so.1 (0x…)` for the vDSO (no file), or `name => not found`.
pub fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("statically linked") {
            continue;
        }
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!("{} not found", name.trim()));
                }
                rest.split_whitespace().next().unwrap_or("")
            }
            None => line.split_whitespace().next().unwrap_or(""),
        };
        // vDSO lines have no path, and some ldd versions print `name => (0x…)` for them.
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// `/init` for busybox sh. Mount failures are reported, not fatal: a kernel without debugfs
/// should still run the commands. Each command runs from its own file, so no quoting of the
/// caller's text happens anywhere.
pub fn init_script(commands: usize) -> String {
    let mut s = String::from(
        r#"#!/bin/sh
# Generated by `cargo xtask vmtest`.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
mnt() { mount -t "$1" "$1" "$2" || echo "vmtest: warning: cannot mount $1 on $2"; }
mnt proc /proc
mnt sysfs /sys
mnt devtmpfs /dev
mnt tmpfs /run
mnt tracefs /sys/kernel/tracing
mnt debugfs /sys/kernel/debug
mnt bpf /sys/fs/bpf
mnt securityfs /sys/kernel/security
ip link set lo up || echo "vmtest: warning: cannot bring up lo"
# Let BPF programs lock what they need on kernels before memcg accounting (< 5.11).
ulimit -l unlimited 2>/dev/null
cd /root
"#,
    );
    s.push_str(&format!(
        "echo \"{} uptime=$(cut -d' ' -f1 /proc/uptime) release=$(uname -r)\"\n",
        markers::INIT
    ));
    for n in 1..=commands {
        s.push_str(&format!(
            "echo \"{begin} {n}\"\n/bin/sh /vmtest/cmd/{n} </dev/null 2>&1\necho \"{end} {n} status=$?\"\n",
            begin = markers::BEGIN,
            end = markers::END,
        ));
    }
    s.push_str(&format!(
        r#"echo "{done}"
sync
echo o > /proc/sysrq-trigger
# Power-off is asynchronous; if it never comes, exiting init panics and panic=-1 with QEMU's
# -no-reboot ends the VM all the same.
sleep 5
poweroff -f
"#,
        done = markers::DONE
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_dynamic() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007f08)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f08)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f08)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libbpf.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn ldd_static_and_missing() {
        assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
        assert!(
            parse_ldd("\tlinux-vdso.so.1 =>  (0x00007ffd)\n")
                .unwrap()
                .is_empty()
        );
        let err = parse_ldd("\tlibfoo.so.3 => not found\n").unwrap_err();
        assert!(err.contains("libfoo.so.3"), "{err}");
    }

    #[test]
    fn tree_adds_parents_and_orders_them_first() {
        let mut tree = Tree::default();
        tree.insert("/lib/x86_64-linux-gnu/libc.so.6", inline("x", 0o644));
        tree.insert("/lib-extra/f", inline("y", 0o644));
        let keys: Vec<&str> = tree.entries.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "lib",
                "lib-extra",
                "lib-extra/f",
                "lib/x86_64-linux-gnu",
                "lib/x86_64-linux-gnu/libc.so.6"
            ]
        );
    }

    #[test]
    fn init_runs_every_command_between_markers() {
        let script = init_script(2);
        assert!(script.starts_with("#!/bin/sh\n"));
        for n in 1..=2 {
            assert!(script.contains(&format!("echo \"vmtest: begin {n}\"")));
            assert!(script.contains(&format!("/bin/sh /vmtest/cmd/{n} </dev/null 2>&1")));
            assert!(script.contains(&format!("echo \"vmtest: end {n} status=$?\"")));
        }
        assert!(script.contains("/proc/sysrq-trigger"));
    }

    #[test]
    fn extra_file_specs() {
        let f = ExtraFile::parse("a/b.o:/root/b.o").unwrap();
        assert_eq!(f.host, PathBuf::from("a/b.o"));
        assert_eq!(f.guest, "/root/b.o");
        assert!(ExtraFile::parse("a:rel").is_err());
        assert!(ExtraFile::parse("/x/y").unwrap().guest == "/x/y");
    }
}
