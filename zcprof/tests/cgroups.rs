//! Processes in real cgroup v2 directories: the test makes two, forked workloads move
//! themselves into them and move known bytes, and the profiler must put each process in
//! its cgroup and the bytes per cgroup exactly; `run` and `record` name the cgroups.

mod common;

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use common::{Child, TempFile, in_child, privileged};
use serde_json::Value;
use zcprof::{host::cgroup, probes::SyscallProbe};

/// Two cgroups under the cgroup2 root (mounted here if the host has none, as in the lab),
/// removed when dropped.
struct Cgroups {
    root: PathBuf,
    /// Relative to the cgroup2 root: `/zcprof-test-PID`.
    base: String,
    /// The child cgroups under `base`.
    children: Vec<String>,
    mounted: Option<PathBuf>,
}

impl Cgroups {
    fn new(tag: &str) -> Cgroups {
        Cgroups::with(tag, &["a", "b"])
    }

    /// Child cgroups `children` under a base of their own.
    fn with(tag: &str, children: &[&str]) -> Cgroups {
        let (root, mounted) = match cgroup::v2_root() {
            Ok(root) => (root, None),
            Err(_) => {
                let dir =
                    std::env::temp_dir().join(format!("zcprof-cgroup2-{}", std::process::id()));
                std::fs::create_dir_all(&dir).expect("mount point");
                let target = CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
                let fs = CString::new("cgroup2").expect("no NUL");
                // SAFETY: NUL-terminated strings that outlive the call; no data argument.
                let mounted = unsafe {
                    libc::mount(
                        fs.as_ptr(),
                        target.as_ptr(),
                        fs.as_ptr(),
                        0,
                        std::ptr::null(),
                    )
                };
                assert_eq!(mounted, 0, "mounting cgroup2 at {}", dir.display());
                (dir.clone(), Some(dir))
            }
        };
        let base = format!("/zcprof-test-{tag}-{}", std::process::id());
        for child in children {
            std::fs::create_dir_all(root.join(&base[1..]).join(child)).expect("mkdir cgroup");
        }
        Cgroups {
            root,
            base,
            children: children.iter().map(|c| c.to_string()).collect(),
            mounted,
        }
    }

    /// The `cgroup.procs` of child cgroup `name`.
    fn procs(&self, name: &str) -> PathBuf {
        self.root
            .join(&self.base[1..])
            .join(name)
            .join("cgroup.procs")
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let dir = self.root.join(&self.base[1..]);
        for child in &self.children {
            let _ = std::fs::remove_dir(dir.join(child));
        }
        let _ = std::fs::remove_dir(&dir);
        if let Some(m) = &self.mounted
            && let Ok(target) = CString::new(m.as_os_str().as_encoded_bytes())
        {
            // SAFETY: a NUL-terminated path this test mounted.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
            let _ = std::fs::remove_dir(m);
        }
    }
}

