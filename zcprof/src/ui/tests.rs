//! Dashboard tests without a terminal: key handling through `App` as a pure function of
//! (state, key), and every view rendered on ratatui's `TestBackend` from a model fed
//! synthetic batches, compared with committed insta snapshots (main screen, detail, demos,
//! help, a tiny terminal, an empty machine, an 80-column terminal), on a kernel where the
//! kernel layer's `cross_check` probes attached and on one where no kernel copy probe did.
//! The fixtures (`model`, `info`, …) serve the sections' own tests too
//! (`processes/tests.rs`, `demos/tests.rs`).

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::{Terminal, backend::TestBackend};
use zcprof_common::{
    Counts, HIST_BUCKETS, Key, hist,
    kernel::{self, id},
    syscalls,
};

use super::{
    App, Command, Tab,
    demos::{DemoScenario, DemoState},
    draw,
    processes::{Column, View},
    shared::{HISTORY, HostInfo},
};
use crate::{
    model::{Batch, KernelCounters, Model, ProcEvent, tests::FakeProc},
    probes::{Layer, LayerSummary, State},
};

fn index(name: &str) -> u32 {
    syscalls::index_named(name).expect(name) as u32
}

/// Cumulative stats of `calls` calls of `size` bytes each.
fn stats(calls: u64, size: u64) -> Counts {
    let mut hist = [0; HIST_BUCKETS];
    hist[hist::bucket(size)] = calls;
    Counts {
        calls,
        bytes: calls * size,
        errors: 0,
        hist,
        errno: [0; zcprof_common::errno::SLOTS],
    }
}

/// `s` with `n` more calls that failed with EAGAIN (nginx's sendfile on a full socket).
fn with_eagain(mut s: Counts, n: u64) -> Counts {
    s.calls += n;
    s.errors += n;
    s.errno[zcprof_common::errno::slot(libc::EAGAIN as u64)] += n;
    s
}

/// What the kernel layer counts, cumulative at tick `t`, wherever its probe attached: each
/// copy seen by `__check_object_size`, cat's reads again by `copy_page_to_iter` (page
/// cache), sshd's by the socket-receive path, nginx's sendfile by the splice internals.
fn kernel_stats(t: u64) -> Vec<(Key, Counts)> {
    let key = |tgid, slot| Key { tgid, slot };
    vec![
        (key(100, id::CHECK_OBJECT_SIZE_TO_USER), stats(10 * t, 512)),
        (key(100, id::DO_SENDFILE), stats(100 * t, 65536)),
        (key(100, id::SPLICE_TO_SOCKET), stats(100 * t, 65536)),
        (
            key(200, id::CHECK_OBJECT_SIZE_TO_USER),
            stats(1000 * t * t, 131072),
        ),
        (
            key(200, id::CHECK_OBJECT_SIZE_FROM_USER),
            stats(1000 * t * t, 131072),
        ),
        (key(200, id::COPY_PAGE_TO_ITER), stats(1000 * t * t, 131072)),
        (key(300, id::CHECK_OBJECT_SIZE_TO_USER), stats(t, 52)),
        (key(300, id::SKB_COPY_DATAGRAM_ITER), stats(t, 52)),
        (
            key(501, id::CHECK_OBJECT_SIZE_TO_USER),
            stats(400 * t, 65536),
        ),
        (
            key(501, id::CHECK_OBJECT_SIZE_FROM_USER),
            stats(400 * t, 65536),
        ),
    ]
}

/// Whether `info` says the kernel function behind `probe` attached.
fn attached(info: &HostInfo, probe: u32) -> bool {
    let function = kernel::PROBES[probe as usize].function;
    info.layers.iter().any(|l| {
        l.layer == Layer::Kernel && l.attached > 0 && !l.unavailable.iter().any(|u| u == function)
    })
}

/// [`model_on`] the default kernel (`cross_check` attached).
pub(super) fn model(ticks: u64) -> Model {
    model_on(&info(), ticks)
}

/// A machine with a copying cat, a zero-copy nginx, a quiet sshd, and a demo (pid 500)
/// with two workers, after `ticks` one-second intervals; the kernel layer counts only at
/// the probes `info` says attached.
pub(super) fn model_on(info: &HostInfo, ticks: u64) -> Model {
    model_with(info, ticks, &|_| Vec::new())
}

/// [`model_on`] with `extra(t)`'s counts too in tick `t` (other layers', cumulative as the
/// kernel's maps are).
pub(super) fn model_with(
    info: &HostInfo,
    ticks: u64,
    extra: &dyn Fn(u64) -> Vec<(Layer, Key, Counts)>,
) -> Model {
    let start = Instant::now();
    let mut m = Model::new();
    m.start_at(start);
    let proc = FakeProc::default()
        .with(100, "nginx", 1)
        .with(200, "cat", 1)
        .with(300, "sshd", 1)
        .with(500, "zcprof-demo", 1);
    for t in 1..=ticks {
        let key = |tgid, name| Key {
            tgid,
            slot: index(name),
        };
        let mut events = Vec::new();
        if t == 1 {
            events.push(ProcEvent::Exec {
                tgid: 500,
                comm: "zcprof-demo".into(),
                followed: None,
                cgroup: 0,
            });
            events.push(ProcEvent::Fork {
                parent: 500,
                child: 501,
                comm: "zcprof-demo".into(),
                followed: false,
                cgroup: 0,
            });
            events.push(ProcEvent::Fork {
                parent: 500,
                child: 502,
                comm: "zcprof-demo".into(),
                followed: false,
                cgroup: 0,
            });
        }
        let batch = Batch {
            at: start + Duration::from_secs(t),
            events,
            counts: [
                (
                    key(100, "sendfile"),
                    with_eagain(stats(100 * t, 65536), 40 * t),
                ),
                (key(100, "read"), stats(10 * t, 512)),
                (key(200, "read"), stats(1000 * t * t, 131072)),
                (key(200, "write"), stats(1000 * t * t, 131072)),
                (key(300, "read"), stats(t, 52)),
                (key(500, "read"), stats(t, 100)),
                (key(501, "read"), stats(400 * t, 65536)),
                (key(501, "write"), stats(400 * t, 65536)),
                (key(502, "splice"), stats(400 * t, 65536)),
            ]
            .into_iter()
            .map(|(k, s)| (Layer::Syscall, k, s))
            .chain(
                kernel_stats(t)
                    .into_iter()
                    .filter(|(k, _)| attached(info, k.slot))
                    .map(|(k, s)| (Layer::Kernel, k, s)),
            )
            .chain(extra(t))
            .collect(),
            counters: KernelCounters::default(),
            malformed: 0,
            flushed: false,
            probe_runs: None,
        };
        m.apply(&batch, &proc);
    }
    m
}

