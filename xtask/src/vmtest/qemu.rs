//! Booting one kernel under QEMU and following its serial console until the guest powers off,
//! dies, or runs out of time.
//!
//! QEMU runs with TCG: KVM hangs on this project's machines (they are Firecracker VMs). Its
//! stdout is the guest's ttyS0; two reader threads turn stdout and stderr into lines on one
//! channel so that the main loop can wait with a deadline. The VM is killed (SIGKILL to the
//! QEMU child we spawned) on timeout, and shortly after a panic/BUG/lockup message so that the
//! trace that follows it is still captured.

use std::{
    io::{BufRead as _, BufReader, Read},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc::{self, RecvTimeoutError, Sender},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{
    CommandReport, KernelOutcome, KernelReport,
    host::QEMU,
    kernels::Kernel,
    markers::{self, Event},
};

/// How long to keep reading after a fatal kernel message, to capture its backtrace.
const FATAL_GRACE: Duration = Duration::from_secs(3);
/// How long the guest may take to power off after its last command.
const POWEROFF_GRACE: Duration = Duration::from_secs(20);

/// How to run the VM.
pub struct Machine<'a> {
    pub initrd: &'a Path,
    pub memory_mib: u32,
    pub smp: u32,
    pub append: &'a [String],
    pub timeout: Duration,
    /// Print the guest's console live, prefixed with the kernel's name.
    pub echo: bool,
}

enum Msg {
    Stdout(String),
    Stderr(String),
    Eof,
}

