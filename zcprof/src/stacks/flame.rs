//! Flame graphs of the bytes stacks moved: the folded-stack text (`a;b;c 123`, root first,
//! the format FlameGraph, inferno and speedscope read), and SVGs drawn from it by inferno,
//! plain or differential (before → after a change).

use std::collections::BTreeMap;

use anyhow::Context as _;
use inferno::{differential, flamegraph};

/// What the folded text of a frame with nothing printable in it says.
const BLANK_FRAME: &str = "[unknown]";

/// What a stack without frames is drawn as (its bytes are still counted).
const NO_FRAMES: &str = "[no frames]";

/// Folded stacks: one line per distinct stack (frames root first, joined by `;`) with its
/// summed weight, lines sorted; stacks of weight 0 are left out.
pub fn folded(stacks: impl IntoIterator<Item = (Vec<String>, u64)>) -> String {
    let mut merged: BTreeMap<String, u64> = BTreeMap::new();
    for (frames, weight) in stacks {
        if weight == 0 {
            continue;
        }
        let line = if frames.is_empty() {
            NO_FRAMES.to_string()
        } else {
            frames
                .iter()
                .map(|f| sanitize(f))
                .collect::<Vec<_>>()
                .join(";")
        };
        let total = merged.entry(line).or_default();
        *total = total.saturating_add(weight);
    }
    merged
        .into_iter()
        .map(|(stack, weight)| format!("{stack} {weight}\n"))
        .collect()
}

/// A frame name that folded text can hold: `;` separates frames (so Rust's `[u8; 8]` becomes
/// `[u8, 8]`), a line is a stack, and runs of white space are one space (inferno reads the
/// count after the last one).
fn sanitize(frame: &str) -> String {
    let cleaned: String = frame
        .replace(';', ",")
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.is_empty() {
        BLANK_FRAME.to_string()
    } else {
        cleaned
    }
}

/// A line of folded text that is not `frames count`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldedError {
    #[error("line {line}: no count after the stack")]
    NoCount { line: usize },
    #[error("line {line}: `{count}` is not a count of bytes")]
    BadCount { line: usize, count: String },
}

/// Reads folded text back: each stack's frames (root first) and weight, in the text's
/// order; blank lines are skipped.
pub fn parse_folded(text: &str) -> Result<Vec<(Vec<String>, u64)>, FoldedError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line = i + 1;
            let (stack, count) = l
                .trim()
                .rsplit_once(' ')
                .ok_or(FoldedError::NoCount { line })?;
            let weight = count.parse().map_err(|_| FoldedError::BadCount {
                line,
                count: count.to_string(),
            })?;
            Ok((stack.split(';').map(str::to_string).collect(), weight))
        })
        .collect()
}

/// The options both graphs share.
fn options<'a>(title: &str, count_name: &str) -> flamegraph::Options<'a> {
    let mut options = flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = count_name.to_string();
    // Colours from each function's name rather than at random: the same input draws the
    // same SVG, and a function keeps its colour from one graph to the next.
    options.hash = true;
    options
}

/// An SVG flame graph of folded stacks (see [`folded`]) weighted in `count_name` (`bytes`).
pub fn svg(folded: &str, title: &str, count_name: &str) -> anyhow::Result<Vec<u8>> {
    let mut svg = Vec::new();
    flamegraph::from_reader(&mut options(title, count_name), folded.as_bytes(), &mut svg)
        .context("drawing the flame graph (are there any stacks?)")?;
    Ok(svg)
}

