//! Helpers shared by the integration tests: the root check, and forked workload processes
//! whose syscalls are tallied exactly (the ground truth the profiler must match).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::ptr;

use zcprof_common::{Counts, errno, syscalls};

/// True when this process may load eBPF programs. Under CI a test that cannot is a failure,
/// not a skip: the suite must prove the probes work on the CI kernel.
pub fn privileged(test: &str) -> bool {
    if zcprof::host::privileges::check().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: CI=true but this process cannot load eBPF programs (run the tests as root)"
        );
    }
    eprintln!("skipping {test}: needs root or CAP_BPF+CAP_PERFMON to attach probes");
    false
}

/// A current-thread runtime and a session with every probe attached in syscall-probe `mode`,
/// collecting every 200 ms.
pub fn session(
    mode: zcprof::probes::SyscallProbe,
) -> (tokio::runtime::Runtime, zcprof::session::Session) {
    session_with(mode, false)
}

/// [`session`], with the flows layer when `flows`.
pub fn session_with(
    mode: zcprof::probes::SyscallProbe,
    flows: bool,
) -> (tokio::runtime::Runtime, zcprof::session::Session) {
    session_opts(&zcprof::probes::LoadOptions {
        syscall_probe: mode,
        flows,
        ..zcprof::probes::LoadOptions::default()
    })
}

/// [`session`], loaded with `opts`.
pub fn session_opts(
    opts: &zcprof::probes::LoadOptions,
) -> (tokio::runtime::Runtime, zcprof::session::Session) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let session = rt
        .block_on(async {
            zcprof::session::Session::start(
                opts,
                std::time::Duration::from_millis(200),
                zcprof::session::Retention::KeepExited,
            )
        })
        .expect("probes attach on this kernel");
    (rt, session)
}

/// Per-syscall counts a workload made, by its own reckoning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Tally {
    pub calls: [u64; syscalls::COUNT],
    pub bytes: [u64; syscalls::COUNT],
    pub errors: [u64; syscalls::COUNT],
    /// The errors by errno slot (`zcprof_common::errno`), read from `errno` at once.
    pub errno: [[u64; errno::SLOTS]; syscalls::COUNT],
}

impl Tally {
    /// Records one call of syscall `name` that returned `ret` (bytes moved if >= 0).
    /// Allocation-free: it runs in a forked child of a multi-threaded process.
    pub fn note(&mut self, name: &str, ret: isize) -> isize {
        let i = index(name);
        self.calls[i] += 1;
        if ret < 0 {
            self.failed(i);
        } else {
            self.bytes[i] += ret as u64;
        }
        ret
    }

    /// Records that the call of syscall `i` just failed, by the errno it left.
    fn failed(&mut self, i: usize) {
        self.errors[i] += 1;
        // SAFETY: the calling thread's errno, just set by the failed call.
        let e = unsafe { *libc::__errno_location() };
        self.errno[i][errno::slot(e as u64)] += 1;
    }

    /// Records a recvmmsg/sendmmsg that moved `bytes` in `ret` messages.
    pub fn note_mmsg(&mut self, name: &str, ret: isize, bytes: u64) {
        let i = index(name);
        self.calls[i] += 1;
        if ret < 0 {
            self.failed(i);
        } else {
            self.bytes[i] += bytes;
        }
    }

    pub fn get(&self, name: &str) -> (u64, u64, u64) {
        let i = index(name);
        (self.calls[i], self.bytes[i], self.errors[i])
    }
}

pub fn index(name: &str) -> usize {
    syscalls::index_named(name).unwrap_or_else(|| panic!("{name} is not a counted syscall"))
}

/// (calls, bytes, errors) of a `Counts`.
pub fn triple(s: &Counts) -> (u64, u64, u64) {
    (s.calls, s.bytes, s.errors)
}

/// A forked child that ran `work`; its PID and what it tallied.
pub struct Child {
    pub pid: u32,
    pub tally: Tally,
}

/// Forks a child that runs `work` (only raw syscalls, no allocation: the parent has other
/// threads) and exits, waits for it, and returns its tally. Everything `work` needs must be
/// prepared before the call.
pub fn in_child(work: impl FnOnce(&mut Tally)) -> Child {
    let size = std::mem::size_of::<Tally>();
    // SAFETY: an anonymous shared mapping, checked below; unmapped before returning.
    let shared = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(shared, libc::MAP_FAILED, "mmap failed");
    let tally = shared.cast::<Tally>();
    // SAFETY: the mapping is large enough and zeroed memory is a valid Tally.
    unsafe {
        tally.write(Tally {
            calls: [0; syscalls::COUNT],
            bytes: [0; syscalls::COUNT],
            errors: [0; syscalls::COUNT],
            errno: [[0; errno::SLOTS]; syscalls::COUNT],
        })
    };
    // SAFETY: the child only runs `work` (raw syscalls) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: the mapping is shared with the parent, which waits for us.
        work(unsafe { &mut *tally });
        // SAFETY: leave without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "workload failed: {status}"
    );
    // SAFETY: the child has exited; nothing else writes the mapping.
    let result = unsafe { tally.read() };
    // SAFETY: unmapping what we mapped.
    unsafe { libc::munmap(shared, size) };
    Child {
        pid: pid as u32,
        tally: result,
    }
}