/// Boots `kernel`, runs `commands` (already baked into the initramfs) and reports.
pub fn boot(
    kernel: &Kernel,
    machine: &Machine,
    commands: &[String],
) -> anyhow::Result<KernelReport> {
    let label = short_name(&kernel.release);
    let mut append = String::from("console=ttyS0 quiet panic=-1 rdinit=/init");
    for extra in machine.append {
        append.push(' ');
        append.push_str(extra);
    }
    let mut cmd = Command::new(QEMU);
    cmd.args(["-accel", "tcg", "-nographic", "-no-reboot", "-nic", "none"])
        .args(["-m", &machine.memory_mib.to_string()])
        .args(["-smp", &machine.smp.to_string()])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(machine.initrd)
        .args(["-append", &append])
        // A pipe that stays open: QEMU multiplexes its monitor on stdin with -nographic, and
        // an inherited terminal would be switched to raw mode.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    crate::util::die_with_parent(&mut cmd);
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {QEMU}"))?;
    let (tx, rx) = mpsc::channel();
    let readers = [
        spawn_reader(child.stdout.take(), tx.clone(), Msg::Stdout),
        spawn_reader(child.stderr.take(), tx, Msg::Stderr),
    ];

    let mut report = KernelReport::new(kernel.package.clone());
    report.release = Some(kernel.release.clone());
    report.commands = commands
        .iter()
        .map(|c| CommandReport::new(c.clone()))
        .collect();
    let mut state = Follow::default();
    let deadline = start + machine.timeout;
    let mut eofs = 0;
    let mut killed = false;
    while eofs < readers.len() {
        let wait = if killed {
            // Only draining now: the pipes close as soon as the killed QEMU is reaped.
            Duration::from_secs(10)
        } else {
            let limit = state.stop_at.map_or(deadline, |s| s.min(deadline));
            limit.saturating_duration_since(Instant::now())
        };
        match rx.recv_timeout(wait) {
            Ok(Msg::Stdout(raw)) => {
                let line = markers::clean(&raw);
                if machine.echo {
                    println!("{label}| {line}");
                }
                state.on_line(&line, start, &mut report);
            }
            Ok(Msg::Stderr(raw)) => {
                let line = markers::clean(&raw);
                eprintln!("{label}| qemu: {line}");
                state.qemu_stderr = Some(line);
            }
            Ok(Msg::Eof) => eofs += 1,
            Err(RecvTimeoutError::Timeout) if killed => break,
            Err(RecvTimeoutError::Timeout) => {
                if Instant::now() >= deadline && !state.done && state.fatal.is_none() {
                    state.timed_out = true;
                }
                kill(&mut child, &label);
                killed = true;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {QEMU}"))?;
    for reader in readers {
        // A reader thread only returns on EOF or a read error; either way it is done.
        let _ = reader.join();
    }
    report.wall = start.elapsed();
    report.outcome = state.outcome(machine.timeout, status.to_string(), &report);
    Ok(report)
}

/// What has been seen so far on the console.
#[derive(Default)]
struct Follow {
    current: Option<(usize, Instant)>,
    done: bool,
    fatal: Option<String>,
    timed_out: bool,
    init_seen: bool,
    stop_at: Option<Instant>,
    qemu_stderr: Option<String>,
}

impl Follow {
    fn on_line(&mut self, line: &str, start: Instant, report: &mut KernelReport) {
        for event in markers::parse(line) {
            match event {
                Event::Init { uptime, release } => {
                    self.init_seen = true;
                    report.boot_to_init = Some(start.elapsed());
                    report.guest_uptime_at_init = uptime;
                    if release.is_some() {
                        report.release = release;
                    }
                }
                Event::Begin(n) => {
                    if let Some(cmd) = report.commands.get_mut(n.wrapping_sub(1)) {
                        cmd.started = true;
                        self.current = Some((n, Instant::now()));
                    }
                }
                Event::End { index, status } => {
                    if let Some(cmd) = report.commands.get_mut(index.wrapping_sub(1)) {
                        cmd.status = Some(status);
                        if let Some((n, began)) = self.current.take()
                            && n == index
                        {
                            cmd.duration = Some(began.elapsed());
                        }
                    }
                }
                Event::Done => {
                    self.done = true;
                    self.stop_at = Some(Instant::now() + POWEROFF_GRACE);
                }
                Event::Fatal(msg) => {
                    self.append_output(report, &msg);
                    if self.fatal.is_none() {
                        self.fatal = Some(msg);
                        self.stop_at = Some(Instant::now() + FATAL_GRACE);
                    }
                }
                Event::Warning(msg) => {
                    self.append_output(report, &msg);
                    report.warnings.push(msg);
                }
                Event::Output(text) => self.append_output(report, &text),
            }
        }
    }

    fn append_output(&self, report: &mut KernelReport, text: &str) {
        if let Some((n, _)) = self.current
            && let Some(cmd) = report.commands.get_mut(n - 1)
        {
            cmd.output.push(text.to_string());
        }
    }

    fn outcome(
        &self,
        timeout: Duration,
        qemu_status: String,
        report: &KernelReport,
    ) -> KernelOutcome {
        let stage = match self.current {
            Some((n, _)) => format!("during command {n}"),
            None if self.init_seen => "between commands".to_string(),
            None => "before /init ran".to_string(),
        };
        if let Some(fatal) = &self.fatal {
            return KernelOutcome::Failed(format!("kernel died {stage}: {fatal}"));
        }
        if self.timed_out {
            return KernelOutcome::Failed(format!(
                "timed out after {}s {stage}",
                timeout.as_secs()
            ));
        }
        if !self.init_seen {
            let why = self.qemu_stderr.as_deref().unwrap_or("no error output");
            return KernelOutcome::Failed(format!(
                "QEMU exited ({qemu_status}) before /init ran: {why}"
            ));
        }
        if !self.done || report.commands.iter().any(|c| c.status.is_none()) {
            return KernelOutcome::Failed(format!(
                "the VM stopped {stage} before all commands finished"
            ));
        }
        KernelOutcome::Finished
    }
}

fn spawn_reader<R: Read + Send + 'static>(
    stream: Option<R>,
    tx: Sender<Msg>,
    wrap: fn(String) -> Msg,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        if let Some(stream) = stream {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    // The guest's bytes are not necessarily UTF-8.
                    Ok(_) => {
                        if tx
                            .send(wrap(String::from_utf8_lossy(&buf).into_owned()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }
        let _ = tx.send(Msg::Eof);
    })
}

fn kill(child: &mut Child, label: &str) {
    if let Ok(None) = child.try_wait() {
        eprintln!("{label}| vmtest: stopping QEMU (pid {})", child.id());
        // Fails only if the child already exited, which is what we want anyway.
        let _ = child.kill();
    }
}

/// `6.1.0-56-cloud-amd64` → `6.1.0-56`: the flavour is the same for every kernel here.
pub fn short_name(release: &str) -> String {
    release
        .strip_suffix("-cloud-amd64")
        .unwrap_or(release)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(lines: &[&str], commands: usize) -> (Follow, KernelReport) {
        let mut report = KernelReport::new("pkg".into());
        report.commands = (0..commands)
            .map(|i| CommandReport::new(format!("c{i}")))
            .collect();
        let mut state = Follow::default();
        let start = Instant::now();
        for line in lines {
            state.on_line(line, start, &mut report);
        }
        (state, report)
    }

    #[test]
    fn a_clean_run() {
        let (state, report) = follow(
            &[
                "Booting from ROM..vmtest: init uptime=1.85 release=6.1.0-56-cloud-amd64",
                "vmtest: begin 1",
                "6.1.0-56-cloud-amd64",
                "vmtest: end 1 status=0",
                "vmtest: begin 2",
                "partial linevmtest: end 2 status=3",
                "vmtest: done",
            ],
            2,
        );
        assert_eq!(report.guest_uptime_at_init, Some(1.85));
        assert_eq!(report.release.as_deref(), Some("6.1.0-56-cloud-amd64"));
        assert_eq!(report.commands[0].output, ["6.1.0-56-cloud-amd64"]);
        assert!(report.commands[0].passed());
        assert_eq!(report.commands[1].status, Some(3));
        assert_eq!(report.commands[1].output, ["partial line"]);
        let outcome = state.outcome(Duration::from_secs(60), "exit status: 0".into(), &report);
        assert_eq!(outcome, KernelOutcome::Finished);
    }

    #[test]
    fn a_panic_mid_command() {
        let (state, report) = follow(
            &[
                "vmtest: init uptime=2.0 release=x",
                "vmtest: begin 1",
                "[    3.1] Kernel panic - not syncing: sysrq triggered crash",
            ],
            2,
        );
        assert!(
            state.stop_at.is_some(),
            "a fatal message schedules the kill"
        );
        let outcome = state.outcome(Duration::from_secs(60), "exit status: 0".into(), &report);
        let KernelOutcome::Failed(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(why.contains("during command 1"), "{why}");
        assert!(why.contains("Kernel panic"), "{why}");
    }

    #[test]
    fn no_init_means_no_boot() {
        let (state, report) = follow(&["SeaBIOS (version 1.16.2)"], 1);
        let outcome = state.outcome(Duration::from_secs(60), "exit status: 1".into(), &report);
        assert!(matches!(outcome, KernelOutcome::Failed(ref w) if w.contains("before /init")));
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("6.1.0-56-cloud-amd64"), "6.1.0-56");
        assert_eq!(short_name("6.18.0"), "6.18.0");
    }
}
