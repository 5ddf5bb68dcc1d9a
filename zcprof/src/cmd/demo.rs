//! `zcprof demo list | run | report`: the bundled workloads (the `zcprof-demo` binary)
//! run under one profiling session, their modes compared, and the seed guides' claims set
//! beside what this machine measured.
//!
//! Bad input (unknown scenario or mode) is one line on stderr and status 2 before any
//! probe is loaded. A run whose profile does not equal the demo's ground truth, or whose
//! payload did not verify, still prints everything and then exits 1 with one line saying so.

use std::{path::PathBuf, process::ExitCode, time::Duration, time::Instant};

use zcprof_demos::{ScenarioInfo, scenario, scenarios};

use crate::{
    atomic,
    demo::{
        claims::{self, Verdict},
        compare::{self, Comparison},
        render::{self, Context, ReportMeta, ReportScenario},
        runner::{self, DemoArgs},
    },
    probes::{LoadOptions, copy_source},
    report::Lost,
    session::{Retention, Session, Signals},
    stdio::{self, say},
};

#[derive(Debug, clap::Subcommand)]
pub enum DemoCommand {
    /// List the bundled scenarios and their modes
    List {
        /// Print the catalogue as JSON
        #[arg(long)]
        json: bool,
    },
    /// Run a scenario's modes one after another under one session and compare them
    Run {
        /// Scenario name (see `zcprof demo list`)
        scenario: String,
        /// Only these modes (comma-separated); the baseline always runs too
        #[arg(long, value_delimiter = ',', value_name = "MODE,...")]
        modes: Vec<String>,
        /// Stream length or file size per run, e.g. 4M [default: the demo's, 16M]
        #[arg(long, value_name = "N", value_parser = zcprof_units::parse_size)]
        bytes: Option<u64>,
        /// Runs per mode; the median run by throughput is shown
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// Print the comparison as JSON (schema zcprof.demo/v1, see README)
        #[arg(long)]
        json: bool,
    },
    /// Run every scenario and write a Markdown report: the seed guides' claims beside
    /// this machine's measurements
    Report {
        /// Write the report to this file (atomically) instead of stdout
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Size per run for every scenario [default: 16M, and 4M for file-read]
        #[arg(long, value_name = "N", value_parser = zcprof_units::parse_size)]
        bytes: Option<u64>,
        /// Runs per mode; the median run by throughput is shown
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
    },
}

/// Collection period while demos run (only the flush after each run matters).
const PERIOD: Duration = Duration::from_millis(250);
/// Exit status for bad input, as for usage errors.
const USAGE: u8 = 2;

pub async fn run(load: &LoadOptions, command: DemoCommand) -> anyhow::Result<ExitCode> {
    match dispatch(load, command).await {
        // Stopped by SIGINT/SIGTERM: the shell's status for that signal, as `run` has it.
        Err(err) if err.downcast_ref::<runner::Interrupted>().is_some() => {
            say!("zcprof: {err:#}");
            let signal = err
                .downcast_ref::<runner::Interrupted>()
                .map_or(libc::SIGTERM, |i| i.signal);
            Ok(ExitCode::from(128 + signal as u8))
        }
        Err(err)
            if err
                .downcast_ref::<runner::DemoFailed>()
                .is_some_and(|f| f.usage) =>
        {
            say!("zcprof: {err:#}");
            Ok(ExitCode::from(USAGE))
        }
        other => other,
    }
}

async fn dispatch(load: &LoadOptions, command: DemoCommand) -> anyhow::Result<ExitCode> {
    match command {
        DemoCommand::List { json } => list(json),
        DemoCommand::Run {
            scenario,
            modes,
            bytes,
            repeat,
            json,
        } => {
            let (info, modes) = match select(&scenario, &modes) {
                Ok(selected) => selected,
                Err(line) => {
                    say!("zcprof: {line}");
                    return Ok(ExitCode::from(USAGE));
                }
            };
            let exe = runner::locate()?;
            // Before anything starts: from here SIGINT/SIGTERM stop the demo, not zcprof.
            let mut signals = Signals::new()?;
            let mut session = Session::start(load, PERIOD, Retention::KeepExited)?;
            let c = compare_modes(
                &mut session,
                &mut signals,
                &exe,
                info,
                &modes,
                bytes,
                repeat,
            )
            .await?;
            let ctx = Context {
                layers: &session.layers,
                lost: Lost::of(&session.model),
            };
            if json {
                stdio::println(&render::json(&c, &ctx))?;
            } else {
                stdio::print(&render::text(info, &c, &ctx))?;
            }
            Ok(verdict(&[&c]))
        }
        DemoCommand::Report {
            output,
            bytes,
            repeat,
        } => report(load, output, bytes, repeat).await,
    }
}

