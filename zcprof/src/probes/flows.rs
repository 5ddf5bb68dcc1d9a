//! The flows layer (`zcprof_common::flows`), opt-in with `--flows`: it has no hook of its
//! own — the syscall layer's exit programs look the descriptors up — only the offsets of
//! the kernel structs they read, from BTF, and its exit program (attached by the lifecycle
//! layer). Its one probe is reported attached the way the syscall layer's exit program is.
//! Without `--flows` it reports nothing and costs one branch per counted syscall.

use aya::Ebpf;
use zcprof_common::{
    files,
    flows::{COUNTING, global},
};

use super::{
    Host, Layer, LayerProbes, LayerSpec, LoadOptions, Names, ProbeStatus,
    btf_layout::{self, Member},
};

pub const LAYER: LayerSpec = LayerSpec {
    layer: Layer::Flows,
    counting: Some(COUNTING),
    required: false,
    names,
    probes,
};

/// How doctor and the layer lines name the layer's one probe.
pub const PROBE: &str = "sys_exit (descriptor kinds)";

const MEMBERS: [Member; 12] = [
    (global::TASK_FILES, "task_struct", &["files"], 8),
    (global::FILES_FDT, "files_struct", &["fdt"], 8),
    (global::FDT_MAX_FDS, "fdtable", &["max_fds"], 4),
    (global::FDT_FD, "fdtable", &["fd"], 8),
    (global::FILE_INODE, "file", &["f_inode"], 8),
    (global::FILE_PRIVATE, "file", &["private_data"], 8),
    (global::INODE_MODE, "inode", &["i_mode"], 2),
    (global::INODE_SB, "inode", &["i_sb"], 8),
    (global::SB_MAGIC, "super_block", &["s_magic"], 8),
    (global::SOCKET_SK, "socket", &["sk"], 8),
    (global::SK_FAMILY, "sock", &["__sk_common", "skc_family"], 2),
    (global::SK_PROTOCOL, "sock", &["sk_protocol"], 2),
];

/// What per-file attribution (`run --files`) reads beyond the kinds.
const FILE_MEMBERS: [Member; 4] = [
    (files::global::FILE_DENTRY, "file", &["f_path", "dentry"], 8),
    (files::global::DENTRY_NAME, "dentry", &["d_name", "name"], 8),
    (files::global::INODE_INO, "inode", &["i_ino"], 8),
    (files::global::SB_DEV, "super_block", &["s_dev"], 4),
];

fn names() -> Names {
    Names {
        programs: Vec::new(),
        maps: Vec::new(),
        globals: [global::ON, files::global::ON]
            .into_iter()
            .chain(MEMBERS.iter().chain(&FILE_MEMBERS).map(|(g, ..)| *g))
            .collect(),
    }
}

fn probes(opts: &LoadOptions) -> Box<dyn LayerProbes> {
    Box::new(Flows {
        wanted: opts.flows || opts.files,
        files: opts.files,
        plan: Err("not planned yet".into()),
    })
}

struct Flows {
    /// `--flows` (or `run --files`, which needs it).
    wanted: bool,
    /// `run --files`: per-file attribution too.
    files: bool,
    /// The globals, or why the layer cannot count.
    plan: Result<Vec<(&'static str, u32)>, String>,
}

/// Every member's offset in `btf` (with `files`, the per-file members too), or
/// why one cannot be had.
fn offsets(
    btf: Result<&btf_rs::Btf, String>,
    files: bool,
) -> Result<Vec<(&'static str, u32)>, String> {
    let extra: &[Member] = if files { &FILE_MEMBERS } else { &[] };
    btf_layout::offsets(btf?, MEMBERS.iter().chain(extra))
}

impl LayerProbes for Flows {
    fn prepare(&mut self, btf: &mut btf_layout::Shared) {
        if self.wanted {
            self.plan = offsets(btf.get(), self.files);
        }
    }

    fn globals(&mut self, _host: &mut Host) -> Vec<(&'static str, u32)> {
        match &self.plan {
            Ok(globals) if self.wanted => std::iter::once((global::ON, 1))
                .chain(self.files.then_some((files::global::ON, 1)))
                .chain(globals.iter().copied())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn attach(&mut self, _ebpf: &mut Ebpf, host: &mut Host) -> Vec<ProbeStatus> {
        if !self.wanted {
            return Vec::new();
        }
        let status = match (&self.plan, host.syscall_via) {
            (Err(why), _) => ProbeStatus::unavailable(
                Layer::Flows,
                PROBE.into(),
                format!("the kernel's struct layout is unknown: {why}"),
            ),
            (Ok(_), Some(via)) => ProbeStatus::attached(Layer::Flows, PROBE.into(), via),
            (Ok(_), None) => ProbeStatus::unavailable(
                Layer::Flows,
                PROBE.into(),
                "no syscall exit program attached".into(),
            ),
        };
        vec![status]
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// This kernel's layout has every member, at plausible offsets.
    #[test]
    fn this_kernels_btf_has_every_member() {
        let globals = offsets(btf_layout::Shared::new(None).get(), true).expect("every member");
        assert_eq!(globals.len(), MEMBERS.len() + FILE_MEMBERS.len());
        let of = |name: &str| {
            globals
                .iter()
                .find(|(g, _)| *g == name)
                .map(|(_, at)| *at)
                .expect(name)
        };
        assert_eq!(of(global::FDT_MAX_FDS), 0, "fdtable starts with max_fds");
        assert!(of(global::TASK_FILES) > 0);
        assert!(of(global::SK_PROTOCOL) > of(global::SK_FAMILY));
        assert!(
            of(files::global::DENTRY_NAME) > 0,
            "qstr's name follows its hash"
        );
        let mut missing = btf_layout::Shared::new(Some(Path::new("/nonexistent/btf")));
        assert!(offsets(missing.get(), false).is_err());
    }
}
