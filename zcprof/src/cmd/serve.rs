//! `zcprof serve --listen 127.0.0.1:9464`: expose the live per-process counters over HTTP
//! for Prometheus (`GET /metrics`, OpenMetrics text; see `report::prometheus`), of every
//! process or, with `--cgroup`, of those in the cgroups named.
//!
//! The address is bound before the probes load, so a port already in use is one line and
//! a non-zero exit. The exposition is rendered once per collection and shared by every
//! scrape; a connection gets one response and is closed (HTTP/1.1, `Connection: close`),
//! which is all a scraper needs. Bound to loopback unless told otherwise.
//!
//! Descriptors are finite and connections are not: at most [`capacity`] connections are
//! answered at once (what the descriptor limit leaves after the probes' own descriptors),
//! and a new one beyond that closes the oldest still open, so a flood of idle connections
//! cannot keep a scraper out; when `accept` fails for want of descriptors anyway (EMFILE,
//! ENFILE), the oldest connection is closed and accepting pauses for [`BACKOFF`] instead of
//! spinning on a listener that stays readable.

use std::{
    collections::VecDeque, io, net::SocketAddr, process::ExitCode, sync::Arc, time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinSet},
};

use crate::{
    probes::LoadOptions,
    report::{
        prometheus,
        top::{Filter, Own},
    },
    session::{Retention, Session, Signals},
    stdio::say,
};

pub struct ServeOptions {
    pub listen: SocketAddr,
    /// How often the counters are refreshed from the kernel.
    pub interval: Duration,
    /// `--include-self`: export zcprof's own process like any other.
    pub include_self: bool,
    /// `--cgroup`: export only the processes in these cgroup v2 paths or below (empty: all).
    pub cgroups: Vec<String>,
}

/// The default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// A request head larger than this, or slower than `READ_TIMEOUT`, is dropped.
const MAX_REQUEST: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long accepting pauses after it failed for want of descriptors.
pub const BACKOFF: Duration = Duration::from_millis(100);
/// Connections answered at once, at most, however high the descriptor limit.
const MAX_CONNECTIONS: u64 = 512;
/// Descriptors kept free for everything else (reading /proc, the collector, tokio).
const RESERVE: u64 = 16;

pub async fn run(load: &LoadOptions, opts: ServeOptions) -> anyhow::Result<ExitCode> {
    let listener = match TcpListener::bind(opts.listen).await {
        Ok(l) => l,
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "cannot listen on {}: the address is already in use (another exporter, or zcprof serve, runs there)",
            opts.listen
        ),
        Err(err) => bail!("cannot listen on {}: {err}", opts.listen),
    };
    let addr = listener.local_addr().context("reading the bound address")?;
    if !addr.ip().is_loopback() {
        say!("zcprof: warning: serving on {addr}: the metrics are reachable from other machines");
    }
    let mut signals = Signals::new()?;
    let mut session = Session::start(load, opts.interval, Retention::PruneExited)?;
    let mut own = Own::this_process(opts.include_self);
    // The same selection as `top --cgroup`: every per-process family is narrowed alike.
    let filter = Filter {
        cgroups: opts.cgroups,
        ..Filter::default()
    };
    // Counters since the probes attached, as every other family (`Own::probes`).
    let render = |session: &Session, own: &mut Own| -> Arc<str> {
        own.probes = session.probe_total();
        prometheus::render(&session.model, &session.layers, own, &filter).into()
    };
    let mut current = render(&session, &mut own);
    // Counted once the probes hold their descriptors.
    let mut connections = Connections::new(capacity());
    say!("zcprof: serving OpenMetrics on http://{addr}/metrics");
    let mut resume_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            tick = session.next() => {
                tick?;
                current = render(&session, &mut own);
            }
            conn = listener.accept(), if resume_at.is_none() => match conn {
                Ok((stream, _)) => connections.admit(stream, current.clone()),
                Err(err) if out_of_descriptors(&err) => {
                    connections.close_oldest();
                    resume_at = Some(tokio::time::Instant::now() + BACKOFF);
                }
                // A connection reset before it was accepted loses one scrape, not the server.
                Err(_) => {}
            },
            () = tokio::time::sleep_until(resume_at.unwrap_or_else(tokio::time::Instant::now)),
                if resume_at.is_some() => resume_at = None,
            _ = signals.recv() => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How many connections `serve` answers at once: what the soft descriptor limit leaves
/// after the descriptors open now and [`RESERVE`], at least 1 and at most
/// [`MAX_CONNECTIONS`].
fn capacity() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as u64;
    let free = limit.saturating_sub(open).saturating_sub(RESERVE);
    usize::try_from(free.clamp(1, MAX_CONNECTIONS)).unwrap_or(1)
}

fn out_of_descriptors(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The connections being answered, each on its own task, oldest first.
struct Connections {
    tasks: JoinSet<()>,
    order: VecDeque<AbortHandle>,
    capacity: usize,
}

impl Connections {
    fn new(capacity: usize) -> Connections {
        Connections {
            tasks: JoinSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Answers `stream` on a task of its own, closing the oldest connection first when
    /// `capacity` are open.
    fn admit(&mut self, stream: TcpStream, metrics: Arc<str>) {
        while self.tasks.try_join_next().is_some() {}
        self.order.retain(|task| !task.is_finished());
        if self.tasks.len() >= self.capacity {
            self.close_oldest();
        }
        self.order
            .push_back(self.tasks.spawn(respond(stream, metrics)));
    }

    /// Closes the oldest connection still open (its task is cancelled, which drops it).
    fn close_oldest(&mut self) {
        while let Some(task) = self.order.pop_front() {
            if !task.is_finished() {
                task.abort();
                return;
            }
        }
    }
}

/// Reads one request head and answers it.
async fn respond(mut stream: TcpStream, metrics: Arc<str>) {
    let Ok(Some(head)) = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await else {
        return;
    };
    let (status, content_type, body): (&str, &str, &str) = match route(&head) {
        Route::Metrics => ("200 OK", CONTENT_TYPE, &metrics),
        Route::Index => (
            "200 OK",
            "text/plain; charset=utf-8",
            "zcprof: metrics at /metrics\n",
        ),
        Route::NotFound => ("404 Not Found", "text/plain; charset=utf-8", "not found\n"),
        Route::BadMethod => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n",
        ),
    };
    let head_only = head.starts_with("HEAD ");
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(body);
    }
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request line and headers, up to the blank line; `None` if the peer sent too much
/// or closed early.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    Index,
    NotFound,
    BadMethod,
}

fn route(head: &str) -> Route {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return Route::BadMethod;
    }
    match target.split('?').next().unwrap_or("") {
        "/metrics" => Route::Metrics,
        "/" => Route::Index,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route("HEAD / HTTP/1.0\r\n\r\n"), Route::Index);
        assert_eq!(route("GET /other HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(""), Route::BadMethod);
    }
}
