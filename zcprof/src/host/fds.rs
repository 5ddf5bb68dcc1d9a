//! What a live process's descriptors are, from /proc, for `run --files`: each open
//! descriptor's target (`/proc/PID/fd/N`) by the `(device, inode)` the kernel keys its
//! per-file counts with, and each socket's addresses (`/proc/PID/net/{tcp,tcp6,udp,udp6,
//! unix}`, the process's own network namespace). Best effort by nature: a descriptor
//! closed, or a process gone, before it is read is not named here.

use std::{collections::HashMap, fs, os::unix::fs::MetadataExt};

/// The kernel's encoding of a device number (`MKDEV`: major << 20 | minor), as the per-file
/// map's keys carry it.
fn kernel_dev(dev: u64) -> u32 {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    (major << 20) | (minor & 0xf_ffff)
}

/// `(kernel dev, inode) -> what /proc/PID/fd/N links to` for every open descriptor of
/// `tgid` (a socket's `socket:[INODE]` is replaced by its addresses where
/// /proc/PID/net has them).
pub fn open_files(tgid: u32) -> HashMap<(u32, u64), String> {
    let mut out = HashMap::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{tgid}/fd")) else {
        return out;
    };
    let mut peers: Option<HashMap<u64, String>> = None;
    for entry in dir.flatten() {
        let path = entry.path();
        let (Ok(meta), Ok(link)) = (fs::metadata(&path), fs::read_link(&path)) else {
            continue;
        };
        let mut target = link.to_string_lossy().into_owned();
        if target.starts_with("socket:") {
            let peers = peers.get_or_insert_with(|| sockets(tgid));
            if let Some(addr) = peers.get(&meta.ino()) {
                target.clone_from(addr);
            }
        }
        out.insert((kernel_dev(meta.dev()), meta.ino()), target);
    }
    out
}

/// `socket inode -> "tcp 127.0.0.1:8080 → 127.0.0.1:51234"` (or `unix /run/x.sock`) for the
/// sockets of `tgid`'s network namespace.
fn sockets(tgid: u32) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let Ok(table) = fs::read_to_string(format!("/proc/{tgid}/net/{proto}")) else {
            continue;
        };
        out.extend(inet_table(&table, proto.trim_end_matches('6')));
    }
    if let Ok(table) = fs::read_to_string(format!("/proc/{tgid}/net/unix")) {
        out.extend(unix_table(&table));
    }
    out
}

/// The rows of a /proc/net/{tcp,udp}[6] table: `sl local rem st … uid timeout inode`.
fn inet_table(table: &str, proto: &str) -> Vec<(u64, String)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote) = (endpoint(f.get(1)?)?, endpoint(f.get(2)?)?);
            let inode = f.get(9)?.parse().ok()?;
            Some((inode, format!("{proto} {local} → {remote}")))
        })
        .collect()
}

/// `0100007F:1F90` → `127.0.0.1:8080`; 32 hex digits of IPv6 → `[::1]:8080`. The kernel
/// prints each 32-bit word of the address in host (little-endian) order.
fn endpoint(field: &str) -> Option<String> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<[u8; 4]> = (0..addr.len() / 8)
        .map(|i| {
            u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(u32::to_le_bytes)
        })
        .collect::<Option<_>>()?;
    match words.as_slice() {
        [v4] => Some(format!("{}:{port}", std::net::Ipv4Addr::from(*v4))),
        [a, b, c, d] => {
            let bytes: Vec<u8> = [a, b, c, d]
                .iter()
                .flat_map(|w| w.iter().copied())
                .collect();
            let v6: [u8; 16] = bytes.try_into().ok()?;
            Some(format!("[{}]:{port}", std::net::Ipv6Addr::from(v6)))
        }
        _ => None,
    }
}

/// The rows of /proc/net/unix: `Num RefCount Protocol Flags Type St Inode [Path]`.
fn unix_table(table: &str) -> Vec<(u64, String)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let inode = f.get(6)?.parse().ok()?;
            Some((
                inode,
                match f.get(7) {
                    Some(path) => format!("unix {path}"),
                    None => "unix (unnamed)".to_string(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_read_in_host_order() {
        assert_eq!(endpoint("0100007F:1F90").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(
            endpoint("00000000000000000000000001000000:0050").as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(endpoint("zz:1"), None);
        assert_eq!(endpoint("0100007F"), None);
    }

    #[test]
    fn tables_map_inodes_to_addresses() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0100007F:C7E2 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(
            inet_table(tcp, "tcp"),
            [(4242, "tcp 127.0.0.1:8080 → 127.0.0.1:51170".to_string())]
        );
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 777 /run/x.sock\n0000000000000000: 00000003 00000000 00000000 0001 03 778\n";
        assert_eq!(
            unix_table(unix),
            [
                (777, "unix /run/x.sock".to_string()),
                (778, "unix (unnamed)".to_string())
            ]
        );
    }

    /// This test process's own descriptors: an open file is found by its device and
    /// inode, a TCP socket by its addresses.
    #[test]
    fn a_live_processes_files_and_sockets_are_named() {
        let file = std::env::temp_dir().join(format!("zcprof-fds-{}", std::process::id()));
        std::fs::write(&file, b"x").expect("write");
        let open = std::fs::File::open(&file).expect("open");
        let meta = open.metadata().expect("stat");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let socket_ino = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&listener)
        ))
        .expect("stat the socket")
        .ino();
        let found = open_files(std::process::id());
        assert_eq!(
            found.get(&(kernel_dev(meta.dev()), meta.ino())),
            Some(&file.display().to_string())
        );
        let socket = found
            .iter()
            .find(|((_, ino), _)| *ino == socket_ino)
            .map(|(_, name)| name.clone());
        assert_eq!(
            socket,
            Some(format!("tcp 127.0.0.1:{port} → 0.0.0.0:0")),
            "{found:?}"
        );
        drop(open);
        let _ = std::fs::remove_file(&file);
    }
}
