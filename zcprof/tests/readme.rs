//! The README against real output (issue 12 point 6): its JSON field lists (`zcprof top
//! --json`, `zcprof run --json`) equal the fields real documents have, object by object; the
//! run summary validates against `schema/run.v1.json`, where every process has its `kernel`
//! object; and the kernel layer's "N probes are unavailable" line is said by `doctor` and
//! `--verbose` only — never by a plain command nor in a README example — while the layer
//! state that shows the kernel layer partial stays in every report.

mod common;

use std::{
    collections::BTreeSet,
    os::unix::process::CommandExt as _,
    process::{Command, Stdio},
};

use common::{demo_bin, privileged, temp, zcprof};
use serde_json::Value;

const README: &str = include_str!("../../README.md");

/// One line of a field list: the objects at `path` have exactly `required` and possibly
/// `optional`.
#[derive(Debug)]
struct Fields {
    path: String,
    required: BTreeSet<String>,
    optional: BTreeSet<String>,
}

/// The field list in the README's ```text block that starts with `title`.
fn field_list(title: &str) -> Vec<Fields> {
    let start = README
        .find(&format!("```text\n{title}\n"))
        .unwrap_or_else(|| panic!("README has no field list `{title}`"));
    let body = &README[start + "```text\n".len() + title.len() + 1..];
    let body = &body[..body.find("```").expect("the block ends")];
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut words = l.split_whitespace();
            let path = words.next().expect("a path").to_string();
            let (mut required, mut optional) = (BTreeSet::new(), BTreeSet::new());
            for w in words {
                match w.strip_suffix('?') {
                    Some(o) => optional.insert(o.to_string()),
                    None => required.insert(w.to_string()),
                };
            }
            Fields {
                path,
                required,
                optional,
            }
        })
        .collect()
}

/// The values at `path` (see the README: `.`, `.a.b`, `a[]`, `*`, `..a`).
fn select<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    let (mut current, rest): (Vec<&Value>, &str) = if path == "." {
        return vec![doc];
    } else if let Some(rest) = path.strip_prefix("..") {
        let (first, rest) = rest.split_once('.').unwrap_or((rest, ""));
        let mut found = Vec::new();
        under_key(doc, first.trim_end_matches("[]"), &mut found);
        // `..a` names the objects (or arrays) under key `a`: a stack's `syscall` is its
        // name, not a layer's figures.
        found.retain(|v| v.is_object() || v.is_array());
        if first.ends_with("[]") {
            found = found.into_iter().flat_map(elements).collect();
        }
        (found, rest)
    } else {
        (
            vec![doc],
            path.strip_prefix('.').expect("a path starts with ."),
        )
    };
    for segment in rest.split('.').filter(|s| !s.is_empty()) {
        current = current
            .into_iter()
            .flat_map(|v| -> Vec<&Value> {
                if segment == "*" {
                    v.as_object()
                        .map(|o| o.values().collect())
                        .unwrap_or_default()
                } else if let Some(key) = segment.strip_suffix("[]") {
                    v.get(key).map(elements).unwrap_or_default()
                } else {
                    v.get(segment).into_iter().collect()
                }
            })
            .collect();
    }
    current
}

fn elements(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// Every value under key `key`, at any depth.
fn under_key<'a>(v: &'a Value, key: &str, found: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                if k == key {
                    found.push(child);
                }
                under_key(child, key, found);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| under_key(c, key, found)),
        _ => {}
    }
}

