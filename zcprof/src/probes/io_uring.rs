//! Attaching the io_uring layer (`zcprof_common::io_uring`): the submit tracepoint this
//! kernel has (`io_uring:io_uring_submit_req` since 6.3, `io_uring_submit_sqe` before),
//! `io_uring:io_uring_complete`, their field offsets from tracefs. Its exit program is
//! attached by the lifecycle layer, after `process_exit`.
//!
//! Whether a zero-copy send's notification reports usage is in the notification request, not
//! in the tracepoint: its offset comes from BTF ([`zc_report_offset`]). So do the offsets
//! that let a completion read its request's opcode and process ([`req_fields`]): with them
//! no submission keeps a map entry (the layer's largest cost per request); without them
//! (no BTF, or a layout zcprof does not know) completions join their submissions' entries.
//!
//! When the layer cannot attach (no io_uring tracepoints, a layout zcprof does not know, a
//! verifier refusal, or `--disable-layer io_uring`), a detector on the
//! `io_uring_setup`/`io_uring_enter` syscalls marks the processes that use io_uring anyway,
//! so that their figures carry a caveat instead of passing for complete.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use aya::Ebpf;
use zcprof_common::io_uring::{COUNTING, global, program};

use super::btf_layout;
use super::{
    Host, Layer, LayerProbes, LayerSpec, LoadOptions, Mechanism, Names, ProbeStatus,
    attach_tracepoint, tracepoint,
};
use crate::tracefs;

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::IoUring,
    counting: Some(COUNTING),
    required: false,
    names,
    probes,
};

/// The submit tracepoints, newest first.
const SUBMIT_EVENTS: [&str; 2] = ["io_uring_submit_req", "io_uring_submit_sqe"];
/// The detector's tracepoints.
const DETECTOR: [&str; 2] = ["sys_enter_io_uring_setup", "sys_enter_io_uring_enter"];

