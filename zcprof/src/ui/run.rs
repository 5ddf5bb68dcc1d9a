//! The dashboard's event loop: one `tokio::select!` over the session's batches, the
//! terminal's events, demo processes starting and ending, and SIGINT/SIGTERM. A batch is
//! applied to the model by the session, then to the app, then drawn: one draw per batch
//! (plus one per key, resize or demo event), nothing blocking on this task. The terminal is
//! ratatui's: [`on_terminal`] takes it over and gives it back however the loop ends.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context as _, bail};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt as _;
use ratatui::DefaultTerminal;

use super::{
    App, Command,
    demos::{
        DemoScenario,
        launch::{self, Launcher},
    },
    draw,
    processes::Filter,
    shared::HostInfo,
    theme::color_enabled,
};
use crate::{
    host::procfs,
    probes::LoadOptions,
    report::top::Own,
    session::{Retention, Session, Signals},
};

/// Runs the dashboard until `q`, Ctrl-C, SIGINT or SIGTERM. `filter` is an initial `/`
/// filter (from `top -p`/`-c`), if any; `include_self` lists zcprof itself like any process.
pub async fn run(
    load: &LoadOptions,
    interval: Duration,
    filter: Option<String>,
    include_self: bool,
) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::new()?;
    // Probes attach (and warnings print) before the screen is taken over.
    let mut session = Session::start(load, interval, Retention::PruneExited)?;
    let info = HostInfo::of(&session, interval);
    let mut app = App::new(info, DemoScenario::catalogue());
    app.shared.color = color_enabled();
    app.shared.own = Own::this_process(include_self);
    if let Some(text) = filter {
        match Filter::parse(&text) {
            Ok(f) => app.processes.set_filter(f),
            Err(err) => bail!("the filter `{text}`: {err}"),
        }
    }
    let mut launcher = Launcher::default();
    let outcome = on_terminal(async |terminal| {
        event_loop(
            terminal,
            &mut app,
            &mut session,
            &mut signals,
            &mut launcher,
        )
        .await
    })
    .await;
    launcher.shutdown().await;
    outcome.map(|()| ExitCode::SUCCESS)
}

/// Takes the terminal over with ratatui's `try_init` (raw mode, the alternate screen, and a
/// panic hook that gives the terminal back before the panic message prints), runs `body`
/// on it, and gives it back with `restore` however `body` ended, so that neither a quit,
/// an error nor a panic leaves the user's shell unusable.
pub async fn on_terminal<T>(
    body: impl AsyncFnOnce(&mut DefaultTerminal) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(err) => {
            // Raw mode may be on already when the alternate screen failed.
            ratatui::restore();
            return Err(err).context("taking the terminal over");
        }
    };
    let outcome = body(&mut terminal).await;
    ratatui::restore();
    // ratatui hides the cursor while it draws and shows it again when the terminal is
    // dropped: after `restore`, so on the shell's screen (a panic unwinding through here
    // drops it too, after the hook restored the rest).
    drop(terminal);
    outcome
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    session: &mut Session,
    signals: &mut Signals,
    launcher: &mut Launcher,
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
    let mut cpu = procfs::SelfCpu::new();
    terminal.draw(|f| draw(f, app)).context("drawing")?;
    loop {
        tokio::select! {
            tick = session.next() => {
                tick?;
                app.shared.own.cpu_percent = cpu.sample();
                app.shared.own.probes = session.probe_cost();
                app.apply(&session.model, &procfs::cmdline);
                app.processes.call_sites = app
                    .processes
                    .wants_call_sites()
                    .and_then(|pid| session.call_sites(pid));
            }
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    match app.handle_key(key) {
                        Some(Command::Quit) => return Ok(()),
                        Some(Command::StartDemos { scenario, modes, seconds }) => {
                            launcher.start(&scenario, &modes, seconds);
                        }
                        Some(Command::StopDemo { pid }) => launch::interrupt(pid),
                        None => {}
                    }
                }
                Some(Ok(_)) => {} // resize, focus, mouse: just redraw
                Some(Err(err)) => return Err(err).context("reading terminal events"),
                None => return Ok(()),
            },
            Some(event) = launcher.next() => app.demos.record(event),
            _ = signals.recv() => return Ok(()),
        }
        terminal.draw(|f| draw(f, app)).context("drawing")?;
    }
}