pub(super) fn cmdline(pid: u32) -> Option<String> {
    match pid {
        100 => Some("nginx: worker process".into()),
        200 => Some("cat /var/log/big.log".into()),
        500..=502 => Some("zcprof-demo run file-copy --mode read-write".into()),
        _ => None,
    }
}

/// Kernel functions that attach in the QEMU lab's Debian kernels: `__check_object_size`
/// and the data paths by fentry, the `_copy_*` primitives notrace.
const CROSS_CHECK: &[&str] = &[
    "__check_object_size",
    "skb_copy_datagram_iter",
    "copy_page_to_iter",
    "do_sendfile",
    "splice_to_socket",
];
/// On this project's Firecracker machines only the socket-receive tracepoint attaches.
const SKB_ONLY: &[&str] = &["skb_copy_datagram_iter"];

/// The kernel layer with `attached` attached `via`, every other function unavailable.
fn kernel_layer(attached: &[&str], via: &str) -> LayerSummary {
    LayerSummary {
        layer: Layer::Kernel,
        state: State::Partial,
        via: via.into(),
        attached: attached.len(),
        unavailable: kernel::FUNCTIONS
            .iter()
            .map(|f| f.function)
            .filter(|f| !attached.contains(f))
            .map(String::from)
            .collect(),
    }
}

/// The default host: the kernel layer's `cross_check` probes attached.
pub(super) fn info() -> HostInfo {
    info_with(Some(kernel_layer(CROSS_CHECK, "fentry")))
}

/// No kernel copy probe: only the socket-receive tracepoint counts.
pub(super) fn info_without_copy_probe() -> HostInfo {
    info_with(Some(kernel_layer(SKB_ONLY, "tracepoint")))
}

fn info_with(kernel: Option<LayerSummary>) -> HostInfo {
    HostInfo {
        kernel: "6.18.0-test".into(),
        layers: vec![
            LayerSummary {
                layer: Layer::Syscall,
                state: State::Live,
                via: "raw_tracepoint".into(),
                attached: 1,
                unavailable: vec![],
            },
            LayerSummary {
                layer: Layer::Lifecycle,
                state: State::Live,
                via: "tracepoint".into(),
                attached: 3,
                unavailable: vec![],
            },
        ]
        .into_iter()
        .chain(kernel)
        .collect(),
        refresh: Duration::from_secs(1),
        cgroups_unavailable: None,
    }
}

pub(super) fn demos() -> Vec<DemoScenario> {
    vec![
        DemoScenario {
            name: "file-copy".into(),
            description: "Copy a file to another file on the same filesystem.".into(),
            modes: vec!["read-write".into(), "copy-file-range".into()],
            baseline: "read-write".into(),
        },
        DemoScenario {
            name: "pipe".into(),
            description: "Fan a stream out to two consumers through a pipe.".into(),
            modes: vec!["read-write".into(), "tee".into(), "vmsplice".into()],
            baseline: "read-write".into(),
        },
    ]
}

fn app_after(ticks: u64) -> App {
    let mut app = App::new(info(), demos());
    app.shared.color = false;
    app.shared.own.cpu_percent = Some(0.7);
    let m = model(ticks);
    app.apply(&m, &cmdline);
    app
}

/// An app that saw every tick (so it has a history), as the event loop would.
fn app_with_history(ticks: u64) -> App {
    app_on(info(), ticks)
}

/// [`app_with_history`] on the host `info` describes.
fn app_on(info: HostInfo, ticks: u64) -> App {
    let mut app = App::new(info.clone(), demos());
    app.shared.color = false;
    app.shared.own.cpu_percent = Some(0.7);
    for t in 1..=ticks {
        app.apply(&model_on(&info, t), &cmdline);
    }
    app
}

/// The detail view of `pid`, reached as a user would: filter, then Enter.
fn detail_of(app: &mut App, pid: u32) {
    press(app, &format!("/{pid}"));
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(
        (app.tab, app.processes.view),
        (Tab::Processes, View::Detail)
    );
    assert_eq!(app.processes.selected_row().map(|r| r.pid), Some(pid));
}

pub(super) fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, keys: &str) -> Option<Command> {
    let mut last = None;
    for c in keys.chars() {
        last = app.handle_key(key(KeyCode::Char(c)));
    }
    last
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|f| draw(f, app)).expect("draws");
    terminal.backend().to_string()
}

fn pids(app: &App) -> Vec<u32> {
    app.processes.visible().map(|r| r.pid).collect()
}

// ---- key handling ----

#[test]
fn rows_are_sorted_by_copied_bytes_then_pid() {
    let app = app_after(3);
    // cat copies most, then the demo worker 501, nginx (a little), the demo parent, sshd;
    // the splice worker copies nothing.
    assert_eq!(pids(&app), [200, 501, 100, 500, 300, 502]);
}

/// zcprof's own process (cat stands in for it here) is no row and not in the machine
/// figures; the header shows what it moved apart. `--include-self` lists and counts it.
#[test]
fn zcprof_itself_is_left_out_unless_listed() {
    use crate::report::top::Own;
    let m = model(3);
    let mut app = App::new(info(), demos());
    app.shared.color = false;
    let all = {
        app.apply(&m, &cmdline);
        app.machine.figures.copied_bytes()
    };
    for listed in [false, true] {
        let mut app = App::new(info(), demos());
        app.shared.color = false;
        app.shared.own = Own {
            pid: Some(200),
            listed,
            cpu_percent: Some(0.7),
            probes: None,
        };
        app.apply(&m, &cmdline);
        // Its last interval: 1000 × (3² − 2²) reads and as many writes of 128 KiB.
        let cat = 2 * 5000 * 131072;
        assert_eq!(app.machine.own.copied_bytes(), cat, "its interval, apart");
        assert_eq!(pids(&app).contains(&200), listed);
        assert_eq!(
            app.machine.figures.copied_bytes(),
            if listed { all } else { all - cat }
        );
        let header = screen(&app, 120, 24);
        let want = if listed {
            "zcprof itself: CPU 0.7%, moved 1.2 GiB/s"
        } else {
            "zcprof itself (not listed): CPU 0.7%, moved 1.2 GiB/s"
        };
        assert!(header.contains(want), "{header}");
    }
}

