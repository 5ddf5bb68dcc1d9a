//! cgroup v2 paths and the containers and units they name.
//!
//! The kernel side gives each process's cgroup as an id (`bpf_get_current_cgroup_id` in
//! the lifecycle records): the inode number of its directory in the cgroup2 filesystem,
//! which [`Resolver`] finds by walking the cgroup2 mount (found in /proc/self/mountinfo:
//! `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a hybrid one). A cgroup
//! removed before it was resolved has no path any more; its id is still shown. A process
//! no record has named yet (it started before zcprof) is read from /proc/PID/cgroup.
//! [`container`] recognises the usual names: systemd units and scopes, docker, containerd,
//! CRI-O and podman scopes, Kubernetes pods.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// Directories walked at most per rescan (a machine with more cgroups resolves the rest as
/// unknown rather than stall a refresh).
const WALK_LIMIT: usize = 100_000;

/// Where the cgroup2 filesystem is mounted, if it is; why not otherwise.
pub fn v2_root() -> Result<PathBuf, String> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|err| format!("/proc/self/mountinfo: {err}"))?;
    root_in(&text).ok_or_else(|| {
        if text.lines().any(|l| l.contains(" - cgroup ")) {
            "only cgroup v1 is mounted (no cgroup2 filesystem)".into()
        } else {
            "no cgroup filesystem is mounted".into()
        }
    })
}

/// The first cgroup2 mount point in a mountinfo text.
fn root_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        (fs.split_whitespace().next() == Some("cgroup2"))
            .then(|| mount.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// The cgroup v2 path of live process `tgid`, from /proc/PID/cgroup (its `0::` line).
pub fn of_pid(tgid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{tgid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// A process's cgroup, as reports show it: any of the three may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cgroup {
    /// The kernel's cgroup v2 id.
    pub id: Option<u64>,
    /// Its path under the cgroup2 root (`/system.slice/nginx.service`); `null` when the
    /// cgroup was removed before zcprof could resolve it.
    pub path: Option<String>,
    /// What the path names ([`container`]), when it names one.
    pub container: Option<String>,
}

/// Whether cgroup `path` is `under` or below it (`/a` holds `/a/b`, not `/ab`).
pub fn is_under(path: &str, under: &str) -> bool {
    let under = under.trim_end_matches('/');
    under.is_empty()
        || path == under
        || path
            .strip_prefix(under)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A `--cgroup` argument as a path under the cgroup2 root: a cgroup path (`/system.slice`)
/// or the directory itself (`/sys/fs/cgroup/system.slice`); an error naming the problem
/// when there is no cgroup2 filesystem or no such cgroup.
pub fn parse_path(arg: &str) -> Result<String, String> {
    let root = v2_root()?;
    let given = Path::new(arg);
    let relative = given
        .strip_prefix(&root)
        .map(|r| format!("/{}", r.display()))
        .unwrap_or_else(|_| format!("/{}", arg.trim_matches('/')));
    let relative = if relative == "/" {
        relative
    } else {
        relative.trim_end_matches('/').to_string()
    };
    let dir = root.join(relative.trim_start_matches('/'));
    if !dir.is_dir() {
        return Err(format!(
            "no cgroup {relative} exists (no directory {})",
            dir.display()
        ));
    }
    Ok(relative)
}

/// cgroup ids to paths (relative to the cgroup2 root, `/` for the root itself).
#[derive(Debug)]
pub struct Resolver {
    root: Result<PathBuf, String>,
    paths: HashMap<u64, String>,
    /// Ids a walk did not find (removed cgroups): not walked for again.
    missing: std::collections::HashSet<u64>,
}

impl Resolver {
    pub fn new() -> Self {
        Resolver {
            root: v2_root(),
            paths: HashMap::new(),
            missing: Default::default(),
        }
    }

    /// For tests: a resolver over `root`.
    pub fn at(root: &Path) -> Self {
        Resolver {
            root: Ok(root.to_path_buf()),
            paths: HashMap::new(),
            missing: Default::default(),
        }
    }

    /// Why ids cannot be resolved on this host, if they cannot.
    pub fn unavailable(&self) -> Option<&str> {
        self.root.as_ref().err().map(String::as_str)
    }

    /// The path of cgroup `id`, walking the mount again when it is not known yet.
    pub fn path(&mut self, id: u64) -> Option<String> {
        self.learn([id]);
        self.paths.get(&id).cloned()
    }

    /// Resolves `ids` while their cgroups exist: one walk when any is new (a cgroup made and
    /// removed between two batches is missed, and shown by id).
    pub fn learn(&mut self, ids: impl IntoIterator<Item = u64>) {
        let new: Vec<u64> = ids
            .into_iter()
            .filter(|id| *id != 0 && !self.paths.contains_key(id) && !self.missing.contains(id))
            .collect();
        if new.is_empty() {
            return;
        }
        self.rescan();
        for id in new {
            if !self.paths.contains_key(&id) {
                self.missing.insert(id);
            }
        }
    }

    /// The id of the cgroup at `path` (relative to the root), if it exists.
    pub fn id_of(&self, path: &str) -> Option<u64> {
        let root = self.root.as_ref().ok()?;
        let dir = root.join(path.trim_start_matches('/'));
        fs::metadata(dir).ok().map(|m| m.ino())
    }

    fn rescan(&mut self) {
        let Ok(root) = self.root.clone() else {
            return;
        };
        let mut stack = vec![(root, String::from("/"))];
        let mut walked = 0;
        while let Some((dir, path)) = stack.pop() {
            walked += 1;
            if walked > WALK_LIMIT {
                break;
            }
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let child = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    stack.push((entry.path(), child));
                }
            }
            self.paths.insert(meta.ino(), path);
        }
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new()
    }
}

/// The container or unit a cgroup path names, innermost first: `docker 0123456789ab`,
/// `containerd …`, `cri-o …`, `podman …`, `k8s pod UID`, `unit nginx.service`, `scope
/// session-2.scope`; `None` for other paths.
pub fn container(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts.iter().rev() {
        for (prefix, runtime) in [
            ("docker-", "docker"),
            ("cri-containerd-", "containerd"),
            ("crio-", "cri-o"),
            ("libpod-", "podman"),
        ] {
            if let Some(id) = part
                .strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(".scope"))
                .filter(|id| is_hex_id(id))
            {
                return Some(format!("{runtime} {}", &id[..12]));
            }
        }
        if is_hex_id(part)
            && let Some(parent) = parts.iter().rev().skip_while(|p| *p != part).nth(1)
            && matches!(*parent, "docker" | "containerd" | "libpod_parent")
        {
            return Some(format!("{parent} {}", &part[..12]));
        }
        if let Some(uid) = pod_uid(part) {
            return Some(format!("k8s pod {uid}"));
        }
    }
    let last = parts.last()?;
    if last.ends_with(".service") {
        Some(format!("unit {last}"))
    } else if last.ends_with(".scope") {
        Some(format!("scope {last}"))
    } else {
        None
    }
}

