//! The diff on recordings built in code: the demo-shaped cases (copies removed, a copy path
//! added), matching by name, normalisation, and thresholds.

use super::{render, threshold, *};
use crate::fixture::{Call, recording, with_errors};

const MIB4: u64 = 4 << 20;

/// `file-copy --mode read-write` vs `--mode copy-file-range`, plus a loader's fixed reads.
fn file_copy() -> (Recording, Recording) {
    let before = recording(
        0.050,
        &[
            (100, "demo", &[("read", 3, 2_000), ("write", 1, 700)]),
            (101, "demo", &[("read", 65, MIB4), ("write", 64, MIB4)]),
        ],
    );
    let after = recording(
        0.010,
        &[
            (200, "demo", &[("read", 3, 2_000), ("write", 1, 700)]),
            (201, "demo", &[("copy_file_range", 2, MIB4)]),
        ],
    );
    (before, after)
}

/// The same recording, bounded by time: `record --duration D -- CMD`, or `--pid`.
fn bounded(mut r: Recording, kind: WorkloadKind, seconds: f64) -> Recording {
    r.workload.kind = kind;
    r.ended_by = "duration".into();
    r.duration_s = seconds;
    r.ended_unix = r.started_unix + seconds;
    r
}

#[test]
fn copies_removed_per_delivered_byte() {
    let (before, after) = file_copy();
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert_eq!(
        d.verdict,
        "per delivered byte (4.0 MiB each): copies fell 2.00 → 0.00064 B copied per B delivered (−100%; 8.0 MiB → 2.6 KiB copied); no new copy path"
    );
    assert_eq!(d.unit.per, Some(Per::DeliveredByte));
    assert_eq!(d.inconclusive, None);
    let m = &d.total.metrics;
    let expect_before = (2 * MIB4 + 2_700) as f64 / MIB4 as f64;
    assert_eq!(m.copied.before, Some(expect_before));
    assert_eq!(m.copied.after, Some(2_700.0 / MIB4 as f64));
    assert_eq!(m.copied.before_total, Some(2 * MIB4 + 2_700));
    assert_eq!(m.copied.after_total, Some(2_700));
    assert_eq!(m.copy_amplification, Some(m.copied));
    assert_eq!(m.zero_copy.status, Status::Appeared);
    assert_eq!(m.zero_copy_ratio.before, Some(0.0));
    assert!(m.zero_copy_ratio.change_pct.expect("pp") > 99.0);
    // One group, matched by name although every pid differs.
    assert_eq!(d.processes.len(), 1);
    assert_eq!(
        (
            d.processes[0].processes_before,
            d.processes[0].processes_after
        ),
        (2, 2)
    );
    let names: Vec<(&str, Status)> = d
        .total
        .changed
        .iter()
        .map(|e| (e.name.as_str(), e.status))
        .collect();
    assert_eq!(
        names,
        [
            ("copy_file_range", Status::Appeared),
            ("read", Status::Fell),
            ("write", Status::Fell)
        ]
    );
}

/// Two commands that ran to completion did the same job: their totals compare, whatever
/// their runtimes (per second, the faster run's fixed costs would look five times larger).
#[test]
fn commands_that_ran_to_completion_compare_totals() {
    let (before, after) = file_copy();
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert_eq!(d.unit.per, Some(Per::Run));
    assert_eq!(
        d.verdict,
        "per run (totals: both commands ran to completion): copied bytes fell 8.0 MiB → 2.6 KiB (−100%); no new copy path"
    );
    assert!(d.regressions.is_empty(), "{:?}", d.regressions);
    let m = &d.total.metrics;
    assert_eq!(m.calls.before, Some(133.0));
    assert_eq!(m.calls.before_total, Some(133));
    assert_eq!(m.copy_amplification, None);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    // The loader's reads are the same in both: within noise, not listed.
    assert_eq!(d.processes.len(), 1);
    assert_eq!(d.total.unchanged, 0);
}

