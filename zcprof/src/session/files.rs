//! The per-file counts of `run --files` (`zcprof_common::files`): read from the kernel's
//! map at each batch, named from /proc while their process lives (best effort: the kernel's
//! last path component otherwise), kept after their process exits, whose entries are then
//! deleted from the map.

use std::collections::{BTreeMap, BTreeSet};

use aya::maps::{HashMap, MapData};
use zcprof_common::{files::FileBytes, mapped::FileKey};

use crate::{
    host::{fds, procfs},
    model::Model,
};

/// Every `(process, file)` the kernel counted in this session.
pub struct Files {
    map: HashMap<MapData, FileKey, FileBytes>,
    seen: BTreeMap<FileKey, File>,
}

/// One file of one process.
#[derive(Clone, Debug)]
pub struct File {
    /// Its counts, as last read.
    pub bytes: FileBytes,
    /// What `/proc/PID/fd/N` said it was (a path; for a socket its addresses), when a read
    /// found it open.
    pub target: Option<String>,
    /// /proc was read for it since it appeared (not again while it stays unnamed).
    tried: bool,
    /// Its process exited and the entry was deleted from the kernel's map.
    deleted: bool,
}

impl File {
    /// The kernel's last path component (`TCP`, `[eventfd]`… for sockets and anonymous
    /// inodes), empty when it could not be read.
    pub fn kernel_name(&self) -> String {
        let n = &self.bytes.name;
        let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
        String::from_utf8_lossy(&n[..end]).into_owned()
    }
}

impl Files {
    pub fn new(map: HashMap<MapData, FileKey, FileBytes>) -> Self {
        Files {
            map,
            seen: BTreeMap::new(),
        }
    }

    /// Reads the map (after `model` took the batch): new files of live processes are named
    /// from /proc, and the entries of processes that exited are deleted, their counts kept.
    pub fn update(&mut self, model: &Model) {
        let exited = |tgid: u32| match model.latest_instance(tgid).and_then(|id| model.process(id))
        {
            Some(p) => p.exited,
            None => !procfs::exists(tgid),
        };
        let mut scan = BTreeSet::new();
        // An entry being updated while it is read is skipped until the next batch.
        for (key, bytes) in self.map.iter().filter_map(Result::ok) {
            let file = self.seen.entry(key).or_insert(File {
                bytes,
                target: None,
                tried: false,
                deleted: false,
            });
            file.bytes = bytes;
            if file.target.is_none() && !file.tried {
                scan.insert(key.tgid);
            }
        }
        for tgid in scan {
            let open = if exited(tgid) {
                Default::default()
            } else {
                fds::open_files(tgid)
            };
            for (key, file) in self.seen.iter_mut().filter(|(k, _)| k.tgid == tgid) {
                if file.target.is_none() {
                    file.target = open.get(&(key.dev, key.ino)).cloned();
                    file.tried = true;
                }
            }
        }
        for (key, file) in self.seen.iter_mut() {
            if !file.deleted && exited(key.tgid) {
                // Gone already (read but not yet deleted by an earlier batch) is fine.
                let _ = self.map.remove(key);
                file.deleted = true;
            }
        }
    }

    /// The files of process `tgid`.
    pub fn of(&self, tgid: u32) -> impl Iterator<Item = (&FileKey, &File)> {
        self.seen.iter().filter(move |(k, _)| k.tgid == tgid)
    }
}