#[test]
fn sort_keys_cycle_columns_and_reverse() {
    let mut app = app_after(3);
    assert_eq!(app.processes.sort.column, Column::Copied);
    press(&mut app, "s");
    assert_eq!(app.processes.sort.column, Column::CopyK2u);
    press(&mut app, "SS");
    assert_eq!(app.processes.sort.column, Column::Container);
    press(&mut app, "S");
    assert_eq!(app.processes.sort.column, Column::Comm);
    // Comm descending: zcprof-demo, sshd, nginx, cat (ties by pid).
    assert_eq!(pids(&app), [500, 501, 502, 300, 100, 200]);
    press(&mut app, "r");
    assert!(!app.processes.sort.descending);
    assert_eq!(pids(&app), [200, 100, 300, 500, 501, 502]);
    // Zero-copy: the splice worker first.
    app.processes.sort.column = Column::ZeroCopy;
    app.processes.sort.descending = true;
    app.processes.refresh_order();
    assert_eq!(pids(&app)[..2], [502, 100]);
}

#[test]
fn kernel_column_is_a_sort_key_only_when_a_copy_role_attached() {
    let mut app = app_after(3);
    assert!(Column::of_session(&app.shared).contains(&Column::KernelCopied));
    app.processes.sort.column = Column::AvgCopy;
    press(&mut app, "s");
    assert_eq!(app.processes.sort.column, Column::KernelCopied);
    // The demo parent made no counted copy in the kernel layer: a tie at 0, by pid.
    assert_eq!(pids(&app), [200, 501, 100, 300, 500, 502]);
    press(&mut app, "s");
    assert_eq!(app.processes.sort.column, Column::Pid);
    press(&mut app, "S");
    assert_eq!(app.processes.sort.column, Column::KernelCopied);

    let mut app = app_on(info_without_copy_probe(), 3);
    assert!(!Column::of_session(&app.shared).contains(&Column::KernelCopied));
    app.processes.sort.column = Column::AvgCopy;
    press(&mut app, "s");
    assert_eq!(app.processes.sort.column, Column::Pid);
    press(&mut app, "S");
    assert_eq!(app.processes.sort.column, Column::AvgCopy);
}

#[test]
fn kernel_figures_come_from_the_copy_role_only() {
    let app = app_after(3);
    let cat = app.processes.visible().find(|r| r.pid == 200).expect("cat");
    // In the third second cat read and wrote 5000 × 128 KiB each way; copy_page_to_iter saw
    // the reads again, and must not be added.
    let each_way = 5000.0 * 131072.0;
    assert_eq!(cat.kernel_rates.copied_per_s(), Some(2.0 * each_way));
    assert_eq!(
        cat.kernel_rates.probes["copy_page_to_iter"].bytes_per_s,
        each_way
    );
    let app = app_on(info_without_copy_probe(), 3);
    let sshd = app
        .processes
        .visible()
        .find(|r| r.pid == 300)
        .expect("sshd");
    assert_eq!(sshd.kernel_rates.copied_per_s(), None);
    assert_eq!(
        sshd.kernel_rates.probes["skb_copy_datagram_iter"].bytes_per_s,
        52.0
    );
}

#[test]
fn a_process_only_the_kernel_layer_saw_is_listed() {
    let mut m = Model::new();
    m.apply(
        &Batch {
            events: vec![ProcEvent::Fork {
                parent: 1,
                child: 77,
                comm: "kworker".into(),
                followed: false,
                cgroup: 0,
            }],
            counts: vec![(
                Layer::Kernel,
                Key {
                    tgid: 77,
                    slot: id::CHECK_OBJECT_SIZE_FROM_USER,
                },
                stats(1, 4096),
            )],
            ..Batch::empty(Instant::now())
        },
        &FakeProc::default(),
    );
    let mut app = App::new(info(), Vec::new());
    app.apply(&m, &cmdline);
    assert_eq!(pids(&app), [77]);
}

#[test]
fn filter_by_word_regex_and_pid() {
    let mut app = app_after(3);
    press(&mut app, "/cat");
    assert!(app.processes.filter_input.is_some());
    // Typing does not filter yet.
    assert_eq!(pids(&app).len(), 6);
    app.handle_key(key(KeyCode::Enter));
    assert!(app.processes.filter_input.is_none());
    assert_eq!(pids(&app), [200]);
    // The command line counts too, case-insensitively, as a regex.
    app.handle_key(key(KeyCode::Esc));
    press(&mut app, "/WORKER|big\\.log");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(pids(&app), [200, 100]);
    // A number is a pid.
    press(&mut app, "/");
    for _ in 0..20 {
        app.handle_key(key(KeyCode::Backspace));
    }
    press(&mut app, "300");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(pids(&app), [300]);
    // Esc clears it.
    app.handle_key(key(KeyCode::Esc));
    assert!(app.processes.filter.is_none());
    assert_eq!(pids(&app).len(), 6);
}

#[test]
fn a_bad_regex_shows_an_error_and_keeps_the_old_filter() {
    let mut app = app_after(3);
    press(&mut app, "/nginx");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(pids(&app), [100]);
    press(&mut app, "/");
    app.handle_key(key(KeyCode::Backspace));
    press(&mut app, "x(");
    app.handle_key(key(KeyCode::Enter));
    let input = app
        .processes
        .filter_input
        .as_ref()
        .expect("prompt stays open");
    let err = input.error.as_deref().expect("inline error");
    assert!(err.starts_with("bad regex"), "{err}");
    assert_eq!(
        app.processes.filter.as_ref().map(|f| f.text()),
        Some("nginx".into())
    );
    assert_eq!(pids(&app), [100]);
    // Editing clears the error; Esc closes the prompt and still keeps the old filter.
    app.handle_key(key(KeyCode::Backspace));
    assert!(
        app.processes
            .filter_input
            .as_ref()
            .is_some_and(|i| i.error.is_none())
    );
    app.handle_key(key(KeyCode::Esc));
    assert!(app.processes.filter_input.is_none());
    assert_eq!(pids(&app), [100]);
}

