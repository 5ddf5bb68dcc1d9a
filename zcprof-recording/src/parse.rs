//! Reading a recording strictly: whatever is wrong with a file (empty, cut short, not JSON,
//! another zcprof document, a newer schema version, a field of the wrong type, figures
//! that cannot be true) becomes one [`ParseError`] whose message fits on one line after
//! the file's name. Never panics, whatever the input (fuzzed: `fuzz/`).

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
///
/// Two passes over `bytes`, neither holding a second copy of the document: the first reads
/// only the top-level kind and the `schema` field (everything else is skipped, but the
/// JSON is checked to the end), so that a foreign or newer document is named before its
/// fields are judged; the second deserialises the typed [`Recording`] straight from the
/// bytes. (Going through an untyped `serde_json::Value`, as this parser once did, took
/// about 30 times a 200 MB recording's size in memory.)
pub fn parse(bytes: &[u8]) -> Result<Recording, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    // JSON text is UTF-8, also in the fields both passes skip (serde_json checks only the
    // strings it keeps).
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let before = &bytes[..err.valid_up_to()];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
        ParseError::Corrupt(format!("invalid UTF-8 at line {line} column {column}"))
    })?;
    let mut first = serde_json::Deserializer::from_str(text);
    let head = Probe { top: true }
        .deserialize(&mut first)
        .and_then(|head| first.end().map(|()| head))
        .map_err(syntax)?;
    let schema = match head {
        Seen::Object(Some(field)) => match *field {
            Seen::Text(schema) => schema,
            other => {
                return Err(ParseError::NotARecording(format!(
                    "its `schema` field is {}, not a string",
                    other.kind()
                )));
            }
        },
        Seen::Object(None) => {
            return Err(ParseError::NotARecording(
                "it has no `schema` field".to_string(),
            ));
        }
        other => {
            return Err(ParseError::NotARecording(format!(
                "the file holds {}, not a JSON object",
                other.kind()
            )));
        }
    };
    check_schema(&schema)?;
    let recording: Recording = serde_json::from_str(text).map_err(|err| {
        if err.is_data() {
            ParseError::Invalid(one_line(&err.to_string()))
        } else {
            syntax(err)
        }
    })?;
    check_figures(&recording)?;
    Ok(recording)
}

/// A JSON error that is not about the fields' meaning: the file ends early or is not JSON.
fn syntax(err: serde_json::Error) -> ParseError {
    if err.is_eof() {
        ParseError::Truncated {
            line: err.line(),
            column: err.column(),
        }
    } else {
        ParseError::Corrupt(one_line(&err.to_string()))
    }
}

/// What the first pass keeps of a value: a string's text, an object's `schema` field (at
/// the top level only), and else only the kind of value it was.
enum Seen {
    Text(String),
    Object(Option<Box<Seen>>),
    Other(&'static str),
}

impl Seen {
    fn kind(&self) -> &'static str {
        match self {
            Seen::Text(_) => "a string",
            Seen::Object(_) => "an object",
            Seen::Other(kind) => kind,
        }
    }
}

/// Reads one value into a [`Seen`], skipping whatever it does not keep without allocating.
struct Probe {
    /// The document itself, whose `schema` field is kept.
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Probe {
    type Value = Seen;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe {
    type Value = Seen;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Seen, E> {
        Ok(Seen::Other("null"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Seen, E> {
        Ok(Seen::Other("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::Other("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Seen, E> {
        Ok(Seen::Other("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Seen, E> {
        Ok(Seen::Other("a number"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Seen, E> {
        Ok(if self.top {
            Seen::Other("a string")
        } else {
            Seen::Text(v.to_owned())
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seen, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Seen::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let mut schema = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.top && key == "schema" {
                // The last one wins, as for any JSON object read into a map.
                schema = Some(Box::new(map.next_value_seed(Probe { top: false })?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Seen::Object(schema))
    }
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
    let threads = r.processes.iter().flat_map(|p| {
        p.threads.iter().map(move |t| {
            (
                format!("process {} thread {}", p.pid, t.tid),
                std::iter::once(("syscall", &t.syscall)),
            )
        })
    });
    for (owner, layers) in threads {
        check_layers(&owner, layers)?;
    }
    let layers = r
        .processes
        .iter()
        .map(|p| (format!("process {}", p.pid), &p.layers))
        .chain(std::iter::once(("the total".to_string(), &r.total.layers)));
    for (owner, layers) in layers {
        check_layers(&owner, layers.iter().map(|(name, l)| (name.as_str(), l)))?;
    }
    if let Some(stacks) = &r.stacks {
        stacks
            .check()
            .map_err(|why| ParseError::Invalid(format!("the stacks: {}", shorten(&why))))?;
    }
    Ok(())
}

/// [`check_layer`] for each of `owner`'s layers, by name.
fn check_layers<'a>(
    owner: &str,
    layers: impl Iterator<Item = (&'a str, &'a Layer)>,
) -> Result<(), ParseError> {
    for (name, layer) in layers {
        check_layer(layer).map_err(|why| {
            ParseError::Invalid(format!("{owner}, layer {}: {why}", shorten(name)))
        })?;
    }
    Ok(())
}

fn check_layer(layer: &Layer) -> Result<(), String> {
    let (mut calls, mut errors, mut would_block) = (0u64, 0u64, 0u64);
    for (name, e) in layer.entries() {
        // Notifications count sends, not calls: the totals leave them out.
        if e.family != crate::Family::Notice {
            calls = calls.saturating_add(e.calls);
        }
        errors = errors.saturating_add(e.errors);
        would_block = would_block.saturating_add(crate::would_block(&e.errno));
        // A copy inside a process (the user layer) is the only u2u figure.
        if (e.family == crate::Family::UserCopy) != (e.direction == crate::Direction::U2u) {
            return Err(format!(
                "`{}` is {} {}: only user-space copies (user_copy) are u2u",
                shorten(name),
                e.family.as_str(),
                e.direction.as_str()
            ));
        }
        let by_errno = e.errno.values().fold(0u64, |sum, n| sum.saturating_add(*n));
        if by_errno > e.errors {
            return Err(format!(
                "`{}` has {by_errno} errors by errno but {} in all",
                shorten(name),
                e.errors
            ));
        }
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
    if would_block != layer.totals.would_block {
        return Err(format!(
            "its totals ({} would block) are not the sum of its entries' EAGAIN and EINTR \
             ({would_block})",
            layer.totals.would_block
        ));
    }
    Ok(())
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
