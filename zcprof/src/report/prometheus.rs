//! `zcprof serve`: the live per-process counters in OpenMetrics text (the Prometheus
//! exposition format), encoded by the `prometheus-client` crate.
//!
//! Every figure is cumulative since the probes attached, so each is exposed as a counter:
//! - `zcprof_bytes_total`, `zcprof_calls_total`, `zcprof_errors_total`, labelled `comm`,
//!   `pid`, `syscall`, `direction` (k2u/u2k/k2k), `kind` (copy/zero_copy) and `layer`;
//! - `zcprof_call_size_bytes`: a histogram of bytes per call (the kernel's log2 buckets);
//! - `zcprof_lost_events_total{reason}` and `zcprof_probe_layer_up{layer,state}`.
//!
//! A process's series exist while it runs and for a little while after it exits (until the
//! model prunes it), so its final counts are scraped.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use zcprof_common::{HIST_BUCKETS, hist};

use super::{Lost, figures};
use crate::{model::Model, probes::LayerSummary};

type Labels = Vec<(&'static str, String)>;

/// One process × syscall.
#[derive(Debug)]
struct Series {
    labels: Labels,
    bytes: u64,
    calls: u64,
    errors: u64,
    /// Calls per size bucket (not cumulative), as the kernel counts them.
    hist: [u64; HIST_BUCKETS],
}

/// What one scrape shows: taken from the model after each collection.
#[derive(Debug)]
struct Snapshot {
    series: Vec<Series>,
    lost: Lost,
    layers: Vec<(String, String)>,
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, get) in [
            (
                "zcprof_bytes",
                "Bytes moved by syscalls (copy: across the user/kernel boundary by a CPU copy)",
                (|s: &Series| s.bytes) as fn(&Series) -> u64,
            ),
            ("zcprof_calls", "Syscalls counted", |s: &Series| s.calls),
            ("zcprof_errors", "Syscalls that failed", |s: &Series| {
                s.errors
            }),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &self.series {
                ConstCounter::new(get(s)).encode(metric.encode_family(&s.labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_call_size_bytes",
            "Bytes moved per syscall (log2 buckets)",
            None,
            MetricType::Histogram,
        )?;
        for s in &self.series {
            let buckets: Vec<(f64, u64)> = (0..HIST_BUCKETS)
                .map(|k| {
                    let le = if k == HIST_BUCKETS - 1 {
                        f64::INFINITY
                    } else {
                        hist::bucket_high(k) as f64
                    };
                    (le, s.hist[k])
                })
                .collect();
            let count = s.hist.iter().sum();
            metric
                .encode_family(&s.labels)?
                .encode_histogram::<Labels>(s.bytes as f64, count, &buckets, None)?;
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_lost_events",
            "Events the kernel side could not record, or records user space could not decode",
            None,
            MetricType::Counter,
        )?;
        let k = &self.lost.kernel;
        for (reason, n) in [
            ("ringbuf_full", k.ringbuf_full),
            ("stats_map_full", k.stats_map_full),
            ("mmsg_unreadable", k.mmsg_unreadable),
            ("mmsg_no_enter", k.mmsg_no_enter),
            ("malformed_records", self.lost.malformed_records),
        ] {
            ConstCounter::new(n).encode(metric.encode_family(&[("reason", reason)])?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_probe_layer_up",
            "1 when the probe layer is live or partial",
            None,
            MetricType::Gauge,
        )?;
        for (layer, state) in &self.layers {
            let up = i64::from(state != "unavailable");
            ConstGauge::new(up).encode(
                metric.encode_family(&[("layer", layer.as_str()), ("state", state.as_str())])?,
            )?;
        }
        Ok(())
    }
}

/// The exposition of everything the model holds now.
pub fn render(model: &Model, layers: &[LayerSummary]) -> String {
    let mut series = Vec::new();
    for p in model.processes() {
        for (sc, s) in figures::used(&p.totals) {
            series.push(Series {
                labels: vec![
                    ("comm", p.comm.clone()),
                    ("pid", p.tgid.to_string()),
                    ("syscall", sc.name.to_string()),
                    (
                        "direction",
                        figures::direction(sc.direction).as_str().into(),
                    ),
                    ("kind", figures::family(sc.family).as_str().into()),
                    ("layer", crate::probes::LAYER_SYSCALL.into()),
                ],
                bytes: s.bytes,
                calls: s.calls,
                errors: s.errors,
                hist: s.hist,
            });
        }
    }
    let snapshot = Snapshot {
        series,
        lost: Lost::of(model),
        layers: layers
            .iter()
            .map(|l| (l.layer.to_string(), l.state.to_string()))
            .collect(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        // Writing to a String cannot fail; say so in the output if it ever does.
        return format!("# zcprof: encoding failed: {err}\n# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use zcprof_common::{StatsKey, SyscallStats, syscalls};

    use super::*;
    use crate::model::{Batch, KernelCounters, ProcEvent, ProcInfo, ProcSource};

    struct NoProc;

    impl ProcSource for NoProc {
        fn lookup(&self, _: u32) -> Option<ProcInfo> {
            None
        }
    }

    /// A model in which process 42 (`cat`) read 1000 bytes in 10 calls of 100 bytes.
    fn model() -> Model {
        let read = syscalls::SYSCALLS
            .iter()
            .position(|s| s.name == "read")
            .expect("read") as u32;
        let mut stats = SyscallStats {
            calls: 10,
            bytes: 1000,
            ..SyscallStats::ZERO
        };
        stats.hist[hist::bucket(100)] = 10;
        let mut m = Model::new();
        m.apply(
            &Batch {
                at: Instant::now(),
                events: vec![ProcEvent::Fork {
                    parent: 1,
                    child: 42,
                    comm: "cat".into(),
                }],
                stats: vec![(
                    StatsKey {
                        tgid: 42,
                        syscall: read,
                    },
                    stats,
                )],
                kernel_stats: Vec::new(),
                counters: KernelCounters {
                    ringbuf_full: 3,
                    ..KernelCounters::default()
                },
                malformed: 0,
                flushed: false,
            },
            &NoProc,
        );
        m
    }

    #[test]
    fn counters_and_histograms_carry_every_label() {
        let text = render(&model(), &[]);
        let labels =
            r#"comm="cat",pid="42",syscall="read",direction="k2u",kind="copy",layer="syscall""#;
        for line in [
            format!("zcprof_bytes_total{{{labels}}} 1000"),
            format!("zcprof_calls_total{{{labels}}} 10"),
            format!("zcprof_errors_total{{{labels}}} 0"),
            format!("zcprof_call_size_bytes_sum{{{labels}}} 1000.0"),
            format!("zcprof_call_size_bytes_count{{{labels}}} 10"),
            format!("zcprof_call_size_bytes_bucket{{le=\"63.0\",{labels}}} 0"),
            format!("zcprof_call_size_bytes_bucket{{le=\"127.0\",{labels}}} 10"),
            format!("zcprof_call_size_bytes_bucket{{le=\"+Inf\",{labels}}} 10"),
            "zcprof_lost_events_total{reason=\"ringbuf_full\"} 3".to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }

    #[test]
    fn an_empty_model_is_valid_openmetrics() {
        let text = render(&Model::new(), &[]);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE zcprof_bytes counter"), "{text}");
        assert!(
            text.contains("zcprof_lost_events_total{reason=\"ringbuf_full\"} 0"),
            "{text}"
        );
    }
}
