//! The parser against good, damaged and foreign files.

use serde_json::Value;

use super::*;
use crate::fixture;

fn good() -> Vec<u8> {
    let r = fixture::recording(
        2.0,
        &[(10, "cat", &[("read", 4, 4096), ("write", 4, 4096)])],
    );
    serde_json::to_vec_pretty(&r).expect("serialises")
}

#[test]
fn round_trips() {
    let r = fixture::recording(2.0, &[(10, "cat", &[("read", 4, 4096), ("splice", 1, 9)])]);
    let text = serde_json::to_vec(&r).expect("serialises");
    assert_eq!(parse(&text), Ok(r));
}

#[test]
fn empty_files() {
    assert_eq!(parse(b""), Err(ParseError::Empty));
    assert_eq!(parse(b" \n\t"), Err(ParseError::Empty));
}

#[test]
fn truncated_files_at_every_length() {
    let text = good();
    for len in 1..text.len() - 1 {
        let err = parse(&text[..len]).expect_err("a prefix is not a recording");
        assert!(
            matches!(err, ParseError::Truncated { .. } | ParseError::Corrupt(_)),
            "{len}: {err:?}"
        );
    }
    assert!(matches!(
        parse(&text[..text.len() / 2]),
        Err(ParseError::Truncated { .. })
    ));
}

#[test]
fn corrupt_files() {
    assert!(matches!(
        parse(b"{\"schema\": nope}"),
        Err(ParseError::Corrupt(_))
    ));
    assert!(matches!(
        parse(b"\x00\xff\xfe"),
        Err(ParseError::Corrupt(_))
    ));
    let mut text = good();
    text.extend_from_slice(b"garbage");
    assert!(matches!(parse(&text), Err(ParseError::Corrupt(_))));
}