/// `zcprof run --json -- sh -c SCRIPT`'s summary, from a file (`tag` names it): stderr also
/// carries the warnings of layers a kernel lacks (6.1).
fn run_json(script: &str, tag: &str) -> Value {
    let summary = common::temp(tag);
    let out = common::zcprof()
        .args(["run", "--json", "-o"])
        .arg(&summary)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("zcprof run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&summary).expect("the summary")).expect("run JSON")
}

/// A child that moves itself into the cgroup whose `cgroup.procs` is `procs` (a counted
/// write of "0"), then reads `file` to EOF.
fn workload(procs: &Path, file: &TempFile) -> Child {
    let procs = CString::new(procs.as_os_str().as_encoded_bytes()).expect("path");
    let fd = file.open(libc::O_RDONLY);
    let mut buf = vec![0u8; 32_768];
    let child = in_child(|t| {
        // SAFETY: raw syscalls on a path, a descriptor and a buffer prepared above.
        unsafe {
            let cg = libc::open(procs.as_ptr(), libc::O_WRONLY);
            assert!(cg >= 0);
            t.note("write", libc::write(cg, b"0".as_ptr().cast(), 1));
            libc::close(cg);
            while t.note("read", libc::read(fd, buf.as_mut_ptr().cast(), buf.len())) > 0 {}
        }
    });
    // SAFETY: closing a descriptor this test opened.
    unsafe { libc::close(fd) };
    child
}

#[test]
fn processes_are_counted_in_their_cgroups_exactly() {
    if !privileged("processes_are_counted_in_their_cgroups_exactly") {
        return;
    }
    let groups = Cgroups::new("lib");
    let (rt, mut session) = common::session(SyscallProbe::Btf);
    let small = TempFile::new("cgroup-a", 100_000);
    let large = TempFile::new("cgroup-b", 300_000);
    let children = [
        ("a", workload(&groups.procs("a"), &small)),
        ("a", workload(&groups.procs("a"), &small)),
        ("b", workload(&groups.procs("b"), &large)),
    ];
    rt.block_on(session.flush()).expect("flush");
    let ids: Vec<_> = children
        .iter()
        .map(|(_, c)| {
            session
                .model
                .child_of(std::process::id(), c.pid)
                .expect("the child's instance")
        })
        .collect();
    let cgroups = session.cgroups_of(&ids);
    for ((name, child), id) in children.iter().zip(&ids) {
        let c = cgroups.get(id).expect("a cgroup");
        assert_eq!(
            c.path.as_deref(),
            Some(groups.path(name).as_str()),
            "{}",
            child.pid
        );
        assert_eq!(c.container, None);
        assert!(c.id.is_some_and(|id| id > 1), "{c:?}");
    }
    // Per cgroup: the sum of its processes' bytes, against the sum of their tallies.
    for name in ["a", "b"] {
        let path = groups.path(name);
        let counted: u64 = ids
            .iter()
            .filter(|id| cgroups.get(id).and_then(|c| c.path.as_deref()) == Some(&path))
            .map(|id| {
                let p = session.model.process(*id).expect("instance");
                p.totals
                    .syscall
                    .slots()
                    .iter()
                    .map(|s| s.bytes)
                    .sum::<u64>()
            })
            .sum();
        let truth: u64 = children
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, c)| c.tally.bytes.iter().sum::<u64>())
            .sum();
        assert_eq!(counted, truth, "cgroup {path}");
    }
    assert_eq!(
        children[0].1.tally.get("read").1 + children[1].1.tally.get("read").1,
        200_000
    );
}

/// `run --json` and `record` of a shell that moves itself into a cgroup and then execs dd:
/// the process is shown in that cgroup, and `run` adds the per-cgroup totals.
#[test]
fn run_and_record_name_the_cgroup() {
    if !privileged("run_and_record_name_the_cgroup") {
        return;
    }
    let groups = Cgroups::new("cli");
    let script = format!(
        "echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=4096 count=25 status=none",
        groups.procs("b").display()
    );
    let run = run_json(&script, "cgroup-run");
    let errors: Vec<String> = common::run_schema()
        .iter_errors(&run)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let dd = run["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["comm"] == "dd")
        .expect("dd");
    assert_eq!(dd["cgroup"]["path"], groups.path("b").as_str(), "{dd}");
    // dd's writes, and the shell's echo of its pid into cgroup.procs before the exec.
    let echo = dd["pid"].to_string().len() as u64 + 1;
    assert_eq!(
        dd["syscall"]["syscalls"]["write"]["bytes"],
        25 * 4096 + echo
    );

    // The text form; two cgroups (the parent's shell is not in `b` before its echo: one
    // process, so the per-cgroup section needs a second one).
    let script = format!(
        "sh -c 'echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=4096 count=3 status=none'; sh -c 'echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=4096 count=5 status=none'",
        groups.procs("a").display(),
        groups.procs("b").display()
    );
    let out = common::zcprof()
        .args(["run", "--", "sh", "-c", &script])
        .output()
        .expect("zcprof run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("  cgroup {}\n", groups.path("a"))),
        "{text}"
    );
    assert!(
        text.contains("\nby cgroup (syscall and io_uring layers)\n"),
        "{text}"
    );

    let file = common::temp("cgroup-record");
    let status = common::zcprof()
        .args(["record", "-o"])
        .arg(&file)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=4096 count=2 status=none",
            groups.procs("a").display()
        ))
        .status()
        .expect("zcprof record");
    assert!(status.success());
    let rec: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("recording")).expect("JSON");
    let dd = rec["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["comm"] == "dd")
        .expect("dd");
    assert_eq!(dd["cgroup"], groups.path("a").as_str(), "{dd}");
    assert!(dd.get("container").is_none());
    zcprof_recording::parse(&std::fs::read(&file).expect("recording")).expect("parses");

    // diff --only: the cgroup's processes, or one line and exit 2 when none match.
    let path = file.to_str().expect("a UTF-8 path");
    let out = common::zcprof()
        .args(["diff", path, path, "--only", &groups.path("a")])
        .output()
        .expect("zcprof diff");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.ends_with(&format!("[only {}]", groups.path("a")))),
        "{text}"
    );
    assert!(text.contains("restricted to --only"), "{text}");
    common::fails(
        &["diff", path, path, "--only", "/no/such/zcprof/cgroup"],
        2,
        "--only /no/such/zcprof/cgroup matches no recorded process",
    );
}

