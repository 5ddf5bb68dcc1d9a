//! `zcprof serve`: the live per-process counters in OpenMetrics text (the Prometheus
//! exposition format), encoded by the `prometheus-client` crate.
//!
//! Every figure is cumulative since the probes attached, so each is exposed as a counter:
//! - the syscall layer: `zcprof_bytes_total`, `zcprof_calls_total`, `zcprof_errors_total`,
//!   labelled `comm`, `pid`, `syscall`, `direction` (k2u/u2k/k2k), `kind` (copy/zero_copy)
//!   and `layer="syscall"`, and `zcprof_call_size_bytes`, a histogram of bytes per call (the
//!   kernel's log2 buckets); `zcprof_errors_by_errno_total`, the same errors by `errno`
//!   (the kernel's fixed table, `other` for the rest) with `would_block` ("true" for EAGAIN
//!   and EINTR: not failures), one series per errno that occurred;
//! - the io_uring layer, in the same families (its requests and the syscalls are disjoint,
//!   so `sum by (kind)` over both is what the process copied): one series per process ×
//!   opcode that completed, labelled `opcode` (`READ`, `SEND_ZC`, the notifications)
//!   instead of `syscall`, and `layer="io_uring"`; `zcprof_io_uring_unseen_calls_total`,
//!   the `io_uring_setup`/`io_uring_enter` calls seen while the layer was unavailable (their
//!   requests' bytes are counted nowhere);
//! - the kernel layer: `zcprof_kernel_bytes_total`, `zcprof_kernel_calls_total`,
//!   `zcprof_kernel_errors_total`, one series per process × probe that fired, labelled
//!   `comm`, `pid`, `probe` (the name in `zcprof_common::kernel::PROBES`), `function`, `role`,
//!   `direction` and `layer="kernel"`. They are families of their own, never added into the
//!   syscall layer's, and probes overlap (a breakdown probe sees bytes its copy primitive
//!   also counts): the kernel's copies are the sum over one role, `primitive` where any
//!   attached, else `cross_check`;
//! - the mapped layer: `zcprof_mapped_pages_total`, file pages mapped in through mmap,
//!   one series per process × way (`via`: `fault`, `map_pages`) that counted, labelled
//!   `comm`, `pid`, `via` and `layer="mapped"`: a figure of its own, never bytes moved;
//! - the flows layer (`--flows`): `zcprof_flow_bytes_total{comm,pid,flow,direction,kind,
//!   layer="flows"}`, a breakdown of the syscall layer's bytes, never added to them;
//! - the user layer (`--user-copies`): `zcprof_user_copy_bytes_total` and
//!   `zcprof_user_copy_calls_total{comm,pid,routine,layer="user"}`, copies inside the
//!   process through its copy routines: a figure of its own, never the syscall layer's;
//! - `zcprof_process_info{comm,pid,cgroup,container} 1` for every process whose cgroup is
//!   known (join on `pid` to group any family by cgroup or container);
//! - `zcprof_lost_events_total{reason}` and `zcprof_probe_layer_up{layer,state}`;
//! - with `--probe-stats`, `zcprof_probe_run_seconds_total{enabled_by}` and
//!   `zcprof_probe_runs_total{enabled_by}`: the probes' own cost since they attached.
//!
//! With `serve --cgroup PATH` every per-process family carries only the processes in those
//! cgroups or below (a process whose cgroup is not known yet appears once it is), so any
//! sum over a family is theirs; the lost events stay machine-wide, as the kernel counts
//! them, and say so in their HELP.
//!
//! A process's series exist while it runs and for a little while after it exits (until the
//! model prunes it), so its final counts are scraped.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use zcprof_common::{Counts, HIST_BUCKETS, errno, hist};

use super::{
    Lost, figures,
    top::{Filter, Own},
};
use crate::{
    model::{Model, Process},
    probe_stats::Cost,
    probes::{Layer, LayerSummary, State},
};