/// Checks `doc` against the README's list `title`: every object at each path has the
/// listed fields and no other. A path must match at least once unless `may_be_absent`
/// says its objects need something this machine did not see.
fn check(title: &str, doc: &Value, may_be_absent: impl Fn(&str) -> bool) {
    let list = field_list(title);
    assert!(list.len() >= 5, "{title}: {list:?}");
    for f in &list {
        let objects = select(doc, &f.path);
        assert!(
            !objects.is_empty() || may_be_absent(&f.path),
            "{title}: nothing at `{}` in real output",
            f.path
        );
        for o in objects {
            let keys: BTreeSet<String> = o
                .as_object()
                .unwrap_or_else(|| panic!("{title} `{}`: not an object: {o}", f.path))
                .keys()
                .cloned()
                .collect();
            let missing: Vec<&String> = f.required.difference(&keys).collect();
            let unknown: Vec<&String> = keys
                .iter()
                .filter(|k| !f.required.contains(*k) && !f.optional.contains(*k))
                .collect();
            assert!(
                missing.is_empty() && unknown.is_empty(),
                "{title} `{}`: README lists {:?} (optional {:?}); real output has {keys:?}: missing {missing:?}, not in the README {unknown:?}",
                f.path,
                f.required,
                f.optional
            );
        }
    }
}

