//! `run --files` on the running kernel: a workload reads a file and sends over TCP, and the
//! per-file counts must give that file and each socket exactly their bytes, named from /proc
//! while the workload holds them open, and by the kernel's last path component when it is
//! gone before /proc could be read.

mod common;

use std::{ffi::CString, io::Write as _, os::fd::AsRawFd, time::Duration};

use serde_json::Value;

use common::privileged;

/// Bytes the workload reads from its file and sends over TCP.
const FILE_BYTES: usize = 300_000;
const TCP_BYTES: usize = 70_000;

/// Not a test of its own: the workload of the tests below (this binary with
/// `ZCPROF_FILES_WORKLOAD=PATH`): reads PATH to its end, sends [`TCP_BYTES`] to itself over
/// loopback TCP, then holds everything open for `ZCPROF_FILES_HOLD_MS`.
#[test]
fn files_workload() {
    let Some(path) = std::env::var_os("ZCPROF_FILES_WORKLOAD") else {
        return;
    };
    let path = CString::new(path.into_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(fd >= 0);
    let mut buf = vec![0u8; 65_536];
    let mut total = 0;
    loop {
        // SAFETY: reading into a buffer of that length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n >= 0);
        if n == 0 {
            break;
        }
        total += n as usize;
    }
    assert_eq!(total, FILE_BYTES);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let tx = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (rx, _) = listener.accept().expect("accept");
    let mut sent = 0;
    while sent < TCP_BYTES {
        let len = (TCP_BYTES - sent).min(buf.len());
        // SAFETY: writing from a buffer of at least that length.
        let n = unsafe { libc::write(tx.as_raw_fd(), buf.as_ptr().cast(), len) };
        assert!(n > 0);
        sent += n as usize;
        let mut got = 0;
        while got < n as usize {
            // SAFETY: reading into a buffer of at least that length.
            let m =
                unsafe { libc::read(rx.as_raw_fd(), buf.as_mut_ptr().cast(), n as usize - got) };
            assert!(m > 0);
            got += m as usize;
        }
    }
    let hold: u64 = std::env::var("ZCPROF_FILES_HOLD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::thread::sleep(Duration::from_millis(hold));
    // SAFETY: closing what this function opened.
    unsafe { libc::close(fd) };
}

/// `zcprof run --files --json` of the workload reading `file`, holding it `hold_ms`.
fn run_files(file: &std::path::Path, hold_ms: u64, tag: &str) -> Value {
    let out = common::temp(tag);
    let output = common::zcprof()
        .args(["run", "--files", "--json", "-o"])
        .arg(&out)
        .arg("--")
        .arg(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "files_workload", "--test-threads=1", "--quiet"])
        .env("ZCPROF_FILES_WORKLOAD", file)
        .env("ZCPROF_FILES_HOLD_MS", hold_ms.to_string())
        .output()
        .expect("zcprof runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("the summary")).expect("JSON");
    let errors: Vec<String> = common::run_schema()
        .iter_errors(&run)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    run
}

/// A workload's input file of [`FILE_BYTES`].
fn input(tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("zcprof-{tag}-{}.bin", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(&vec![7u8; FILE_BYTES]).expect("write");
    path
}

/// The files of the process that read `file` (by the kernel's name of it).
fn files_of_reader<'a>(run: &'a Value, file: &std::path::Path) -> &'a Vec<Value> {
    let base = file
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    run["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["by_file"].as_array())
        .find(|files| files.iter().any(|f| f["kernel_name"] == base.as_str()))
        .unwrap_or_else(|| panic!("no process read {base}: {run}"))
}

#[test]
fn files_and_sockets_get_their_bytes_and_their_names() {
    if !privileged("files_and_sockets_get_their_bytes_and_their_names") {
        return;
    }
    let file = input("files-held");
    // Held open well past a batch (100 ms with --files): /proc names everything.
    let run = run_files(&file, 700, "files-held-run");
    let files = files_of_reader(&run, &file);
    let the_file = files
        .iter()
        .find(|f| f["target"] == file.display().to_string().as_str())
        .unwrap_or_else(|| panic!("the input is named by its path: {files:?}"));
    assert_eq!(the_file["kind"], "file");
    assert_eq!(the_file["read_bytes"], FILE_BYTES as u64);
    assert_eq!(the_file["written_bytes"], 0);
    let sockets: Vec<&Value> = files.iter().filter(|f| f["kind"] == "tcp").collect();
    assert_eq!(sockets.len(), 2, "both ends of the connection: {files:?}");
    for s in &sockets {
        let target = s["target"].as_str().unwrap_or_default();
        assert!(
            target.starts_with("tcp 127.0.0.1:") && target.contains(" → 127.0.0.1:"),
            "{s}"
        );
    }
    let moved: Vec<(u64, u64)> = {
        let mut v: Vec<(u64, u64)> = sockets
            .iter()
            .map(|s| {
                (
                    s["read_bytes"].as_u64().expect("read"),
                    s["written_bytes"].as_u64().expect("written"),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(moved, [(0, TCP_BYTES as u64), (TCP_BYTES as u64, 0)]);
    let _ = std::fs::remove_file(&file);
}

/// A workload gone before any batch could read /proc still has its file, named by the
/// kernel's last path component, with its bytes.
#[test]
fn a_file_of_a_process_gone_at_once_keeps_the_kernels_name() {
    if !privileged("a_file_of_a_process_gone_at_once_keeps_the_kernels_name") {
        return;
    }
    let file = input("files-quick");
    let run = run_files(&file, 0, "files-quick-run");
    let base = file
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    let the_file = files_of_reader(&run, &file)
        .iter()
        .find(|f| f["kernel_name"] == base.as_str())
        .expect("the input")
        .clone();
    assert_eq!(the_file["read_bytes"], FILE_BYTES as u64);
    // Named from /proc if a batch happened to come while it was open, never wrongly.
    assert!(
        the_file["target"].is_null() || the_file["target"] == file.display().to_string().as_str(),
        "{the_file}"
    );
    let _ = std::fs::remove_file(&file);
}