/// The reproduction: the same work recorded for 2 s and for 8 s (6 s idle). Per
/// second it "fell 75 %"; there is no sound unit, so the diff is inconclusive and cannot be
/// judged by --fail-if.
#[test]
fn time_bounded_recordings_of_different_runtimes_are_inconclusive() {
    let (work, _) = file_copy();
    for kind in [
        WorkloadKind::Pids,
        WorkloadKind::Command,
        WorkloadKind::Comm,
    ] {
        let before = bounded(work.clone(), kind, 2.0);
        let after = bounded(work.clone(), kind, 8.0);
        let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
        let why = d.inconclusive.clone().expect("inconclusive");
        assert!(
            why.contains("runtimes that differ by more than 25 % (2.00 s and 8.00 s)"),
            "{why}"
        );
        assert!(why.contains("--per-bytes-delivered"), "{why}");
        assert!(why.contains("record both with --flows"), "{why}");
        assert!(
            d.verdict.starts_with("inconclusive: time-bounded (BEFORE "),
            "{}",
            d.verdict
        );
        assert!(
            d.verdict
                .ends_with("; recorded totals 8.0 MiB → 8.0 MiB copied, not compared"),
            "{}",
            d.verdict
        );
        assert!(
            !d.verdict.contains('%') || !d.verdict.contains("−75"),
            "{}",
            d.verdict
        );
        assert_eq!(d.unit.per, None);
        assert_eq!(d.total.metrics.copied.status, Status::NotCompared);
        assert_eq!(d.total.metrics.copied.before_total, Some(2 * MIB4 + 2_700));
        assert!(d.regressions.is_empty());
        assert!(d.processes.is_empty() && d.unchanged_processes == 1);
        assert!(d.noise.is_none());
        for t in [
            "copied-decrease<50%",
            "regressions>0",
            "zero-copy-ratio<90%",
        ] {
            let e = threshold::parse(t).expect(t).evaluate(&d).expect(t);
            assert_eq!((e.held, e.value), (None, None), "{t}");
        }
        // A unit of work makes it conclusive: the same job, unchanged.
        let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
        assert_eq!(d.inconclusive, None);
        assert_eq!(d.total.metrics.copied.status, Status::Same);
        let e = threshold::parse("copied-decrease<50%")
            .expect("p")
            .evaluate(&d)
            .expect("e");
        assert_eq!(e.held, Some(true));
    }
    // One side time-bounded is enough: a complete command against a --pid recording.
    let d = diff(
        &work,
        &bounded(work.clone(), WorkloadKind::Pids, 8.0),
        Unit::FromRecordings,
    )
    .expect("diff");
    let why = d.inconclusive.expect("inconclusive");
    assert!(why.starts_with("time-bounded (AFTER --pid)"), "{why}");
    // A time-bounded recording of 0 s has no rate either.
    let d = diff(
        &bounded(work.clone(), WorkloadKind::Pids, 0.0),
        &bounded(work.clone(), WorkloadKind::Pids, 1.0),
        Unit::FromRecordings,
    )
    .expect("diff");
    assert!(d.inconclusive.is_some_and(|w| w.contains("0.00 s")));
}

/// `r` with a flows layer that delivered `n` bytes through sockets.
fn delivering(mut r: Recording, n: u64) -> Recording {
    let flows = Layer {
        totals: LayerTotals {
            delivered_bytes: Some(n),
            ..LayerTotals::default()
        },
        ..Layer::default()
    };
    r.total.layers.insert(FLOWS_LAYER.to_string(), flows);
    r
}

/// Time-bounded recordings that both have the flows layer compare per byte each delivered
/// through sockets, whatever their runtimes: a server that served four times as much in
/// four times as long copied as much per byte served; one that copied the same in 8 s but
/// served half as much copies twice as much per byte.
#[test]
fn time_bounded_recordings_with_flows_compare_per_delivered_byte() {
    let (work, _) = file_copy();
    let four = recording(
        0.050,
        &[
            (100, "demo", &[("read", 3, 8_000), ("write", 1, 2_800)]),
            (
                101,
                "demo",
                &[("read", 65, 4 * MIB4), ("write", 64, 4 * MIB4)],
            ),
        ],
    );
    let before = delivering(bounded(work.clone(), WorkloadKind::Pids, 2.0), MIB4);
    let after = delivering(bounded(four, WorkloadKind::Pids, 8.0), 4 * MIB4);
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert_eq!(d.inconclusive, None, "{}", d.verdict);
    assert_eq!(d.unit.per, Some(Per::DeliveredByte));
    assert_eq!(d.unit.measured_delivered_bytes, Some([MIB4, 4 * MIB4]));
    assert_eq!(d.unit.delivered_bytes, None);
    assert_eq!(d.total.metrics.copied.status, Status::Same, "{}", d.verdict);
    assert!(
        d.verdict.starts_with(
            "per delivered byte (4.0 MiB → 16.0 MiB through sockets, measured by the flows layer)"
        ),
        "{}",
        d.verdict
    );
    assert!(
        d.unit.basis.contains("as the flows layer measured it"),
        "{}",
        d.unit.basis
    );
    let after = delivering(bounded(work.clone(), WorkloadKind::Pids, 8.0), MIB4 / 2);
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert_eq!(d.total.metrics.copied.status, Status::Rose, "{}", d.verdict);
    // Only one side measured: no unit (the runtimes differ too much for per second).
    let after = bounded(work.clone(), WorkloadKind::Pids, 8.0);
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert!(d.inconclusive.is_some());
    // Nothing delivered (a file copy): no unit either.
    let d = diff(
        &delivering(bounded(work.clone(), WorkloadKind::Pids, 2.0), 0),
        &delivering(bounded(work.clone(), WorkloadKind::Pids, 8.0), 0),
        Unit::FromRecordings,
    )
    .expect("diff");
    assert!(d.inconclusive.is_some());
}

