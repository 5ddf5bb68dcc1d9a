//! Runs one scenario in one mode: validates the request, prepares the temporary
//! directory, hands over to the scenario, and turns the workers' outcomes into the
//! JSON `Report`.

use std::path::Path;

use crate::catalogue::{self, ScenarioInfo};
use crate::error::{DemoError, Result};
use crate::pattern::Pattern;
use crate::plan::{Amount, MAX_CHUNK, Plan};
use crate::report::{Report, RoleReport, wall_seconds};
use crate::scenarios::{self, Ctx};
use crate::tempdir::{TempDir, free_bytes};
use crate::worker::Spawner;

/// Checks a request without running anything (also used by the CLI before output).
pub fn validate(scenario: &str, mode: &str, plan: &Plan) -> Result<&'static ScenarioInfo> {
    let info = catalogue::scenario(scenario).ok_or_else(|| DemoError::UnknownScenario {
        name: scenario.to_owned(),
        known: catalogue::scenarios()
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    if info.mode(mode).is_none() {
        return Err(DemoError::UnknownMode {
            scenario: scenario.to_owned(),
            mode: mode.to_owned(),
            known: info.mode_names().join(", "),
        });
    }
    if plan.chunk == 0 || plan.chunk > MAX_CHUNK {
        return Err(DemoError::InvalidInput {
            what: "--chunk",
            reason: format!("must be between 1 and {MAX_CHUNK} bytes"),
        });
    }
    match plan.amount {
        Amount::Bytes(0) => {
            return Err(DemoError::InvalidInput {
                what: "--bytes",
                reason: "size must be greater than 0".into(),
            });
        }
        Amount::Seconds(s) if !(s.is_finite() && s > 0.0) => {
            return Err(DemoError::InvalidInput {
                what: "--seconds",
                reason: "must be a positive number".into(),
            });
        }
        _ => {}
    }
    Ok(info)
}

/// Fork is only safe from a single-threaded process: another thread could hold the
/// allocator lock at the moment of the fork and the child would deadlock. Callers that
/// are multi-threaded (zcprof itself) must run the `zcprof-demo` binary instead.
fn ensure_single_threaded() -> Result<()> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count);
    match threads {
        n if n > 1 => Err(DemoError::Run(
            "demos fork workers and must run in a single-threaded process; \
             run the zcprof-demo binary instead"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Runs `scenario` in `mode` and returns its ground truth.
pub fn run(scenario: &str, mode: &str, plan: &Plan) -> Result<Report> {
    let info = validate(scenario, mode, plan)?;
    ensure_single_threaded()?;

    let base = std::env::temp_dir();
    let tmp = prepare_temp_dir(info, plan, &base)?;
    let pattern = Pattern::new();
    let mut ctx = Ctx {
        plan,
        pattern: &pattern,
        spawner: Spawner::default(),
        tmp: tmp.as_ref().map(TempDir::path),
    };
    let mut finished = scenarios::dispatch(info.name, &mut ctx, mode)?;
    drop(ctx);
    drop(tmp);
    // Report roles in catalogue order, whatever order they were started in.
    finished
        .outcomes
        .sort_by_key(|o| info.roles.iter().position(|r| *r == o.role));

    let wall = wall_seconds(&finished.outcomes);
    let (requested_bytes, requested_seconds) = match plan.amount {
        Amount::Bytes(n) => (Some(n), None),
        Amount::Seconds(s) => (None, Some(s)),
    };
    Ok(Report {
        scenario: info.name.to_owned(),
        mode: mode.to_owned(),
        baseline: info.baseline == mode,
        payload_bytes: finished.payload_bytes,
        verified: finished.verified,
        chunk_bytes: plan.chunk as u64,
        requested_bytes,
        requested_seconds,
        wall_seconds: wall,
        throughput_bytes_per_sec: if wall > 0.0 {
            finished.payload_bytes as f64 / wall
        } else {
            0.0
        },
        parent_pid: std::process::id(),
        roles: finished
            .outcomes
            .iter()
            .map(RoleReport::from_outcome)
            .collect(),
    })
}

/// Checks free space first (so a too-large request leaves nothing behind), then makes
/// the run's private directory, if the scenario writes files at all.
fn prepare_temp_dir(info: &ScenarioInfo, plan: &Plan, base: &Path) -> Result<Option<TempDir>> {
    if info.disk_files == 0 {
        return Ok(None);
    }
    let needed = plan.pass_bytes().saturating_mul(info.disk_files);
    let available = free_bytes(base)?;
    if needed > available {
        return Err(DemoError::NotEnoughDisk {
            dir: base.to_owned(),
            needed,
            available,
        });
    }
    TempDir::new_in(base).map(Some)
}