/// A container id: at least 12 lowercase hex digits.
fn is_hex_id(s: &str) -> bool {
    s.len() >= 12
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The pod UID of a Kubernetes pod cgroup: `kubepods-besteffort-pod<uid>.slice` (systemd
/// driver, `_` for `-`) or `pod<uid>` (cgroupfs driver).
fn pod_uid(part: &str) -> Option<String> {
    // The last `pod`: `kubepods` holds one too.
    let at = part.rfind("pod")?;
    let rest = &part[at + 3..];
    let uid = rest.strip_suffix(".slice").unwrap_or(rest);
    let uid = uid.replace('_', "-");
    let looks = uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let owned = part.starts_with("kubepods") || at == 0;
    (looks && owned).then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_on_unified_and_hybrid_hosts() {
        let unified = "24 30 0:21 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(root_in(unified), Some(PathBuf::from("/sys/fs/cgroup")));
        let hybrid = "35 31 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            root_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            root_in("35 31 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw\n"),
            None
        );
    }

    /// Real cgroup names, as systemd, docker, containerd, CRI-O, podman and the kubelet
    /// make them.
    #[test]
    fn names_containers_and_units_from_real_paths() {
        let id = "4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";
        for (path, expected) in [
            (
                format!("/system.slice/docker-{id}.scope"),
                "docker 4a3b2c1d0e9f",
            ),
            (format!("/docker/{id}"), "docker 4a3b2c1d0e9f"),
            (
                format!("/system.slice/cri-containerd-{id}.scope"),
                "containerd 4a3b2c1d0e9f",
            ),
            (
                format!("/machine.slice/libpod-{id}.scope/container"),
                "podman 4a3b2c1d0e9f",
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e3d4c_5b6a_7980_a1b2_c3d4e5f6a7b8.slice/crio-{id}.scope"
                ),
                "cri-o 4a3b2c1d0e9f",
            ),
            (
                // A pod's own slice, systemd driver: `kubepods` has a `pod` of its own.
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f2e3d4c_5b6a_7980_a1b2_c3d4e5f6a7b8.slice".to_string(),
                "k8s pod 1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8",
            ),
            (
                "/kubepods/burstable/pod1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8".to_string(),
                "k8s pod 1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8",
            ),
            (
                "/system.slice/nginx.service".to_string(),
                "unit nginx.service",
            ),
            (
                "/user.slice/user-1000.slice/session-2.scope".to_string(),
                "scope session-2.scope",
            ),
        ] {
            assert_eq!(container(&path).as_deref(), Some(expected), "{path}");
        }
        assert_eq!(container("/"), None);
        assert_eq!(container("/zcprof-test/a"), None);
        assert_eq!(container("/system.slice"), None);
        assert_eq!(container("/docker/notanid"), None);
    }

    #[test]
    fn a_cgroup_holds_its_descendants_only() {
        assert!(is_under("/a", "/a"));
        assert!(is_under("/a/b", "/a"));
        assert!(is_under("/a/b", "/a/"));
        assert!(!is_under("/ab", "/a"));
        assert!(is_under("/anything", "/"));
        assert!(!is_under("/", "/a"));
    }

    #[test]
    fn resolves_ids_by_walking_a_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        let mut r = Resolver::at(dir.path());
        let id = fs::metadata(dir.path().join("a/b")).expect("stat").ino();
        assert_eq!(r.path(id).as_deref(), Some("/a/b"));
        assert_eq!(r.id_of("/a/b"), Some(id));
        let root = fs::metadata(dir.path()).expect("stat").ino();
        assert_eq!(r.path(root).as_deref(), Some("/"));
        assert_eq!(r.path(u64::MAX), None);
        assert_eq!(r.unavailable(), None);
    }
}