/// `SO_ZEROCOPY` (include/uapi/asm-generic/socket.h); not in the libc crate.
pub const SO_ZEROCOPY: libc::c_int = 60;

/// A connected loopback TCP pair `(sender, receiver)`; `zerocopy` sets `SO_ZEROCOPY` on the
/// sender.
pub fn tcp_pair(zerocopy: bool) -> (i32, i32) {
    // SAFETY: plain socket calls on descriptors this function owns; the addresses are
    // sockaddr_in values of the right length.
    unsafe {
        let listener = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(listener >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as u16;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        assert_eq!(libc::bind(listener, (&raw const addr).cast(), len), 0);
        assert_eq!(libc::listen(listener, 1), 0);
        let mut bound = len;
        libc::getsockname(listener, (&raw mut addr).cast(), &mut bound);
        let tx = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if zerocopy {
            let one: libc::c_int = 1;
            let size = std::mem::size_of::<libc::c_int>() as u32;
            let set = libc::setsockopt(
                tx,
                libc::SOL_SOCKET,
                SO_ZEROCOPY,
                (&raw const one).cast(),
                size,
            );
            assert_eq!(set, 0, "SO_ZEROCOPY");
        }
        assert_eq!(libc::connect(tx, (&raw const addr).cast(), len), 0);
        let rx = libc::accept(listener, std::ptr::null_mut(), std::ptr::null_mut());
        assert!(rx >= 0);
        libc::close(listener);
        (tx, rx)
    }
}

/// A temporary file filled with `len` bytes of a pattern, removed on drop. Its name is the
/// `tempfile` crate's (random, created exclusively): tests run in parallel threads of one
/// process, and one test's drop must not remove a file another test is reading.
pub struct TempFile {
    pub path: tempfile::TempPath,
}

impl TempFile {
    pub fn new(tag: &str, len: usize) -> TempFile {
        let mut file = tempfile::Builder::new()
            .prefix(&format!("zcprof-test-{tag}-"))
            .tempfile()
            .expect("create temp file");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::io::Write::write_all(&mut file, &data).expect("write temp file");
        TempFile {
            path: file.into_temp_path(),
        }
    }

    pub fn open(&self, flags: i32) -> i32 {
        let c = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
        assert!(fd >= 0, "open {}", self.path.display());
        fd
    }
}

/// A child process killed and reaped when the test ends, however it ends.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `zcprof ARGS` (e.g. `top --json`) with its stdout read line by line on a thread of its
/// own: the process (killed when the test ends) and its lines as they come.
pub fn lines_of(args: &[&str]) -> (Reaped, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let mut child = zcprof()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("zcprof {args:?}: {err}"));
    let stdout = child.stdout.take().expect("its stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Reaped(child), rx)
}

/// The position of column `name` in the CSV header `header` (`top --csv`).
pub fn csv_column(header: &str, name: &str) -> usize {
    header
        .split(',')
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no CSV column {name}: {header}"))
}

/// `zcprof serve` on a free loopback port, refreshing every 200 ms, with `extra` options;
/// killed when the test ends. Returns it and its port.
pub fn serve(extra: &[&str]) -> (Reaped, u16) {
    let port = free_port();
    let child = zcprof()
        .arg("serve")
        .args(extra)
        .args(["--interval", "200ms", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("zcprof serve");
    (Reaped(child), port)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Status code and body of `GET path` on a loopback port; `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Runs zcprof with `args` and checks it fails with `code` and exactly one stderr line,
/// starting `zcprof: ` and containing `needle`.
pub fn fails(args: &[&str], code: i32, needle: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zcprof"))
        .args(args)
        .output()
        .expect("zcprof runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line, got {stderr}");
    assert!(lines[0].starts_with("zcprof: "), "{args:?}: {stderr}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: `{needle}` not in {stderr}"
    );
}

/// Polls `f` every `every` until it gives `Some`, or fails after `limit`.
pub fn wait_for<T>(
    what: &str,
    limit: std::time::Duration,
    every: std::time::Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} ({limit:?})"
        );
        std::thread::sleep(every);
    }
}

/// Whether process `parent` has a child named `comm` now.
pub fn has_child_named(parent: u32, comm: &str) -> bool {
    let Ok(children) = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
    else {
        return false;
    };
    children.split_whitespace().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
    })
}

/// Builds the Go program `source` (one `main.go`) in `dir` with Debian's golang-go, as
/// `name`; host only (the lab's guest has no Go toolchain).
pub fn go_program(dir: &std::path::Path, source: &str, name: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("as the test set it up");
    std::fs::write(dir.join("main.go"), source).expect("as the test set it up");
    let bin = dir.join(name);
    let status = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("main.go")
        .current_dir(dir)
        .env("GOCACHE", dir.join("cache"))
        .env("GO111MODULE", "off")
        .status()
        .expect("go runs (Debian's golang-go: `cargo xtask setup`)");
    assert!(status.success(), "building the Go program");
    bin
}

/// The `zcprof` binary under test.
pub fn zcprof() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_zcprof"))
}

/// A fresh temporary path per call (tests run in parallel threads of one process).
pub fn temp(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("zcprof-test-{tag}-{}-{n}", std::process::id()))
}

/// `zcprof-demo` beside the `zcprof` under test, built if cargo has not built it yet (a
/// plain `cargo test -p zcprof` does not build other packages' binaries).
pub fn demo_bin() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_BIN_EXE_zcprof"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let demo = dir.join("zcprof-demo");
    if !demo.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-p", "zcprof-demos", "--bin", "zcprof-demo"]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().is_ok_and(|s| s.success()),
            "building zcprof-demo failed"
        );
    }
    assert!(demo.exists(), "no {}", demo.display());
    demo
}

/// For `pre_exec`: a private mount namespace without tracefs (also under debugfs), and no
/// CAP_SYS_ADMIN after exec, so zcprof cannot mount it again. Raw syscalls only.
pub fn hide_tracefs() -> std::io::Result<()> {
    const CAP_SYS_ADMIN: libc::c_ulong = 21;
    // SAFETY: plain syscalls on NUL-terminated literals.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0
            || libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        // Either may not be mounted; only the outcome matters (zcprof's `tracefs` is null).
        for path in [
            c"/sys/kernel/tracing",
            c"/sys/kernel/debug/tracing",
            c"/sys/kernel/debug",
        ] {
            libc::umount2(path.as_ptr(), libc::MNT_DETACH);
        }
        // A root process's permitted set after exec is its bounding set.
        if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A validator for `zcprof.top/v1` frames: `schema/top.v1.json`, whose shared shapes are
/// references into `schema/recording.v1.json`.
pub fn top_schema() -> jsonschema::Validator {
    schema_over_recording(include_str!("../../../schema/top.v1.json"))
}

/// A validator for `zcprof.run/v1`: `schema/run.v1.json`, with the same references.
pub fn run_schema() -> jsonschema::Validator {
    schema_over_recording(include_str!("../../../schema/run.v1.json"))
}

/// A validator for `schema` (JSON text) whose `$ref`s point into `schema/recording.v1.json`.
fn schema_over_recording(schema: &str) -> jsonschema::Validator {
    let load =
        |text: &str| -> serde_json::Value { serde_json::from_str(text).expect("schema JSON") };
    let recording = load(include_str!("../../../schema/recording.v1.json"));
    let registry = jsonschema::Registry::new()
        .add(recording["$id"].as_str().expect("$id"), recording.clone())
        .and_then(|r| r.prepare())
        .expect("registry");
    jsonschema::options()
        .with_registry(&registry)
        .build(&load(schema))
        .expect("a valid JSON Schema")
}

/// Whether this runs in the QEMU kernel lab's guest (`cargo xtask vmtest` sets
/// `ZCPROF_LAB_GUEST=1`), whose initramfs has busybox, dash and the test binaries only.
pub fn in_lab() -> bool {
    std::env::var_os("ZCPROF_LAB_GUEST").is_some()
}

/// Debian's nginx for the tests that run real servers (record, follow).
mod nginx {
    use std::{
        path::PathBuf,
        process::Command,
        thread::sleep,
        time::{Duration, Instant},
    };

    use super::{free_port, http_get, in_lab, temp};

    /// Waits until `zcprof record` (spawned with its stderr piped) says its probes are
    /// attached, then leaves the rest of its stderr to a thread that drains it.
    pub fn wait_attached(child: &mut std::process::Child) {
        use std::io::BufRead as _;
        let pipe = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.starts_with("zcprof: probes attached; recording ") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("zcprof record never said its probes were attached");
    }

    /// Debian's nginx serving one file on a loopback port, from a prefix of its own.
    pub struct Nginx {
        pub prefix: PathBuf,
        pub port: u16,
    }

    /// The file served, and how many times each test fetches it.
    pub const NGINX_FILE: usize = 1 << 20;
    pub const NGINX_FETCHES: usize = 16;

    impl Nginx {
        /// `None` (with the reason printed) in the kernel lab, or when nginx is not installed
        /// and this is not CI, where `cargo xtask setup` installs it.
        pub fn new() -> Option<Nginx> {
            if in_lab() {
                eprintln!(
                    "skipping: nginx is not in the kernel lab's initramfs (busybox and dash only)"
                );
                return None;
            }
            if Command::new("nginx").arg("-v").output().is_err() {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI=true but nginx is not installed (cargo xtask setup installs it)"
                );
                eprintln!("skipping: nginx is not installed (cargo xtask setup installs it)");
                return None;
            }
            let prefix = temp("nginx");
            std::fs::create_dir_all(prefix.join("www")).expect("mkdir");
            std::fs::create_dir_all(prefix.join("tmp")).expect("mkdir");
            std::fs::write(prefix.join("www/f.bin"), vec![b'z'; NGINX_FILE]).expect("write");
            Some(Nginx {
                prefix,
                port: free_port(),
            })
        }

        /// The command line of a master process that stays in the foreground, with one
        /// worker, `sendfile on` or `off`.
        pub fn command(&self, sendfile: bool) -> Vec<String> {
            let p = self.prefix.display();
            let conf = self.prefix.join(format!("sendfile-{sendfile}.conf"));
            let onoff = if sendfile { "on" } else { "off" };
            std::fs::write(
                &conf,
                format!(
                    "daemon off; master_process on; worker_processes 1; user root;\n\
                     pid {p}/nginx.pid; error_log {p}/error.log;\n\
                     events {{ worker_connections 64; }}\n\
                     http {{ access_log off; sendfile {onoff};\n\
                       client_body_temp_path {p}/tmp; proxy_temp_path {p}/tmp;\n\
                       fastcgi_temp_path {p}/tmp; uwsgi_temp_path {p}/tmp; scgi_temp_path {p}/tmp;\n\
                       server {{ listen 127.0.0.1:{port}; root {p}/www; }} }}\n",
                    port = self.port
                ),
            )
            .expect("write the configuration");
            [
                "nginx".to_string(),
                "-p".into(),
                format!("{p}"),
                "-e".into(),
                format!("{p}/error.log"),
                "-c".into(),
                conf.display().to_string(),
            ]
            .into()
        }

        /// Waits until it answers, then fetches the file `NGINX_FETCHES` times.
        pub fn serve(&self) {
            let deadline = Instant::now() + Duration::from_secs(20);
            while http_get(self.port, "/").is_none() {
                assert!(
                    Instant::now() < deadline,
                    "nginx never answered on {}",
                    self.port
                );
                sleep(Duration::from_millis(50));
            }
            for _ in 0..NGINX_FETCHES {
                let (code, body) = http_get(self.port, "/f.bin").expect("nginx answers");
                assert_eq!((code, body.len()), (200, NGINX_FILE));
            }
        }

        /// The master's pid, from its pid file.
        pub fn master(&self) -> u32 {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(pid) = std::fs::read_to_string(self.prefix.join("nginx.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    return pid;
                }
                assert!(Instant::now() < deadline, "nginx wrote no pid file");
                sleep(Duration::from_millis(50));
            }
        }

        /// Graceful shutdown (SIGQUIT), waiting until the pid file is gone.
        pub fn quit(&self) {
            let pid = self.master();
            // SAFETY: kill(2) on the nginx master this test started.
            unsafe { libc::kill(pid as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.prefix.join("nginx.pid").exists() {
                assert!(Instant::now() < deadline, "nginx did not quit");
                sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for Nginx {
        fn drop(&mut self) {
            if let Some(pid) = std::fs::read_to_string(self.prefix.join("nginx.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // SAFETY: as in `quit`; the test failed before it shut nginx down.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let _ = std::fs::remove_dir_all(&self.prefix);
        }
    }
}
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub use nginx::{NGINX_FETCHES, NGINX_FILE, Nginx, wait_attached};

/// `zcprof FLAGS run --json -o FILE -- ARGV` with `env` added: the summary, validated against
/// `schema/run.v1.json`, and what the command printed. Fails the test when zcprof fails.
pub fn run_json(
    flags: &[&str],
    argv: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (serde_json::Value, String) {
    let out = temp("run-json");
    let output = zcprof()
        .args(flags)
        .args(["run", "--json", "-o"])
        .arg(&out)
        .arg("--")
        .args(argv)
        .envs(env.iter().copied())
        .output()
        .expect("zcprof runs");
    assert!(
        output.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("summary written");
    let _ = std::fs::remove_file(&out);
    let summary: serde_json::Value = serde_json::from_str(&text).expect("JSON summary");
    let errors: Vec<String> = run_schema()
        .iter_errors(&summary)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "run --json against its schema: {errors:?}"
    );
    (
        summary,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}