/// The kernel layer's summary in a document's `layers`.
fn kernel_layer(doc: &Value) -> Value {
    doc["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["layer"] == "kernel")
        .cloned()
        .expect("a kernel layer")
}

/// `run --json` of a command that copies over TCP (socket receives: the kernel layer's probes
/// fire where they attach), sends with MSG_ZEROCOPY (the `msg_zerocopy` object), fails one
/// write (ENOSPC: an errno) and runs a child without the kernel layer's notice (`true`),
/// with `--flows`, `--threads`, `--stacks`, `--user-copies`, `--files` and `--probe-stats` (their objects are
/// in the list, optional).
#[test]
fn run_json_has_the_readme_fields_and_validates() {
    if !privileged("run_json_has_the_readme_fields_and_validates") {
        return;
    }
    let out = temp("readme-run");
    let script = format!(
        "{0} run file-serve --mode read-write --bytes 1M >/dev/null; {0} run file-serve --mode msg-zerocopy --bytes 256k >/dev/null; dd if=/dev/zero of=/dev/full bs=1k count=1 status=none 2>/dev/null; true",
        demo_bin().display()
    );
    let status = zcprof()
        .args([
            "--flows",
            "--threads",
            "--stacks",
            "--user-copies",
            "--cpu",
            "run",
            "--files",
            "--probe-stats",
            "--json",
            "-o",
        ])
        .arg(&out)
        .args(["--", "sh", "-c", &script])
        .status()
        .expect("zcprof run");
    assert!(status.success());
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("the summary")).expect("JSON");
    let _ = std::fs::remove_file(&out);
    let kernel = kernel_layer(&doc);
    let fired = doc["total"]["kernel"]["probes"]
        .as_object()
        .is_some_and(|p| !p.is_empty());
    println!("kernel layer {kernel}; probes fired: {fired}");
    // Where no kernel-layer probe attached, none can fire: only then may they be absent.
    check("zcprof run --json", &doc, |path| {
        path == "..probes.*" && kernel["attached"] == 0
    });
    // Every process has both layers, the idle ones too: `sh` and `true` never receive from
    // a socket, so their kernel objects are the empty ones.
    for p in doc["processes"].as_array().expect("processes") {
        assert!(p["kernel"]["totals"].is_object(), "{p:#}");
    }
    let validator = common::run_schema();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema/run.v1.json: {errors:?}\n{doc:#}");
    // The schema has teeth: a process without its kernel object is refused.
    let mut bad = doc.clone();
    bad["processes"][0]
        .as_object_mut()
        .expect("a process")
        .remove("kernel");
    assert!(!validator.is_valid(&bad));
}

/// `top --json` frames, while a demo serves files over TCP, against the README's list
/// (`--probe-stats`: its object is in the list, optional).
#[test]
fn top_json_has_the_readme_fields() {
    if !privileged("top_json_has_the_readme_fields") {
        return;
    }
    let demo = demo_bin();
    // In a process group of its own, so that the loop and its demo end together.
    let load = common::Reaped(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while :; do {} run file-serve --mode read-write --bytes 4M >/dev/null; done",
                demo.display()
            ))
            .process_group(0)
            .spawn()
            .expect("the load"),
    );
    let out = zcprof()
        .args([
            "--flows",
            "--threads",
            "--user-copies",
            "top",
            "--json",
            "--once",
            "-i",
            "1s",
            "--probe-stats",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("zcprof top");
    // SAFETY: kill(2) on the group of our own child.
    unsafe { libc::kill(-(load.0.id() as i32), libc::SIGKILL) };
    drop(load);
    assert!(out.status.success());
    let frame: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON frame");
    let kernel = kernel_layer(&frame);
    // No zero-copy sends in this load (the demos' test checks them in real frames).
    check("zcprof top --json", &frame, |path| {
        path == "..kernel.probes.*" && kernel["attached"] == 0 || path == "..zero_copy_sends"
    });
}

/// `16 kernel-layer probes are unavailable on this kernel` (or `1 kernel-layer probe is …`).
fn says_missing(line: &str) -> bool {
    line.contains("kernel-layer probe") && line.contains("unavailable on this kernel")
}

/// The kernel layer's unavailable probes are counted once, by `doctor` and `--verbose`; no
/// other command says it, yet each still shows the kernel layer's state where its figures
/// are. The README's examples show no such line either.
#[test]
fn the_kernel_layers_missing_probes_are_said_by_doctor_and_verbose_only() {
    if !privileged("the_kernel_layers_missing_probes_are_said_by_doctor_and_verbose_only") {
        return;
    }
    let doctor = zcprof()
        .args(["doctor", "--json"])
        .output()
        .expect("doctor");
    let report: Value = serde_json::from_slice(&doctor.stdout).expect("doctor --json");
    let kernel = kernel_layer(&report);
    let missing = kernel["unavailable"].as_array().expect("unavailable").len();
    let doctor = zcprof().arg("doctor").output().expect("doctor");
    let text = String::from_utf8_lossy(&doctor.stdout);
    let said = |s: &str| s.lines().filter(|l| says_missing(l)).count();
    println!("{missing} kernel-layer probes unavailable here");
    assert_eq!(said(&text), usize::from(missing > 0), "doctor:\n{text}");

    let rec = temp("readme-warning");
    let rec_path = rec.to_str().expect("utf-8 path");
    let commands: [&[&str]; 3] = [
        &["run", "--", "true"],
        &["record", "-o", rec_path, "--", "true"],
        &["top", "--once", "-i", "200ms"],
    ];
    for args in commands {
        for verbose in [false, true] {
            let mut cmd = zcprof();
            if verbose {
                cmd.arg("--verbose");
            }
            let out = cmd
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("zcprof");
            assert!(out.status.success(), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                said(&stderr),
                usize::from(verbose && missing > 0),
                "--verbose {verbose} {args:?}:\n{stderr}"
            );
            // The layer state stays where the figures are: the run summary and top's header.
            if missing > 0 && args[0] != "record" {
                let shown = format!("{stdout}{stderr}");
                let state = format!("kernel layer: {}", kernel["state"].as_str().expect("state"));
                // A long list is counted, a short one named (`report::layers_line`).
                let detail = if missing > 4 {
                    format!("({missing} probes unavailable")
                } else {
                    kernel["unavailable"][0]
                        .as_str()
                        .expect("a name")
                        .to_string()
                };
                assert!(
                    shown.contains(&state) && shown.contains(&detail),
                    "{args:?} hides the kernel layer's state (`{state}`, `{detail}`):\n{shown}"
                );
            }
        }
    }
    let recording: Value =
        serde_json::from_str(&std::fs::read_to_string(&rec).expect("the recording")).expect("JSON");
    let _ = std::fs::remove_file(&rec);
    let recorded = recording["probe_layers"]
        .as_array()
        .expect("probe_layers")
        .iter()
        .find(|l| l["layer"] == "kernel")
        .expect("the kernel layer's state is recorded");
    assert_eq!(recorded["unavailable"], kernel["unavailable"]);

    // In the README only an example run with --verbose may show the line.
    let mut command = "";
    for line in README.lines() {
        if line.starts_with("$ ") {
            command = line;
        } else if says_missing(line) && line.starts_with("zcprof: warning") {
            assert!(
                command.contains("--verbose") || command.contains(" -v "),
                "a README example shows the warning after `{command}`"
            );
        }
    }
}