#[test]
fn selection_moves_clamps_and_follows_the_process() {
    let mut app = app_after(3);
    assert_eq!(app.processes.selected_row().map(|r| r.pid), Some(200));
    app.handle_key(key(KeyCode::Down));
    press(&mut app, "j");
    assert_eq!(app.processes.selected_row().map(|r| r.pid), Some(100));
    app.handle_key(key(KeyCode::End));
    assert_eq!(app.processes.selected_row().map(|r| r.pid), Some(502));
    app.handle_key(key(KeyCode::Down));
    assert_eq!(app.processes.selected_row().map(|r| r.pid), Some(502));
    app.handle_key(key(KeyCode::Home));
    app.handle_key(key(KeyCode::Up));
    assert_eq!(app.processes.selected_row().map(|r| r.pid), Some(200));
    // The selection stays on the same process when the order changes.
    app.handle_key(key(KeyCode::Down));
    press(&mut app, "r");
    assert_eq!(app.processes.selected_row().map(|r| r.pid), Some(501));
    // Enter opens the detail view, Esc goes back.
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(
        (app.tab, app.processes.view),
        (Tab::Processes, View::Detail)
    );
    app.handle_key(key(KeyCode::Esc));
    assert_eq!((app.tab, app.processes.view), (Tab::Processes, View::Table));
}

#[test]
fn pause_freezes_the_display() {
    let mut app = app_after(2);
    let before = app.machine.figures;
    press(&mut app, " ");
    assert!(app.paused);
    app.apply(&model(5), &cmdline);
    assert_eq!(app.machine.figures, before);
    press(&mut app, " ");
    assert!(!app.paused);
    app.apply(&model(5), &cmdline);
    assert_ne!(app.machine.figures, before);
}

#[test]
fn quit_help_and_unknown_keys() {
    let mut app = app_after(1);
    assert_eq!(press(&mut app, "q"), Some(Command::Quit));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.handle_key(ctrl_c), Some(Command::Quit));
    // In the prompt, q is text; Ctrl-C still quits.
    press(&mut app, "/");
    assert_eq!(press(&mut app, "q"), None);
    assert_eq!(app.handle_key(ctrl_c), Some(Command::Quit));
    app.handle_key(key(KeyCode::Esc));
    // Help opens with ? and any key closes it without acting.
    press(&mut app, "?");
    assert!(app.help);
    assert_eq!(press(&mut app, "q"), None);
    assert!(!app.help);
    // Unknown keys change nothing.
    let order = pids(&app);
    for code in [KeyCode::F(5), KeyCode::Char('Z'), KeyCode::Insert] {
        assert_eq!(app.handle_key(key(code)), None);
    }
    assert_eq!(pids(&app), order);
    assert_eq!((app.tab, app.processes.view), (Tab::Processes, View::Table));
    assert!(app.processes.filter.is_none() && !app.paused && !app.help);
}

#[test]
fn demos_start_once_and_stop() {
    let mut app = app_after(1);
    app.handle_key(key(KeyCode::Tab));
    assert_eq!(app.tab, Tab::Demos);
    app.handle_key(key(KeyCode::Down));
    app.handle_key(key(KeyCode::Right));
    let cmd = app.handle_key(key(KeyCode::Enter));
    assert_eq!(
        cmd,
        Some(Command::StartDemos {
            scenario: "pipe".into(),
            modes: vec!["tee".into()],
            seconds: 30,
        })
    );
    // Already starting: no second process.
    assert_eq!(app.handle_key(key(KeyCode::Enter)), None);
    // `a` starts the modes not yet running.
    assert_eq!(
        press(&mut app, "a"),
        Some(Command::StartDemos {
            scenario: "pipe".into(),
            modes: vec!["read-write".into(), "vmsplice".into()],
            seconds: 30,
        })
    );
    app.demos.spawned("pipe", "tee", Ok(4242));
    assert_eq!(
        app.demos.run("pipe", "tee").map(|r| &r.state),
        Some(&DemoState::Running)
    );
    assert_eq!(press(&mut app, "x"), Some(Command::StopDemo { pid: 4242 }));
    app.demos.exited("pipe", "tee", Err("interrupted".into()));
    assert_eq!(
        app.demos.run("pipe", "tee").map(|r| &r.state),
        Some(&DemoState::Stopped)
    );
    // A demo that cannot start says why; the rest goes on.
    app.demos.spawned(
        "pipe",
        "vmsplice",
        Err("cannot run zcprof-demo: not found".into()),
    );
    assert!(matches!(
        app.demos.run("pipe", "vmsplice").map(|r| &r.state),
        Some(DemoState::Failed(_))
    ));
    // Tab back to the processes.
    app.handle_key(key(KeyCode::Tab));
    assert_eq!((app.tab, app.processes.view), (Tab::Processes, View::Table));
}

// ---- rendering ----

#[test]
fn main_screen() {
    insta::assert_snapshot!(screen(&app_with_history(5), 120, 24));
}

#[test]
fn main_screen_filtered_and_paused() {
    let mut app = app_with_history(3);
    press(&mut app, "/demo");
    app.handle_key(key(KeyCode::Enter));
    press(&mut app, " ");
    insta::assert_snapshot!(screen(&app, 100, 16));
}