/// The first pass names what a document is without reading it into memory, and checks the
/// whole text: bytes after the object, or invalid UTF-8 in a field nobody reads, are
/// corruption.
#[test]
fn the_first_pass_names_the_document_and_checks_all_of_it() {
    let kind = |text: &[u8]| parse(text).unwrap_err().to_string();
    assert!(kind(b"\"zcprof.recording/v1\"").contains("holds a string"));
    assert!(kind(b"null").contains("holds null"));
    assert!(kind(b"true").contains("holds a boolean"));
    assert!(kind(b"-1.5e3").contains("holds a number"));
    assert!(kind(br#"{"schema":null}"#).contains("`schema` field is null"));
    assert!(kind(br#"{"schema":{"a":[1]}}"#).contains("`schema` field is an object"));
    assert!(kind(br#"{"schema":[]}"#).contains("`schema` field is an array"));
    assert!(kind(br#"{"other":{"schema":"x"}}"#).contains("no `schema` field"));
    assert!(matches!(
        parse(br#"{"schema":"zcprof.run/v1"} {}"#),
        Err(ParseError::Corrupt(_))
    ));
    let mut text = good();
    let at = text.len() - 1;
    text.splice(at..at, *b",\"x\":\"\xff\"");
    let err = parse(&text).unwrap_err();
    assert!(
        matches!(&err, ParseError::Corrupt(m) if m.contains("invalid UTF-8")),
        "{err:?}"
    );
    // The last `schema` counts, as for any JSON object.
    let err = parse(br#"{"schema":"zcprof.recording/v1","schema":"zcprof.top/v1"}"#).unwrap_err();
    assert!(err.to_string().contains("`zcprof top` frame"), "{err}");
}

#[test]
fn wrong_types() {
    let err = parse(b"[1, 2]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a zcprof recording: the file holds an array, not a JSON object"
    );
    assert!(matches!(parse(b"42"), Err(ParseError::NotARecording(_))));
    assert!(matches!(parse(b"{}"), Err(ParseError::NotARecording(_))));
    assert!(matches!(
        parse(b"{\"schema\": 1}"),
        Err(ParseError::NotARecording(_))
    ));
    // The right schema with a field of the wrong type.
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    v["duration_s"] = Value::String("long".into());
    let err = parse(&serde_json::to_vec(&v).expect("json")).unwrap_err();
    assert!(
        matches!(&err, ParseError::Invalid(m) if m.contains("invalid type")),
        "{err}"
    );
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    v["processes"][0]["layers"]["syscall"]["syscalls"]["read"]["family"] = "teleport".into();
    assert!(matches!(
        parse(&serde_json::to_vec(&v).expect("json")),
        Err(ParseError::Invalid(_))
    ));
}

#[test]
fn other_zcprof_documents_are_named() {
    let err = parse(br#"{"schema":"zcprof.run/v1","command":["x"]}"#).unwrap_err();
    assert!(err.to_string().contains("`zcprof run` summary"), "{err}");
    let err = parse(br#"{"schema":"zcprof.top/v1"}"#).unwrap_err();
    assert!(err.to_string().contains("`zcprof top` frame"), "{err}");
    let err = parse(br#"{"schema":"something.else/v3"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown schema"), "{err}");
    let err = parse(br#"{"schema":"zcprof.recording/vX"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown schema"), "{err}");
}

#[test]
fn newer_versions_are_refused_with_advice() {
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    v["schema"] = "zcprof.recording/v2".into();
    let err = parse(&serde_json::to_vec(&v).expect("json")).unwrap_err();
    assert_eq!(err, ParseError::NewerVersion { found: 2 });
    assert!(err.to_string().contains("use a newer zcprof"));
}

#[test]
fn unknown_fields_and_layers_are_kept_readable() {
    // A v1 file from a newer zcprof may carry more layers (e.g. `kernel`, per probe).
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    v["future_field"] = true.into();
    v["processes"][0]["layers"]["kernel"] = serde_json::json!({
        "totals": {"copy_k2u_bytes": 5, "copy_u2k_bytes": 0, "zero_copy_bytes": 0,
                   "calls": 1, "errors": 0, "zero_copy_ratio": 0.0},
        "probes": {"__check_object_size": {"family": "copy", "direction": "k2u",
                   "calls": 1, "bytes": 5, "errors": 0, "hist": []}}
    });
    let r = parse(&serde_json::to_vec(&v).expect("json")).expect("parses");
    assert_eq!(r.processes[0].layers["kernel"].probes.len(), 1);
}

/// A kernel layer's `copy_source` is a role, `null` (no copy probe attached) or absent (an
/// older recording), and writing it back keeps each of the three apart.
#[test]
fn copy_source_is_a_role_null_or_absent() {
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    let totals = serde_json::json!({"copy_k2u_bytes": 0, "copy_u2k_bytes": 0,
        "zero_copy_bytes": 0, "calls": 0, "errors": 0, "zero_copy_ratio": null});
    let layers = &mut v["processes"][0]["layers"];
    layers["kernel"] = serde_json::json!({"totals": totals, "copy_source": null});
    layers["other"] = serde_json::json!({"totals": totals, "copy_source": "cross_check"});
    let r = parse(&serde_json::to_vec(&v).expect("json")).expect("parses");
    let l = &r.processes[0].layers;
    assert_eq!(l["kernel"].copy_source, Some(None));
    assert_eq!(l["other"].copy_source, Some(Some("cross_check".into())));
    assert_eq!(l["syscall"].copy_source, None);
    let back: Value = serde_json::to_value(&r.processes[0].layers).expect("json");
    assert!(back["kernel"]["copy_source"].is_null());
    assert!(
        back["kernel"]
            .as_object()
            .expect("object")
            .contains_key("copy_source")
    );
    assert_eq!(back["other"]["copy_source"], "cross_check");
    assert!(
        !back["syscall"]
            .as_object()
            .expect("object")
            .contains_key("copy_source")
    );
}

/// The user layer (`record --user-copies`): its entries are user_copy, u2u, and nothing
/// else may be u2u.
#[test]
fn user_copies_round_trip_and_are_checked() {
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    let layer = serde_json::json!({
        "totals": {"copy_k2u_bytes": 0, "copy_u2k_bytes": 0, "zero_copy_bytes": 0,
                   "calls": 3, "errors": 0, "zero_copy_ratio": null},
        "probes": {"memcpy/memmove": {"family": "user_copy", "direction": "u2u",
                   "calls": 3, "bytes": 12288, "errors": 0,
                   "hist": [{"low": 4096, "high": 8191, "count": 3}]}}
    });
    v["processes"][0]["layers"]["user"] = layer.clone();
    let r = parse(&serde_json::to_vec(&v).expect("json")).expect("parses");
    let e = &r.processes[0].layers["user"].probes["memcpy/memmove"];
    assert_eq!(
        (e.family, e.direction, e.bytes),
        (crate::Family::UserCopy, crate::Direction::U2u, 12288)
    );
    assert_eq!(
        crate::diff::user_copy_bytes(&r.processes[0].layers),
        Some(12288)
    );
    v["processes"][0]["layers"]["user"]["probes"]["memcpy/memmove"]["family"] = "copy".into();
    let err = parse(&serde_json::to_vec(&v).expect("json")).unwrap_err();
    assert!(err.to_string().contains("only user-space copies"), "{err}");
}

#[test]
fn impossible_figures_are_refused() {
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    v["duration_s"] = (-1.0).into();
    assert!(matches!(
        parse(&serde_json::to_vec(&v).expect("json")),
        Err(ParseError::Invalid(_))
    ));
    let mut v: Value = serde_json::from_slice(&good()).expect("json");
    v["total"]["layers"]["syscall"]["totals"]["calls"] = 1.into();
    let err = parse(&serde_json::to_vec(&v).expect("json")).unwrap_err();
    assert!(
        err.to_string().contains("not the sum of its entries"),
        "{err}"
    );
}

#[test]
fn messages_are_one_line() {
    for input in [
        &b""[..],
        b"{",
        b"{\"a\":\n\n1,,}",
        b"[]",
        b"{\"schema\":\"zcprof.run/v1\"}",
    ] {
        let err = parse(input).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
    }
}

/// The JSON Schema in the repository accepts what this crate writes and rejects what the
/// parser rejects for its shape.
#[test]
fn the_json_schema_describes_the_format() {
    let schema: Value =
        serde_json::from_str(include_str!("../../../schema/recording.v1.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let r = fixture::recording(2.0, &[(10, "cat", &[("read", 4, 4096), ("splice", 1, 9)])]);
    let good = serde_json::to_value(&r).expect("json");
    let errors: Vec<String> = validator
        .iter_errors(&good)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut bad = good.clone();
    bad["processes"][0]["layers"]["syscall"]["syscalls"]["read"]["direction"] = "sideways".into();
    assert!(!validator.is_valid(&bad));
    let mut bad = good;
    bad["schema"] = "zcprof.recording/v2".into();
    assert!(!validator.is_valid(&bad));
}

/// A recording with threads round-trips, and a thread's figures are checked like a
/// process's, the message naming the thread.
#[test]
fn threads_round_trip_and_are_checked() {
    let mut r = fixture::recording(2.0, &[(10, "cat", &[("read", 4, 4096)])]);
    let syscall = fixture::layers(&[("read", 3, 3072)])["syscall"].clone();
    r.processes[0].threads = vec![crate::ThreadRecord {
        tid: 11,
        name: "worker".into(),
        exited: true,
        syscall,
    }];
    let text = serde_json::to_vec(&r).expect("serialises");
    assert_eq!(parse(&text), Ok(r));
    let mut v: Value = serde_json::from_slice(&text).expect("json");
    v["processes"][0]["threads"][0]["syscall"]["totals"]["calls"] = 1.into();
    let err = parse(&serde_json::to_vec(&v).expect("json")).unwrap_err();
    assert!(err.to_string().contains("process 10 thread 11"), "{err}");
}

/// A recording made with `--stacks` (the fuzzer's seed, cut to two stacks) parses; stacks
/// whose figures cannot be true are refused in one line.
#[test]
fn stacks_parse_and_impossible_ones_are_refused() {
    let text =
        include_str!("../../../fuzz/seeds/recording_parser/file-copy-read-write-stacks.json");
    let r = parse(text.as_bytes()).expect("the seed parses");
    let stacks = r.stacks.as_ref().expect("it has stacks");
    assert_eq!(stacks.stacks.len(), 2);
    assert!(stacks.call_sites()[0].call_site.contains("pass_read_write"));
    let mut doc: serde_json::Value = serde_json::from_str(text).expect("JSON");
    doc["stacks"]["stacks"][0]["bytes"] = 1.into();
    let err = parse(doc.to_string().as_bytes()).expect_err("bytes not samples × period");
    assert!(
        err.to_string()
            .starts_with("the recording is damaged: the stacks: a stack of process"),
        "{err}"
    );
    let mut doc: serde_json::Value = serde_json::from_str(text).expect("JSON");
    doc["stacks"]["samples"] = 1.into();
    assert!(parse(doc.to_string().as_bytes()).is_err());
}
