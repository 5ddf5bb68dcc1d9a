//! `zcprof top`: every interval, the processes ranked by copied bytes per second.
//! On a terminal (without `--once`/`--json`) this is the dashboard ([`crate::ui`]);
//! otherwise headless text or JSON lines from the same session.

use std::{io::IsTerminal as _, process::ExitCode, time::Duration};

use anyhow::bail;

use crate::{
    host::procfs::{self, SelfCpu},
    probes::LoadOptions,
    report::{
        csv,
        top::{self, Filter, Own},
    },
    session::{Retention, Session, Signals},
    stdio,
};

pub struct TopOptions {
    pub interval: Duration,
    pub once: bool,
    pub json: bool,
    /// CSV rows (header first); takes precedence over `json`.
    pub csv: bool,
    pub filter: Filter,
    pub limit: usize,
    /// `--include-self`: list and count zcprof's own process like any other.
    pub include_self: bool,
}

pub async fn run(load: &LoadOptions, opts: TopOptions) -> anyhow::Result<ExitCode> {
    for &pid in &opts.filter.pids {
        if !procfs::exists(pid) {
            bail!("no process with pid {pid} exists");
        }
    }
    // On a terminal, without --once/--json, `top` is the dashboard (issue 5).
    if !opts.once && !opts.json && std::io::stdout().is_terminal() {
        return crate::ui::run(
            load,
            opts.interval,
            dashboard_filter(&opts.filter),
            opts.include_self,
        )
        .await;
    }
    let mut signals = Signals::new()?;
    let mut session = Session::start(load, opts.interval, Retention::PruneExited)?;
    if opts.csv {
        stdio::println(csv::HEADER)?;
    }
    // zcprof itself is left out of the rows and the machine total, and shown apart.
    let mut own = Own::this_process(opts.include_self);
    let mut cpu = SelfCpu::new();
    // The first sample starts the clock: the first frame's CPU is from start-up on.
    cpu.sample();
    // A frame that cannot be written ends `top` (one line, status 1; quietly for a closed
    // pipe): see `stdio`.
    let print = |session: &Session, own: &Own, partial: bool| -> Result<(), stdio::OutputError> {
        if opts.csv {
            return stdio::print(&csv::rows(
                &session.model,
                &session.layers,
                &opts.filter,
                own,
                partial,
            ));
        }
        let frame = if opts.json {
            top::json(&session.model, &session.layers, &opts.filter, own, partial)
        } else {
            top::text(
                &session.model,
                &session.layers,
                &opts.filter,
                own,
                opts.limit,
                partial,
            )
        };
        stdio::println(&frame)
    };
    loop {
        tokio::select! {
            tick = session.next() => {
                tick?;
                own.cpu_percent = cpu.sample();
                own.probes = session.probe_cost();
                print(&session, &own, false)?;
                if opts.once {
                    break;
                }
            }
            _ = signals.recv() => {
                // Show what the cut-short interval gathered, then detach (on drop).
                session.flush().await?;
                own.cpu_percent = cpu.sample();
                own.probes = session.probe_cost();
                print(&session, &own, true)?;
                break;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The dashboard's initial `/` filter for `-p`/`-c`: one pid, or the name as a substring.
fn dashboard_filter(filter: &Filter) -> Option<String> {
    if !filter.cgroups.is_empty() {
        // The dashboard's `/` regex also matches cgroup paths: the cgroups and below.
        let paths: Vec<String> = filter
            .cgroups
            .iter()
            .map(|p| regex::escape(p.trim_end_matches('/')))
            .collect();
        return Some(format!("^({})(/|$)", paths.join("|")));
    }
    match (filter.pids.as_slice(), &filter.comm) {
        (_, Some(comm)) => Some(regex::escape(comm)),
        ([pid, ..], None) => Some(pid.to_string()),
        ([], None) => None,
    }
}