fn list(json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let text = serde_json::to_string_pretty(scenarios())
            .map_err(|err| anyhow::anyhow!("cannot print the catalogue: {err}"))?;
        stdio::println(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for s in scenarios() {
        text.push_str(&format!("{:<11} {}\n", s.name, s.description));
        for m in s.modes {
            let tag = if m.name == s.baseline {
                " (baseline)"
            } else {
                ""
            };
            text.push_str(&format!("    {:<16} {}{tag}\n", m.name, m.description));
        }
    }
    stdio::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The scenario and the modes to run, in catalogue order, baseline included; or the one
/// line that explains what is wrong with the request.
pub fn select(
    name: &str,
    modes: &[String],
) -> Result<(&'static ScenarioInfo, Vec<&'static str>), String> {
    let Some(info) = scenario(name) else {
        let known: Vec<&str> = scenarios().iter().map(|s| s.name).collect();
        return Err(format!(
            "unknown scenario `{name}` (known: {})",
            known.join(", ")
        ));
    };
    for m in modes {
        if info.mode(m).is_none() {
            return Err(format!(
                "{} has no mode `{m}` (modes: {})",
                info.name,
                info.mode_names().join(", ")
            ));
        }
    }
    let chosen = info
        .modes
        .iter()
        .map(|m| m.name)
        .filter(|m| modes.is_empty() || *m == info.baseline || modes.iter().any(|x| x == m))
        .collect();
    Ok((info, chosen))
}

/// Runs `modes` of `info` one after another (each `repeat` times) and compares them.
async fn compare_modes(
    session: &mut Session,
    signals: &mut Signals,
    exe: &std::path::Path,
    info: &ScenarioInfo,
    modes: &[&str],
    bytes: Option<u64>,
    repeat: u32,
) -> anyhow::Result<Comparison> {
    let args = DemoArgs { bytes };
    let mut shown = Vec::new();
    let mut unsupported = Vec::new();
    'modes: for mode in modes {
        let mut runs = Vec::new();
        for _ in 0..repeat {
            match runner::run_variant(session, signals, exe, info.name, mode, &args).await {
                Ok(run) => runs.push(run),
                // This kernel cannot run the mode at all: skip it, saying why, and go on.
                Err(err) => match err.downcast::<runner::DemoUnsupported>() {
                    Ok(skip) => {
                        say!("zcprof: demo {}/{skip}", info.name);
                        unsupported.push(compare::Unsupported {
                            mode: skip.mode,
                            reason: skip.reason,
                        });
                        continue 'modes;
                    }
                    Err(err) => return Err(err),
                },
            }
        }
        if let Some(run) = compare::representative(runs) {
            shown.push(run);
        }
    }
    let mut c = Comparison::new(info, &shown, copy_source(&session.layers));
    c.unsupported = unsupported;
    Ok(c)
}

/// Status 0 when every comparison is exact and verified; else 1, with one line naming
/// what failed.
fn verdict(comparisons: &[&Comparison]) -> ExitCode {
    let bad: Vec<String> = comparisons
        .iter()
        .flat_map(|c| {
            c.variants
                .iter()
                .filter(|v| !(v.exact() && v.copy_free_ok() && v.verified))
                .map(move |v| format!("{}/{}", c.scenario, v.mode))
        })
        .collect();
    if bad.is_empty() {
        return ExitCode::SUCCESS;
    }
    say!(
        "zcprof: the profile differs from the demo's ground truth (or the payload did not verify) for {}",
        bad.join(", ")
    );
    ExitCode::FAILURE
}

/// The size `demo report` uses for a scenario: the Go guide's 4 MiB file for file-read
/// (its claim is about that size), 16 MiB otherwise.
pub fn report_bytes(scenario: &str, requested: Option<u64>) -> u64 {
    requested.unwrap_or(if scenario == "file-read" {
        4 << 20
    } else {
        16 << 20
    })
}

async fn report(
    load: &LoadOptions,
    output: Option<PathBuf>,
    bytes: Option<u64>,
    repeat: u32,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = &output {
        atomic::check_writable(path)?;
    }
    let exe = runner::locate()?;
    let mut signals = Signals::new()?;
    let started = Instant::now();
    let mut session = Session::start(load, PERIOD, Retention::KeepExited)?;
    let mut done = Vec::new();
    // A scenario that fails outright (its workload broke) costs only its own claims: the
    // rest of the report is still measured and written, and the exit status says it.
    let mut failed: Vec<(&str, String)> = Vec::new();
    for info in scenarios() {
        let size = report_bytes(info.name, bytes);
        let modes = info.mode_names();
        match compare_modes(
            &mut session,
            &mut signals,
            &exe,
            info,
            &modes,
            Some(size),
            repeat,
        )
        .await
        {
            Ok(comparison) => done.push(ReportScenario {
                info,
                bytes: size,
                comparison,
            }),
            // Ctrl-C stops the report, not just this scenario.
            Err(err) if err.is::<runner::Interrupted>() => return Err(err),
            Err(err) => {
                say!(
                    "zcprof: demo {} failed, its claims are marked not measured: {err:#}",
                    info.name
                );
                failed.push((info.name, format!("{err:#}")));
            }
        }
    }
    // Claims in catalogue order, so the table reads like the scenario sections below.
    let mut ordered: Vec<_> = claims::claims().iter().collect();
    ordered.sort_by_key(|c| scenarios().iter().position(|s| s.name == c.scenario));
    let evaluated: Vec<_> = ordered
        .into_iter()
        .map(|claim| {
            let c = done
                .iter()
                .find(|s| s.info.name == claim.scenario)
                .map(|s| &s.comparison);
            let mut e = claims::evaluate(claim, c);
            if let Some((_, why)) = failed.iter().find(|(name, _)| *name == claim.scenario) {
                e.verdict = Verdict::NotMeasured(format!("{} failed: {why}", claim.scenario));
            }
            e
        })
        .collect();
    let meta = ReportMeta {
        host: crate::host::hostname(),
        kernel: crate::host::kernel_release(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        date_utc: utc(crate::report::unix_time() as u64),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        repeats: repeat as usize,
        seconds: started.elapsed().as_secs_f64(),
    };
    let ctx = Context {
        layers: &session.layers,
        lost: Lost::of(&session.model),
    };
    let md = render::markdown(&meta, &done, &evaluated, &ctx);
    let count = |v: fn(&Verdict) -> bool| evaluated.iter().filter(|e| v(&e.verdict)).count();
    let summary = format!(
        "{} claims: {} agree, {} disagree, {} not measured",
        evaluated.len(),
        count(|v| *v == Verdict::Agrees),
        count(|v| *v == Verdict::Disagrees),
        count(|v| matches!(v, Verdict::NotMeasured(_)))
    );
    match &output {
        Some(path) => {
            atomic::write(path, md.as_bytes())?;
            say!("zcprof: wrote {} ({summary})", path.display());
        }
        None => stdio::print(&md)?,
    }
    let all: Vec<&Comparison> = done.iter().map(|s| &s.comparison).collect();
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|(name, _)| *name).collect();
        say!(
            "zcprof: demo report: {} failed (see above)",
            names.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(verdict(&all))
}

/// `2026-11-22 14:05 UTC` from seconds since the Unix epoch (proleptic Gregorian).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_adds_the_baseline_and_keeps_catalogue_order() {
        let (info, modes) = select("file-serve", &[]).expect("known");
        assert_eq!(info.name, "file-serve");
        assert_eq!(
            modes,
            [
                "read-write",
                "mmap-write",
                "sendfile",
                "io-uring-splice",
                "msg-zerocopy",
                "io-uring-send-zc"
            ]
        );
        let (_, modes) = select("file-serve", &["sendfile".into()]).expect("known");
        assert_eq!(modes, ["read-write", "sendfile"]);
        let (_, modes) = select(
            "pipe",
            &["vmsplice".into(), "read-write".into(), "vmsplice".into()],
        )
        .expect("known");
        assert_eq!(modes, ["read-write", "vmsplice"]);
    }

    #[test]
    fn bad_selections_are_one_line() {
        let err = select("nope", &[]).unwrap_err();
        assert!(
            err.starts_with("unknown scenario `nope` (known: file-serve,"),
            "{err}"
        );
        let err = select("pipe", &["splice".into()]).unwrap_err();
        assert_eq!(
            err,
            "pipe has no mode `splice` (modes: read-write, tee, vmsplice)"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn report_sizes() {
        assert_eq!(report_bytes("file-read", None), 4 << 20);
        assert_eq!(report_bytes("proxy", None), 16 << 20);
        assert_eq!(report_bytes("file-read", Some(1)), 1);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_380_000), "2026-11-22 20:40 UTC");
    }
}
