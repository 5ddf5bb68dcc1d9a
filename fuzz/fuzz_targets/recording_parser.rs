//! Fuzzes the recording parser with arbitrary bytes: it must never panic, whatever it
//! reads; what it accepts must survive being written and read again, and must diff and
//! render (text, Markdown, JSON) without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zcprof_recording::diff::{self, Unit, render};

fuzz_target!(|data: &[u8]| {
    let Ok(recording) = zcprof_recording::parse(data) else {
        return;
    };
    let text = serde_json::to_vec(&recording).expect("a parsed recording serialises");
    let again = zcprof_recording::parse(&text).expect("a written recording parses");
    for unit in [Unit::FromRecordings, Unit::PerBytesDelivered(1 << 20)] {
        if let Ok(d) = diff::diff(&recording, &again, unit) {
            let _ = render::text(&d, &[]);
            let _ = render::markdown(&d, &[]);
            let _ = render::json(&d, &[]);
        }
    }
});
