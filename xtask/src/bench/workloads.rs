//! The benchmark's workloads: what to run, and how to read the throughput and the exact
//! per-process ground truth from what the workload prints.

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `zcbench storm`: 64 B and 4 KiB write/read pairs on a pipe, one process per core.
    Storm,
    /// `zcbench bulk`: 1 MiB read/write, one process per core.
    Bulk,
    /// `zcbench zerocopy`: sendfile into a pipe + splice to /dev/null, one process per core.
    Zerocopy,
    /// `zcbench dd-bs1`: dd's `bs=1` loop, one process per core.
    DdBs1,
    /// `zcbench uring`: batches of io_uring READs and WRITEs, one process per core.
    Uring,
    /// `zcprof-demo run pipe --mode read-write`: four processes, end to end.
    Demo,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::Storm,
        Workload::DdBs1,
        Workload::Uring,
        Workload::Bulk,
        Workload::Zerocopy,
        Workload::Demo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Storm => "storm",
            Workload::Bulk => "bulk",
            Workload::Zerocopy => "zerocopy",
            Workload::DdBs1 => "dd-bs1",
            Workload::Uring => "uring",
            Workload::Demo => "demo-pipe",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Workload::Storm => {
                "syscall storm: 64 B and 4 KiB write+read pairs on a private pipe, one process per core"
            }
            Workload::Bulk => {
                "bulk copy: 1 MiB read from a page-cached file + 1 MiB write to tmpfs, one process per core"
            }
            Workload::Zerocopy => {
                "zero-copy: sendfile 64 KiB from a page-cached file into a pipe + splice to /dev/null, one process per core"
            }
            Workload::DdBs1 => {
                "`dd if=/dev/zero of=/dev/null bs=1`'s loop: 1 B read + 1 B write, one process per core (the cheapest syscalls: the probe's cost is the largest share)"
            }
            Workload::Uring => {
                "io_uring: batches of 16 READs of 4 KiB from a page-cached file + 16 WRITEs of 4 KiB to /dev/null per `io_uring_enter`, all completing inline, one process per core (the io_uring layer's hot path: two tracepoint hits per request; calls are completed requests)"
            }
            Workload::Demo => {
                "demo end to end: `zcprof-demo run pipe --mode read-write` (producer | relay tee | two consumers, 64 KiB chunks)"
            }
        }
    }

    /// What the throughput column counts.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::Storm | Workload::DdBs1 | Workload::Uring => "calls/s",
            _ => "B/s",
        }
    }

    /// The command line, given the directory of the release binaries.
    pub fn command(self, bin: &std::path::Path, seconds: f64) -> Vec<String> {
        let s = format!("{seconds}");
        let zcbench = bin.join("zcbench").display().to_string();
        match self {
            Workload::Storm => vec![zcbench, "storm".into(), "--seconds".into(), s],
            Workload::Bulk => vec![zcbench, "bulk".into(), "--seconds".into(), s],
            Workload::Zerocopy => vec![zcbench, "zerocopy".into(), "--seconds".into(), s],
            Workload::DdBs1 => vec![zcbench, "dd-bs1".into(), "--seconds".into(), s],
            Workload::Uring => vec![zcbench, "uring".into(), "--seconds".into(), s],
            Workload::Demo => vec![
                bin.join("zcprof-demo").display().to_string(),
                "run".into(),
                "pipe".into(),
                "--mode".into(),
                "read-write".into(),
                "--seconds".into(),
                s,
                "--compact".into(),
            ],
        }
    }

    /// Reads the workload's report (its stdout).
    pub fn parse(self, stdout: &str) -> anyhow::Result<Outcome> {
        let v: Value = serde_json::from_str(stdout.trim())
            .with_context(|| format!("{} printed no JSON report", self.name()))?;
        let num = |v: &Value, key: &str| -> anyhow::Result<f64> {
            v.get(key)
                .and_then(Value::as_f64)
                .ok_or_else(|| anyhow!("{} report has no number `{key}`", self.name()))
        };
        let int = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
        let mut truth = BTreeMap::new();
        match self {
            Workload::Demo => {
                let wall = num(&v, "wall_seconds")?;
                let mut calls = 0;
                let mut cpu = 0.0;
                for role in v["roles"].as_array().into_iter().flatten() {
                    let (mut c, mut b) = (0, 0);
                    for family in ["copy_family", "zero_copy_family"] {
                        c += int(&role[family], "calls");
                        b += int(&role[family], "bytes");
                    }
                    calls += c;
                    cpu += role["cpu_user_seconds"].as_f64().unwrap_or(0.0)
                        + role["cpu_system_seconds"].as_f64().unwrap_or(0.0);
                    truth.insert(int(role, "pid") as u32, Truth { calls: c, bytes: b });
                }
                Ok(Outcome {
                    throughput: num(&v, "throughput_bytes_per_sec")?,
                    cpu_throughput: num(&v, "payload_bytes")? / cpu,
                    ns_per_call: cpu * 1e9 / calls as f64,
                    calls_per_s: calls as f64 / wall,
                    truth,
                })
            }
            _ => {
                for w in v["workers"].as_array().into_iter().flatten() {
                    truth.insert(
                        int(w, "pid") as u32,
                        Truth {
                            calls: int(w, "calls"),
                            bytes: int(w, "bytes"),
                        },
                    );
                }
                let (throughput, cpu_throughput) = match self {
                    Workload::Storm | Workload::DdBs1 | Workload::Uring => {
                        (num(&v, "calls_per_s")?, num(&v, "calls_per_cpu_s")?)
                    }
                    _ => (num(&v, "bytes_per_s")?, num(&v, "bytes_per_cpu_s")?),
                };
                Ok(Outcome {
                    throughput,
                    cpu_throughput,
                    ns_per_call: num(&v, "cpu_seconds")? * 1e9 / num(&v, "calls")?,
                    calls_per_s: num(&v, "calls_per_s")?,
                    truth,
                })
            }
        }
    }
}

