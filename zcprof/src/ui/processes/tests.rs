//! The processes section on its own, without `App`: its keys (selection, sort, detail, the
//! `/` prompt) and which keys it leaves to the global bindings, and its views drawn on
//! ratatui's `TestBackend` from its state alone. The machine is `ui::tests`' fixture.

use crossterm::event::KeyCode;
use ratatui::{Terminal, backend::TestBackend};

use super::{Column, Processes, View, render};
use crate::ui::{
    shared::{Handled, Shared},
    tests::{cmdline, info, key, model},
};

/// The section after `ticks` one-second intervals of the fixture machine.
fn section(ticks: u64) -> (Shared, Processes) {
    let shared = Shared::new(info());
    let mut processes = Processes::default();
    processes.apply(&model(ticks), &cmdline, shared.copy_source, &shared.own);
    (shared, processes)
}

fn pids(p: &Processes) -> Vec<u32> {
    p.visible().map(|r| r.pid).collect()
}

fn selected(p: &Processes) -> Option<u32> {
    p.selected_row().map(|r| r.pid)
}

fn press(p: &mut Processes, shared: &Shared, codes: &[KeyCode]) -> Vec<Handled> {
    codes
        .iter()
        .map(|c| p.handle_key(key(*c), shared))
        .collect()
}

/// The keys that type `text`, a newline being Enter.
fn typed(text: &str) -> Vec<KeyCode> {
    text.chars()
        .map(|c| match c {
            '\n' => KeyCode::Enter,
            c => KeyCode::Char(c),
        })
        .collect()
}

fn drawn(shared: &Shared, p: &Processes, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|f| render(f, f.area(), shared, p))
        .expect("draws");
    terminal.backend().to_string()
}

#[test]
fn selection_sort_and_detail_keys_act_on_the_section_alone() {
    let (shared, mut p) = section(3);
    assert_eq!(pids(&p), [200, 501, 100, 500, 300, 502]);
    assert_eq!(selected(&p), Some(200));
    assert_eq!(
        press(&mut p, &shared, &[KeyCode::Down, KeyCode::Char('j')]),
        [Handled::Yes, Handled::Yes]
    );
    assert_eq!(selected(&p), Some(100));
    press(&mut p, &shared, &[KeyCode::PageDown]);
    assert_eq!(selected(&p), Some(502), "a page clamps at the last row");
    press(&mut p, &shared, &[KeyCode::Char('g')]);
    assert_eq!(selected(&p), Some(200));
    press(&mut p, &shared, &[KeyCode::Char('G'), KeyCode::PageUp]);
    assert_eq!(selected(&p), Some(200));

    // Sorting: the next and previous of the columns this host's table has, and reversed.
    press(&mut p, &shared, &[KeyCode::Char('s')]);
    assert_eq!(p.sort.column, Column::CopyK2u);
    press(&mut p, &shared, &[KeyCode::Char('S'), KeyCode::Char('r')]);
    assert_eq!(p.sort.column, Column::Copied);
    assert!(!p.sort.descending);
    assert_eq!(pids(&p), [502, 300, 500, 100, 501, 200]);
    assert_eq!(selected(&p), Some(200), "the selection follows its process");

    // Enter opens the detail of the selection; there ↑↓ still move it, Esc goes back.
    press(&mut p, &shared, &[KeyCode::Enter]);
    assert_eq!(p.view, View::Detail);
    press(&mut p, &shared, &[KeyCode::Up]);
    assert_eq!((p.view, selected(&p)), (View::Detail, Some(501)));
    press(&mut p, &shared, &[KeyCode::Esc]);
    assert_eq!(p.view, View::Table);
}

