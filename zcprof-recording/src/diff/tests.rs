//! The diff on recordings built in code: the demo-shaped cases (copies removed, a copy path
//! added), matching by name, normalisation, and thresholds.

use super::{render, threshold, *};
use crate::fixture::recording;

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

#[test]
fn copies_removed_per_delivered_byte() {
    let (before, after) = file_copy();
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert_eq!(
        d.verdict,
        "copies per delivered byte fell 2.00 → 0.00 (−100%); no new copy path"
    );
    let m = &d.total.metrics;
    let expect_before = (2 * MIB4 + 2_700) as f64 / MIB4 as f64;
    assert_eq!(m.copied.before, Some(expect_before));
    assert_eq!(m.copied.after, Some(2_700.0 / MIB4 as f64));
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

#[test]
fn per_second_is_the_default_and_ignores_small_fixed_costs() {
    let (before, after) = file_copy();
    let d = diff(&before, &after, Unit::PerSecond).expect("diff");
    // The loader's reads per second grow five-fold in the faster run: not a regression.
    assert!(d.regressions.is_empty(), "{:?}", d.regressions);
    assert!(
        d.verdict
            .starts_with("copied bytes per second fell 160.1 MiB/s → 263.7 KiB/s (−100%)"),
        "{}",
        d.verdict
    );
    assert_eq!(d.total.metrics.calls.before, Some(133.0 / 0.05));
    assert_eq!(d.total.metrics.copy_amplification, None);
    assert!(
        d.warnings.iter().any(|w| w.contains("runtimes differ")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_new_copy_path_is_a_regression() {
    let (before, after) = file_copy();
    let d = diff(&after, &before, Unit::PerBytesDelivered(MIB4)).expect("diff");
    assert_eq!(d.regressions.len(), 2, "{:?}", d.regressions);
    assert!(
        d.verdict
            .starts_with("copies per delivered byte rose 0.00 → 2.00 (×"),
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
    let d = diff(&recording(0.01, &[]), &with_new, Unit::PerSecond).expect("diff");
    assert_eq!(d.regressions.len(), 1);
    assert!(d.verdict.contains("read in gzip (new)"), "{}", d.verdict);
}

#[test]
fn a_file_against_itself_shows_no_change() {
    let (before, _) = file_copy();
    for unit in [Unit::PerSecond, Unit::PerBytesDelivered(MIB4)] {
        let d = diff(&before, &before, unit).expect("diff");
        assert!(d.verdict.contains("unchanged at"), "{}", d.verdict);
        assert!(d.verdict.ends_with("no new copy path"));
        assert!(d.total.changed.is_empty());
        assert!(d.processes.iter().all(|s| s.changed.is_empty()));
        assert_eq!(d.total.metrics.copied.change_pct, Some(0.0));
        let t = threshold::parse("copied-increase>0%").expect("parses");
        assert!(!t.evaluate(&d).expect("evaluates").held);
    }
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
    let d = diff(&before, &after, Unit::PerSecond).expect("diff");
    assert!(
        d.warnings.iter().any(|w| w
            == "the kernel layer's probes differ (recorded only in AFTER): their entries cannot be compared"),
        "{:?}",
        d.warnings
    );
    let mut before = before;
    kernel.unavailable = vec!["_copy_to_user".into(), "__check_object_size".into()];
    before.probe_layers.push(kernel);
    let d = diff(&before, &after, Unit::PerSecond).expect("diff");
    assert_eq!(
        d.warnings
            .iter()
            .filter(|w| w.contains("probes differ"))
            .collect::<Vec<_>>(),
        [
            "the kernel layer's probes differ (attached only in AFTER: __check_object_size): their entries cannot be compared"
        ]
    );
    let d = diff(&after, &after, Unit::PerSecond).expect("diff");
    assert!(!d.warnings.iter().any(|w| w.contains("probes differ")));
}

#[test]
fn different_kinds_and_zero_durations_are_refused() {
    let (before, mut after) = file_copy();
    after.workload.kind = crate::WorkloadKind::Machine;
    let err = diff(&before, &after, Unit::PerSecond).unwrap_err();
    assert!(
        err.to_string()
            .contains("a command and AFTER the whole machine"),
        "{err}"
    );
    let (mut before, after) = file_copy();
    before.duration_s = 0.0;
    let err = diff(&before, &after, Unit::PerSecond).unwrap_err();
    assert!(err.to_string().contains("--per-bytes-delivered"), "{err}");
    assert!(diff(&before, &after, Unit::PerBytesDelivered(1)).is_ok());
}

#[test]
fn thresholds_gate_on_the_total() {
    let (before, after) = file_copy();
    let fwd = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let back = diff(&after, &before, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let held = |d: &Diff, t: &str| threshold::parse(t).expect(t).evaluate(d).expect(t).held;
    assert!(!held(&fwd, "copied-increase>5%"));
    assert!(held(&back, "copied-increase>5%"));
    assert!(!held(&fwd, "copied-decrease<50%"), "copies fell by ~100%");
    assert!(held(&back, "regressions>0"));
    assert!(!held(&fwd, "regressions>0"));
    assert!(held(&fwd, "zero-copy-ratio>90%"));
    assert!(held(&fwd, "zero-copy-ratio-increase>=99%"));
    assert!(held(&fwd, "amplification<0.01"));
    let per_s = diff(&before, &after, Unit::PerSecond).expect("diff");
    let err = threshold::parse("amplification>1")
        .expect("parses")
        .evaluate(&per_s)
        .unwrap_err();
    assert!(err.contains("--per-bytes-delivered"), "{err}");
    // From zero, any copy is an infinite increase.
    let none = recording(1.0, &[(1, "x", &[("splice", 1, 10)])]);
    let some = recording(1.0, &[(1, "x", &[("splice", 1, 10), ("read", 1, 10)])]);
    let d = diff(&none, &some, Unit::PerSecond).expect("diff");
    let e = threshold::parse("copied-increase>1000%")
        .expect("parses")
        .evaluate(&d)
        .expect("ok");
    assert!(e.held && e.value.is_infinite());
}

#[test]
fn renderings_lead_with_the_verdict() {
    let (before, after) = file_copy();
    let d = diff(&before, &after, Unit::PerBytesDelivered(MIB4)).expect("diff");
    let evals = [threshold::parse("copied-increase>5%")
        .expect("p")
        .evaluate(&d)
        .expect("e")];
    let text = render::text(&d, &evals);
    assert!(text.starts_with(&d.verdict), "{text}");
    assert!(
        text.contains("copy_file_range  zero_copy k2k (syscall layer): bytes 0.00 → 1.00 (new)"),
        "{text}"
    );
    assert!(text.contains("--fail-if copied-increase>5%: ok"), "{text}");
    let md = render::markdown(&d, &evals);
    assert!(md.starts_with(&format!("**{}**", d.verdict)), "{md}");
    assert!(
        md.contains("| copied u→k | 1.00 | 1.67e-4 | −100% |"),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&render::json(&d, &evals)).expect("json");
    assert_eq!(json["schema"], SCHEMA);
    assert_eq!(json["verdict"], d.verdict.as_str());
    assert_eq!(json["thresholds"][0]["held"], false);
    let pct = json["total"]["metrics"]["copied"]["change_pct"].as_f64();
    assert!(pct.is_some_and(|p| p < -99.9), "{pct:?}");
}

#[test]
fn empty_recordings_do_not_panic() {
    let empty = recording(1.0, &[]);
    let d = diff(&empty, &empty, Unit::PerSecond).expect("diff");
    assert_eq!(
        d.verdict,
        "copied bytes per second unchanged at 0 B/s; no new copy path"
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
    let d = diff(&before, &after, Unit::PerSecond).expect("diff");
    let names: Vec<(&str, usize, usize)> = d
        .processes
        .iter()
        .map(|s| (s.name.as_str(), s.processes_before, s.processes_after))
        .collect();
    assert_eq!(names, [("nginx > nginx", 2, 2), ("nginx", 1, 1)]);
    assert_eq!(d.processes[0].metrics.copied.before, Some(4_000_000.0));
    assert_eq!(d.processes[0].metrics.copied.after, Some(0.0));
    assert!(d.processes[1].changed.is_empty());
}