/// One workload process's own count of its counted syscalls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Truth {
    pub calls: u64,
    pub bytes: u64,
}

/// What one run of a workload reported.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// In [`Workload::unit`]s, per second of wall time.
    pub throughput: f64,
    /// In [`Workload::unit`]s, per second of the workload processes' own CPU time (user +
    /// system, which includes the probes that run in their syscalls). The overhead figures
    /// use this: it is not inflated when other jobs share the machine's cores.
    pub cpu_throughput: f64,
    /// The workload's CPU time per counted syscall, in nanoseconds.
    pub ns_per_call: f64,
    /// Counted syscalls per second: each is one hit of a syscall-exit probe.
    pub calls_per_s: f64,
    /// By PID.
    pub truth: BTreeMap<u32, Truth>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zcbench_and_demo_reports() {
        let storm = r#"{"workers":[{"pid":5,"calls":10,"bytes":100},{"pid":6,"calls":20,"bytes":200}],
            "calls":30,"bytes":300,"calls_per_s":15.0,"bytes_per_s":150.0,"cpu_seconds":0.5,
            "calls_per_cpu_s":60.0,"bytes_per_cpu_s":600.0}"#;
        let o = Workload::Storm.parse(storm).unwrap();
        assert_eq!(
            (o.throughput, o.cpu_throughput, o.calls_per_s),
            (15.0, 60.0, 15.0)
        );
        assert_eq!(
            o.truth[&6],
            Truth {
                calls: 20,
                bytes: 200
            }
        );
        assert!((o.ns_per_call - 0.5e9 / 30.0).abs() < 1e-6);
        let bulk = Workload::Bulk.parse(storm).unwrap();
        assert_eq!(bulk.throughput, 150.0);

        let demo = r#"{"payload_bytes":1000,"wall_seconds":2.0,"throughput_bytes_per_sec":500.0,
            "roles":[{"pid":9,"copy_family":{"calls":3,"bytes":700},"zero_copy_family":{"calls":1,"bytes":300},
            "cpu_user_seconds":0.1,"cpu_system_seconds":0.4}]}"#;
        let d = Workload::Demo.parse(demo).unwrap();
        assert_eq!(
            d.truth[&9],
            Truth {
                calls: 4,
                bytes: 1000
            }
        );
        assert_eq!((d.throughput, d.calls_per_s), (500.0, 2.0));
        assert!((d.cpu_throughput - 2000.0).abs() < 1e-9);
        assert!(Workload::Demo.parse("oops").is_err());
    }
}