/// Time-bounded recordings whose runtimes are within 25 % compare per second, and the
/// verdict says that this assumes a steady load.
#[test]
fn time_bounded_recordings_of_similar_runtime_compare_per_second() {
    let (work, _) = file_copy();
    let before = bounded(work.clone(), WorkloadKind::Pids, 2.0);
    for (seconds, per_second) in [(2.5, true), (2.0, true), (1.6, true), (2.51, false)] {
        let after = bounded(work.clone(), WorkloadKind::Pids, seconds);
        let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
        assert_eq!(
            d.unit.per == Some(Per::Second),
            per_second,
            "{seconds}: {d:?}"
        );
        assert_eq!(d.inconclusive.is_none(), per_second, "{seconds}");
    }
    let after = bounded(work.clone(), WorkloadKind::Pids, 2.5);
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert!(
        d.verdict.starts_with(
            "per second (time-bounded recordings of similar runtime; assumes a steady load): copied bytes fell 4.0 MiB/s → 3.2 MiB/s (−20%; 8.0 MiB → 8.0 MiB copied)"
        ),
        "{}",
        d.verdict
    );
    assert!(
        d.unit
            .basis
            .contains("within 25 % (2.00 s and 2.50 s): per second holds if the load was steady"),
        "{}",
        d.unit.basis
    );
    let e = threshold::parse("copied-decrease<10%")
        .expect("p")
        .evaluate(&d)
        .expect("e");
    assert_eq!(e.held, Some(false));
}

