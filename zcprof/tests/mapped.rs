//! The mapped layer (issue 13, "mmap'd file pages") against ground truth, as root, with a
//! real process: this test binary, run again under `zcprof run --json` as the helper
//! [`touch_every_page`], maps a file whose size is not a page multiple and reads one byte
//! of every page front to back. zcprof's pages for that file (`mapped.files`, matched by
//! device and inode) must be exactly `ceil(size / 4096)` when the file was written a page
//! at a time and is in the page cache (one-page folios: the kernel reports every page it
//! maps). Written at once, or evicted first (cold: fsync + POSIX_FADV_DONTNEED, then
//! readahead; a filesystem that cannot evict, such as the lab's initramfs, keeps it hot and
//! says so), the file may sit in large folios, which a 6.18 kernel maps in one fault while
//! its tracepoints report only part: then at least one page and never more than the
//! file's. With `--disable-layer
//! mapped` the layer is unavailable and counts nothing. On a kernel without the
//! `filemap:mm_filemap_*` tracepoints (before 6.12, the lab's Debian 6.1) the layer must
//! say why it is unavailable, and the exact checks are skipped with that reason.

mod common;

use std::{
    fs,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::Path,
};

use common::{privileged, run_schema, temp, zcprof};
use serde_json::Value;

/// 257 pages and 1,160 bytes: 258 pages, the last one partly file.
const SIZE: usize = 257 * 4096 + 1160;
const PAGES: u64 = SIZE.div_ceil(4096) as u64;
/// The helper's file, set only in the helper's environment.
const HELPER_ENV: &str = "ZCPROF_MAPPED_TOUCH";
/// Why the layer is unavailable before Linux 6.12.
const TOO_OLD: &str = "no filemap:mm_filemap_* tracepoints (Linux < 6.12)";

/// The workload (does nothing in a normal test run): maps the file named by
/// `ZCPROF_MAPPED_TOUCH` and reads one byte of each page, front to back.
#[test]
fn touch_every_page() {
    let Some(path) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let file = fs::File::open(&path).expect("helper: open");
    let len = file.metadata().expect("helper: stat").len() as usize;
    // SAFETY: a fresh read-only private mapping of an open file; checked below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "helper: mmap");
    let mut sum = 0u64;
    for offset in (0..len).step_by(4096) {
        // SAFETY: `offset < len`, inside the mapping; volatile so the read really happens.
        sum += u64::from(unsafe { std::ptr::read_volatile(map.cast::<u8>().add(offset)) });
    }
    assert_eq!(sum, (len as u64).div_ceil(4096) * u64::from(b'z'));
    // SAFETY: unmapping exactly what was mapped, once.
    unsafe { libc::munmap(map, len) };
}

/// The run's JSON summary and stderr for the helper on `file`, with `extra` zcprof options.
fn run_helper(file: &Path, extra: &[&str]) -> (Value, String) {
    let out_path = temp("mapped-run.json");
    let out = zcprof()
        .args(extra)
        .args(["run", "--json", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(std::env::current_exe().expect("test binary"))
        .args(["--exact", "touch_every_page", "--test-threads=1"])
        .env(HELPER_ENV, file)
        .output()
        .expect("zcprof runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "zcprof run: {}\n{stderr}", out.status);
    let text = fs::read_to_string(&out_path).expect("the summary file");
    let _ = fs::remove_file(&out_path);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    if let Err(err) = run_schema().validate(&doc) {
        panic!("run --json does not match schema/run.v1.json: {err}\n{text}");
    }
    (doc, stderr)
}

fn layer<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["layers"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["layer"] == name))
        .unwrap_or_else(|| panic!("no {name} layer in {doc}"))
}

/// The pages zcprof gave `file` in the process that mapped it (none: 0).
fn file_pages(doc: &Value, file: &Path) -> u64 {
    let meta = fs::metadata(file).expect("stat");
    let dev = format!("{}:{}", libc::major(meta.dev()), libc::minor(meta.dev()));
    let mut found = 0;
    for p in doc["processes"].as_array().expect("processes") {
        for f in p["mapped"]["files"].as_array().expect("files") {
            if f["dev"] == dev.as_str() && f["ino"] == meta.ino() {
                found += f["pages"].as_u64().expect("pages");
                assert_eq!(
                    f["bytes"].as_u64(),
                    Some(f["pages"].as_u64().expect("a count") * 4096)
                );
                assert!(
                    p["mapped"]["pages"].as_u64().expect("a count") >= found,
                    "{p}"
                );
            }
        }
    }
    found
}

/// Makes `file` leave the page cache; whether it did (mincore on a mapping not touched).
fn evict(file: &fs::File, len: usize) -> bool {
    file.sync_all().expect("fsync");
    // SAFETY: plain calls on an open descriptor; the mapping is only passed to mincore.
    unsafe {
        assert_eq!(
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED),
            0
        );
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(map, libc::MAP_FAILED);
        let mut resident = vec![0u8; len.div_ceil(4096)];
        let rc = libc::mincore(map, len, resident.as_mut_ptr());
        libc::munmap(map, len);
        assert_eq!(rc, 0, "mincore");
        resident.iter().all(|r| r & 1 == 0)
    }
}

