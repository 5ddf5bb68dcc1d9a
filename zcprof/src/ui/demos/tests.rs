//! The demos section on its own, without `App` or a process: its keys (scenario and mode,
//! run length, start, stop) and the commands they return, which keys it leaves to the
//! global bindings, the states its runs go through as the event loop reports back, and
//! the panel drawn on ratatui's `TestBackend` from its state alone.

use crossterm::event::KeyCode;
use ratatui::{Terminal, backend::TestBackend};

use super::{DemoState, Demos, launch::DemoEvent, render};
use crate::ui::{
    shared::{Command, Handled, Shared},
    tests::{demos, info, key, model},
};

fn press(d: &mut Demos, codes: &[KeyCode]) -> Vec<Handled> {
    codes.iter().map(|c| d.handle_key(key(*c))).collect()
}

fn drawn(d: &Demos, width: u16, height: u16) -> String {
    let shared = Shared::new(info());
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|f| render(f, f.area(), &shared, d))
        .expect("draws");
    terminal.backend().to_string()
}

fn state<'a>(d: &'a Demos, mode: &str) -> Option<&'a DemoState> {
    d.run("pipe", mode).map(|r| &r.state)
}

#[test]
fn scenario_mode_and_length_keys() {
    let mut d = Demos::new(demos());
    assert_eq!(
        d.selected().map(|(s, m)| (s.name.as_str(), m)),
        Some(("file-copy", "read-write"))
    );
    press(
        &mut d,
        &[KeyCode::Right, KeyCode::Char('l'), KeyCode::Char('l')],
    );
    assert_eq!(d.mode, 1, "file-copy has two modes");
    // Another scenario starts at its baseline.
    press(&mut d, &[KeyCode::Down]);
    assert_eq!(
        d.selected().map(|(s, m)| (s.name.as_str(), m)),
        Some(("pipe", "read-write"))
    );
    press(
        &mut d,
        &[
            KeyCode::Char('j'),
            KeyCode::Right,
            KeyCode::Right,
            KeyCode::Char('h'),
        ],
    );
    assert_eq!(
        d.selected().map(|(s, m)| (s.name.as_str(), m)),
        Some(("pipe", "tee"))
    );
    press(&mut d, &[KeyCode::Char('k')]);
    assert_eq!((d.scenario, d.mode), (0, 0));

    assert_eq!(d.seconds, 30);
    press(&mut d, &[KeyCode::Char('+'), KeyCode::Char('=')]);
    assert_eq!(d.seconds, 50);
    press(&mut d, &[KeyCode::Char('-'); 10]);
    assert_eq!(d.seconds, 10, "never below 10 s");
    press(&mut d, &[KeyCode::Char('+'); 70]);
    assert_eq!(d.seconds, 600, "never above 10 minutes");
}

#[test]
fn start_and_stop_return_commands_once() {
    let mut d = Demos::new(demos());
    press(&mut d, &[KeyCode::Down, KeyCode::Right]);
    let start_tee = Handled::Command(Command::StartDemos {
        scenario: "pipe".into(),
        modes: vec!["tee".into()],
        seconds: 30,
    });
    assert_eq!(d.handle_key(key(KeyCode::Enter)), start_tee);
    assert_eq!(state(&d, "tee"), Some(&DemoState::Starting));
    // Already starting: no second process, by Enter or by `s`.
    assert_eq!(
        press(&mut d, &[KeyCode::Enter, KeyCode::Char('s')]),
        [Handled::Yes, Handled::Yes]
    );
    // `a` starts the modes not yet running.
    assert_eq!(
        d.handle_key(key(KeyCode::Char('a'))),
        Handled::Command(Command::StartDemos {
            scenario: "pipe".into(),
            modes: vec!["read-write".into(), "vmsplice".into()],
            seconds: 30,
        })
    );
    // Stopping one that has no pid yet cannot send a signal: it is marked failed.
    assert_eq!(d.handle_key(key(KeyCode::Char('x'))), Handled::Yes);
    assert_eq!(
        state(&d, "tee"),
        Some(&DemoState::Failed("stopped before it started".into()))
    );
    // Started again, it runs once the event loop reports its pid; `x` then asks it to stop.
    assert_eq!(d.handle_key(key(KeyCode::Enter)), start_tee);
    d.record(DemoEvent::Spawned {
        scenario: "pipe".into(),
        mode: "tee".into(),
        result: Ok(4242),
    });
    assert_eq!(state(&d, "tee"), Some(&DemoState::Running));
    assert_eq!(
        d.handle_key(key(KeyCode::Char('x'))),
        Handled::Command(Command::StopDemo { pid: 4242 })
    );
    assert_eq!(state(&d, "tee"), Some(&DemoState::Stopping));
    // A stopped demo's error is its stop, not a failure; with nothing active, `x` is a no-op.
    d.record(DemoEvent::Exited {
        scenario: "pipe".into(),
        mode: "tee".into(),
        pid: Some(4242),
        result: Err("interrupted".into()),
    });
    assert_eq!(state(&d, "tee"), Some(&DemoState::Stopped));
    assert_eq!(d.handle_key(key(KeyCode::Char('x'))), Handled::Yes);
    assert_eq!(state(&d, "tee"), Some(&DemoState::Stopped));
}

#[test]
fn keys_the_section_does_not_bind_are_left_to_the_global_ones() {
    let mut d = Demos::new(demos());
    for code in [
        KeyCode::Char('q'),
        KeyCode::Char('?'),
        KeyCode::Char(' '),
        KeyCode::Char('1'),
        KeyCode::Char('/'),
        KeyCode::Tab,
        KeyCode::Esc,
    ] {
        assert_eq!(d.handle_key(key(code)), Handled::No, "{code:?}");
    }
    assert!(d.runs.is_empty());
    // Without scenarios ↑↓ are not the section's either, and nothing can start.
    let mut none = Demos::new(Vec::new());
    assert_eq!(none.handle_key(key(KeyCode::Up)), Handled::No);
    assert_eq!(none.handle_key(key(KeyCode::Enter)), Handled::Yes);
    assert!(none.runs.is_empty());
}

#[test]
fn the_panel_draws_from_its_own_state() {
    let mut d = Demos::new(demos());
    assert!(drawn(&d, 100, 12).contains("not started"));
    press(&mut d, &[KeyCode::Char('a')]);
    assert!(drawn(&d, 100, 12).contains("starting…"));
    d.spawned("file-copy", "read-write", Ok(500));
    d.spawned(
        "file-copy",
        "copy-file-range",
        Err("the demo workloads binary /opt/zcprof-demo is missing: build it with `cargo build --release -p zcprof-demos`".into()),
    );
    // The workers are the demo's descendants in the model.
    d.apply(&model(2));
    let text = drawn(&d, 120, 16);
    assert!(text.contains("running, pid 500"), "{text}");
    assert!(text.contains("501 zcprof-demo"), "{text}");
    assert!(text.contains("failed: the demo workloads binary"), "{text}");
    // The message wraps within its column rather than lose how to build the binary.
    assert!(text.contains("zcprof-demos`"), "{text}");
    let none = drawn(&Demos::new(Vec::new()), 60, 6);
    assert!(none.contains("no bundled demos"), "{none}");
}
