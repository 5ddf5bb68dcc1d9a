//! Attaching the io_uring layer (`zcprof_common::io_uring`): the submit tracepoint this
//! kernel has (`io_uring:io_uring_submit_req` since 6.3, `io_uring_submit_sqe` before),
//! `io_uring:io_uring_complete`, their field offsets from tracefs. Its exit program is
//! attached by the lifecycle layer, after `process_exit`.
//!
//! Whether a zero-copy send's notification reports usage is in the notification request, not
//! in the tracepoint: its offset comes from BTF ([`zc_report_offset`]).
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
        ],
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(IoUringLayer {
        disabled: opts.disabled.contains(&Layer::IoUring),
        btf: opts.btf.clone(),
        zc_report: None,
        plan: Err("not planned yet".into()),
    })
}

struct IoUringLayer {
    /// `--disable-layer io_uring`.
    disabled: bool,
    /// `--btf`, else the running kernel's.
    btf: Option<PathBuf>,
    /// [`zc_report_offset`], read in `prepare`.
    zc_report: Option<Result<Option<u32>, String>>,
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
    fn prepare(&mut self) {
        if !self.disabled {
            self.zc_report = Some(zc_report_offset(self.btf.as_deref()));
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
                let zc_report = self.zc_report.take();
                match zc_report.unwrap_or_else(|| zc_report_offset(self.btf.as_deref())) {
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

/// Byte offset of `io_notif_data.zc_report` from a notification's `struct io_kiocb`: the
/// notification's data lives in the request's `cmd` area (`io_kiocb_to_cmd`, io_uring/notif.h).
/// `None` where notifications have no usage report (before 6.2; no SEND_ZC before 6.0).
fn zc_report_offset(btf: Option<&Path>) -> Result<Option<u32>, String> {
    let btf = btf_layout::open(btf)?;
    let Some(notif) = btf_layout::find_struct(&btf, "io_notif_data")? else {
        return Ok(None);
    };
    let Some((report, len)) = btf_layout::member(&btf, &notif, "zc_report")? else {
        return Ok(None);
    };
    if len != 1 {
        return Err(format!("io_notif_data.zc_report has {len} bytes, not 1"));
    }
    let kiocb = btf_layout::find_struct(&btf, "io_kiocb")?.ok_or("BTF has no struct io_kiocb")?;
    let (cmd, cmd_len) =
        btf_layout::member(&btf, &kiocb, "cmd")?.ok_or("struct io_kiocb has no cmd area")?;
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
