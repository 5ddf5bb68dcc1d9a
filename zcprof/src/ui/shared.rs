//! What [`App`](super::App) and every section share, and nothing else: the facts every view
//! draws from ([`Shared`]), the bounded rate series the header and the processes keep
//! ([`History`]), and the vocabulary of keys — what a section did with one ([`Handled`]),
//! what the event loop must do next ([`Command`]), a line of the help overlay
//! ([`Binding`]). It imports no other dashboard module, so that sections depend on it and
//! never on the module that dispatches to them.

use std::{collections::VecDeque, time::Duration};

use zcprof_common::kernel::Role;

use super::theme::Theme;
use crate::{
    host,
    probes::{Layer, LayerSummary, copy_source},
    report::top::Own,
    session::Session,
};

/// Samples kept per series for trends and charts: a minute at the default interval.
pub const HISTORY: usize = 60;

/// What the header says about the machine and the session; set once at start.
#[derive(Clone, Debug, Default)]
pub struct HostInfo {
    /// `uname -r`.
    pub kernel: String,
    pub layers: Vec<LayerSummary>,
    /// The requested refresh interval.
    pub refresh: Duration,
    /// Why processes' cgroups cannot be known on this host (no cgroup2 filesystem), if
    /// they cannot.
    pub cgroups_unavailable: Option<String>,
}

impl HostInfo {
    /// What `session`, refreshed every `refresh`, runs on.
    pub fn of(session: &Session, refresh: Duration) -> HostInfo {
        HostInfo {
            kernel: host::kernel_release(),
            layers: session.layers.clone(),
            refresh,
            cgroups_unavailable: session.cgroups.unavailable().map(String::from),
        }
    }
}

/// Read by every section; changed only by [`App`](super::App).
#[derive(Clone, Debug)]
pub struct Shared {
    pub info: HostInfo,
    /// The kernel-layer role whose counters make the kernel-copy figure, from the layers
    /// that attached (`None`: no kernel copy probe attached).
    pub copy_source: Option<Role>,
    /// False when `NO_COLOR` is set.
    pub color: bool,
    /// Batches seen (drawn or not).
    pub batches: u64,
    /// zcprof's own process: left out of the table and the machine figures unless
    /// `--include-self`; its CPU is sampled after every batch.
    pub own: Own,
}

impl Shared {
    pub fn new(info: HostInfo) -> Self {
        Shared {
            copy_source: copy_source(&info.layers),
            info,
            color: true,
            batches: 0,
            own: Own::default(),
        }
    }

    pub fn theme(&self) -> Theme {
        Theme::new(self.color)
    }

    /// Whether the io_uring layer counts in this session (its column and rows are shown).
    pub fn io_uring_counted(&self) -> bool {
        crate::report::top::io_uring_counted(&self.info.layers)
    }

    /// Whether the flows layer counts (`--flows`): the biggest-flow column and the detail
    /// view's flows.
    pub fn flows_counted(&self) -> bool {
        crate::report::top::counted(&self.info.layers, Layer::Flows)
    }

    /// Whether the threads layer counts (`--threads`).
    pub fn threads_counted(&self) -> bool {
        crate::report::top::counted(&self.info.layers, Layer::Threads)
    }

    /// The kernel layer's state, when it is one of the session's layers.
    pub fn kernel_layer(&self) -> Option<&LayerSummary> {
        self.info.layers.iter().find(|l| l.layer == Layer::Kernel)
    }
}

/// A bounded series of per-second rates, oldest first: at most [`HISTORY`] samples each.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub copied: VecDeque<f64>,
    pub zero_copy: VecDeque<f64>,
}

impl History {
    pub fn push(&mut self, copied: f64, zero_copy: f64) {
        for (series, value) in [(&mut self.copied, copied), (&mut self.zero_copy, zero_copy)] {
            if series.len() == HISTORY {
                series.pop_front();
            }
            series.push_back(value);
        }
    }
}

/// What a section did with a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Used; nothing for the event loop to do.
    Yes,
    /// Not bound in this section: the global bindings get it.
    No,
    /// Used, and the event loop must act.
    Command(Command),
}

/// What the event loop must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Run `zcprof-demo run SCENARIO --mode M --seconds S` for each mode.
    StartDemos {
        scenario: String,
        modes: Vec<String>,
        seconds: u32,
    },
    /// Interrupt the `zcprof-demo` process `pid` (it reports what it did so far).
    StopDemo {
        pid: u32,
    },
}

/// One line of the help overlay: (keys, what they do).
pub type Binding = (&'static str, &'static str);