#[test]
fn filter_prompt_with_bad_regex() {
    let mut app = app_with_history(2);
    press(&mut app, "/[a-");
    app.handle_key(key(KeyCode::Enter));
    let text = screen(&app, 100, 16);
    assert!(text.contains("bad regex"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn detail_view() {
    let mut app = app_with_history(5);
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(
        (app.tab, app.processes.view),
        (Tab::Processes, View::Detail)
    );
    insta::assert_snapshot!(screen(&app, 120, 36));
}

#[test]
fn main_screen_without_kernel_copy_probe() {
    let text = screen(&app_on(info_without_copy_probe(), 5), 120, 24);
    assert!(!text.contains("KERNEL/s "), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn detail_view_without_kernel_copy_probe() {
    let mut app = app_on(info_without_copy_probe(), 5);
    detail_of(&mut app, 300);
    let text = screen(&app, 100, 30);
    assert!(text.contains("skb_copy_datagram_iter"), "{text}");
    assert!(
        text.contains("kernel copies: no kernel copy probe attached"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn detail_says_when_the_kernel_layer_counted_nothing() {
    for (info, pid, says) in [
        (
            info(),
            502,
            "the kernel layer counted nothing for this process ",
        ),
        (
            info_without_copy_probe(),
            502,
            "counted nothing for this process (no kernel copy probe attached",
        ),
        (
            info_with(None),
            200,
            "no kernel probe attached (`zcprof doctor` says why)",
        ),
    ] {
        let mut app = app_on(info, 2);
        detail_of(&mut app, pid);
        let text = screen(&app, 120, 36);
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn an_80_column_terminal() {
    let mut app = app_with_history(5);
    let main = screen(&app, 80, 24);
    insta::assert_snapshot!("80_columns_main", main);
    app.handle_key(key(KeyCode::Enter));
    let detail = screen(&app, 80, 24);
    // Probe names are never cut: two would read alike.
    assert!(detail.contains("__check_object_size:from_user"), "{detail}");
    insta::assert_snapshot!("80_columns_detail", detail);
    let app = app_on(info_without_copy_probe(), 5);
    let main = screen(&app, 80, 24);
    assert!(
        main.contains("no KERNEL/s: no kernel copy probe (zcprof doctor)"),
        "{main}"
    );
}

#[test]
fn detail_shows_command_line_parent_and_children() {
    let mut app = app_with_history(2);
    press(&mut app, "/500");
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(key(KeyCode::Enter));
    let text = screen(&app, 120, 36);
    assert!(text.contains("zcprof-demo run file-copy"), "{text}");
    assert!(
        text.contains("children: 501 zcprof-demo, 502 zcprof-demo"),
        "{text}"
    );
    app.handle_key(key(KeyCode::Esc));
    app.handle_key(key(KeyCode::Esc));
    press(&mut app, "/502");
    app.handle_key(key(KeyCode::Enter));
    app.handle_key(key(KeyCode::Enter));
    let text = screen(&app, 120, 36);
    assert!(
        text.contains("parent: 500 · cgroup: ? · children: none seen"),
        "{text}"
    );
    assert!(text.contains("zero-copy"), "{text}");
}

#[test]
fn demos_panel() {
    let mut app = App::new(info(), demos());
    app.shared.color = false;
    app.handle_key(key(KeyCode::Char('2')));
    press(&mut app, "a");
    app.demos.spawned("file-copy", "read-write", Ok(500));
    app.demos
        .spawned("file-copy", "copy-file-range", Err("exited with 2".into()));
    for t in 1..=3 {
        app.apply(&model(t), &cmdline);
    }
    let report = serde_json::json!({
        "scenario": "file-copy", "mode": "read-write", "baseline": true,
        "payload_bytes": 3u64 * 400 * 65536, "verified": true, "chunk_bytes": 65536,
        "requested_bytes": null, "requested_seconds": 3.0, "wall_seconds": 3.0,
        "throughput_bytes_per_sec": 26214400.0, "parent_pid": 500,
        "roles": [{
            "role": "worker", "pid": 501, "syscalls": {},
            "copy_family": {"calls": 0, "bytes": 0, "errors": 0},
            "zero_copy_family": {"calls": 0, "bytes": 0, "errors": 0},
            "user_copy_bytes": 0, "payload_bytes": 0,
            "cpu_user_seconds": 0.0, "cpu_system_seconds": 0.0
        }]
    });
    let report: zcprof_demos::Report = serde_json::from_value(report).expect("report");
    app.demos.exited("file-copy", "read-write", Ok(report));
    let run = app.demos.run("file-copy", "read-write").expect("run");
    // Workers 501 (read+write) and 502 (splice) copied 2 × 3 × 400 × 64 KiB.
    assert_eq!(run.copied_bytes(), 2 * 3 * 400 * 65536);
    assert_eq!(run.amplification(), Some(2.0));
    insta::assert_snapshot!(screen(&app, 120, 36));
}

#[test]
fn help_overlay() {
    let mut app = app_with_history(2);
    press(&mut app, "?");
    let text = screen(&app, 100, 30);
    for (keys, _) in super::help::bindings() {
        assert!(text.contains(keys), "{keys} missing from the help");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn tiny_terminal() {
    let app = app_with_history(2);
    insta::assert_snapshot!(screen(&app, 40, 8));
    // Even smaller sizes must not panic.
    // (TestBackend cannot print a 0-wide buffer, so only draw.)
    for (w, h) in [(0, 0), (1, 1), (10, 2), (59, 30), (200, 13), (60, 14)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
        terminal.draw(|f| draw(f, &app)).expect("draws");
    }
}

#[test]
fn empty_machine() {
    let mut app = App::new(info(), Vec::new());
    app.shared.color = false;
    insta::assert_snapshot!("empty_before_first_batch", screen(&app, 100, 16));
    app.apply(&Model::new(), &cmdline);
    let text = screen(&app, 100, 16);
    assert!(text.contains("no process has made a counted syscall yet"));
    insta::assert_snapshot!("empty_after_a_batch", text);
    // Every view copes with nothing to show.
    for k in ['2', '1'] {
        app.handle_key(key(KeyCode::Char(k)));
        screen(&app, 100, 16);
    }
    app.processes.view = View::Detail;
    screen(&app, 100, 16);
    press(&mut app, "?");
    screen(&app, 100, 16);
}

#[test]
fn lost_events_are_shown() {
    let mut app = app_after(1);
    app.machine.lost.total = 7;
    app.machine.lost.kernel.ringbuf_full = 7;
    let text = screen(&app, 120, 20);
    assert!(
        text.contains("LOST EVENTS: 7 (7 ring buffer full)"),
        "{text}"
    );
}

#[test]
fn history_is_bounded() {
    let mut app = App::new(info(), demos());
    let m = model(2);
    for _ in 0..200 {
        app.apply(&m, &cmdline);
    }
    assert!(app.machine.history.copied.len() <= HISTORY);
    for row in app.processes.visible() {
        let h = app.processes.history(row.id).expect("history");
        assert_eq!(h.copied.len(), HISTORY);
    }
}

/// Every cell's foreground color on `app`'s screens: the processes tab, a detail view, the
/// demos tab with a failed run, and the help overlay.
fn colors(mut app: App) -> Vec<ratatui::style::Color> {
    let mut colors = Vec::new();
    let mut look = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(120, 36)).expect("test backend");
        terminal.draw(|f| draw(f, app)).expect("draws");
        colors.extend(terminal.backend().buffer().content().iter().map(|c| c.fg));
    };
    look(&app);
    app.handle_key(key(KeyCode::Enter));
    look(&app);
    press(&mut app, "2a");
    app.demos
        .spawned("file-copy", "read-write", Err("exited with 2".into()));
    look(&app);
    press(&mut app, "?");
    look(&app);
    colors
}

#[test]
fn no_color_leaves_every_cell_uncolored() {
    use ratatui::style::Color;
    let mut app = app_with_history(3);
    app.shared.color = true;
    let colored = colors(app);
    for color in [
        Color::Cyan,
        Color::Yellow,
        Color::Green,
        Color::Red,
        Color::DarkGray,
    ] {
        assert!(colored.contains(&color), "{color:?} is used with colors on");
    }
    let app = app_with_history(3);
    assert!(!app.shared.color);
    let plain = colors(app);
    assert!(plain.iter().all(|c| *c == Color::Reset), "{plain:?}");
}

// ---- the io_uring layer ----

/// A machine where fio (pid 600) writes 8 MiB a second through io_uring and cat (pid 200)
/// copies 1 MiB a second by read/write, after `ticks` intervals; the io_uring layer in
/// `state`. With the layer unavailable, the detector counts fio's io_uring_enter calls
/// instead (as the kernel side does then).
fn uring_app(state: State, ticks: u64) -> App {
    let mut info = info();
    info.layers.push(LayerSummary {
        layer: Layer::IoUring,
        state,
        via: if state == State::Unavailable {
            String::new()
        } else {
            "tracepoint".into()
        },
        attached: usize::from(state != State::Unavailable) * 2,
        unavailable: if state == State::Unavailable {
            vec!["io_uring:io_uring_complete".into()]
        } else {
            vec![]
        },
    });
    let start = Instant::now();
    let mut m = Model::new();
    m.start_at(start);
    let proc = FakeProc::default().with(600, "fio", 1).with(200, "cat", 1);
    let mut app = App::new(info, demos());
    app.shared.color = false;
    for t in 1..=ticks {
        let write = zcprof_common::io_uring::opcode::WRITE as u32;
        let uring = if state == State::Unavailable {
            (
                Key {
                    tgid: 600,
                    slot: zcprof_common::io_uring::ENTER_SEEN,
                },
                stats(128 * t, 0),
            )
        } else {
            (
                Key {
                    tgid: 600,
                    slot: write,
                },
                stats(128 * t, 65536),
            )
        };
        let batch = Batch {
            counts: vec![
                (
                    Layer::Syscall,
                    Key {
                        tgid: 200,
                        slot: index("read"),
                    },
                    stats(16 * t, 65536),
                ),
                (
                    Layer::Syscall,
                    Key {
                        tgid: 200,
                        slot: index("write"),
                    },
                    stats(16 * t, 65536),
                ),
                (Layer::IoUring, uring.0, uring.1),
            ],
            ..Batch::empty(start + Duration::from_secs(t))
        };
        m.apply(&batch, &proc);
        app.apply(&m, &cmdline);
    }
    app
}

#[test]
fn io_uring_has_its_column_and_its_rows_in_the_detail_view() {
    let mut app = uring_app(State::Live, 3);
    assert!(Column::shown(app.shared.copy_source, true, false).contains(&Column::IoUringCopied));
    // fio copies more than cat, through io_uring: first, though its syscall copies are 0.
    app.processes.sort.column = Column::IoUringCopied;
    app.processes.refresh_order();
    assert_eq!(pids(&app), [600, 200]);
    let text = screen(&app, 140, 24);
    assert!(text.contains("URING/s"), "{text}");
    assert!(text.contains("io_uring layer: copied 8.0 MiB/s"), "{text}");
    let fio = text.lines().find(|l| l.contains("fio")).expect("fio row");
    assert!(fio.contains("8.0 MiB"), "{fio}");
    detail_of(&mut app, 600);
    let text = screen(&app, 120, 36);
    assert!(
        text.contains("syscall layer via raw_tracepoint + io_uring layer"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("io_uring WRITE"))
        .unwrap_or_else(|| panic!("io_uring WRITE row: {text}"));
    assert!(
        row.contains("copy u→k") && row.contains("384") && row.contains("24.0 MiB"),
        "{row}"
    );
}

#[test]
fn io_uring_unseen_is_a_caveat_not_a_zero() {
    let mut app = uring_app(State::Unavailable, 2);
    assert!(!app.shared.io_uring_counted());
    let text = screen(&app, 140, 24);
    assert!(
        !text.contains("URING/s"),
        "no column for a layer that is not there: {text}"
    );
    assert!(
        text.contains("io_uring used, io_uring layer unavailable: not counted"),
        "{text}"
    );
    detail_of(&mut app, 600);
    let text = screen(&app, 120, 36);
    let row = text
        .lines()
        .find(|l| l.contains("io_uring_enter"))
        .unwrap_or_else(|| panic!("the detector's row: {text}"));
    assert!(
        row.contains("UNCOUNTED") && row.contains("256") && row.contains("unknown"),
        "{row}"
    );
}

/// A server (pid 700) that sends 4 MSG_ZEROCOPY-requested SEND_ZC a second over loopback,
/// every notification saying the kernel copied, and maps 3 file pages a second: the header
/// says both after the kernel figures.
#[test]
fn zero_copy_sends_and_mapped_pages_are_in_the_header() {
    let mut info = info();
    info.layers.push(LayerSummary {
        layer: Layer::IoUring,
        state: State::Live,
        via: "tracepoint".into(),
        attached: 2,
        unavailable: vec![],
    });
    let start = Instant::now();
    let mut m = Model::new();
    m.start_at(start);
    let proc = FakeProc::default().with(700, "server", 1);
    let mut app = App::new(info, demos());
    app.shared.color = false;
    let key = |slot: u32| Key { tgid: 700, slot };
    use zcprof_common::io_uring::{NOTIF, NOTIF_COPIED, NOTIF_REPORTED, opcode::SEND_ZC};
    for t in 1..=2 {
        let batch = Batch {
            counts: vec![
                (Layer::IoUring, key(u32::from(SEND_ZC)), stats(4 * t, 65536)),
                (Layer::IoUring, key(NOTIF), stats(4 * t, 0)),
                (Layer::IoUring, key(NOTIF_REPORTED), stats(4 * t, 0)),
                (Layer::IoUring, key(NOTIF_COPIED), stats(4 * t, 0)),
                (
                    Layer::Mapped,
                    key(zcprof_common::mapped::FAULT),
                    stats(3 * t, zcprof_common::mapped::PAGE_SIZE),
                ),
            ],
            ..Batch::empty(start + Duration::from_secs(t))
        };
        m.apply(&batch, &proc);
        app.apply(&m, &cmdline);
    }
    let text = screen(&app, 200, 24);
    assert!(
        text.contains("zero-copy sends: 4/s, 4/s copied anyway, 0/s not"),
        "{text}"
    );
    assert!(text.contains("mapped: 3 pages/s (12.0 KiB/s)"), "{text}");
}

/// `--probe-stats`: the header's first line ends with the probes' ns per call and share of
/// one CPU; without it the line says nothing about them.
#[test]
fn the_probes_cost_is_in_the_header_with_probe_stats() {
    let header = |app: &App| -> String {
        screen(app, 160, 24)
            .lines()
            .take(usize::from(super::header::HEIGHT))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut app = app_with_history(3);
    assert!(!header(&app).contains("probes:"), "{}", header(&app));
    // 1 s in which 150,000 runs took 7.8 ms: 52 ns per call, 0.8 % of one CPU.
    let ran = crate::probe_stats::Counters {
        run_time_ns: 7_800_000,
        runs: 150_000,
    };
    app.shared.own.probes = Some(crate::probe_stats::Cost::over(
        ran,
        1.0,
        crate::probe_stats::EnabledBy::Zcprof,
    ));
    let text = header(&app);
    assert!(text.contains(" · probes: 52 ns/call, 0.8% CPU"), "{text}");
    insta::assert_snapshot!(text);
}

// ---- containers, flows and threads (the attribution's dimensions) ----

/// `info` with `layer` live too.
fn with_layer(mut info: HostInfo, layer: Layer) -> HostInfo {
    info.layers.push(LayerSummary {
        layer,
        state: State::Live,
        via: "tp_btf".into(),
        attached: 1,
        unavailable: vec![],
    });
    info
}

/// The cgroups of [`model_on`]'s processes: nginx in its unit, cat in a docker container,
/// the demo and its workers in a scope of their own, sshd unknown.
fn cgroup_of(pid: u32) -> Option<String> {
    match pid {
        100 => Some("/system.slice/nginx.service".into()),
        200 => Some(
            "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope"
                .into(),
        ),
        500..=502 => Some("/user.slice/user-1000.slice/demo.scope".into()),
        _ => None,
    }
}

/// An app whose processes have cgroups (and, with `extra`, other layers' counts).
fn app_in_cgroups(
    info: HostInfo,
    ticks: u64,
    extra: &dyn Fn(u64) -> Vec<(Layer, Key, Counts)>,
) -> App {
    let mut app = App::new(info.clone(), demos());
    app.shared.color = false;
    app.shared.own.cpu_percent = Some(0.7);
    for t in 1..=ticks {
        let mut m = model_with(&info, t, extra);
        m.resolve_cgroups(|_, pid| cgroup_of(pid));
        app.apply(&m, &cmdline);
    }
    app
}

#[test]
fn the_container_column_shows_when_there_is_room() {
    let app = app_in_cgroups(info(), 3, &|_| Vec::new());
    let wide = screen(&app, 160, 16);
    assert!(wide.contains("CONTAINER"), "{wide}");
    assert!(wide.contains("unit nginx.service"), "{wide}");
    assert!(wide.contains("docker 0123456789ab"), "{wide}");
    assert!(wide.contains("scope demo.scope"), "{wide}");
    // sshd's cgroup is not known.
    let sshd = wide
        .lines()
        .find(|l| l.contains("sshd"))
        .expect("sshd's row");
    assert_eq!(sshd.split_whitespace().nth(2), Some("?"), "{sshd}");
    // At 120 columns the table keeps its figures; the groups view shows the containers.
    let narrow = screen(&app, 120, 16);
    assert!(!narrow.contains("CONTAINER"), "{narrow}");
    assert!(narrow.contains("K→U/s"), "{narrow}");
}

#[test]
fn the_container_column_says_why_it_is_unavailable() {
    let mut info = info();
    info.cgroups_unavailable = Some("only cgroup v1 is mounted (no cgroup2 filesystem)".into());
    let app = app_on(info, 2);
    let text = screen(&app, 200, 16);
    assert!(
        text.contains("CONTAINER unavailable: only cgroup v1 is mounted"),
        "{text}"
    );
    assert!(text.contains("unavailable"), "{text}");
}

#[test]
fn sorting_by_container_orders_by_name() {
    let mut app = app_in_cgroups(info(), 2, &|_| Vec::new());
    while app.processes.sort.column != Column::Container {
        press(&mut app, "s");
    }
    press(&mut app, "r");
    let order: Vec<u32> = app.processes.visible().map(|r| r.pid).collect();
    // Ascending: "?" (sshd), docker …, scope demo.scope (500-502), unit nginx.service.
    assert_eq!(order, vec![300, 200, 500, 501, 502, 100]);
}

#[test]
fn the_groups_view_adds_up_per_container() {
    let mut app = app_in_cgroups(info(), 5, &|_| Vec::new());
    press(&mut app, "C");
    assert_eq!(app.processes.view, View::Groups);
    let groups = app.processes.groups();
    let demo = groups
        .iter()
        .find(|g| g.name == "scope demo.scope")
        .expect("the demo's scope");
    assert_eq!(demo.processes, 3);
    let sum: f64 = app
        .processes
        .visible()
        .filter(|r| (500..=502).contains(&r.pid))
        .map(|r| r.rates.copied_per_s())
        .sum();
    assert_eq!(demo.copied_per_s(), sum);
    assert!(groups.iter().any(|g| g.name == "?" && g.processes == 1));
    // Sorted by copied bytes, as the table: cat's container first.
    assert!(groups[0].name.starts_with("docker "), "{groups:?}");
    insta::assert_snapshot!(screen(&app, 120, 16));
    // Enter: the table, filtered to the selected group.
    press(&mut app, "j");
    let chosen = app.processes.selected_group.clone().expect("a group");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(app.processes.view, View::Table);
    let shown: Vec<String> = app.processes.visible().map(container_label_of).collect();
    assert!(!shown.is_empty());
    assert!(
        app.processes
            .visible()
            .all(|r| r.container == chosen || r.cgroup == chosen),
        "{chosen}: {shown:?}"
    );
    press(&mut app, "C");
    app.handle_key(key(KeyCode::Esc));
    assert_eq!(app.processes.view, View::Table);
}

fn container_label_of(r: &super::processes::ProcRow) -> String {
    super::processes::container_label(r).to_string()
}

/// Flows-layer counts for [`model_with`]: cat reads files and writes to TCP, nginx
/// sendfiles files to TCP (cumulative at tick `t`).
fn flow_counts(t: u64) -> Vec<(Layer, Key, Counts)> {
    use zcprof_common::flows::{self, READ_FROM, WRITE_TO, kind};
    let key = |tgid, slot| Key { tgid, slot };
    vec![
        (
            Layer::Flows,
            key(200, READ_FROM + kind::FILE),
            stats(1000 * t * t, 131072),
        ),
        (
            Layer::Flows,
            key(200, WRITE_TO + kind::TCP),
            stats(1000 * t * t, 131072),
        ),
        (
            Layer::Flows,
            key(100, flows::sendfile(kind::FILE, kind::TCP)),
            stats(100 * t, 65536),
        ),
    ]
}

#[test]
fn the_biggest_flow_is_a_column_and_the_detail_lists_every_flow() {
    let info = with_layer(info(), Layer::Flows);
    let mut app = app_in_cgroups(info, 3, &flow_counts);
    let text = screen(&app, 140, 16);
    assert!(text.contains("TOP FLOW/s"), "{text}");
    assert!(text.contains("TOP FLOW/s: flows layer"), "{text}");
    assert!(text.contains("file → tcp (sendfile) 6.2 MiB"), "{text}");
    // cat's two flows are equal: the first in the flows table wins.
    assert!(text.contains("file → user 625.0 MiB"), "{text}");
    while app.processes.sort.column != Column::TopFlow {
        press(&mut app, "s");
    }
    assert_eq!(pids(&app)[..2], [200, 100]);
    detail_of(&mut app, 200);
    let detail = screen(&app, 120, 40);
    assert!(
        detail.contains("flows layer · totals by descriptor kind"),
        "{detail}"
    );
    assert!(detail.contains("file → user"), "{detail}");
    assert!(detail.contains("user → tcp"), "{detail}");
    assert!(detail.contains("delivered through sockets"), "{detail}");
    insta::assert_snapshot!(detail);
}

#[test]
fn without_the_flows_layer_there_is_no_flow_column_or_section() {
    let mut app = app_in_cgroups(info(), 3, &|_| Vec::new());
    let text = screen(&app, 200, 16);
    assert!(!text.contains("TOP FLOW"), "{text}");
    detail_of(&mut app, 200);
    let detail = screen(&app, 120, 40);
    assert!(!detail.contains("flows layer"), "{detail}");
}

/// Threads-layer counts for [`model_with`]: cat's reads in one thread, its writes in
/// another (cumulative at tick `t`).
fn thread_counts(t: u64) -> Vec<(Layer, Key, Counts)> {
    let key = |name, tid| Key {
        tgid: 200,
        slot: zcprof_common::threads::slot(index(name), tid),
    };
    vec![
        (
            Layer::Threads,
            key("read", 200),
            stats(1000 * t * t, 131072),
        ),
        (
            Layer::Threads,
            key("write", 201),
            stats(1000 * t * t, 131072),
        ),
    ]
}

#[test]
fn t_in_the_detail_view_shows_the_threads() {
    let info = with_layer(info(), Layer::Threads);
    let mut app = app_in_cgroups(info, 3, &thread_counts);
    detail_of(&mut app, 200);
    assert!(screen(&app, 120, 40).contains("bytes/s, last minute"));
    press(&mut app, "t");
    let text = screen(&app, 120, 40);
    assert!(text.contains("threads layer · 2 threads"), "{text}");
    assert!(text.contains("TID"), "{text}");
    let row = app.processes.selected_row().expect("cat");
    assert_eq!(
        row.threads
            .iter()
            .map(|t| (t.tid, t.calls))
            .collect::<Vec<_>>(),
        vec![(200, 9000), (201, 9000)]
    );
    insta::assert_snapshot!(text);
    press(&mut app, "t");
    assert!(screen(&app, 120, 40).contains("bytes/s, last minute"));
}

#[test]
fn without_the_threads_layer_t_says_how_to_get_it() {
    let mut app = app_in_cgroups(info(), 2, &|_| Vec::new());
    detail_of(&mut app, 200);
    press(&mut app, "t");
    let text = screen(&app, 120, 40);
    assert!(text.contains("start zcprof with --threads"), "{text}");
}

/// Issue 15: only the rows that fit are built, and the window is the one ratatui shows,
/// from the top or scrolled just enough to show the selection.
#[test]
fn a_short_table_shows_the_selection_window_only() {
    let info = info();
    // Forty more processes than fit in a 30-line terminal.
    let m = model_with(&info, 3, &|t| {
        (1000..1040)
            .map(|tgid| {
                let slot = index("read");
                (
                    Layer::Syscall,
                    Key { tgid, slot },
                    stats(t * u64::from(tgid), 10),
                )
            })
            .collect()
    });
    let mut app = App::new(info, demos());
    app.shared.color = false;
    app.apply(&m, &cmdline);
    let order = pids(&app);
    let rows_shown = |app: &App| -> Vec<u32> {
        let text = screen(app, 120, 30);
        let first_words: Vec<String> = text
            .lines()
            // TestBackend quotes each line.
            .filter_map(|l| l.trim_start_matches('"').split_whitespace().next())
            .map(String::from)
            .collect();
        order
            .iter()
            .copied()
            .filter(|pid| first_words.contains(&pid.to_string()))
            .collect()
    };
    let top = rows_shown(&app);
    assert!(
        (2..order.len()).contains(&top.len()),
        "{top:?} of {order:?}"
    );
    assert_eq!(top, order[..top.len()]);
    app.handle_key(key(KeyCode::End));
    let bottom = rows_shown(&app);
    assert_eq!(bottom, order[order.len() - top.len()..]);
}

#[test]
fn the_detail_view_lists_the_stacks_layers_call_sites_of_its_process_only() {
    use crate::ui::processes::{CallSiteRow, CallSites};
    let mut app = app_with_history(5);
    app.handle_key(key(KeyCode::Enter));
    let pid = app
        .processes
        .wants_call_sites()
        .expect("the detail view is open");
    let sites = CallSites {
        pid,
        period: 1 << 20,
        lost: 3,
        rows: vec![
            CallSiteRow {
                call_site: "read() in serve_file (server.rs:120) ← handle ← main".into(),
                samples: 16,
            },
            CallSiteRow {
                call_site: "write() in send_all (net.rs:44) ← serve_file ← handle".into(),
                samples: 4,
            },
        ],
    };
    app.processes.call_sites = Some(sites.clone());
    let text = screen(&app, 120, 40);
    assert!(
        text.contains("stacks layer · call sites, last minute"),
        "{text}"
    );
    assert!(
        text.contains("16.0 MiB")
            && text.contains("± 4.0 MiB")
            && text.contains("serve_file (server.rs:120)"),
        "{text}"
    );
    // Another process's call sites are not shown under this one.
    app.processes.call_sites = Some(CallSites {
        pid: pid + 1,
        ..sites
    });
    let text = screen(&app, 120, 40);
    assert!(!text.contains("call sites, last minute"), "{text}");
}
