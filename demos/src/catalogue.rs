//! The catalogue of bundled scenarios: what each does, its modes, which mode is the
//! copying baseline, and which claim of the zero-copy guides it illustrates. zcprof
//! lists and launches demos from this table; `zcprof-demo list --json` prints it.

use serde::Serialize;

use crate::scenarios as modules;

/// One scenario: one job, done several ways.
#[derive(Debug, Serialize)]
pub struct ScenarioInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// The worker processes, in the order they are reported.
    pub roles: &'static [&'static str],
    pub modes: &'static [ModeInfo],
    /// The mode that copies through user buffers; the others are compared with it.
    pub baseline: &'static str,
    /// The claim from the seed guides (C# / Go zero-copy articles) this demonstrates.
    pub seed_claim: &'static str,
    /// How many files of `pass_bytes` the run writes to the temporary directory.
    #[serde(skip)]
    pub disk_files: u64,
}

/// One way of doing a scenario's job.
#[derive(Debug, Serialize)]
pub struct ModeInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// Roles whose share of the payload moves without passing through a user buffer in
    /// this mode: no copy-family syscall at all, no copying io_uring request (READ, WRITE …:
    /// the copies remain, only the syscall is gone), and no zero-copy send that the kernel
    /// copies anyway (it always does over loopback).
    pub copy_free_roles: &'static [&'static str],
}

impl ScenarioInfo {
    pub fn mode(&self, name: &str) -> Option<&'static ModeInfo> {
        self.modes.iter().find(|m| m.name == name)
    }

    pub fn mode_names(&self) -> Vec<&'static str> {
        self.modes.iter().map(|m| m.name).collect()
    }
}

static SCENARIOS: [ScenarioInfo; 6] = [
    modules::file_serve::INFO,
    modules::proxy::INFO,
    modules::pipe::INFO,
    modules::file_copy::INFO,
    modules::file_read::INFO,
    modules::in_process::INFO,
];

/// Every bundled scenario.
pub fn scenarios() -> &'static [ScenarioInfo] {
    &SCENARIOS
}

/// Looks a scenario up by name.
pub fn scenario(name: &str) -> Option<&'static ScenarioInfo> {
    SCENARIOS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        for s in scenarios() {
            assert!(s.mode(s.baseline).is_some(), "{} baseline", s.name);
            assert!(s.modes.len() >= 2, "{}", s.name);
            for m in s.modes {
                for r in m.copy_free_roles {
                    assert!(s.roles.contains(r), "{}/{}: {r}", s.name, m.name);
                }
            }
        }
        assert!(scenario("proxy").is_some());
        assert!(scenario("nope").is_none());
    }
}
