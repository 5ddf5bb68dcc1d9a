//! `zcprof doctor [--json]`: what this machine lets zcprof do, and why. Kernel release, BTF,
//! lockdown, privileges, tracefs and bpffs, kprobe support, then every probe: attached via
//! which mechanism, or unavailable with the kernel's reason.
//!
//! Doctor attaches the probes exactly as `top` and `run` would (and detaches them on exit),
//! so what it prints is what they will get. It never fails because something is missing:
//! missing things are what it reports. It exits 0 when the syscall layer can attach, 1 when
//! it cannot (so scripts can ask "will zcprof work here?").

use std::{path::PathBuf, process::ExitCode};

use serde::Serialize;

use crate::{
    host::{
        self,
        privileges::{self, Capability, Credentials},
    },
    probe_stats,
    probes::{self, Layer, LayerSummary, LoadOptions, Mechanism, ProbeStatus, kernel},
    tracefs,
};

/// Schema name of `doctor --json` output.
pub const SCHEMA: &str = "zcprof.doctor/v1";

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub kernel_release: String,
    pub btf: Btf,
    /// The active lockdown mode (`none`, `integrity`, `confidentiality`), or why unknown.
    pub lockdown: String,
    pub privileges: Privileges,
    /// Where tracefs was mounted before zcprof looked (`null`: it was not; zcprof mounts it).
    pub tracefs: Option<PathBuf>,
    pub bpffs_mounted: bool,
    /// `null` when kprobes can attach, else why not.
    pub kprobes_unavailable: Option<String>,
    /// `kernel.io_uring_disabled` (Linux 6.6+): 0 every process may use io_uring, 1 only
    /// CAP_SYS_ADMIN and `kernel.io_uring_group`, 2 none; `null` when the kernel has no such
    /// setting (io_uring is then as the kernel was built).
    pub io_uring_disabled: Option<u8>,
    /// Whether `--probe-stats` can have the kernel's BPF run-time statistics.
    pub bpf_stats: BpfStats,
    /// The user layer (`--user-copies`): whether it is on, and what it attaches to.
    pub user_copies: UserCopies,
    /// Whether the cpu layer (`--cpu`) may open its perf events, and whether the machine has
    /// a hardware PMU.
    pub perf_events: host::perf::PerfEvents,
    /// Why the eBPF object could not be loaded at all (no probe attached then).
    pub load_error: Option<String>,
    pub warnings: Vec<String>,
    pub layers: Vec<LayerSummary>,
    pub probes: Vec<ProbeStatus>,
}

/// The user layer, opt-in: what it would attach to on this host.
#[derive(Debug, Serialize)]
pub struct UserCopies {
    /// `--user-copies` was given (its probes are then in `probes`).
    pub on: bool,
    /// What it costs.
    pub cost: &'static str,
    /// The uprobes it attaches for every process using this host's libc (Go binaries get
    /// theirs as `run`/`record` meet them).
    pub would_attach: Vec<String>,
    /// Why this host's libc copy routines cannot be found, if so.
    pub error: Option<String>,
}

impl UserCopies {
    fn read(on: bool) -> UserCopies {
        let (would_attach, error) = match probes::user::routines::host_libc() {
            Ok(libc) => (
                libc.routines
                    .iter()
                    .map(|r| probes::user::probe_name(&libc, r))
                    .collect(),
                None,
            ),
            Err(why) => (Vec::new(), Some(why)),
        };
        UserCopies {
            on,
            cost: probes::user::COST,
            would_attach,
            error,
        }
    }

