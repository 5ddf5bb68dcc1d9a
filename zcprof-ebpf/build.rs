//! Rebuild the eBPF object when the `bpf-linker` binary changes: cargo cannot express a
//! dependency on a tool, so the linker's path is the cache key (as in aya-template).

fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        // zcprof/build.rs reports the missing linker with a clear sentence; do not fail the
        // host-side `cargo check` of this crate's library target over it.
        Err(_) => println!("cargo:rerun-if-env-changed=PATH"),
    }
}