/// Writes `SIZE` bytes to `path` one page per write: the page cache then holds the file in
/// one-page folios.
fn write_in_pages(path: &Path) {
    use std::io::Write;
    let mut file = fs::File::create(path).expect("create the file");
    for chunk in vec![b'z'; SIZE].chunks(4096) {
        file.write_all(chunk).expect("write a page");
    }
}

/// At least one page of the file, never more than it has.
fn assert_lower_bound(doc: &Value, path: &Path, what: &str) {
    let got = file_pages(doc, path);
    assert!((1..=PAGES).contains(&got), "{what}: {got} pages: {doc}");
}

#[test]
fn mapped_pages_of_a_file_read_through_mmap_are_exact_hot_and_cold() {
    if !privileged("mapped_pages_of_a_file_read_through_mmap_are_exact_hot_and_cold") {
        return;
    }
    let path = temp("mapped.bin");
    write_in_pages(&path);
    let (hot, stderr) = run_helper(&path, &[]);
    if layer(&hot, "mapped")["state"] == "unavailable" {
        assert!(
            stderr.contains(TOO_OLD),
            "the mapped layer is unavailable without the reason: {stderr}"
        );
        eprintln!("skipping the exact mapped-page checks: {TOO_OLD}");
        let _ = fs::remove_file(&path);
        return;
    }
    assert_eq!(file_pages(&hot, &path), PAGES, "hot: {hot}");
    let file = fs::File::open(&path).expect("open");
    let evicted = evict(&file, SIZE);
    let (cold, _) = run_helper(&path, &[]);
    assert_lower_bound(&cold, &path, &format!("cold (evicted: {evicted})"));
    if !evicted {
        eprintln!("note: this filesystem kept the file in the page cache: cold ran hot");
    }
    // Mapped pages are their own figure: never copied or zero-copy bytes.
    let total = &hot["total"];
    assert!(
        total["mapped"]["pages"].as_u64().expect("a count") >= PAGES,
        "{total}"
    );
    assert_eq!(
        total["mapped"]["bytes"].as_u64().expect("a count"),
        total["mapped"]["pages"].as_u64().expect("a count") * 4096
    );
    // Written in one go, the file may be in large folios: a lower bound.
    let _ = fs::remove_file(&path);
    fs::write(&path, vec![b'z'; SIZE]).expect("write the file");
    let (whole, _) = run_helper(&path, &[]);
    assert_lower_bound(&whole, &path, "written at once");
    let _ = fs::remove_file(&path);
}

#[test]
fn the_mapped_layer_can_be_disabled() {
    if !privileged("the_mapped_layer_can_be_disabled") {
        return;
    }
    let path = temp("mapped-off.bin");
    fs::write(&path, vec![b'z'; SIZE]).expect("write the file");
    let (doc, stderr) = run_helper(&path, &["--disable-layer", "mapped"]);
    assert_eq!(layer(&doc, "mapped")["state"], "unavailable", "{doc}");
    // A layer the user turned off is no warning: its state is in the summary's layers.
    assert!(
        !stderr.contains("(mapped layer) is unavailable"),
        "{stderr}"
    );
    assert_eq!(file_pages(&doc, &path), 0);
    assert_eq!(doc["total"]["mapped"]["pages"], 0, "{doc}");
    let _ = fs::remove_file(&path);
}
