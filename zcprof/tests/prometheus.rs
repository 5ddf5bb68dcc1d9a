//! A real Prometheus server (Debian's `prometheus` package, installed by `cargo xtask
//! setup`) scrapes `zcprof serve` while a demo runs, and its HTTP API returns the demo's
//! bytes exactly as the demo counted them, in the syscall layer's series only.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use common::{Reaped, demo_bin, free_port, http_get, privileged};
use serde_json::Value;
use zcprof_demos::Report;

const PROMETHEUS: &str = "/usr/bin/prometheus";

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an instant query with one result, if Prometheus has it.
fn query(port: u16, promql: &str) -> Option<f64> {
    let (code, body) = http_get(port, &format!("/api/v1/query?query={}", urlencode(promql)))?;
    if code != 200 {
        return None;
    }
    let doc: Value = serde_json::from_str(&body).ok()?;
    doc["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Polls `f` every 200 ms (a scrape, a Prometheus query) until it gives `Some`.
fn wait_for<T>(what: &str, limit: Duration, f: impl FnMut() -> Option<T>) -> T {
    common::wait_for(what, limit, Duration::from_millis(200), f)
}

#[test]
fn prometheus_scrapes_the_demos_bytes() {
    if !privileged("prometheus_scrapes_the_demos_bytes") {
        return;
    }
    if !Path::new(PROMETHEUS).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("CI=true but {PROMETHEUS} is missing (cargo xtask setup installs it)");
        }
        eprintln!(
            "skipping prometheus_scrapes_the_demos_bytes: {PROMETHEUS} is not installed (run cargo xtask setup)"
        );
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("zcprof-prom-")
        .tempdir()
        .expect("temp dir");
    let (zc_port, prom_port) = (free_port(), free_port());
    let _serve = Reaped(
        Command::new(env!("CARGO_BIN_EXE_zcprof"))
            .args(["serve", "--interval", "250ms", "--listen"])
            .arg(format!("127.0.0.1:{zc_port}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("zcprof serve"),
    );
    wait_for("zcprof serve", Duration::from_secs(20), || {
        http_get(zc_port, "/metrics").filter(|(c, _)| *c == 200)
    });
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\n\
             scrape_configs:\n  - job_name: zcprof\n    static_configs:\n      \
             - targets: ['127.0.0.1:{zc_port}']\n"
        ),
    )
    .expect("config");
    let _prometheus = Reaped(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    wait_for("Prometheus to be ready", Duration::from_secs(30), || {
        http_get(prom_port, "/-/ready").filter(|(c, _)| *c == 200)
    });
    wait_for("the first scrape", Duration::from_secs(30), || {
        query(prom_port, "up{job=\"zcprof\"}").filter(|v| *v == 1.0)
    });

    // The proxy demo, long enough to be scraped while it runs.
    let out = Command::new(demo_bin())
        .args(["run", "proxy", "--mode", "reused-buffer", "--seconds", "2"])
        .output()
        .expect("zcprof-demo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Report = serde_json::from_slice(&out.stdout).expect("the demo's report");
    let proxy = report
        .roles
        .iter()
        .find(|r| r.role == "proxy")
        .expect("a proxy role");
    for (syscall, counter) in &proxy.syscalls {
        // The largest value seen is the final count: counters only grow.
        let promql = format!(
            "max_over_time(zcprof_bytes_total{{pid=\"{}\",syscall=\"{syscall}\",layer=\"syscall\",kind=\"copy\"}}[10m])",
            proxy.pid
        );
        let seen = wait_for(
            &format!("the proxy's {syscall} bytes in Prometheus"),
            Duration::from_secs(30),
            || query(prom_port, &promql).filter(|v| *v == counter.bytes as f64),
        );
        assert_eq!(seen, counter.bytes as f64);
    }
    assert!(proxy.copy_family.bytes > 0);

    // The kernel layer has families of its own (what they hold depends on which probes
    // attach on this kernel), and the syscall layer's hold nothing of another layer.
    let (_, body) = http_get(zc_port, "/metrics").expect("zcprof serve answers");
    assert!(
        body.contains("# TYPE zcprof_kernel_bytes counter"),
        "{body}"
    );
    assert_eq!(
        query(prom_port, "count(zcprof_bytes_total{layer!=\"syscall\"})"),
        None
    );
}
