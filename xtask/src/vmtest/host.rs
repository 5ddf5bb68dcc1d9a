//! Host tools the lab needs, installed from Debian's packages when missing (by
//! [`crate::apt`]: that is what keeps `cargo xtask vmtest` working on a new machine and in CI).

/// Packages the lab itself runs: QEMU, and a static busybox that becomes the guest's userland.
pub const LAB_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static"];

/// Where busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";
pub const QEMU: &str = "qemu-system-x86_64";
