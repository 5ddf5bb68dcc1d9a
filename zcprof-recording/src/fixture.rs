//! Recordings built in code, for unit tests: totals are computed from the entries as
//! zcprof computes them, so the fixtures pass the parser's consistency checks.

use crate::format::{
    Bucket, Direction, Entry, Family, Layer, LayerTotals, Layers, Lost, ProbeLayer, ProcessRecord,
    Recording, SCHEMA, Target, Total, Workload, WorkloadKind,
};

/// `(syscall, calls, bytes)`; family and direction follow the syscall's name.
pub type Call = (&'static str, u64, u64);

pub fn entry(name: &str, calls: u64, bytes: u64) -> Entry {
    let (family, direction) = match name {
        "read" | "pread64" | "readv" | "recvfrom" | "recvmsg" => (Family::Copy, Direction::K2u),
        "write" | "pwrite64" | "writev" | "sendto" | "sendmsg" => (Family::Copy, Direction::U2k),
        "sendto_zerocopy" | "sendmsg_zerocopy" => (Family::ZeroCopyRequested, Direction::U2k),
        "msg_zerocopy_done" | "msg_zerocopy_copied" => (Family::Notice, Direction::K2k),
        _ => (Family::ZeroCopy, Direction::K2k),
    };
    let hist = if calls > 0 {
        vec![Bucket {
            low: 65_536,
            high: 131_071,
            count: calls,
        }]
    } else {
        Vec::new()
    };
    Entry {
        family,
        direction,
        calls,
        bytes,
        errors: 0,
        errno: Default::default(),
        hist,
    }
}

pub fn layers(calls: &[Call]) -> Layers {
    let mut layer = Layer::default();
    for &(name, c, b) in calls {
        layer.syscalls.insert(name.to_string(), entry(name, c, b));
    }
    layer.totals = totals(&layer);
    Layers::from([("syscall".to_string(), layer)])
}

fn totals(layer: &Layer) -> LayerTotals {
    let mut t = LayerTotals::default();
    for (name, e) in layer.entries() {
        let z = &mut t.msg_zerocopy;
        match (e.family, e.direction) {
            (Family::Copy, Direction::K2u) => t.copy_k2u_bytes += e.bytes,
            (Family::Copy, _) => t.copy_u2k_bytes += e.bytes,
            (Family::ZeroCopy, _) => t.zero_copy_bytes += e.bytes,
            (Family::ZeroCopyRequested, _) => {
                z.requested_bytes += e.bytes;
                z.requested_sends += e.calls - e.errors;
            }
            (Family::Notice, _) => {
                if name.ends_with("copied") {
                    z.copied_sends += e.calls;
                } else {
                    z.done_sends += e.calls;
                }
                continue;
            }
            (Family::Control | Family::Mapped | Family::UserCopy | Family::CpuSamples, _) => {}
        }
        t.calls += e.calls;
        t.errors += e.errors;
        t.would_block += crate::would_block(&e.errno);
        crate::format::add_errno(&mut t.errno, &e.errno);
    }
    let unconfirmed = t.msg_zerocopy.unconfirmed_bytes();
    t.copy_u2k_bytes += unconfirmed;
    t.zero_copy_bytes += t.msg_zerocopy.requested_bytes - unconfirmed;
    t.zero_copy_ratio = crate::format::ratio(t.zero_copy_bytes, t.copied_bytes());
    t
}

/// A command recording of `duration_s` seconds with one process per `(pid, comm, calls)`.
pub fn recording(duration_s: f64, procs: &[(u32, &str, &[Call])]) -> Recording {
    let processes: Vec<ProcessRecord> = procs
        .iter()
        .map(|&(pid, comm, calls)| ProcessRecord {
            pid,
            ppid: Some(1),
            comm: comm.to_string(),
            origin: "forked".into(),
            exited: true,
            cgroup: None,
            container: None,
            layers: layers(calls),
            threads: Vec::new(),
        })
        .collect();
    let total = total_of(&processes);
    Recording {
        schema: SCHEMA.into(),
        zcprof_version: "0.1.0".into(),
        kernel: "6.18.0".into(),
        syscall_probe: "raw".into(),
        started_unix: 1_795_380_000.0,
        ended_unix: 1_795_380_000.0 + duration_s,
        duration_s,
        interrupted: false,
        ended_by: "exit".into(),
        workload: Workload {
            kind: WorkloadKind::Command,
            command: Some(vec!["demo".into(), "--mode".into(), "x".into()]),
            targets: vec![Target {
                pid: procs.first().map_or(1, |p| p.0),
                command: vec!["demo".into()],
            }],
            comm: None,
            cgroups: Vec::new(),
            exit_code: Some(0),
            signal: None,
        },
        probe_layers: vec![ProbeLayer {
            layer: "syscall".into(),
            state: "live".into(),
            via: "raw_tracepoint".into(),
            attached: 1,
            unavailable: Vec::new(),
        }],
        lost: Lost::default(),
        processes,
        total: Total {
            layers: Layers::from([("syscall".to_string(), total)]),
        },
        stacks: None,
    }
}

/// The syscall layer summed over `processes`.
fn total_of(processes: &[ProcessRecord]) -> Layer {
    let mut total = Layer::default();
    for p in processes {
        for (name, e) in &p.layers["syscall"].syscalls {
            total
                .syscalls
                .entry(name.clone())
                .and_modify(|t| t.add(e))
                .or_insert_with(|| e.clone());
        }
    }
    total.totals = totals(&total);
    total
}

/// `r` with failed calls of `syscall` in its first process, `(errno, count)` each; totals
/// follow.
pub fn with_errors(mut r: Recording, syscall: &str, errno: &[(&str, u64)]) -> Recording {
    let layer = r.processes[0]
        .layers
        .get_mut("syscall")
        .expect("a syscall layer");
    let e = layer
        .syscalls
        .entry(syscall.to_string())
        .or_insert_with(|| entry(syscall, 0, 0));
    for (name, n) in errno {
        e.calls += n;
        e.errors += n;
        *e.errno.entry(name.to_string()).or_default() += n;
    }
    layer.totals = totals(layer);
    let total = total_of(&r.processes);
    r.total.layers.insert("syscall".to_string(), total);
    r
}

/// `r` with stacks: one stack per `(pid, call site, samples)`, of `read` (copy k→u), at a
/// period of 1 MiB, each one frame named after its call site.
pub fn with_stacks(mut r: Recording, stacks: &[(u32, &str, u64)]) -> Recording {
    use crate::format::{FrameRecord, StackRecord, Stacks};
    const PERIOD: u64 = 1 << 20;
    let stacks: Vec<StackRecord> = stacks
        .iter()
        .map(|&(pid, site, samples)| StackRecord {
            pid,
            comm: "demo".into(),
            thread: "demo".into(),
            layer: crate::format::StackLayer::Syscall,
            syscall: "read".into(),
            family: Family::Copy,
            direction: Direction::K2u,
            samples,
            bytes: samples * PERIOD,
            truncated: false,
            call_site: format!("read() in {site}"),
            frames: vec![FrameRecord {
                function: Some(site.into()),
                file: None,
                line: None,
                module: "/usr/bin/demo".into(),
                offset: 0x1234,
            }],
            kernel_frames: Vec::new(),
        })
        .collect();
    r.stacks = Some(Stacks {
        period_bytes: PERIOD,
        samples: stacks.iter().map(|s| s.samples).sum(),
        frames: stacks.len() as u64,
        stacks,
        ..Stacks::default()
    });
    r
}