#[test]
fn keys_the_section_does_not_bind_are_left_to_the_global_ones() {
    let (shared, mut p) = section(3);
    for view in [View::Table, View::Detail] {
        p.view = view;
        for code in [
            KeyCode::Char('q'),
            KeyCode::Char('?'),
            KeyCode::Char(' '),
            KeyCode::Char('1'),
            KeyCode::Char('2'),
            KeyCode::Tab,
            KeyCode::F(5),
        ] {
            assert_eq!(p.handle_key(key(code), &shared), Handled::No, "{code:?}");
        }
        assert_eq!(p.view, view);
    }
    // Sorting and the filter are the table's: the detail view leaves them alone too.
    for c in ['s', 'S', 'r', '/'] {
        assert_eq!(
            p.handle_key(key(KeyCode::Char(c)), &shared),
            Handled::No,
            "{c}"
        );
    }
    assert_eq!(p.sort, Default::default());
    assert!(p.filter_input.is_none());
}

#[test]
fn the_prompt_takes_every_key_while_open() {
    let (shared, mut p) = section(3);
    press(&mut p, &shared, &[KeyCode::Char('/')]);
    // Global keys are text here; keys without text are swallowed, not passed on.
    for code in [KeyCode::Char('q'), KeyCode::Tab, KeyCode::Char('2')] {
        assert_eq!(p.handle_key(key(code), &shared), Handled::Yes, "{code:?}");
    }
    assert_eq!(p.filter_input.as_ref().map(|i| i.text.as_str()), Some("q2"));
    press(&mut p, &shared, &[KeyCode::Backspace, KeyCode::Backspace]);
    press(&mut p, &shared, &typed("cat\n"));
    assert!(p.filter_input.is_none());
    assert_eq!(pids(&p), [200]);
    // Reopened, it edits the filter in force; Esc closes it and keeps that filter.
    press(&mut p, &shared, &[KeyCode::Char('/')]);
    assert_eq!(
        p.filter_input.as_ref().map(|i| i.text.as_str()),
        Some("cat")
    );
    press(&mut p, &shared, &[KeyCode::Char('('), KeyCode::Enter]);
    let error = p.filter_input.as_ref().and_then(|i| i.error.clone());
    assert!(error.is_some_and(|e| e.starts_with("bad regex")));
    press(&mut p, &shared, &[KeyCode::Esc]);
    assert!(p.filter_input.is_none());
    assert_eq!(pids(&p), [200]);
    // In the table, Esc clears the filter.
    press(&mut p, &shared, &[KeyCode::Esc]);
    assert_eq!(pids(&p).len(), 6);
}

#[test]
fn the_section_draws_from_its_own_state() {
    let (shared, mut p) = section(3);
    press(&mut p, &shared, &typed("/cat\n"));
    let table = drawn(&shared, &p, 120, 12);
    assert!(table.contains("filter \"cat\": 1 of 6"), "{table}");
    assert!(table.contains("200     cat"), "{table}");
    assert!(!table.contains("nginx"), "{table}");

    press(&mut p, &shared, &[KeyCode::Enter]);
    let detail = drawn(&shared, &p, 120, 36);
    assert!(detail.contains(" pid 200 · cat "), "{detail}");
    assert!(
        detail.contains("command line: cat /var/log/big.log"),
        "{detail}"
    );

    // nginx's EAGAINs are named, as would block, not failures (issue 12 point 4).
    press(&mut p, &shared, &[KeyCode::Esc, KeyCode::Esc]);
    press(&mut p, &shared, &typed("/nginx\n"));
    press(&mut p, &shared, &[KeyCode::Enter]);
    let detail = drawn(&shared, &p, 120, 36);
    assert!(
        detail.contains("errors: 120 would block / interrupted (EAGAIN 120)"),
        "{detail}"
    );

    // Nothing selected (nothing counted yet): the detail view says so.
    let empty = Processes {
        view: View::Detail,
        ..Processes::default()
    };
    let text = drawn(&shared, &empty, 80, 20);
    assert!(
        text.contains("no process selected (Esc goes back)"),
        "{text}"
    );
}
