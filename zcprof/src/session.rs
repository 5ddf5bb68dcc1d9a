//! A profiling session: privileges checked, probes attached, the collector running, and the
//! model fed from it. Shared by every subcommand that profiles.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    collector::{self, Collector, Control},
    host::{privileges, procfs::Procfs},
    model::Model,
    probes::{self, LayerSummary, LoadOptions, ProbeStatus},
};

pub struct Session {
    handle: collector::Handle,
    pub model: Model,
    pub probes: Vec<ProbeStatus>,
    pub layers: Vec<LayerSummary>,
    pub started: Instant,
}

impl Session {
    /// Checks privileges, loads and attaches the probes (telling the user on stderr about
    /// anything unavailable), and starts collecting every `period`. Must run inside a
    /// tokio runtime.
    pub fn start(opts: &LoadOptions, period: Duration) -> anyhow::Result<Session> {
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
            .filter(|p| p.layer == probes::LAYER_KERNEL && p.via.is_none())
            .count();
        if kernel_missing > 0 {
            eprintln!(
                "zcprof: warning: {kernel_missing} kernel-layer probes are unavailable on this kernel (`zcprof doctor` says why)"
            );
        }
        for p in loaded
            .probes
            .iter()
            .filter(|p| p.via.is_none() && p.layer != probes::LAYER_KERNEL)
        {
            eprintln!(
                "zcprof: warning: probe {} ({} layer) is unavailable: {}",
                p.probe,
                p.layer,
                p.reason.as_deref().unwrap_or("no reason given")
            );
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
        })
    }

    /// Waits for the next batch and applies it; returns whether it was a requested flush,
    /// or `None` when the collector has stopped.
    pub async fn next(&mut self) -> Option<bool> {
        let batch = self.handle.batches.recv().await?;
        let forget = self.model.apply(&batch, &Procfs);
        if !forget.is_empty() {
            // If the collector is gone there is nothing left to delete from.
            let _ = self.handle.control.send(Control::Forget(forget)).await;
        }
        let forget = self.model.take_kernel_forget();
        if !forget.is_empty() {
            let _ = self
                .handle
                .control
                .send(Control::ForgetKernel(forget))
                .await;
        }
        Some(batch.flushed)
    }

    /// Asks for a batch now and applies every batch up to and including it, so that the
    /// model holds everything the kernel recorded before this call.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.handle
            .control
            .send(Control::Flush)
            .await
            .context("the collector has stopped")?;
        loop {
            match self.next().await {
                Some(true) => return Ok(()),
                Some(false) => continue,
                None => anyhow::bail!("the collector stopped before flushing"),
            }
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