/// The differential folded text of two profiles: `frames before after` per stack, sorted,
/// as FlameGraph's `difffolded.pl` writes it (and as flame graph tools read it).
pub fn diff_folded(before: &str, after: &str) -> String {
    let mut out = Vec::new();
    // Writing to memory cannot fail, and lines that are not folded stacks are skipped.
    let _ = differential::from_readers(
        differential_options(),
        before.as_bytes(),
        after.as_bytes(),
        &mut out,
    );
    let mut lines: Vec<&str> = std::str::from_utf8(&out).unwrap_or("").lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Not normalized: both profiles are bytes of the same job, so a change in the total is
/// the finding itself (a zero-copy change that halves the copies should show the half
/// that went as blue, not be scaled away).
fn differential_options() -> differential::Options {
    differential::Options {
        normalize: false,
        strip_hex: false,
    }
}

/// A differential flame graph: frames as wide as their bytes **before** the change, red
/// where there were more bytes after it, blue where fewer.
///
/// inferno (as FlameGraph) draws widths from the second profile and colours by second −
/// first. Drawn that way (widths after) the copies a zero-copy change removed would have
/// no width at all, and they are what the graph is to show. So the profiles go in swapped
/// (widths before) with `negate_differentials`, which flips the colours back to after −
/// before: red is still "more after", blue "fewer". The cost: a stack new after the change
/// has no width here; [`diff_folded`] and the recording diff list it.
pub fn diff_svg(before: &str, after: &str, title: &str) -> anyhow::Result<Vec<u8>> {
    let mut swapped = Vec::new();
    differential::from_readers(
        differential_options(),
        after.as_bytes(),
        before.as_bytes(),
        &mut swapped,
    )
    .context("comparing the two profiles")?;
    let mut options = options(title, "bytes");
    options.negate_differentials = true;
    options.subtitle = Some(
        "width: bytes before the change · red: more bytes after it, blue: fewer · stacks new after it are not drawn"
            .to_string(),
    );
    let mut svg = Vec::new();
    flamegraph::from_reader(&mut options, swapped.as_slice(), &mut svg)
        .context("drawing the differential flame graph (are there any stacks before?)")?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use quick_xml::{Reader, events::Event};

    use super::*;

    fn stack(frames: &[&str], bytes: u64) -> (Vec<String>, u64) {
        (frames.iter().map(|f| f.to_string()).collect(), bytes)
    }

    fn sample() -> Vec<(Vec<String>, u64)> {
        vec![
            stack(
                &["demo", "main", "serve_file (server.rs:120)", "read()"],
                4096,
            ),
            stack(
                &[
                    "demo",
                    "main",
                    "<std::fs::File as std::io::Read>::read",
                    "read()",
                ],
                100,
            ),
            stack(
                &["demo", "main", "serve_file (server.rs:120)", "read()"],
                4096,
            ),
            stack(&["demo", "main", "send_all", "write()"], 8192),
            stack(&["demo", "idle"], 0),
        ]
    }

    /// Parses `svg` as XML (failing on any error) and returns the text of its `<title>`
    /// elements (one per frame, `name (N bytes, P%)`) with the fill of the frame's
    /// rectangle.
    fn frames_of(svg: &[u8]) -> Vec<(String, String)> {
        let mut reader = Reader::from_reader(svg);
        let mut frames = Vec::new();
        let (mut in_title, mut title) = (false, None::<String>);
        loop {
            match reader.read_event().expect("the SVG is well-formed XML") {
                Event::Start(e) if e.name().as_ref() == b"title" => in_title = true,
                Event::End(e) if e.name().as_ref() == b"title" => in_title = false,
                Event::Text(t) if in_title => {
                    let text = t.decode().unwrap().into_owned();
                    title = Some(title.unwrap_or_default() + &text);
                }
                Event::GeneralRef(r) if in_title => {
                    let entity = match r.as_ref() {
                        b"lt" => "<",
                        b"gt" => ">",
                        b"amp" => "&",
                        b"quot" => "\"",
                        b"apos" => "'",
                        other => panic!("unexpected entity {other:?}"),
                    };
                    title = Some(title.unwrap_or_default() + entity);
                }
                Event::Empty(e) if e.name().as_ref() == b"rect" => {
                    if let Some(title) = title.take() {
                        let fill = e
                            .try_get_attribute("fill")
                            .unwrap()
                            .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                            .unwrap_or_default();
                        frames.push((title, fill));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        frames
    }

    fn rgb(fill: &str) -> (u8, u8, u8) {
        let inner = fill
            .strip_prefix("rgb(")
            .and_then(|f| f.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{fill} is not rgb()"));
        let parts: Vec<u8> = inner
            .split(',')
            .map(|p| p.trim().parse().unwrap())
            .collect();
        (parts[0], parts[1], parts[2])
    }

    #[test]
    fn identical_stacks_merge_lines_sort_and_weightless_ones_go() {
        assert_eq!(
            folded(sample()),
            "demo;main;<std::fs::File as std::io::Read>::read;read() 100\n\
             demo;main;send_all;write() 8192\n\
             demo;main;serve_file (server.rs:120);read() 8192\n"
        );
    }

    #[test]
    fn frames_are_sanitized() {
        let text = folded([
            stack(&["demo", "fill::<[u8; 8]>", "two\nlines\t x", "  "], 7),
            stack(&[], 3),
        ]);
        assert_eq!(
            text,
            "[no frames] 3\ndemo;fill::<[u8, 8]>;two lines x;[unknown] 7\n"
        );
    }

    #[test]
    fn folded_text_round_trips() {
        let text = folded(sample());
        let parsed = parse_folded(&text).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            parsed[2],
            stack(
                &["demo", "main", "serve_file (server.rs:120)", "read()"],
                8192
            )
        );
        assert_eq!(folded(parsed), text);
        assert_eq!(
            parse_folded("a;b 1\n\na;c\n"),
            Err(FoldedError::NoCount { line: 3 })
        );
        assert_eq!(
            parse_folded("a;b x").unwrap_err().to_string(),
            "line 1: `x` is not a count of bytes"
        );
    }

    #[test]
    fn the_svg_is_xml_with_every_frame() {
        let svg = svg(
            &folded(sample()),
            "zcprof: copied bytes by call stack",
            "bytes",
        )
        .unwrap();
        let text = String::from_utf8(svg.clone()).unwrap();
        assert!(text.contains("zcprof: copied bytes by call stack"));
        let frames = frames_of(&svg);
        let titles: Vec<&str> = frames.iter().map(|(t, _)| t.as_str()).collect();
        for expected in [
            "all (16,484 bytes, 100%)",
            "serve_file (server.rs:120) (8,192 bytes, 49.70%)",
            "<std::fs::File as std::io::Read>::read (100 bytes, 0.61%)",
            "send_all (8,192 bytes, 49.70%)",
        ] {
            assert!(titles.contains(&expected), "{expected} not in {titles:#?}");
        }
        // The same input draws the same graph.
        assert_eq!(
            super::svg(
                &folded(sample()),
                "zcprof: copied bytes by call stack",
                "bytes"
            )
            .unwrap(),
            svg
        );
        assert!(super::svg("", "nothing", "bytes").is_err());
    }

    #[test]
    fn the_differential_graph_keeps_what_went_and_colours_the_change() {
        let before = folded([
            stack(&["demo", "main", "copy_loop", "read()"], 6000),
            stack(&["demo", "main", "copy_loop", "write()"], 6000),
            stack(&["demo", "main", "log"], 1000),
        ]);
        let after = folded([
            stack(&["demo", "main", "log"], 3000),
            stack(&["demo", "main", "copy_loop", "write()"], 6000),
            stack(&["demo", "main", "new_path"], 500),
        ]);
        assert_eq!(
            diff_folded(&before, &after),
            "demo;main;copy_loop;read() 6000 0\n\
             demo;main;copy_loop;write() 6000 6000\n\
             demo;main;log 1000 3000\n\
             demo;main;new_path 0 500\n"
        );
        let svg = diff_svg(&before, &after, "before → after").unwrap();
        let frames = frames_of(&svg);
        let find = |name: &str| {
            frames
                .iter()
                .find(|(t, _)| t.starts_with(&format!("{name} (")))
                .unwrap_or_else(|| panic!("{name} not in {frames:#?}"))
        };
        // Widths are the bytes before; the read that went is drawn, in blue.
        let (title, fill) = find("read()");
        assert!(title.starts_with("read() (6,000 bytes"), "{title}");
        let (r, _, b) = rgb(fill);
        assert!(b == 255 && r < 255, "{title}: {fill}");
        // What grew is red, what stayed is white-grey.
        let (title, fill) = find("log");
        assert!(
            title.starts_with("log (1,000 bytes") && title.contains("; +"),
            "{title}"
        );
        let (r, _, b) = rgb(fill);
        assert!(r == 255 && b < 255, "{title}: {fill}");
        assert_eq!(rgb(&find("write()").1), (250, 250, 250));
        // A stack new after the change has no width before it.
        assert!(!frames.iter().any(|(t, _)| t.starts_with("new_path")));
    }
}