/// `record --cgroup PATH` records the processes in that cgroup only, and says so in the
/// workload; a cgroup that does not exist is one line and exit status 2.
#[test]
fn record_selects_by_cgroup() {
    if !privileged("record_selects_by_cgroup") {
        return;
    }
    let groups = Cgroups::new("select");
    let file = common::temp("cgroup-select");
    let mut record = common::zcprof()
        .args(["record", "--duration", "3s", "--cgroup"])
        .arg(groups.path("a"))
        .arg("-o")
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("zcprof record");
    common::wait_attached(&mut record);
    for (name, count) in [("a", 7), ("b", 9)] {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=4096 count={count} status=none",
                groups.procs(name).display()
            ))
            .status()
            .expect("sh");
        assert!(status.success());
    }
    assert!(record.wait().expect("record ends").success());
    let rec: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("recording")).expect("JSON");
    assert_eq!(
        rec["workload"]["cgroups"],
        serde_json::json!([groups.path("a")])
    );
    let processes = rec["processes"].as_array().expect("processes");
    assert!(
        processes
            .iter()
            .all(|p| p["cgroup"] == groups.path("a").as_str()),
        "{processes:?}"
    );
    let dd = processes
        .iter()
        .find(|p| p["comm"] == "dd")
        .expect("the dd in a");
    let echo = dd["pid"].to_string().len() as u64 + 1;
    assert_eq!(
        dd["layers"]["syscall"]["syscalls"]["write"]["bytes"],
        7 * 4096 + echo
    );
    zcprof_recording::parse(&std::fs::read(&file).expect("recording")).expect("parses");

    let missing = format!("{}/no-such-cgroup", groups.base);
    common::fails(
        &[
            "record",
            "--cgroup",
            &missing,
            "-o",
            "/tmp/never-written.json",
        ],
        2,
        &format!("no cgroup {missing} exists"),
    );
}

/// `top --json --cgroup PATH` lists only the processes in that cgroup, each with its path.
#[test]
fn top_shows_only_the_cgroup_asked_for() {
    if !privileged("top_shows_only_the_cgroup_asked_for") {
        return;
    }
    let groups = Cgroups::new("top");
    let a = groups.path("a");
    let (_top, lines) = common::lines_of(&["top", "--json", "-i", "200ms", "--cgroup", &a]);
    let first = lines
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("a first frame");
    assert!(first.contains("zcprof.top/v1"), "{first}");
    // A busy dd in each cgroup until the test ends (the shell execs dd, so the kill on
    // drop ends dd itself: a `timeout` in between would leave dd running when killed).
    let busy = |name: &str| {
        common::Reaped(
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=1 status=none",
                    groups.procs(name).display()
                ))
                .spawn()
                .expect("sh"),
        )
    };
    let (_in_a, _in_b) = (busy("a"), busy("b"));
    let schema = common::top_schema();
    let mut seen_a = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !seen_a && std::time::Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(5)) else {
            continue;
        };
        let frame: Value = serde_json::from_str(&line).expect("a JSON frame");
        assert!(schema.is_valid(&frame), "{frame}");
        for p in frame["processes"].as_array().expect("processes") {
            let path = p["cgroup"].as_str().expect("a known cgroup");
            assert!(cgroup::is_under(path, &a), "{p}");
            seen_a |= p["comm"] == "dd" || p["comm"] == "timeout";
        }
    }
    assert!(seen_a, "the dd in {a} was never listed");
}

/// The pids that label any series of an exposition.
fn exported_pids(body: &str) -> std::collections::BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once("pid=\"")?.1.split_once('"'))
        .map(|(pid, _)| pid.to_string())
        .collect()
}