fn names() -> Names {
    Names {
        programs: vec![program::SUBMIT, program::COMPLETE, program::ENTER_SEEN],
        maps: Vec::new(),
        globals: vec![
            global::SUBMIT_CTX,
            global::SUBMIT_REQ,
            global::SUBMIT_USER_DATA,
            global::SUBMIT_OPCODE,
            global::COMPLETE_CTX,
            global::COMPLETE_REQ,
            global::COMPLETE_USER_DATA,
            global::COMPLETE_RES,
            global::COMPLETE_CFLAGS,
            global::NOTIF_ZC_REPORT,
            global::REQ_FIELDS,
            global::REQ_OPCODE,
            global::REQ_TASK,
            global::TCTX_TASK,
            global::TASK_TGID,
        ],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(IoUringLayer {
        disabled: opts.disabled.contains(&Layer::IoUring),
        btf: opts.btf.clone(),
        layout: None,
        plan: Err("not planned yet".into()),
    })
}

struct IoUringLayer {
    /// `--disable-layer io_uring`.
    disabled: bool,
    /// `--btf`, else the running kernel's.
    btf: Option<PathBuf>,
    /// What BTF says of the requests, read in `prepare`.
    layout: Option<Layout>,
    /// The submit event to attach, or why the layer cannot attach.
    plan: Result<&'static str, String>,
}

/// Offsets of both records, or why they are unusable.
struct Offsets {
    submit: &'static str,
    globals: Vec<(&'static str, u32)>,
}

/// The submit tracepoint this kernel has, if any.
pub(crate) fn submit_event(root: &Path) -> Option<&'static str> {
    SUBMIT_EVENTS
        .into_iter()
        .find(|event| tracefs::exists(root, "io_uring", event))
}

fn offsets(root: &Path) -> Result<Offsets, String> {
    let submit = submit_event(root)
        .ok_or("this kernel has no io_uring submit tracepoint (io_uring_submit_req/_sqe)")?;
    let read = |event: &str, wanted: &[(&'static str, &str, u32)]| {
        tracefs::globals(root, "io_uring", event, wanted)
    };
    let mut globals = read(
        submit,
        &[
            (global::SUBMIT_CTX, "ctx", 8),
            (global::SUBMIT_REQ, "req", 8),
            (global::SUBMIT_USER_DATA, "user_data", 8),
            (global::SUBMIT_OPCODE, "opcode", 1),
        ],
    )?;
    globals.extend(read(
        "io_uring_complete",
        &[
            (global::COMPLETE_CTX, "ctx", 8),
            (global::COMPLETE_REQ, "req", 8),
            (global::COMPLETE_USER_DATA, "user_data", 8),
            (global::COMPLETE_RES, "res", 4),
            (global::COMPLETE_CFLAGS, "cflags", 4),
        ],
    )?);
    Ok(Offsets { submit, globals })
}

impl LayerProbes for IoUringLayer {
    fn prepare(&mut self, btf: &mut btf_layout::Shared) {
        if !self.disabled {
            self.layout = Some(layout(btf.get()));
        }
    }

    fn globals(&mut self, host: &mut Host) -> Vec<(&'static str, u32)> {
        if self.disabled {
            self.plan = Err("disabled (--disable-layer io_uring)".into());
            return Vec::new();
        }
        let Some(root) = host.tracefs.as_deref() else {
            self.plan = Err("tracefs is unavailable".into());
            return Vec::new();
        };
        match offsets(root) {
            Ok(mut o) => {
                self.plan = Ok(o.submit);
                let layout = self
                    .layout
                    .take()
                    .unwrap_or_else(|| layout(btf_layout::Shared::new(self.btf.as_deref()).get()));
                // Without the request's layout completions join their submissions: the
                // same counts, at a higher cost per request (nothing to warn about).
                if let Ok(fields) = layout.req {
                    o.globals.extend(fields);
                }
                match layout.zc_report {
                    Ok(Some(at)) => o.globals.push((global::NOTIF_ZC_REPORT, at)),
                    // Before 6.2 no notification reports usage: nothing is missed.
                    Ok(None) => {}
                    Err(why) => host.warnings.push(format!(
                        "io_uring SEND_ZC usage reports are unreadable ({why}): notifications are counted, none as sent without a copy"
                    )),
                }
                o.globals
            }
            Err(why) => {
                self.plan = Err(why);
                Vec::new()
            }
        }
    }

    fn attach(&mut self, ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus> {
        let status = |probe: String, result: anyhow::Result<()>| match result {
            Ok(()) => ProbeStatus::attached(Layer::IoUring, probe, Mechanism::Tracepoint),
            Err(err) => ProbeStatus::unavailable(Layer::IoUring, probe, format!("{err:#}")),
        };
        let (submit, complete) = match &self.plan {
            Ok(submit) => {
                // Completion first: a submission kept without its completion program would
                // only fill the in-flight map. Both or neither: a completion program left
                // attached without its submissions would count every completion as lost.
                let complete = attach_pair(ebpf, submit);
                let again = complete.as_ref().map(drop).map_err(|e| anyhow!("{e:#}"));
                (
                    status(format!("io_uring:{submit}"), again),
                    status("io_uring:io_uring_complete".into(), complete),
                )
            }
            Err(why) => (
                status("io_uring:io_uring_submit_req".into(), Err(anyhow!("{why}"))),
                status("io_uring:io_uring_complete".into(), Err(anyhow!("{why}"))),
            ),
        };
        let out = vec![submit, complete];
        // Not a probe of the layer's (it counts nothing the layer reports): without it the
        // caveat cannot be given, which the user is told.
        if out.iter().any(|p| p.via().is_none())
            && let Err(err) = detector(ebpf)
        {
            host.warnings.push(format!(
                "the io_uring layer is unavailable and so is its io_uring_enter detector ({err:#}): processes that use io_uring get no caveat"
            ));
        }
        out
    }
}

/// Set to `submissions`, the layer joins completions to their submissions even where BTF
/// gives the request's layout: the path kernels without BTF take, so that it is tested
/// (and its cost can be compared) on kernels that have one.
pub const JOIN_ENV: &str = "ZCPROF_IO_URING_JOIN";

/// What the programs read from requests, from one parse of the BTF.
struct Layout {
    zc_report: Result<Option<u32>, String>,
    req: Result<Vec<(&'static str, u32)>, String>,
}

fn layout(btf: Result<&btf_rs::Btf, String>) -> Layout {
    match btf {
        Ok(btf) => Layout {
            zc_report: zc_report_offset(btf),
            req: if std::env::var_os(JOIN_ENV).is_some_and(|v| v == "submissions") {
                Err(format!("{JOIN_ENV}=submissions"))
            } else {
                req_fields(btf)
            },
        },
        Err(why) => Layout {
            zc_report: Err(why.clone()),
            req: Err(why),
        },
    }
}

/// The globals with which a completion reads its request's opcode and submitting process:
/// `io_kiocb.opcode`, the task (`io_kiocb.task`, or `io_kiocb.tctx` and `io_uring_task.task`
/// from 6.13) and `task_struct.tgid`; `Err` when this BTF lacks one of them.
fn req_fields(btf: &btf_rs::Btf) -> Result<Vec<(&'static str, u32)>, String> {
    use zcprof_common::io_uring::{JOIN_TASK, JOIN_TCTX};

    let sized = |what: &str, found: Option<(u32, usize)>, len: usize| match found {
        Some((at, n)) if n == len => Ok(at),
        Some((_, n)) => Err(format!("{what} has {n} bytes, not {len}")),
        None => Err(format!("BTF has no {what}")),
    };
    let find = |name: &str| {
        btf_layout::find_struct(btf, name)?.ok_or_else(|| format!("BTF has no struct {name}"))
    };
    let kiocb = find("io_kiocb")?;
    let task_struct = find("task_struct")?;
    let opcode = sized(
        "io_kiocb.opcode",
        btf_layout::member(btf, &kiocb, "opcode")?,
        1,
    )?;
    let tgid = sized(
        "task_struct.tgid",
        btf_layout::member(btf, &task_struct, "tgid")?,
        4,
    )?;
    let (join, task, tctx_task) = match btf_layout::member(btf, &kiocb, "task")? {
        Some(found) => (JOIN_TASK, sized("io_kiocb.task", Some(found), 8)?, 0),
        None => {
            let tctx = sized("io_kiocb.tctx", btf_layout::member(btf, &kiocb, "tctx")?, 8)?;
            let ut = find("io_uring_task")?;
            let task = sized(
                "io_uring_task.task",
                btf_layout::member(btf, &ut, "task")?,
                8,
            )?;
            (JOIN_TCTX, tctx, task)
        }
    };
    Ok(vec![
        (global::REQ_FIELDS, join),
        (global::REQ_OPCODE, opcode),
        (global::REQ_TASK, task),
        (global::TCTX_TASK, tctx_task),
        (global::TASK_TGID, tgid),
    ])
}

/// Byte offset of `io_notif_data.zc_report` from a notification's `struct io_kiocb`: the
/// notification's data lives in the request's `cmd` area (`io_kiocb_to_cmd`, io_uring/notif.h).
/// `None` where notifications have no usage report (before 6.2; no SEND_ZC before 6.0).
fn zc_report_offset(btf: &btf_rs::Btf) -> Result<Option<u32>, String> {
    let Some(notif) = btf_layout::find_struct(btf, "io_notif_data")? else {
        return Ok(None);
    };
    let Some((report, len)) = btf_layout::member(btf, &notif, "zc_report")? else {
        return Ok(None);
    };
    if len != 1 {
        return Err(format!("io_notif_data.zc_report has {len} bytes, not 1"));
    }
    let kiocb = btf_layout::find_struct(btf, "io_kiocb")?.ok_or("BTF has no struct io_kiocb")?;
    let (cmd, cmd_len) =
        btf_layout::member(btf, &kiocb, "cmd")?.ok_or("struct io_kiocb has no cmd area")?;
    if (report as usize) >= cmd_len {
        return Err(format!(
            "io_notif_data.zc_report (+{report}) lies outside io_kiocb.cmd ({cmd_len} bytes)"
        ));
    }
    Ok(Some(cmd + report))
}

/// `io_uring_complete`, then `submit`; when the second fails the first is detached again.
fn attach_pair(ebpf: &mut Ebpf, submit: &str) -> anyhow::Result<()> {
    let link = tracepoint(ebpf, program::COMPLETE)?
        .attach("io_uring", "io_uring_complete")
        .map_err(|err| anyhow!(err).context("attach"))?;
    let submitted = attach_tracepoint(ebpf, program::SUBMIT, "io_uring", submit)
        .map_err(|err| anyhow!(err).context(format!("io_uring:{submit}")));
    if submitted.is_err()
        && let Err(err) = tracepoint(ebpf, program::COMPLETE).and_then(|p| {
            p.detach(link)
                .map_err(|err| anyhow!(err).context("detaching io_uring_complete"))
        })
    {
        return submitted.map_err(|e| e.context(format!("{err:#}")));
    }
    submitted
}

/// The detector, on both syscalls.
fn detector(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    for event in DETECTOR {
        attach_tracepoint(ebpf, program::ENTER_SEEN, "syscalls", event)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use zcprof_common::io_uring::{JOIN_TASK, JOIN_TCTX};

    use super::*;

    /// This machine's kernel: its BTF has every field a completion reads, in the shape its
    /// release has (`io_kiocb.task` before 6.13, `io_kiocb.tctx` since).
    #[test]
    fn the_running_kernels_requests_have_a_layout() {
        // A kernel without BTF has no layout to find (the map join is then the only way).
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return;
        }
        let fields = layout(btf_layout::Shared::new(None).get())
            .req
            .expect("io_kiocb's layout in this kernel's BTF");
        let value = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("{name} is not set"))
        };
        let join = value(global::REQ_FIELDS);
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("release");
        let mut parts = release.trim().split(['.', '-']);
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).expect("major");
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).expect("minor");
        let expected = if (major, minor) >= (6, 13) {
            JOIN_TCTX
        } else {
            JOIN_TASK
        };
        assert_eq!(join, expected, "Linux {release}");
        assert!(
            value(global::TASK_TGID) > 0,
            "tgid is not task_struct's first field"
        );
        assert!(value(global::REQ_TASK) > value(global::REQ_OPCODE));
    }

    #[test]
    fn a_missing_btf_file_leaves_the_map_join() {
        let missing = Path::new("/nonexistent/vmlinux");
        let l = layout(btf_layout::Shared::new(Some(missing)).get());
        assert!(l.req.is_err() && l.zc_report.is_err());
    }
}