type Labels = Vec<(&'static str, String)>;

/// One process × syscall, or process × kernel probe.
#[derive(Debug)]
struct Series {
    labels: Labels,
    bytes: u64,
    calls: u64,
    errors: u64,
    /// Errors by errno slot (`zcprof_common::errno`).
    errno: [u64; errno::SLOTS],
    /// Calls per size bucket (not cumulative), as the kernel counts them.
    hist: [u64; HIST_BUCKETS],
}

impl Series {
    /// `process`'s `stats`, labelled with its comm and pid, then `labels`.
    fn of(process: &Process, labels: Labels, stats: &Counts) -> Series {
        let mut all = vec![
            ("comm", process.comm.clone()),
            ("pid", process.tgid.to_string()),
        ];
        all.extend(labels);
        Series {
            labels: all,
            bytes: stats.bytes,
            calls: stats.calls,
            errors: stats.errors,
            errno: stats.errno,
            hist: stats.hist,
        }
    }
}

/// What one scrape shows: taken from the model after each collection.
#[derive(Debug)]
struct Snapshot {
    /// The counting layers' series: syscalls, then io_uring opcodes.
    syscall: Vec<Series>,
    /// Per process (comm, pid): io_uring calls the io_uring layer could not see.
    io_uring_unseen: Vec<(Labels, u64)>,
    /// Per process × way: file pages the mapped layer saw mapped in.
    mapped: Vec<(Labels, u64)>,
    kernel: Vec<Series>,
    /// Per process × flow (flows layer, `--flows`): bytes.
    flows: Vec<(Labels, u64)>,
    /// Per process × routine (user layer, `--user-copies`): `(bytes, calls)`.
    user: Vec<(Labels, (u64, u64))>,
    /// Per process with a known cgroup: its `cgroup` and `container` labels.
    info: Vec<Labels>,
    lost: Lost,
    layers: Vec<(Layer, State)>,
    /// zcprof's programs' run time since the probes attached, while BPF statistics are on.
    probes: Option<Cost>,
}

/// Name and help of a layer's bytes, calls and errors counters.
type Counters = [(&'static str, &'static str); 3];

const SYSCALL_COUNTERS: Counters = [
    (
        "zcprof_bytes",
        "Bytes moved by syscalls and io_uring requests (layer label; copy: across the user/kernel boundary by a CPU copy)",
    ),
    (
        "zcprof_calls",
        "Syscalls counted, and io_uring requests completed",
    ),
    (
        "zcprof_errors",
        "Syscalls and io_uring requests that failed",
    ),
];

const KERNEL_COUNTERS: Counters = [
    (
        "zcprof_kernel_bytes",
        "Bytes a kernel-layer probe counted; probes overlap, so add up one role only (primitive, else cross_check)",
    ),
    ("zcprof_kernel_calls", "Hits of a kernel-layer probe"),
    (
        "zcprof_kernel_errors",
        "Kernel-layer probe hits that failed (a fault, or a negative return)",
    ),
];

fn encode_counters(
    encoder: &mut DescriptorEncoder,
    counters: &Counters,
    series: &[Series],
) -> Result<(), std::fmt::Error> {
    let values: [fn(&Series) -> u64; 3] = [|s| s.bytes, |s| s.calls, |s| s.errors];
    for ((name, help), value) in counters.iter().zip(values) {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for s in series {
            ConstCounter::new(value(s)).encode(metric.encode_family(&s.labels)?)?;
        }
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_counters(&mut encoder, &SYSCALL_COUNTERS, &self.syscall)?;
        encode_counters(&mut encoder, &KERNEL_COUNTERS, &self.kernel)?;
        let mut metric = encoder.encode_descriptor(
            "zcprof_errors_by_errno",
            "Syscalls that failed, by errno (would_block=\"true\": EAGAIN/EWOULDBLOCK or EINTR, would block or interrupted, not a failure)",
            None,
            MetricType::Counter,
        )?;
        for s in &self.syscall {
            for (slot, n) in s.errno.iter().enumerate().filter(|(_, n)| **n > 0) {
                let mut labels = s.labels.clone();
                labels.push(("errno", errno::NAMES[slot].to_string()));
                labels.push(("would_block", errno::would_block(slot).to_string()));
                ConstCounter::new(*n).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_call_size_bytes",
            "Bytes moved per syscall (log2 buckets)",
            None,
            MetricType::Histogram,
        )?;
        for s in &self.syscall {
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
            "zcprof_io_uring_unseen_calls",
            "io_uring_setup/io_uring_enter calls seen while the io_uring layer was unavailable: their requests' bytes are not counted",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &self.io_uring_unseen {
            ConstCounter::new(*n).encode(metric.encode_family(labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_mapped_pages",
            "File pages mapped into the process through mmap (mapped layer; a lower bound where the kernel maps large folios): what replaced a read copy, not bytes moved",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &self.mapped {
            ConstCounter::new(*n).encode(metric.encode_family(labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_flow_bytes",
            "Bytes of successful syscalls by the kinds of descriptor they moved between (flows layer, --flows): a breakdown of zcprof_bytes_total{layer=\"syscall\"}, never added to it",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &self.flows {
            ConstCounter::new(*n).encode(metric.encode_family(labels)?)?;
        }
        for (name, help, pick) in [
            (
                "zcprof_user_copy_bytes",
                "Bytes copied inside the process through its copy routines (user layer, --user-copies: the size arguments of memcpy/memmove/mempcpy, runtime.memmove): a figure of its own, never added to zcprof_bytes_total",
                (|(bytes, _)| bytes) as fn((u64, u64)) -> u64,
            ),
            (
                "zcprof_user_copy_calls",
                "Calls of the copy routines (user layer, --user-copies)",
                |(_, calls)| calls,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, n) in &self.user {
                ConstCounter::new(pick(*n)).encode(metric.encode_family(labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_process_info",
            "1 per process whose cgroup is known: its cgroup v2 path and the container or unit it names (empty when none); join on pid",
            None,
            MetricType::Gauge,
        )?;
        for labels in &self.info {
            ConstGauge::new(1).encode(metric.encode_family(labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_lost_events",
            "Events the kernel side could not record, or records user space could not decode (machine-wide: serve --cgroup does not narrow it)",
            None,
            MetricType::Counter,
        )?;
        for (reason, n, _) in self.lost.kinds() {
            ConstCounter::new(n).encode(metric.encode_family(&[("reason", reason)])?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "zcprof_probe_layer_up",
            "1 when the probe layer is live or partial",
            None,
            MetricType::Gauge,
        )?;
        for (layer, state) in &self.layers {
            let up = i64::from(*state != State::Unavailable);
            ConstGauge::new(up).encode(
                metric.encode_family(&[("layer", layer.name()), ("state", state.name())])?,
            )?;
        }
        if let Some(cost) = &self.probes {
            encode_probe_cost(&mut encoder, cost)?;
        }
        Ok(())
    }
}

/// The probes' own run time and runs (`--probe-stats`): ns per run is the ratio of their
/// increases, their CPU share the first's rate.
fn encode_probe_cost(encoder: &mut DescriptorEncoder, cost: &Cost) -> Result<(), std::fmt::Error> {
    let by = [("enabled_by", cost.enabled_by.name())];
    let mut metric = encoder.encode_descriptor(
        "zcprof_probe_run_seconds",
        "Time zcprof's BPF programs ran, all together, from the kernel's run-time statistics (--probe-stats; they add about 20 ns per run while on, included here)",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(cost.run_time_ns as f64 / 1e9).encode(metric.encode_family(&by)?)?;
    let mut metric = encoder.encode_descriptor(
        "zcprof_probe_runs",
        "Runs of zcprof's BPF programs (probe hits), all together (--probe-stats)",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(cost.runs).encode(metric.encode_family(&by)?)?;
    Ok(())
}

/// The syscall layer's series: one per process × syscall it called.
fn syscall_series(shown: &[&Process]) -> Vec<Series> {
    let mut series = Vec::new();
    for &p in shown {
        for (sc, s) in figures::used(&p.totals.syscall) {
            let labels = vec![
                ("syscall", sc.name.to_string()),
                (
                    "direction",
                    figures::direction(sc.direction).as_str().into(),
                ),
                ("kind", figures::family(sc.family).as_str().into()),
                ("layer", Layer::Syscall.to_string()),
            ];
            series.push(Series::of(p, labels, s));
        }
    }
    series
}

/// The io_uring layer's series, one per process × opcode (or notification) that completed,
/// and its detector's calls per process.
fn io_uring_series(shown: &[&Process]) -> (Vec<Series>, Vec<(Labels, u64)>) {
    let mut series = Vec::new();
    let mut unseen = Vec::new();
    for &p in shown {
        let t = &p.totals.io_uring;
        for (op, s) in t.requests() {
            let labels = vec![
                ("opcode", op.name.to_string()),
                (
                    "direction",
                    figures::direction(op.direction).as_str().into(),
                ),
                ("kind", figures::family(op.family).as_str().into()),
                ("layer", Layer::IoUring.to_string()),
            ];
            series.push(Series::of(p, labels, s));
        }
        if t.unseen_calls() > 0 {
            unseen.push((
                vec![
                    ("comm", p.comm.clone()),
                    ("pid", p.tgid.to_string()),
                    ("layer", Layer::IoUring.to_string()),
                ],
                t.unseen_calls(),
            ));
        }
    }
    (series, unseen)
}

/// The mapped layer's pages, one series per process × way that counted.
fn mapped_series(shown: &[&Process]) -> Vec<(Labels, u64)> {
    let mut series = Vec::new();
    for &p in shown {
        for (via, s) in p.totals.mapped.named().filter(|(_, s)| s.bytes > 0) {
            let labels = vec![
                ("comm", p.comm.clone()),
                ("pid", p.tgid.to_string()),
                ("via", via.to_string()),
                ("layer", Layer::Mapped.to_string()),
            ];
            series.push((labels, s.bytes / zcprof_common::mapped::PAGE_SIZE));
        }
    }
    series
}

/// The user layer's bytes and calls, one series per process × routine that counted.
fn user_series(shown: &[&Process]) -> Vec<(Labels, (u64, u64))> {
    let mut series = Vec::new();
    for &p in shown {
        for (routine, s) in p.totals.user.fired() {
            let labels = vec![
                ("comm", p.comm.clone()),
                ("pid", p.tgid.to_string()),
                ("routine", routine.to_string()),
                ("layer", Layer::User.to_string()),
            ];
            series.push((labels, (s.bytes, s.calls)));
        }
    }
    series
}

/// The flows layer's bytes, one series per process × flow that counted.
fn flows_series(shown: &[&Process]) -> Vec<(Labels, u64)> {
    let mut series = Vec::new();
    for &p in shown {
        for (_, flow, s) in p.totals.flows.fired() {
            let labels = vec![
                ("comm", p.comm.clone()),
                ("pid", p.tgid.to_string()),
                ("flow", crate::model::flow_name(&flow)),
                (
                    "direction",
                    figures::direction(flow.direction).as_str().into(),
                ),
                ("kind", figures::family(flow.family).as_str().into()),
                ("layer", Layer::Flows.to_string()),
            ];
            series.push((labels, s.bytes));
        }
    }
    series
}

/// `comm`, `pid`, `cgroup`, `container` of every process whose cgroup is known.
fn info_series(shown: &[&Process]) -> Vec<Labels> {
    shown
        .iter()
        .filter_map(|p| {
            let path = p.cgroup_path.clone()?;
            Some(vec![
                ("comm", p.comm.clone()),
                ("pid", p.tgid.to_string()),
                ("cgroup", path),
                ("container", p.container().unwrap_or_default()),
            ])
        })
        .collect()
}

/// The kernel layer's series: one per process × probe that fired.
fn kernel_series(shown: &[&Process]) -> Vec<Series> {
    let mut series = Vec::new();
    for &p in shown {
        for (probe, s) in p.totals.kernel.fired() {
            let labels = vec![
                ("probe", probe.name.to_string()),
                ("function", probe.function.to_string()),
                ("role", probe.role.name().to_string()),
                (
                    "direction",
                    figures::direction(probe.direction).as_str().into(),
                ),
                ("layer", Layer::Kernel.to_string()),
            ];
            series.push(Series::of(p, labels, s));
        }
    }
    series
}

/// The exposition of the processes the model holds now that `filter` keeps (`serve
/// --cgroup`: those in the cgroups or below; one whose cgroup is not known yet is left out
/// until it is), but zcprof's own process unless `own` lists it (`--include-self`): its
/// answers to scrapes and its reads of /proc are not the machine's work, as in `top` and
/// recordings. Every per-process family is narrowed alike, so a sum over any of them is the
/// kept processes' total; the lost events and the layers' state stay machine-wide (the
/// kernel's loss counters name no process).
pub fn render(model: &Model, layers: &[LayerSummary], own: &Own, filter: &Filter) -> String {
    let shown: Vec<&Process> = model
        .processes()
        .filter(|p| !own.hides(p) && filter.matches(p))
        .collect();
    let mut syscall = syscall_series(&shown);
    let (io_uring, io_uring_unseen) = io_uring_series(&shown);
    syscall.extend(io_uring);
    let snapshot = Snapshot {
        syscall,
        io_uring_unseen,
        mapped: mapped_series(&shown),
        kernel: kernel_series(&shown),
        flows: flows_series(&shown),
        user: user_series(&shown),
        info: info_series(&shown),
        lost: Lost::of(model),
        layers: layers.iter().map(|l| (l.layer, l.state)).collect(),
        probes: own.probes,
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

    use zcprof_common::{Key, kernel::id, syscalls};

    use super::*;
    use crate::model::{Batch, KernelCounters, ProcEvent, ProcInfo, ProcSource};

    struct NoProc;

    impl ProcSource for NoProc {
        fn lookup(&self, _: u32) -> Option<ProcInfo> {
            None
        }
    }

    /// A model in which process 42 (`cat`) read 1000 bytes in 10 calls of 100 bytes, which
    /// the kernel layer saw through `__check_object_size` and again on the socket-receive
    /// path.
    fn model() -> Model {
        let read = syscalls::index_named("read").expect("read") as u32;
        let mut stats = Counts {
            calls: 10,
            bytes: 1000,
            ..Counts::ZERO
        };
        stats.hist[hist::bucket(100)] = 10;
        let mut m = Model::new();
        m.apply(
            &Batch {
                events: vec![ProcEvent::Fork {
                    parent: 1,
                    child: 42,
                    comm: "cat".into(),
                    followed: false,
                    cgroup: 0,
                }],
                counts: [(Layer::Syscall, read)]
                    .into_iter()
                    .chain(
                        [id::CHECK_OBJECT_SIZE_TO_USER, id::SKB_COPY_DATAGRAM_ITER]
                            .map(|probe| (Layer::Kernel, probe)),
                    )
                    .map(|(layer, slot)| (layer, Key { tgid: 42, slot }, stats))
                    .collect(),
                counters: KernelCounters {
                    ringbuf_full: 3,
                    ..KernelCounters::default()
                },
                ..Batch::empty(Instant::now())
            },
            &NoProc,
        );
        m
    }

    #[test]
    fn zcprofs_own_process_is_left_out_unless_listed() {
        let m = model();
        let hidden = Own {
            pid: Some(42),
            listed: false,
            cpu_percent: None,
            probes: None,
        };
        let text = render(&m, &[], &hidden, &Filter::default());
        assert!(!text.contains("pid=\"42\""), "{text}");
        let listed = Own {
            listed: true,
            ..hidden
        };
        assert!(render(&m, &[], &listed, &Filter::default()).contains("pid=\"42\""));
        assert_eq!(
            render(&m, &[], &listed, &Filter::default()),
            render(&m, &[], &Own::default(), &Filter::default())
        );
    }

    #[test]
    fn counters_and_histograms_carry_every_label() {
        let text = render(&model(), &[], &Own::default(), &Filter::default());
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

    /// Mapped pages are a counter of their own, per process and way, in pages.
    #[test]
    fn mapped_pages_are_a_family_of_their_own() {
        let mut m = model();
        let fault = Counts {
            calls: 3,
            bytes: 5 * zcprof_common::mapped::PAGE_SIZE,
            ..Counts::ZERO
        };
        m.apply(
            &Batch {
                counts: vec![(
                    Layer::Mapped,
                    Key {
                        tgid: 42,
                        slot: zcprof_common::mapped::FAULT,
                    },
                    fault,
                )],
                ..Batch::empty(Instant::now())
            },
            &NoProc,
        );
        let text = render(&m, &[], &Own::default(), &Filter::default());
        let line = r#"zcprof_mapped_pages_total{comm="cat",pid="42",via="fault",layer="mapped"} 5"#;
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
        assert!(
            !text.contains(r#"via="map_pages""#),
            "only the ways that counted"
        );
    }

    /// The user layer's copies are families of their own, per process and routine.
    #[test]
    fn user_copies_are_families_of_their_own() {
        let mut m = model();
        let copies = Counts {
            calls: 4,
            bytes: 4 << 16,
            ..Counts::ZERO
        };
        m.apply(
            &Batch {
                counts: vec![(
                    Layer::User,
                    Key {
                        tgid: 42,
                        slot: zcprof_common::user::MEMCPY_MEMMOVE,
                    },
                    copies,
                )],
                ..Batch::empty(Instant::now())
            },
            &NoProc,
        );
        let text = render(&m, &[], &Own::default(), &Filter::default());
        for line in [
            r#"zcprof_user_copy_bytes_total{comm="cat",pid="42",routine="memcpy/memmove",layer="user"} 262144"#,
            r#"zcprof_user_copy_calls_total{comm="cat",pid="42",routine="memcpy/memmove",layer="user"} 4"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }

    /// io_uring requests are in the syscall layer's families, labelled by opcode and their
    /// layer; io_uring used while the layer was unavailable is a counter of its own.
    #[test]
    fn io_uring_opcodes_share_the_families_and_unseen_calls_are_counted() {
        let mut m = model();
        let mut read = Counts {
            calls: 4,
            bytes: 4 << 20,
            ..Counts::ZERO
        };
        read.hist[hist::bucket(1 << 20)] = 4;
        let enter = Counts {
            calls: 9,
            ..Counts::ZERO
        };
        m.apply(
            &Batch {
                events: vec![ProcEvent::Fork {
                    parent: 1,
                    child: 43,
                    comm: "fio".into(),
                    followed: false,
                    cgroup: 0,
                }],
                counts: vec![
                    (
                        Layer::IoUring,
                        Key {
                            tgid: 43,
                            slot: u32::from(zcprof_common::io_uring::opcode::READ),
                        },
                        read,
                    ),
                    (
                        Layer::IoUring,
                        Key {
                            tgid: 44,
                            slot: zcprof_common::io_uring::ENTER_SEEN,
                        },
                        enter,
                    ),
                ],
                ..Batch::empty(Instant::now())
            },
            &NoProc,
        );
        let text = render(&m, &[], &Own::default(), &Filter::default());
        let labels =
            r#"comm="fio",pid="43",opcode="READ",direction="k2u",kind="copy",layer="io_uring""#;
        for line in [
            format!("zcprof_bytes_total{{{labels}}} 4194304"),
            format!("zcprof_calls_total{{{labels}}} 4"),
            format!("zcprof_call_size_bytes_count{{{labels}}} 4"),
            r#"zcprof_io_uring_unseen_calls_total{comm="",pid="44",layer="io_uring"} 9"#
                .to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        // The detector's slot is not a request: not in the bytes family.
        assert!(!text.contains(r#"pid="44",opcode"#), "{text}");
    }

    #[test]
    fn kernel_probes_are_series_of_their_own() {
        let text = render(&model(), &[], &Own::default(), &Filter::default());
        for (probe, function, role) in [
            (
                "__check_object_size:to_user",
                "__check_object_size",
                "cross_check",
            ),
            (
                "skb_copy_datagram_iter",
                "skb_copy_datagram_iter",
                "breakdown",
            ),
        ] {
            let labels = format!(
                r#"comm="cat",pid="42",probe="{probe}",function="{function}",role="{role}",direction="k2u",layer="kernel""#
            );
            for line in [
                format!("zcprof_kernel_bytes_total{{{labels}}} 1000"),
                format!("zcprof_kernel_calls_total{{{labels}}} 10"),
                format!("zcprof_kernel_errors_total{{{labels}}} 0"),
            ] {
                assert!(
                    text.lines().any(|l| l == line),
                    "missing `{line}` in\n{text}"
                );
            }
        }
        // Only probes that fired; none of them in the syscall layer's families, which hold
        // exactly the one read.
        assert_eq!(
            text.matches("zcprof_kernel_bytes_total{").count(),
            2,
            "{text}"
        );
        let syscall_bytes: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("zcprof_bytes_total{"))
            .collect();
        assert_eq!(
            syscall_bytes,
            [
                r#"zcprof_bytes_total{comm="cat",pid="42",syscall="read",direction="k2u",kind="copy",layer="syscall"} 1000"#
            ],
            "{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("zcprof_call_size_bytes") && l.contains("layer=\"kernel\"")),
            "{text}"
        );
    }

    #[test]
    fn errors_carry_their_errno() {
        let write = syscalls::index_named("write").expect("write") as u32;
        let mut stats = Counts {
            calls: 3,
            errors: 3,
            ..Counts::ZERO
        };
        stats.errno[errno::slot(libc::EAGAIN as u64)] = 2;
        stats.errno[errno::slot(libc::EPIPE as u64)] = 1;
        let mut m = Model::new();
        m.apply(
            &Batch {
                counts: vec![(
                    Layer::Syscall,
                    Key {
                        tgid: 7,
                        slot: write,
                    },
                    stats,
                )],
                ..Batch::empty(Instant::now())
            },
            &NoProc,
        );
        let text = render(&m, &[], &Own::default(), &Filter::default());
        let by_errno: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("zcprof_errors_by_errno_total{"))
            .map(|l| l.split_once(",syscall=").map_or(l, |(_, rest)| rest))
            .collect();
        assert_eq!(
            by_errno,
            [
                r#""write",direction="u2k",kind="copy",layer="syscall",errno="EAGAIN",would_block="true"} 2"#,
                r#""write",direction="u2k",kind="copy",layer="syscall",errno="EPIPE",would_block="false"} 1"#,
            ],
            "{text}"
        );
    }

    #[test]
    fn an_empty_model_is_valid_openmetrics() {
        let text = render(&Model::new(), &[], &Own::default(), &Filter::default());
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE zcprof_bytes counter"), "{text}");
        assert!(
            text.contains("# TYPE zcprof_kernel_bytes counter"),
            "{text}"
        );
        assert!(
            text.contains("zcprof_lost_events_total{reason=\"ringbuf_full\"} 0"),
            "{text}"
        );
    }

    /// `serve --cgroup`: every per-process family carries only the processes in the cgroup
    /// or below, never one elsewhere or one whose cgroup is not known; the lost events stay.
    #[test]
    fn a_cgroup_filter_narrows_every_process_family() {
        let read = syscalls::index_named("read").expect("read") as u32;
        let stats = Counts {
            calls: 1,
            bytes: 100,
            ..Counts::ZERO
        };
        let mut m = Model::new();
        let procs = [(41, 7), (42, 8), (43, 9), (44, 0)];
        m.apply(
            &Batch {
                events: procs
                    .iter()
                    .map(|&(child, cgroup)| ProcEvent::Fork {
                        parent: 1,
                        child,
                        comm: "w".into(),
                        followed: false,
                        cgroup,
                    })
                    .collect(),
                counts: procs
                    .iter()
                    .flat_map(|&(tgid, _)| {
                        [
                            (Layer::Syscall, Key { tgid, slot: read }),
                            (
                                Layer::Kernel,
                                Key {
                                    tgid,
                                    slot: id::SKB_COPY_DATAGRAM_ITER,
                                },
                            ),
                        ]
                    })
                    .map(|(layer, key)| (layer, key, stats))
                    .collect(),
                ..Batch::empty(Instant::now())
            },
            &NoProc,
        );
        // 41 in the service, 42 in a sibling whose name starts alike, 43 below the
        // service, 44 unknown.
        m.resolve_cgroups(|id, _| match id {
            Some(7) => Some("/system.slice/web.service".into()),
            Some(8) => Some("/system.slice/web.servicex".into()),
            Some(9) => Some("/system.slice/web.service/worker".into()),
            _ => None,
        });
        let filter = Filter {
            cgroups: vec!["/system.slice/web.service".into()],
            ..Filter::default()
        };
        let text = render(&m, &[], &Own::default(), &filter);
        for left_out in ["42", "44"] {
            assert!(!text.contains(&format!("pid=\"{left_out}\"")), "{text}");
        }
        for family in [
            "zcprof_bytes_total{",
            "zcprof_kernel_bytes_total{",
            "zcprof_process_info{",
        ] {
            let series = text.lines().filter(|l| l.starts_with(family)).count();
            assert_eq!(series, 2, "{family} in\n{text}");
        }
        assert!(
            text.contains("zcprof_lost_events_total{reason=\"ringbuf_full\"} 0"),
            "{text}"
        );
        let all = render(&m, &[], &Own::default(), &Filter::default());
        let series = all.lines().filter(|l| l.starts_with("zcprof_bytes_total{"));
        assert_eq!(series.count(), 4, "{all}");
    }

    /// The flows layer's bytes per flow, and the cgroup of each process as an info series.
    #[test]
    fn flows_and_cgroups_are_series_of_their_own() {
        let mut m = Model::new();
        let slot = zcprof_common::flows::WRITE_TO + zcprof_common::flows::kind::TCP;
        let stats = Counts {
            calls: 2,
            bytes: 700,
            ..Counts::ZERO
        };
        m.apply(
            &Batch {
                events: vec![ProcEvent::Fork {
                    parent: 1,
                    child: 42,
                    comm: "nginx".into(),
                    followed: false,
                    cgroup: 9,
                }],
                counts: vec![(Layer::Flows, Key { tgid: 42, slot }, stats)],
                ..Batch::empty(Instant::now())
            },
            &NoProc,
        );
        m.resolve_cgroups(|_, _| Some("/system.slice/nginx.service".into()));
        let text = render(&m, &[], &Own::default(), &Filter::default());
        for line in [
            r#"zcprof_flow_bytes_total{comm="nginx",pid="42",flow="copy user -> tcp",direction="u2k",kind="copy",layer="flows"} 700"#,
            r#"zcprof_process_info{comm="nginx",pid="42",cgroup="/system.slice/nginx.service",container="unit nginx.service"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }
}
