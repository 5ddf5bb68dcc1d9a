//! How the daemon's cost grows with the number of live processes (issue 15): for each
//! count, `zcbench sleepers` forks that many processes that each read and write a byte
//! once a second; then `zcprof top --json -i 1s` runs for [`FRAMES`] refreshes (its CPU per
//! refresh, peak RSS, the processes its frames list, lost events), and `zcbench frames`
//! runs the dashboard's daemon as many refreshes (each frame's update and draw, timed).

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::{conditions::Tools, procfs};

/// Refreshes measured, after the first (which fills the process table from /proc).
const FRAMES: usize = 10;

/// One count's figures.
#[derive(Clone, Debug)]
pub struct Point {
    pub processes: usize,
    pub top: Result<TopCost, String>,
    pub dashboard: Result<Value, String>,
}

/// `zcprof top --json -i 1s` over [`FRAMES`] refreshes.
#[derive(Clone, Debug)]
pub struct TopCost {
    /// CPU per refresh, ms (all threads).
    pub cpu_ms_per_refresh: f64,
    /// The same as a share of one core over the wall time of those refreshes.
    pub cpu_share: f64,
    pub peak_rss_kib: u64,
    /// Processes the last frame listed (active in its interval).
    pub listed: usize,
    /// `lost.total` of the last frame.
    pub lost: u64,
}

/// Measures every count in `counts`, one after the other.
pub fn run(counts: &[usize], tools: &Tools) -> Vec<Point> {
    counts
        .iter()
        .map(|&n| {
            let point = measure(n, tools);
            eprintln!("bench: [scaling] {n:>6} processes: {}", progress(&point));
            point
        })
        .collect()
}

fn progress(p: &Point) -> String {
    let top = match &p.top {
        Ok(t) => format!(
            "top {:.1} ms CPU/refresh ({:.2}% of a core), {} MiB, {} listed",
            t.cpu_ms_per_refresh,
            t.cpu_share * 100.0,
            t.peak_rss_kib / 1024,
            t.listed
        ),
        Err(err) => format!("top FAILED: {err}"),
    };
    let dash = match &p.dashboard {
        Ok(v) => format!(
            "dashboard frame {:.1} ms",
            median(&floats(&v["apply_ms"])) + median(&floats(&v["draw_ms"]))
        ),
        Err(err) => format!("dashboard FAILED: {err}"),
    };
    format!("{top}; {dash}")
}

/// The sleepers, killed and reaped when dropped: their parent does it when its stdin closes,
/// and each dies with its parent should the parent be killed instead.
struct Sleepers {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Sleepers {
    fn start(n: usize, tools: &Tools) -> anyhow::Result<Sleepers> {
        let mut child = Command::new(tools.bin.join("zcbench"))
            .args(["sleepers", "--count", &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting zcbench sleepers")?;
        let stdin = child.stdin.take();
        let mut sleepers = Sleepers { child, stdin };
        let stdout = sleepers.child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the sleepers' ready line")?;
        if !line.contains("\"ready\"") {
            let mut err = String::new();
            if let Some(mut e) = sleepers.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            bail!("{n} sleepers did not start: {}", err.trim());
        }
        Ok(sleepers)
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn measure(n: usize, tools: &Tools) -> Point {
    let sleepers = match Sleepers::start(n, tools) {
        Ok(s) => s,
        Err(err) => {
            let err = format!("{err:#}");
            return Point {
                processes: n,
                top: Err(err.clone()),
                dashboard: Err(err),
            };
        }
    };
    // Each has written once before the first refresh.
    std::thread::sleep(Duration::from_millis(1500));
    let top = top_cost(tools).map_err(|err| format!("{err:#}"));
    let dashboard = dashboard_cost(tools).map_err(|err| format!("{err:#}"));
    drop(sleepers);
    Point {
        processes: n,
        top,
        dashboard,
    }
}

/// `zcprof top --json -i 1s`: CPU between its second frame and [`FRAMES`] frames later.
fn top_cost(tools: &Tools) -> anyhow::Result<TopCost> {
    let mut child = Command::new(tools.bin.join("zcprof"))
        .args(["top", "--json", "-i", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting zcprof top")?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = (|| {
        let frame = || -> anyhow::Result<String> {
            rx.recv_timeout(Duration::from_secs(60))
                .context("waiting for a frame of zcprof top")
        };
        frame()?;
        frame()?;
        let (cpu0, t0) = (
            procfs::cpu_time(pid).context("its CPU time")?,
            Instant::now(),
        );
        let mut last = String::new();
        for _ in 0..FRAMES {
            last = frame()?;
        }
        let cpu = procfs::cpu_time(pid).context("its CPU time")? - cpu0;
        let wall = t0.elapsed();
        let frame: Value = serde_json::from_str(&last).context("a frame's JSON")?;
        Ok(TopCost {
            cpu_ms_per_refresh: cpu.as_secs_f64() * 1e3 / FRAMES as f64,
            cpu_share: cpu.as_secs_f64() / wall.as_secs_f64(),
            peak_rss_kib: procfs::peak_rss_kib(pid).unwrap_or(0),
            listed: frame["processes"].as_array().map_or(0, Vec::len),
            lost: frame["lost"]["total"].as_u64().unwrap_or(0),
        })
    })();
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    result
}

/// `zcbench frames`: the dashboard's daemon, [`FRAMES`] refreshes at 1 s.
fn dashboard_cost(tools: &Tools) -> anyhow::Result<Value> {
    let out = Command::new(tools.bin.join("zcbench"))
        .args(["frames", "--frames", &FRAMES.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running zcbench frames")?;
    if !out.status.success() {
        bail!(
            "zcbench frames: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("zcbench frames' JSON")
}

/// The numbers of a JSON array.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The largest of `v` (NaN when empty).
pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}
