//! Reading a recording strictly: whatever is wrong with a file (empty, cut short, not JSON,
//! another zcprof document, a newer schema version, a field of the wrong type, figures
//! that cannot be true) becomes one [`ParseError`] whose message fits on one line after
//! the file's name. Never panics, whatever the input (fuzzed: `fuzz/`).

use serde_json::Value;
use thiserror::Error;

use crate::format::{Layer, Recording, SCHEMA_NAME, VERSION};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is cut short (the JSON ends early at line {line}, column {column})")]
    Truncated { line: usize, column: usize },
    #[error("the file is not valid JSON ({0})")]
    Corrupt(String),
    #[error("not a zcprof recording: {0}")]
    NotARecording(String),
    #[error(
        "the recording has schema version {found}, newer than this zcprof reads (v{VERSION}): use a newer zcprof"
    )]
    NewerVersion { found: u32 },
    #[error("the recording is damaged: {0}")]
    Invalid(String),
}

/// Parses one recording.
pub fn parse(bytes: &[u8]) -> Result<Recording, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        if err.is_eof() {
            ParseError::Truncated {
                line: err.line(),
                column: err.column(),
            }
        } else {
            ParseError::Corrupt(one_line(&err.to_string()))
        }
    })?;
    let Value::Object(map) = &value else {
        return Err(ParseError::NotARecording(format!(
            "the file holds {}, not a JSON object",
            kind_of(&value)
        )));
    };
    let schema = match map.get("schema") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(ParseError::NotARecording(format!(
                "its `schema` field is {}, not a string",
                kind_of(other)
            )));
        }
        None => {
            return Err(ParseError::NotARecording(
                "it has no `schema` field".to_string(),
            ));
        }
    };
    check_schema(schema)?;
    let recording: Recording = serde_json::from_value(value.clone())
        .map_err(|err| ParseError::Invalid(one_line(&err.to_string())))?;
    check_figures(&recording)?;
    Ok(recording)
}

/// Accepts `zcprof.recording/vN` for N up to [`VERSION`], naming other zcprof documents.
fn check_schema(schema: &str) -> Result<(), ParseError> {
    let Some((name, version)) = schema.rsplit_once("/v") else {
        return Err(ParseError::NotARecording(format!(
            "unknown schema `{}`",
            shorten(schema)
        )));
    };
    if name != SCHEMA_NAME {
        let what = match name {
            "zcprof.run" => {
                "a `zcprof run` summary (make a recording with `zcprof record`)".to_string()
            }
            "zcprof.top" => {
                "a `zcprof top` frame (make a recording with `zcprof record`)".to_string()
            }
            "zcprof.diff" => "a `zcprof diff` result".to_string(),
            _ => format!("unknown schema `{}`", shorten(schema)),
        };
        return Err(ParseError::NotARecording(format!("it is {what}")));
    }
    match version.parse::<u32>() {
        Ok(0) => Err(ParseError::NotARecording(format!(
            "unknown schema `{}`",
            shorten(schema)
        ))),
        Ok(v) if v > VERSION => Err(ParseError::NewerVersion { found: v }),
        Ok(_) => Ok(()),
        Err(_) => Err(ParseError::NotARecording(format!(
            "unknown schema `{}`",
            shorten(schema)
        ))),
    }
}

/// Figures that cannot come from zcprof: a negative or non-finite duration, a layer whose
/// totals are not the sum of its entries, or a histogram with more calls than the entry.
fn check_figures(r: &Recording) -> Result<(), ParseError> {
    for (what, v) in [
        ("duration_s", r.duration_s),
        ("started_unix", r.started_unix),
        ("ended_unix", r.ended_unix),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(ParseError::Invalid(format!("`{what}` is {v}, not a time")));
        }
    }
    let layers = r
        .processes
        .iter()
        .map(|p| (format!("process {}", p.pid), &p.layers))
        .chain(std::iter::once(("the total".to_string(), &r.total.layers)));
    for (owner, layers) in layers {
        for (name, layer) in layers {
            check_layer(layer).map_err(|why| {
                ParseError::Invalid(format!("{owner}, layer {}: {why}", shorten(name)))
            })?;
        }
    }
    Ok(())
}

fn check_layer(layer: &Layer) -> Result<(), String> {
    let (mut calls, mut errors) = (0u64, 0u64);
    for (name, e) in layer.entries() {
        calls = calls.saturating_add(e.calls);
        errors = errors.saturating_add(e.errors);
        let in_hist = e
            .hist
            .iter()
            .fold(0u64, |sum, b| sum.saturating_add(b.count));
        if in_hist > e.calls {
            return Err(format!(
                "`{}` has {in_hist} calls in its histogram but {} in all",
                shorten(name),
                e.calls
            ));
        }
    }
    if calls != layer.totals.calls || errors != layer.totals.errors {
        return Err(format!(
            "its totals ({} calls, {} errors) are not the sum of its entries ({calls}, {errors})",
            layer.totals.calls, layer.totals.errors
        ));
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most 60 characters of untrusted text, on one line.
fn shorten(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(60)
        .collect();
    if s.chars().count() > 60 {
        format!("{one}…")
    } else {
        one
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
