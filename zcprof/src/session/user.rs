//! The user layer's part of a session (`--user-copies`): which of the followed processes'
//! copy routines it counts, checked at each exec record (`routines::check_process`), and
//! the uprobes it attaches on a Go binary a followed process exec'd (system-wide, through
//! the collector, which holds the loaded object; copies before the attach are missed).

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc::UnboundedSender;

use crate::{
    collector::{Control, WithObject},
    probes::{
        ProbeStatus,
        user::{self, Binary, Coverage, FileId, routines},
    },
    report::user::ProcessCoverage,
};

pub struct UserCopies {
    /// This host's libc, probed at load; `None` when its routines were not found.
    libc: Option<Binary>,
    /// Files whose routines are probed (or being probed).
    probed: HashSet<FileId>,
    /// Executables already looked at.
    known: routines::Known,
    /// Per tgid, the last check of it (an exec replaces the one before).
    coverage: BTreeMap<u32, ProcessCoverage>,
    /// Statuses of the probes attached after the load, for the session's list.
    attached: Arc<Mutex<Vec<ProbeStatus>>>,
}

impl UserCopies {
    /// `binaries`: the files the load probed besides the libc (their ids are learnt here).
    pub fn new(binaries: &[std::path::PathBuf]) -> Self {
        let libc = routines::host_libc().ok();
        let probed = libc
            .iter()
            .map(|l| l.id)
            .chain(binaries.iter().filter_map(|b| FileId::of(b).ok()))
            .collect();
        UserCopies {
            libc,
            probed,
            known: routines::Known::default(),
            coverage: BTreeMap::new(),
            attached: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Checks process `tgid` (just exec'd as `comm`), and probes its Go binary if that is
    /// new.
    pub fn check(&mut self, tgid: u32, comm: &str, control: &UnboundedSender<Control>) {
        let (coverage, go) = routines::check_process(tgid, self.libc.as_ref(), &mut self.known);
        if let Some(go) = go
            && self.probed.insert(go.id)
        {
            let attached = Arc::clone(&self.attached);
            let task = move |ebpf: &mut aya::Ebpf| {
                let statuses = user::attach_binary(ebpf, &go);
                if let Ok(mut list) = attached.lock() {
                    list.extend(statuses);
                }
            };
            let _ = control.send(Control::WithObject(WithObject(Box::new(task))));
        }
        // A process checked at its spawn may be gone by its exec record's batch: keep what
        // was seen.
        if matches!(coverage, Coverage::Unchecked(_)) && self.coverage.contains_key(&tgid) {
            return;
        }
        self.coverage
            .insert(tgid, ProcessCoverage::of(tgid, comm.to_string(), &coverage));
    }

    /// Probes attached since the last call.
    pub fn take_attached(&self) -> Vec<ProbeStatus> {
        self.attached
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default()
    }

    /// What was checked of `tgids`, in pid order.
    pub fn coverage_of(&self, tgids: &[u32]) -> Vec<ProcessCoverage> {
        self.coverage
            .iter()
            .filter(|(tgid, _)| tgids.contains(tgid))
            .map(|(_, c)| c.clone())
            .collect()
    }
}