/// `serve --cgroup PATH` exports only the processes in that cgroup: a dd in `a` with its
/// bytes exactly, never the busy dd beside it in `b`; a cgroup that does not exist is one
/// line and exit status 2.
#[test]
fn serve_exports_only_the_cgroup_asked_for() {
    if !privileged("serve_exports_only_the_cgroup_asked_for") {
        return;
    }
    let groups = Cgroups::new("serve");
    let a = groups.path("a");
    // A 1 s interval: an exited process stays exported for one to two intervals, which
    // leaves time to scrape its final counts.
    let port = common::free_port();
    let _serve = common::Reaped(
        common::zcprof()
            .args(["serve", "--interval", "1s", "--cgroup", &a, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("zcprof serve"),
    );
    common::wait_for(
        "zcprof serve",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(100),
        || common::http_get(port, "/metrics").filter(|(c, _)| *c == 200),
    );
    // Busy in `b` for the whole test: one process (the shell execs dd), killed at the end.
    let in_b = common::Reaped(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=1 status=none",
                groups.procs("b").display()
            ))
            .spawn()
            .expect("sh"),
    );
    // In `a`: the shell's echo of its pid, then dd's 9 writes of 4 KiB, in one process.
    let mut in_a = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=4096 count=9 status=none",
            groups.procs("a").display()
        ))
        .spawn()
        .expect("sh");
    let dd = in_a.id().to_string();
    assert!(in_a.wait().expect("dd ends").success());
    let writes = 9 * 4096 + dd.len() as u64 + 1;
    let line = format!(
        r#"zcprof_bytes_total{{comm="dd",pid="{dd}",syscall="write",direction="u2k",kind="copy",layer="syscall"}} {writes}"#
    );
    let body = common::wait_for(
        "dd's writes in /metrics",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || {
            let (_, body) = common::http_get(port, "/metrics")?;
            let pids = exported_pids(&body);
            // Only ever processes of `a`: the dd, once its exec named the cgroup.
            assert!(pids.iter().all(|p| *p == dd), "{pids:?} in\n{body}");
            body.lines().any(|l| l == line).then_some(body)
        },
    );
    assert_eq!(exported_pids(&body), [dd.clone()].into(), "{body}");
    let info: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("zcprof_process_info{"))
        .collect();
    assert_eq!(
        info,
        [format!(
            r#"zcprof_process_info{{comm="dd",pid="{dd}",cgroup="{a}",container=""}} 1"#
        )],
        "{body}"
    );
    // The busy one in `b` ran there all along, and the machine-wide loss counters are
    // still exported.
    let b = in_b.0.id();
    let cgroup = std::fs::read_to_string(format!("/proc/{b}/cgroup")).expect("b's dd runs");
    assert!(
        cgroup.contains(&format!("0::{}\n", groups.path("b"))),
        "{cgroup}"
    );
    assert!(body.contains("zcprof_lost_events_total{reason=\"ringbuf_full\"}"));

    common::fails(
        &["serve", "--cgroup", "/does/not/exist"],
        2,
        "no cgroup /does/not/exist exists",
    );
}

/// Container runtimes cannot run on these machines (no systemd as PID 1 for `systemd-run
/// --scope`; podman's crun and runc refuse a hybrid cgroup hierarchy), so real cgroups with
/// the names the runtimes give them stand in: a process in each is named by its runtime.
#[test]
fn container_cgroups_are_named_by_their_runtime() {
    if !privileged("container_cgroups_are_named_by_their_runtime") {
        return;
    }
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let cases = [
        (
            format!("docker-{id}.scope"),
            "docker 0123456789ab".to_string(),
        ),
        (
            format!("libpod-{id}.scope"),
            "podman 0123456789ab".to_string(),
        ),
        (
            "kubepods-besteffort-pod12345678_aaaa_bbbb_cccc_1234567890ab.slice".to_string(),
            "k8s pod 12345678-aaaa-bbbb-cccc-1234567890ab".to_string(),
        ),
        (
            "nginx.service".to_string(),
            "unit nginx.service".to_string(),
        ),
    ];
    let names: Vec<&str> = cases.iter().map(|(dir, _)| dir.as_str()).collect();
    let groups = Cgroups::with("runtimes", &names);
    let script: Vec<String> = cases
        .iter()
        .map(|(dir, _)| {
            format!(
                "sh -c 'echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=512 count=3 status=none'",
                groups.procs(dir).display()
            )
        })
        .collect();
    let run = run_json(&script.join("; "), "cgroup-runtimes");
    let dds: Vec<&Value> = run["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["comm"] == "dd")
        .collect();
    assert_eq!(dds.len(), cases.len(), "{run}");
    for (dir, container) in &cases {
        let path = groups.path(dir);
        let dd = dds
            .iter()
            .find(|p| p["cgroup"]["path"] == path.as_str())
            .unwrap_or_else(|| panic!("no dd in {path}: {dds:?}"));
        assert_eq!(dd["cgroup"]["container"], container.as_str(), "{dd}");
        // dd's writes, and the shell's echo of its pid into cgroup.procs before the exec.
        let echo = dd["pid"].to_string().len() as u64 + 1;
        assert_eq!(
            dd["syscall"]["syscalls"]["write"]["bytes"],
            3 * 512 + echo,
            "{dd}"
        );
    }
}
