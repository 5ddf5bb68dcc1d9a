//! A profiling session: privileges checked, probes attached, the collector running, and the
//! model fed from it. Shared by every subcommand that profiles.
//!
//! The loop contract every subcommand follows: call [`Session::next`] (in a `select!` with
//! whatever else the command waits for; it is cancel-safe) and look at `session.model` after
//! each [`Tick`]; `?` its error, which is the collector's own reason for stopping. Exited
//! processes are kept or pruned as decided once in [`Session::start`] ([`Retention`]), and
//! the map entries the model takes over are handed back to the collector here, for every
//! layer; no command does either itself.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    collector::{self, Collector, Control},
    host::{privileges, procfs::Procfs},
    model::Model,
    probes::{self, Layer, LayerSummary, LoadOptions, ProbeStatus},
};

/// What a session does with processes that have exited, decided when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep every process instance: `run`, `record` and `demo` report whole process trees,
    /// exited members included.
    KeepExited,
    /// Forget an exited process once its caller has seen an interval in which it did
    /// nothing after the one it exited in (`top`, `serve`, the dashboard): a long session
    /// must not grow without bound.
    PruneExited,
}

/// Why [`Session::next`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// The collector's timer closed an interval.
    Interval,
    /// The batch [`Session::flush`] asked for: everything the kernel had recorded before
    /// the request is in the model.
    Flushed,
}

pub struct Session {
    handle: collector::Handle,
    pub model: Model,
    pub probes: Vec<ProbeStatus>,
    pub layers: Vec<LayerSummary>,
    pub started: Instant,
    retention: Retention,
}

impl Session {
    /// Checks privileges, loads and attaches the probes (telling the user on stderr about
    /// anything unavailable), and starts collecting every `period`. Must run inside a
    /// tokio runtime.
    pub fn start(
        opts: &LoadOptions,
        period: Duration,
        retention: Retention,
    ) -> anyhow::Result<Session> {
        privileges::check()?;
        let loaded = probes::load(opts)?;
        for warning in &loaded.warnings {
            eprintln!("zcprof: warning: {warning}");
        }
        // The kernel layer is best effort and its list is long on kernels without fentry or
        // kprobes: one line for it, the details in `zcprof doctor`.
        let kernel_missing = loaded
            .probes
            .iter()
            .filter(|p| p.layer == Layer::Kernel && p.via().is_none())
            .count();
        if kernel_missing > 0 {
            eprintln!(
                "zcprof: warning: {kernel_missing} kernel-layer probes are unavailable on this kernel (`zcprof doctor` says why)"
            );
        }
        for p in loaded.probes.iter().filter(|p| p.layer != Layer::Kernel) {
            if let Some(reason) = p.reason() {
                eprintln!(
                    "zcprof: warning: probe {} ({} layer) is unavailable: {reason}",
                    p.probe, p.layer,
                );
            }
        }
        let probes = loaded.probes.clone();
        let layers = loaded.layer_summary();
        let collector = Collector::new(loaded.ebpf).context("starting the collector")?;
        let started = Instant::now();
        let mut model = Model::new();
        model.start_at(started);
        Ok(Session {
            handle: collector::spawn(collector, period),
            model,
            probes,
            layers,
            started,
            retention,
        })
    }

    /// Waits for the next batch and applies it to the model. Fails with the collector's
    /// reason when it has stopped.
    ///
    /// Cancel-safe: dropped before a batch arrives, it has changed nothing that matters (the
    /// pruning it starts with acts once per interval).
    pub async fn next(&mut self) -> anyhow::Result<Tick> {
        self.prune();
        self.receive().await
    }

    /// Asks for a batch now and applies every batch up to and including it, so that the
    /// model holds everything the kernel recorded before this call.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.prune();
        if self.handle.control.send(Control::Flush).is_err() {
            return Err(self.stopped().await);
        }
        while self.receive().await? != Tick::Flushed {}
        Ok(())
    }

    /// The caller asks for more, so it is done with the last interval: prune now if this
    /// session prunes.
    fn prune(&mut self) {
        if self.retention == Retention::PruneExited {
            self.model.prune_exited();
        }
    }

    async fn receive(&mut self) -> anyhow::Result<Tick> {
        let Some(batch) = self.handle.batches.recv().await else {
            return Err(self.stopped().await);
        };
        let forget = self.model.apply(&batch, &Procfs);
        // If the collector is gone there is nothing left to delete from; the next receive
        // says why it went.
        if !forget.is_empty() {
            let _ = self.handle.control.send(Control::Forget(forget));
        }
        Ok(if batch.flushed {
            Tick::Flushed
        } else {
            Tick::Interval
        })
    }

    /// Why the collector stopped, from its task (awaited once).
    async fn stopped(&mut self) -> anyhow::Error {
        let Some(task) = self.handle.task.as_mut() else {
            return anyhow!("the collector has stopped");
        };
        let outcome = task.await;
        self.handle.task = None;
        match outcome {
            Ok(Err(err)) => err.context("the collector stopped"),
            // It ends by itself only when the session is gone; anything else is a bug.
            Ok(Ok(())) => anyhow!("the collector stopped unexpectedly"),
            Err(join) => anyhow!("the collector failed: {join}"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM with the signal's number.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
        }
    }
}