#[test]
fn a_new_copy_path_is_a_regression() {
    let (before, after) = file_copy();
    let d = diff(&after, &before, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert_eq!(d.regressions.len(), 2, "{:?}", d.regressions);
    assert!(
        d.verdict
            .starts_with("per delivered byte (4.0 MiB each): copies rose 0.00064 → 2.00 B copied per B delivered (×"),
        "{}",
        d.verdict
    );
    assert!(
        d.verdict
            .contains("; REGRESSION: 2 copy paths grew or appeared: read in demo (×"),
        "{}",
        d.verdict
    );
    // A new process that copies is a regression too.
    let with_new = recording(0.01, &[(300, "gzip", &[("read", 10, MIB4)])]);
    let d = diff(&recording(0.01, &[]), &with_new, Unit::FromRecordings).expect("diff");
    assert_eq!(d.regressions.len(), 1);
    assert!(d.verdict.contains("read in gzip (new)"), "{}", d.verdict);
}

#[test]
fn a_file_against_itself_shows_no_change() {
    let (before, _) = file_copy();
    let pid = bounded(before.clone(), WorkloadKind::Pids, 1.0);
    for (r, unit) in [
        (&before, Unit::FromRecordings),
        (&before, Unit::PerBytesDelivered(MIB4)),
        (&pid, Unit::FromRecordings),
    ] {
        let d = diff(r, r, unit).expect("diff");
        assert!(d.verdict.contains("unchanged at"), "{}", d.verdict);
        assert!(d.verdict.ends_with("no new copy path"));
        assert!(d.total.changed.is_empty());
        assert!(d.processes.is_empty());
        assert_eq!(d.unchanged_processes, 1);
        assert_eq!(d.total.unchanged, 2);
        assert_eq!(d.total.metrics.copied.change_pct, Some(0.0));
        let t = threshold::parse("copied-increase>0%").expect("parses");
        assert_eq!(t.evaluate(&d).expect("evaluates").held, Some(false));
    }
}

/// Only changes above 1 % of the bytes moved are listed; the rest are counted.
#[test]
fn changes_within_noise_collapse_into_a_count() {
    let server_before: &[Call] = &[("read", 100, 10_000_000), ("write", 10, 5_000)];
    // read unchanged, write doubled but tiny; a new tiny recvfrom.
    let server_after: &[Call] = &[
        ("read", 100, 10_000_000),
        ("write", 20, 10_000),
        ("recvfrom", 1, 90_000),
    ];
    let before = recording(
        1.0,
        &[
            (10, "server", server_before),
            (20, "logger", &[("write", 5, 50_000)]),
        ],
    );
    // The logger wrote 80 % more, still under 1 % of 10 MB moved.
    let after = recording(
        1.0,
        &[
            (10, "server", server_after),
            (20, "logger", &[("write", 9, 90_000)]),
        ],
    );
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    let noise = d.noise.expect("noise");
    assert_eq!(noise.moved, 10_190_000.0);
    assert!((noise.bytes - 101_900.0).abs() < 1e-6);
    assert!(d.processes.is_empty(), "{:?}", d.processes);
    assert_eq!(d.unchanged_processes, 2);
    assert!(d.total.changed.is_empty());
    assert_eq!(d.total.unchanged, 3);
    assert!(d.regressions.is_empty());
    // Above noise: listed, and a grown copy path is a regression.
    let grown = recording(
        1.0,
        &[
            (10, "server", server_after),
            (20, "logger", &[("write", 99, 900_000)]),
        ],
    );
    let d = diff(&before, &grown, Unit::FromRecordings).expect("diff");
    let listed: Vec<&str> = d.processes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(listed, ["logger"]);
    assert_eq!(d.unchanged_processes, 1);
    assert_eq!(d.regressions.len(), 1);
    assert_eq!(d.regressions[0].name, "write");
}

/// A --pid recording and a -- CMD recording of one program compare, with a warning; the
/// whole machine compares only with itself.
#[test]
fn pid_and_command_recordings_compare_with_a_warning() {
    let (before, after) = file_copy();
    let pid = bounded(before.clone(), WorkloadKind::Pids, 0.05);
    let d = diff(&pid, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(
        d.warnings.iter().any(|w| w.starts_with(
            "BEFORE records chosen pids and AFTER a command: compare them only if both ran the same program"
        )),
        "{:?}",
        d.warnings
    );
    assert_eq!(d.total.metrics.copied.status, Status::Fell);
    let machine = bounded(before.clone(), WorkloadKind::Machine, 0.05);
    for (b, a) in [(&machine, &after), (&after, &machine), (&machine, &pid)] {
        let err = diff(b, a, Unit::FromRecordings).unwrap_err();
        assert!(
            err.to_string().contains("record both the same way"),
            "{err}"
        );
    }
    assert!(diff(&machine, &machine, Unit::FromRecordings).is_ok());
}

/// Recordings whose probes differ (another kernel, other privileges) say so, per layer.
#[test]
fn different_probes_are_a_warning() {
    let (before, mut after) = file_copy();
    let mut kernel = crate::format::ProbeLayer {
        layer: "kernel".into(),
        state: "partial".into(),
        via: "fentry".into(),
        attached: 2,
        unavailable: vec!["_copy_to_user".into()],
    };
    after.probe_layers.push(kernel.clone());
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert!(
        d.warnings.iter().any(|w| w
            == "the kernel layer's probes differ (recorded only in AFTER): their entries cannot be compared"),
        "{:?}",
        d.warnings
    );
    let mut before = before;
    kernel.unavailable = vec!["_copy_to_user".into(), "__check_object_size".into()];
    before.probe_layers.push(kernel);
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert_eq!(
        d.warnings
            .iter()
            .filter(|w| w.contains("probes differ"))
            .collect::<Vec<_>>(),
        [
            "the kernel layer's probes differ (attached only in AFTER: __check_object_size): their entries cannot be compared"
        ]
    );
    let d = diff(&after, &after, Unit::FromRecordings).expect("diff");
    assert!(!d.warnings.iter().any(|w| w.contains("probes differ")));
}

/// A complete command of 0 s still has totals (only a rate needs a runtime).
#[test]
fn a_command_of_zero_seconds_compares_by_totals() {
    let (mut before, after) = file_copy();
    before.duration_s = 0.0;
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert_eq!(d.unit.per, Some(Per::Run));
    assert!(diff(&before, &after, Unit::PerBytesDelivered(1)).is_ok());
}

#[test]
fn thresholds_gate_on_the_total() {
    let (before, after) = file_copy();
    let fwd = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let back = diff(&after, &before, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let held = |d: &Diff, t: &str| {
        threshold::parse(t)
            .expect(t)
            .evaluate(d)
            .expect(t)
            .held
            .expect("judged")
    };
    assert!(!held(&fwd, "copied-increase>5%"));
    assert!(held(&back, "copied-increase>5%"));
    assert!(!held(&fwd, "copied-decrease<50%"), "copies fell by ~100%");
    assert!(held(&back, "regressions>0"));
    assert!(!held(&fwd, "regressions>0"));
    assert!(held(&fwd, "zero-copy-ratio>90%"));
    assert!(held(&fwd, "zero-copy-ratio-increase>=99%"));
    assert!(held(&fwd, "amplification<0.01"));
    let totals = diff(&before, &after, Unit::FromRecordings).expect("diff");
    assert!(!held(&totals, "copied-decrease<50%"));
    assert!(
        held(&totals, "copied-decrease<100%"),
        "a few loader reads remain"
    );
    let err = threshold::parse("amplification>1")
        .expect("parses")
        .evaluate(&totals)
        .unwrap_err();
    assert!(err.contains("--per-bytes-delivered"), "{err}");
    // Also when the diff is inconclusive: the condition is wrong whatever the recordings.
    let inconclusive = diff(
        &bounded(before.clone(), WorkloadKind::Pids, 1.0),
        &bounded(before.clone(), WorkloadKind::Pids, 3.0),
        Unit::FromRecordings,
    )
    .expect("diff");
    let err = threshold::parse("amplification>1")
        .expect("parses")
        .evaluate(&inconclusive)
        .unwrap_err();
    assert!(err.contains("--per-bytes-delivered"), "{err}");
    // From zero, any copy is an infinite increase.
    let none = recording(1.0, &[(1, "x", &[("splice", 1, 10)])]);
    let some = recording(1.0, &[(1, "x", &[("splice", 1, 10), ("read", 1, 10)])]);
    let d = diff(&none, &some, Unit::FromRecordings).expect("diff");
    let e = threshold::parse("copied-increase>1000%")
        .expect("parses")
        .evaluate(&d)
        .expect("ok");
    assert!(e.held == Some(true) && e.value.is_some_and(f64::is_infinite));
}

/// Checks a `--json` document against `schema/diff.v1.json`.
fn assert_diff_schema(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schema/diff.v1.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
}

/// Text, Markdown and JSON carry the same content, every per-byte figure has its unit and
/// stands beside its recorded total, and no figure is a bare exponent.
#[test]
fn renderings_carry_the_same_content_with_units() {
    let (before, after) = file_copy();
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let evals = [threshold::parse("copied-increase>5%")
        .expect("p")
        .evaluate(&d)
        .expect("e")];
    let text = render::text(&d, &evals);
    let md = render::markdown(&d, &evals);
    assert!(text.starts_with(&d.verdict), "{text}");
    assert!(md.starts_with(&format!("**{}**", d.verdict)), "{md}");
    for needle in [
        "unit: per delivered byte — each run delivered 4.0 MiB (--per-bytes-delivered 4194304)",
        "B/B: bytes per byte delivered",
        "noise: a change of at most 1 % of the bytes moved (0.02 B/B) counts as unchanged",
        "--fail-if copied-increase>5%: ok",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
        assert!(md.contains(needle), "{needle}: {md}");
    }
    // The same cells in both: total and normalised side by side, with units.
    for cells in [
        [
            "copied u→k",
            "4.0 MiB · 1.00 B/B",
            "700 B · 0.00017 B/B",
            "−100%",
        ],
        ["calls", "133 · 33/MiB", "6 · 1.5/MiB", "−95%"],
        [
            "copied",
            "8.0 MiB · 2.00 B/B",
            "2.6 KiB · 0.00064 B/B",
            "−100%",
        ],
        ["copy amplification", "2.00 B/B", "0.00064 B/B", "−100%"],
    ] {
        assert!(
            md.contains(&format!("| {} |", cells.join(" | "))),
            "{cells:?}: {md}"
        );
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{}  ", cells[0])))
            .unwrap_or_else(|| panic!("no {} row: {text}", cells[0]));
        let mut rest = line;
        for c in cells {
            let at = rest.find(c).unwrap_or_else(|| panic!("{c} in {line}"));
            rest = &rest[at + c.len()..];
        }
    }
    let entry = [
        "copy_file_range",
        "zero_copy k2k",
        "syscall",
        "0 B · 0.00 B/B",
        "4.0 MiB · 1.00 B/B",
        "new",
        "0 → 2",
    ];
    assert!(md.contains(&format!("| {} |", entry.join(" | "))), "{md}");
    assert!(
        text.lines()
            .any(|l| entry.iter().all(|c| l.contains(c)) && l.starts_with("    copy_file_range")),
        "{text}"
    );
    for form in [&text, &md] {
        let exponent = form
            .as_bytes()
            .windows(3)
            .any(|w| w[0].is_ascii_digit() && w[1] == b'e' && (w[2] == b'-' || w[2] == b'+'));
        assert!(!exponent, "a bare exponent: {form}");
    }
    let json: serde_json::Value = serde_json::from_str(&render::json(&d, &evals)).expect("json");
    assert_diff_schema(&json);
    assert_eq!(json["schema"], SCHEMA);
    assert_eq!(json["verdict"], d.verdict.as_str());
    assert_eq!(json["unit"]["per"], "delivered_byte");
    assert_eq!(json["thresholds"][0]["held"], false);
    assert_eq!(
        json["total"]["metrics"]["copied"]["before_total"],
        2 * MIB4 + 2_700
    );
    let pct = json["total"]["metrics"]["copied"]["change_pct"].as_f64();
    assert!(pct.is_some_and(|p| p < -99.9), "{pct:?}");

    // Per second: totals beside rates.
    let b = bounded(before.clone(), WorkloadKind::Pids, 2.0);
    let a = bounded(before.clone(), WorkloadKind::Pids, 2.4);
    let d = diff(&b, &a, Unit::FromRecordings).expect("diff");
    let text = render::text(&d, &[]);
    assert!(
        text.contains("8.0 MiB · 4.0 MiB/s") && text.contains("8.0 MiB · 3.3 MiB/s"),
        "{text}"
    );
    assert_diff_schema(&serde_json::from_str(&render::json(&d, &[])).expect("json"));
}

/// Inconclusive: the verdict says why, the totals are shown without a change, and every
/// condition is "cannot judge" in each form.
#[test]
fn an_inconclusive_diff_shows_totals_and_judges_nothing() {
    let (work, _) = file_copy();
    let b = bounded(work.clone(), WorkloadKind::Pids, 2.0);
    let a = bounded(work.clone(), WorkloadKind::Pids, 8.0);
    let d = diff(&b, &a, Unit::FromRecordings).expect("diff");
    let evals = [threshold::parse("copied-decrease<50%")
        .expect("p")
        .evaluate(&d)
        .expect("e")];
    let text = render::text(&d, &evals);
    let md = render::markdown(&d, &evals);
    assert!(text.starts_with("inconclusive: "), "{text}");
    for needle in [
        "unit: none — no sound unit of work",
        "--fail-if copied-decrease<50%: cannot judge (the diff is inconclusive)",
        "1 other process group unchanged (within noise)",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
        assert!(md.contains(needle), "{needle}: {md}");
    }
    assert!(
        md.contains("| copied u→k | 4.0 MiB | 4.0 MiB | — |"),
        "{md}"
    );
    assert!(md.contains("| zero-copy ratio | 0% | 0% | — |"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&render::json(&d, &evals)).expect("json");
    assert_diff_schema(&json);
    assert_eq!(json["unit"]["per"], serde_json::Value::Null);
    assert_eq!(json["thresholds"][0]["held"], serde_json::Value::Null);
    assert!(
        json["inconclusive"]
            .as_str()
            .is_some_and(|w| w.contains("2.00 s and 8.00 s"))
    );
}

/// Command lines are shell-quoted wherever a diff prints them.
#[test]
fn command_lines_are_shell_quoted() {
    let (mut before, after) = file_copy();
    before.workload.command = Some(vec!["sh".into(), "-c".into(), "kill -TERM $$".into()]);
    assert_eq!(before.workload_label(), "sh -c 'kill -TERM $$'");
    let mut pids = bounded(after.clone(), WorkloadKind::Pids, 1.0);
    pids.workload.targets[0].command = vec!["nginx".into(), "-g".into(), "daemon off;".into()];
    assert_eq!(pids.workload_label(), "pid 200 (nginx -g 'daemon off;')");
    let d = diff(&before, &pids, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let text = render::text(&d, &[]);
    assert!(
        text.contains("before: `sh -c 'kill -TERM $$'` · command, ran to completion"),
        "{text}"
    );
    assert!(
        text.contains("after:  `pid 200 (nginx -g 'daemon off;')` · --pid · 1.00 s"),
        "{text}"
    );
    let md = render::markdown(&d, &[]);
    assert!(
        md.contains("- before: `sh -c 'kill -TERM $$'` · command"),
        "{md}"
    );
    assert_eq!(
        crate::command_line(&["a b", "it's", "plain"]),
        "'a b' \"it's\" plain"
    );
}

#[test]
fn empty_recordings_do_not_panic() {
    let empty = recording(1.0, &[]);
    let d = diff(&empty, &empty, Unit::FromRecordings).expect("diff");
    assert_eq!(
        d.verdict,
        "per run (totals: both commands ran to completion): copied bytes unchanged at 0 B; no new copy path"
    );
    let _ = render::text(&d, &[]);
    let _ = render::markdown(&d, &[]);
    let t = threshold::parse("zero-copy-ratio<50%").expect("parses");
    assert!(t.evaluate(&d).unwrap_err().contains("nothing moved"));
}

#[test]
fn parents_and_same_named_workers_are_kept_apart() {
    let mut before = recording(
        1.0,
        &[
            (10, "nginx", &[("read", 1, 100)]),
            (
                11,
                "nginx",
                &[("read", 10, 1_000_000), ("write", 10, 1_000_000)],
            ),
            (
                12,
                "nginx",
                &[("read", 10, 1_000_000), ("write", 10, 1_000_000)],
            ),
        ],
    );
    before.processes[1].ppid = Some(10);
    before.processes[2].ppid = Some(10);
    let mut after = recording(
        1.0,
        &[
            (20, "nginx", &[("read", 1, 100)]),
            (21, "nginx", &[("sendfile", 10, 1_000_000)]),
            (22, "nginx", &[("sendfile", 10, 1_000_000)]),
        ],
    );
    after.processes[1].ppid = Some(20);
    after.processes[2].ppid = Some(20);
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    let names: Vec<(&str, usize, usize)> = d
        .processes
        .iter()
        .map(|s| (s.name.as_str(), s.processes_before, s.processes_after))
        .collect();
    // The parent's read is the same in both: within noise, counted.
    assert_eq!(names, [("nginx > nginx", 2, 2)]);
    assert_eq!(d.unchanged_processes, 1);
    assert_eq!(d.processes[0].metrics.copied.before, Some(4_000_000.0));
    assert_eq!(d.processes[0].metrics.copied.after, Some(0.0));
}

/// Issue 12 point 4: nginx's sendfile returned EAGAIN more often after the change. That is
/// "would block", never a failure nor a regression: `errors` and `--fail-if errors` leave it
/// out, and the errno is named with its recorded counts.
#[test]
fn would_block_errors_are_never_a_regression() {
    let (before, after) = file_copy();
    let before = with_errors(before, "read", &[("EAGAIN", 123), ("EPIPE", 1)]);
    let after = with_errors(
        after,
        "read",
        &[("EAGAIN", 318), ("EINTR", 2), ("EPIPE", 1)],
    );
    crate::parse(serde_json::to_string(&after).expect("json").as_bytes()).expect("consistent");
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    let m = &d.total.metrics;
    assert_eq!(
        (m.errors.before_total, m.errors.after_total),
        (Some(1), Some(1))
    );
    assert_eq!(m.errors.status, Status::Same);
    assert_eq!(
        (m.would_block.before_total, m.would_block.after_total),
        (Some(123), Some(320))
    );
    assert_eq!(
        m.errno
            .iter()
            .map(|e| (
                e.errno.as_str(),
                e.would_block,
                e.before_total,
                e.after_total
            ))
            .collect::<Vec<_>>(),
        [
            ("EPIPE", false, 1, 1),
            ("EAGAIN", true, 123, 318),
            ("EINTR", true, 0, 2)
        ]
    );
    assert!(d.regressions.is_empty(), "{:?}", d.regressions);
    for t in ["errors-increase>0", "errors>1"] {
        let e = threshold::parse(t).expect(t).evaluate(&d).expect(t);
        assert_eq!(e.held, Some(false), "{t}");
    }
    let text = render::text(&d, &[]);
    assert!(
        text.contains(
            "errors by errno (recorded): EPIPE 1 → 1; EAGAIN 123 → 318 (would block / interrupted, not a failure); EINTR 0 → 2 (would block / interrupted, not a failure)"
        ),
        "{text}"
    );
}

/// A server moved from `send` to `send(MSG_ZEROCOPY)`, before and after.
fn msg_zerocopy(notice: &'static str) -> (Recording, Recording) {
    let before = recording(0.05, &[(100, "srv", &[("sendto", 16, MIB4)])]);
    let after = recording(
        0.05,
        &[(
            200,
            "srv",
            &[
                ("sendto_zerocopy", 16, MIB4),
                ("recvmsg", 3, 0),
                (notice, 16, 0),
            ],
        )],
    );
    (before, after)
}

#[test]
fn msg_zerocopy_the_kernel_copied_is_no_fall() {
    // On loopback every notification says the kernel copied: the copies did not go away.
    let (before, after) = msg_zerocopy("msg_zerocopy_copied");
    let z = primary(&after.total.layers).msg_zerocopy;
    assert_eq!(
        (z.requested_sends, z.copied_sends, z.done_sends),
        (16, 16, 0)
    );
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    let m = &d.total.metrics;
    assert_eq!(m.copied.before_total, Some(MIB4));
    assert_eq!(m.copied.after_total, Some(MIB4), "recvmsg moved 0 B");
    assert_eq!(m.copied.status, Status::Same, "{}", d.verdict);
    assert!(
        d.verdict.contains("16 copied by the kernel anyway") && d.verdict.contains("unchanged"),
        "{}",
        d.verdict
    );
    // A program that never reads its notifications proves nothing either.
    let unread = recording(0.05, &[(200, "srv", &[("sendto_zerocopy", 16, MIB4)])]);
    let d = diff(&before, &unread, Unit::FromRecordings).expect("diff");
    assert_eq!(d.total.metrics.copied.status, Status::Same, "{}", d.verdict);
    assert!(d.verdict.contains("16 not confirmed"), "{}", d.verdict);
}

#[test]
fn msg_zerocopy_confirmed_is_a_fall() {
    let (before, after) = msg_zerocopy("msg_zerocopy_done");
    let d = diff(&before, &after, Unit::FromRecordings).expect("diff");
    let m = &d.total.metrics;
    assert_eq!(m.copied.after_total, Some(0));
    assert_eq!(m.zero_copy.after_total, Some(MIB4));
    assert!(d.verdict.contains("fell"), "{}", d.verdict);
    assert!(d.verdict.contains("16 without a copy"), "{}", d.verdict);
}

#[test]
fn msg_zerocopy_shares_are_recomputed_when_summed() {
    // Two processes: one all confirmed, one all copied; the sum is half and half, exact.
    let a = crate::MsgZerocopy {
        requested_bytes: 100,
        requested_sends: 10,
        done_sends: 10,
        copied_sends: 0,
    };
    let b = crate::MsgZerocopy {
        requested_bytes: 300,
        requested_sends: 10,
        done_sends: 0,
        copied_sends: 10,
    };
    assert_eq!((a.unconfirmed_bytes(), b.unconfirmed_bytes()), (0, 300));
    // Figures that hold each member's shares: 0 + 300 copied, 100 + 0 zero-copy.
    let (mut u2k, mut zero_copy) = (300, 100);
    let mut sum = a;
    sum.add_into(&b, &mut u2k, &mut zero_copy);
    assert_eq!(sum.requested_sends, 20);
    // 10 of 20 sends confirmed: half of 400 B is taken as confirmed, an estimate (the
    // members' exact shares were 100 and 0), which the sum says it is.
    assert_eq!((u2k, zero_copy), (200, 200));
    assert!(!sum.exact() && a.exact() && b.exact());
}

/// `r` with `pages` mapped file pages (the mapped layer's `map_pages` slot) in its first
/// process and the total.
fn with_mapped(r: Recording, pages: u64) -> Recording {
    with_entry(
        r,
        MAPPED_LAYER,
        "map_pages",
        Family::Mapped,
        Direction::K2u,
        pages * 4096,
    )
}

/// `r` with one entry of `bytes` in one call, in layer `layer` of its first process and the
/// total.
fn with_entry(
    mut r: Recording,
    layer: &str,
    name: &str,
    family: Family,
    direction: Direction,
    bytes: u64,
) -> Recording {
    let entries = Layer {
        totals: LayerTotals {
            calls: 1,
            ..LayerTotals::default()
        },
        probes: crate::SortedMap::from([(
            name.to_string(),
            Entry {
                family,
                direction,
                calls: 1,
                bytes,
                errors: 0,
                errno: crate::SortedMap::default(),
                hist: Vec::new(),
            },
        )]),
        ..Layer::default()
    };
    r.processes[0]
        .layers
        .insert(layer.to_string(), entries.clone());
    r.total.layers.insert(layer.to_string(), entries);
    r
}

/// The user layer's bytes, both sides, beside the verdict; nothing when neither side has
/// the layer.
#[test]
fn user_space_copies_are_said_beside_the_verdict() {
    let user = |r, bytes| {
        with_entry(
            r,
            USER_LAYER,
            "memcpy/memmove",
            Family::UserCopy,
            Direction::U2u,
            bytes,
        )
    };
    let base = recording(0.02, &[(100, "demo", &[("read", 4, MIB4)])]);
    let d = diff(&base, &base, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(!d.verdict.contains("user-space copies"), "{}", d.verdict);
    let (before, after) = (user(base.clone(), 4 * MIB4), user(base.clone(), MIB4));
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(
        d.verdict.contains(
            "user-space copies (user layer, recorded totals): 16.0 MiB before, 4.0 MiB after (-75 %)"
        ),
        "{}",
        d.verdict
    );
    let d = diff(&base, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(
        d.verdict.contains("0 B before, 4.0 MiB after (new)"),
        "{}",
        d.verdict
    );
}

#[test]
fn copies_replaced_by_mapped_pages_say_so_in_the_verdict() {
    // file-read read -> mmap: the read copies go, the file's 1,024 pages are mapped instead.
    let before = recording(0.02, &[(100, "demo", &[("pread64", 65, MIB4)])]);
    let after = with_mapped(recording(0.01, &[(200, "demo", &[])]), 1024);
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(d.verdict.contains(MAPPED_NOTE), "{}", d.verdict);
    assert!(d.verdict.contains("after)"), "{}", d.verdict);
    // Mapped pages are not copies: the copied total of AFTER stays 0.
    assert_eq!(primary(&after.total.layers).copy_k2u_bytes, 0);
    // No note when the copies did not fall.
    let same = with_mapped(before.clone(), 1024);
    let d = diff(&before, &same, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(!d.verdict.contains(MAPPED_NOTE), "{}", d.verdict);
    // Nor when the mapped pages rose by less than half the read copies that went: a proxy
    // that moved to splice maps a few more pages of its own code (seen: 1.4 → 1.6 MiB),
    // which says nothing about how it reads its data.
    let before = with_mapped(before, 350);
    let after = with_mapped(recording(0.01, &[(200, "demo", &[])]), 350 + 511);
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(!d.verdict.contains(MAPPED_NOTE), "{}", d.verdict);
    // Half of the 4 MiB that went (512 pages) is enough.
    let after = with_mapped(recording(0.01, &[(200, "demo", &[])]), 350 + 512);
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(d.verdict.contains(MAPPED_NOTE), "{}", d.verdict);
}

/// `--only`: a cgroup path keeps the processes in it or below, a command or a name those
/// so called; the total is theirs.
#[test]
fn only_restricts_to_a_cgroup_or_a_command() {
    let (mut before, _) = file_copy();
    before.processes[0].cgroup = Some("/system.slice/a.service".into());
    before.processes[1].cgroup = Some("/system.slice/b.service/sub".into());
    let a = only(&before, "/system.slice/a.service");
    assert_eq!(a.processes.len(), 1);
    assert_eq!(a.processes[0].pid, 100);
    assert_eq!(primary(&a.total.layers).copied_bytes(), 2_700);
    let b = only(&before, "/system.slice/b.service");
    assert_eq!(b.processes.len(), 1);
    assert_eq!(primary(&b.total.layers).copied_bytes(), 2 * MIB4);
    assert_eq!(only(&before, "/system.slice").processes.len(), 2);
    assert!(
        only(&before, "/system.slice/b").processes.is_empty(),
        "not a prefix of a name"
    );
    assert_eq!(only(&before, "demo").processes.len(), 2, "by name");
    assert!(only(&before, "nothing").processes.is_empty());
    let none = only(&before, "nothing");
    assert_eq!(primary(&none.total.layers).copied_bytes(), 0);
}

#[test]
fn call_sites_that_vanished_are_named_and_sampling_noise_is_not() {
    let (before, after) = file_copy();
    let before = crate::fixture::with_stacks(
        before,
        &[
            (101, "copy_loop", 6),
            (101, "steady", 100),
            (101, "tiny", 1),
        ],
    );
    let after = crate::fixture::with_stacks(after, &[(201, "steady", 103), (201, "new_copy", 30)]);
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let sites = d.call_sites.as_ref().expect("both have stacks");
    let named: Vec<(&str, Status)> = sites
        .changed
        .iter()
        .map(|c| (c.call_site.as_str(), c.bytes.status))
        .collect();
    // 100 → 103 samples is well within 2 × √(100 + 103) periods; 1 → 0 is within the
    // one-period floor (and 4 → 0 would be too: 2 × √(4 + 1) > 4); 6 → 0 and 0 → 30 are not.
    assert_eq!(
        named,
        vec![
            ("read() in new_copy", Status::Appeared),
            ("read() in copy_loop", Status::Gone)
        ]
    );
    assert_eq!(sites.unchanged, 2);
    let text = render::text(&d, &[]);
    assert!(text.contains("call sites (stacks layer"), "{text}");
    assert!(text.contains("read() in copy_loop"), "{text}");
    let md = render::markdown(&d, &[]);
    assert!(md.contains("| demo | read() in new_copy |"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&render::json(&d, &[])).unwrap();
    assert_eq!(json["call_sites"]["changed"][1]["bytes"]["status"], "gone");
}

#[test]
fn call_sites_are_compared_only_when_both_sides_have_stacks() {
    let (before, after) = file_copy();
    let before = crate::fixture::with_stacks(before, &[(101, "copy_loop", 4)]);
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert!(d.call_sites.is_none());
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("only BEFORE was recorded with --stacks")),
        "{:?}",
        d.warnings
    );
}