    fn line(&self) -> String {
        let what = match &self.error {
            Some(why) => format!("this host's libc copy routines were not found: {why}"),
            None => format!(
                "{} on {}, for every process using this libc",
                self.cost,
                self.would_attach.join(", ")
            ),
        };
        if self.on {
            format!("on: {what}")
        } else {
            format!("off by default (--user-copies turns it on): would attach {what}")
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Btf {
    pub path: PathBuf,
    pub present: bool,
    pub parsable: bool,
    pub error: Option<String>,
}

/// BPF run-time statistics (`--probe-stats`, [`crate::probe_stats`]).
#[derive(Debug, Serialize)]
pub struct BpfStats {
    /// `BPF_ENABLE_STATS` succeeded (tried, and its fd closed at once).
    pub allowed: bool,
    /// The kernel's reason when it did not (the errno).
    pub error: Option<String>,
    /// `kernel.bpf_stats_enabled` is 1 now (statistics on for everyone, whatever zcprof
    /// does); `null` when the kernel has no such setting.
    pub sysctl: Option<bool>,
}

impl BpfStats {
    fn read() -> BpfStats {
        let tried = probe_stats::allowed();
        BpfStats {
            allowed: tried.is_ok(),
            error: tried.err().map(|err| err.0.to_string()),
            sysctl: probe_stats::sysctl_on(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Privileges {
    pub uid: u32,
    pub cap_bpf: bool,
    pub cap_perfmon: bool,
    pub cap_sys_admin: bool,
    /// Enough to load and attach zcprof's probes.
    pub sufficient: bool,
}

/// Gathers the report (attaching and then detaching every probe).
pub fn inspect(load: &LoadOptions) -> Report {
    let tracefs_before = tracefs::find();
    let (btf_path, btf_state) = kernel::btf_state(load.btf.as_ref());
    let privileges = read_privileges();
    let mut report = Report {
        schema: SCHEMA,
        kernel_release: host::kernel_release(),
        btf: Btf {
            present: btf_path.exists(),
            parsable: btf_state.is_ok(),
            error: btf_state.err(),
            path: btf_path,
        },
        lockdown: host::lockdown(),
        tracefs: tracefs_before,
        bpffs_mounted: host::mounted("bpf"),
        kprobes_unavailable: kernel::kprobe_state().err(),
        io_uring_disabled: std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
        bpf_stats: BpfStats::read(),
        perf_events: host::perf::read(),
        privileges,
        user_copies: UserCopies::read(load.user_copies),
        load_error: None,
        warnings: Vec::new(),
        layers: Vec::new(),
        probes: Vec::new(),
    };
    if let Err(err) = privileges::check() {
        report.load_error = Some(err.to_string());
        return report;
    }
    match probes::load(load) {
        Ok(loaded) => {
            report.layers = loaded.layer_summary();
            report.warnings = loaded.warnings;
            report.probes = loaded.probes;
            // Dropping `loaded.ebpf` here detaches everything.
        }
        Err(err) => report.load_error = Some(format!("{err:#}")),
    }
    report
}

pub fn run(load: &LoadOptions, json: bool) -> anyhow::Result<ExitCode> {
    let report = inspect(load);
    if json {
        crate::stdio::println(&serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::stdio::print(&text(&report))?;
    }
    let usable = report
        .probes
        .iter()
        .any(|p| p.layer == Layer::Syscall && p.via().is_some());
    Ok(if usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The report for a terminal.
pub fn text(r: &Report) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = String::new();
    let btf = match (&r.btf.present, &r.btf.error) {
        (false, _) => {
            "missing (fentry/fexit unavailable; kprobes and tracepoints still work)".to_string()
        }
        (true, None) => "present, parsable".to_string(),
        (true, Some(e)) => format!("present, {e}"),
    };
    let p = &r.privileges;
    let lines = [
        ("kernel", r.kernel_release.clone()),
        ("BTF", format!("{}: {btf}", r.btf.path.display())),
        ("lockdown", r.lockdown.clone()),
        (
            "privileges",
            format!(
                "uid {}; CAP_BPF {}, CAP_PERFMON {}, CAP_SYS_ADMIN {} ({})",
                p.uid,
                yes(p.cap_bpf),
                yes(p.cap_perfmon),
                yes(p.cap_sys_admin),
                if p.sufficient {
                    "enough to attach probes"
                } else {
                    "NOT enough: run as root"
                }
            ),
        ),
        (
            "tracefs",
            match &r.tracefs {
                Some(path) => format!("mounted at {}", path.display()),
                None => "not mounted (zcprof mounts it at /sys/kernel/tracing)".into(),
            },
        ),
        (
            "bpffs",
            if r.bpffs_mounted {
                "mounted".into()
            } else {
                "not mounted (zcprof does not pin anything, so it does not need it)".into()
            },
        ),
        (
            "kprobes",
            match &r.kprobes_unavailable {
                None => "available".into(),
                Some(reason) => reason.clone(),
            },
        ),
        ("io_uring", io_uring_line(r.io_uring_disabled)),
        ("BPF stats", bpf_stats_line(&r.bpf_stats)),
        ("user copies", r.user_copies.line()),
        ("perf events", r.perf_events.line()),
    ];
    for (k, v) in lines {
        out.push_str(&format!("{k:<11} {v}\n"));
    }
    if let Some(err) = &r.load_error {
        out.push_str(&format!("probes      NOT LOADED: {err}\n"));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning     {w}\n"));
    }
    // Said here, once, rather than by every command (`--verbose` says it there too).
    if let Some(line) = crate::session::kernel_missing_line(&r.probes) {
        out.push_str(&format!("warning     {line} (reasons below)\n"));
    }
    if !r.layers.is_empty() {
        out.push_str(&format!(
            "layers      {}\n",
            crate::report::layers_line(&r.layers)
        ));
    }
    if r.probes.is_empty() {
        return out;
    }
    // Column as wide as the longest probe name, so every reason starts in one column.
    let width = r.probes.iter().map(|p| p.probe.len()).max().unwrap_or(0);
    out.push_str(&format!(
        "\n{:<10} {:<width$} {:<18} {}\n",
        "LAYER", "PROBE", "ATTACHED VIA", "REASON (when unavailable)"
    ));
    for probe in &r.probes {
        out.push_str(&format!(
            "{:<10} {:<width$} {:<18} {}\n",
            probe.layer.name(),
            probe.probe,
            probe.via().map_or("unavailable", Mechanism::name),
            probe.reason().unwrap_or("")
        ));
    }
    out
}

/// The effective uid and the capabilities that matter, as they read (uid `u32::MAX` and none
/// when /proc/self/status is unreadable; `sufficient` then says why not).
fn read_privileges() -> Privileges {
    let creds = Credentials::of_self().ok();
    let has = |cap| creds.is_some_and(|c| c.has(cap));
    Privileges {
        uid: creds.map_or(u32::MAX, |c| c.uid),
        cap_bpf: has(Capability::Bpf),
        cap_perfmon: has(Capability::Perfmon),
        cap_sys_admin: has(Capability::SysAdmin),
        sufficient: privileges::check().is_ok(),
    }
}

/// Whether `--probe-stats` works here, and whether statistics are on for everyone already.
fn bpf_stats_line(s: &BpfStats) -> String {
    let allowed = match &s.error {
        None => "allowed (--probe-stats shows the probes' cost; about 20 ns more per program run while on)".to_string(),
        Some(err) => format!("NOT allowed: BPF_ENABLE_STATS failed: {err} (--probe-stats cannot turn them on: Linux 5.8+ and CAP_SYS_ADMIN needed)"),
    };
    let sysctl = match s.sysctl {
        Some(true) => {
            "kernel.bpf_stats_enabled=1: on for every program now, so shown without --probe-stats"
        }
        Some(false) => "kernel.bpf_stats_enabled=0",
        None => "no kernel.bpf_stats_enabled setting",
    };
    format!("{allowed}; {sysctl}")
}

/// What `kernel.io_uring_disabled` lets processes do: with 2 nothing uses io_uring, so an
/// io_uring layer that counts nothing is the truth, not a blind spot.
fn io_uring_line(disabled: Option<u8>) -> String {
    match disabled {
        None | Some(0) => "enabled for every process".into(),
        Some(1) => "kernel.io_uring_disabled=1: only CAP_SYS_ADMIN and kernel.io_uring_group members can create rings".into(),
        Some(2) => "kernel.io_uring_disabled=2: no process can create rings (io_uring_setup fails with EPERM)".into(),
        Some(n) => format!("kernel.io_uring_disabled={n} (a value this zcprof does not know)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_probes_does_not_panic() {
        let r = Report {
            schema: SCHEMA,
            kernel_release: "6.1.0".into(),
            btf: Btf {
                path: "/nonexistent".into(),
                present: false,
                parsable: false,
                error: Some("missing".into()),
            },
            lockdown: "none".into(),
            privileges: Privileges {
                uid: 1000,
                cap_bpf: false,
                cap_perfmon: false,
                cap_sys_admin: false,
                sufficient: false,
            },
            tracefs: None,
            bpffs_mounted: false,
            kprobes_unavailable: Some("kprobes not configured".into()),
            io_uring_disabled: Some(1),
            bpf_stats: BpfStats {
                allowed: false,
                error: Some("Operation not permitted (os error 1)".into()),
                sysctl: Some(false),
            },
            user_copies: UserCopies {
                on: false,
                cost: probes::user::COST,
                would_attach: Vec::new(),
                error: Some("dlsym found no memcpy".into()),
            },
            perf_events: host::perf::PerfEvents {
                paranoid: "4".into(),
                cpu_clock_allowed: false,
                error: Some("Permission denied (os error 13)".into()),
                hardware_pmu: false,
                max_sample_rate: Some(100_000),
            },
            load_error: Some("needs root".into()),
            warnings: Vec::new(),
            layers: Vec::new(),
            probes: Vec::new(),
        };
        let t = text(&r);
        assert!(t.contains("NOT LOADED: needs root"), "{t}");
        assert!(
            t.contains("perf events NOT permitted (Permission denied (os error 13)): --cpu needs root or CAP_PERFMON"),
            "{t}"
        );
        assert!(t.contains("no hardware PMU"), "{t}");
        assert!(t.contains("BTF         /nonexistent: missing"), "{t}");
        assert!(
            t.contains("io_uring    kernel.io_uring_disabled=1: only CAP_SYS_ADMIN"),
            "{t}"
        );
        assert!(
            t.contains("BPF stats   NOT allowed: BPF_ENABLE_STATS failed: Operation not permitted (os error 1)"),
            "{t}"
        );
        assert!(t.contains("; kernel.bpf_stats_enabled=0\n"), "{t}");
    }
}
