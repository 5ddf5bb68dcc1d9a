//! The dashboard end to end (issue 5): the real `zcprof` on a real terminal (a tmux pane),
//! driven with `tmux send-keys` and read with `tmux capture-pane`. It starts a known demo
//! from the demos tab and requires its worker to show a non-zero copied rate, narrows the
//! table with `/`, and quits with `q`, after which the shell must be usable again (prompt
//! back, alternate screen left, cursor shown, canonical mode) and the demo gone. A panic
//! inside the dashboard's terminal handling (this test binary itself, run in the pane) must
//! give the terminal back just as well, and `NO_COLOR` must leave the screen uncolored.
//! Every wait is a bounded poll with a deadline.

mod common;

use std::{
    path::Path,
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
    thread::sleep,
    time::{Duration, Instant},
};

use common::{demo_bin, privileged};
use regex::Regex;

/// A tmux server of our own (its own socket, one per test: tests run side by side), killed
/// on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16) -> Tmux {
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        let tmux = Tmux {
            socket: format!(
                "zcprof-dashboard-test-{}-{}",
                std::process::id(),
                SERVERS.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "t", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .args(["bash", "--norc", "--noprofile"])
            .env_remove("NO_COLOR")
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// Sends keys by tmux name (`Enter`, `Down`, `q`, …).
    fn keys(&self, keys: &[&str]) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        self.capture(&[])
    }

    /// The screen with its attributes as escape sequences (`capture-pane -e`).
    fn screen_with_styles(&self) -> String {
        self.capture(&["-e"])
    }

    fn capture(&self, flags: &[&str]) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "t"])
            .args(flags)
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a shell prompt we can recognise (`READY>`) and waits for it.
    fn ready(&self) {
        self.type_text("export PS1='READY> '");
        self.keys(&["Enter"]);
        self.wait_for("the shell prompt", Duration::from_secs(10), |s| {
            s.lines().any(|l| l.trim_end() == "READY>")
        });
    }

    /// After the program in the pane ended: the prompt is back, the alternate screen left,
    /// the cursor shown and the terminal in canonical mode again.
    fn assert_shell_usable(&self) {
        self.wait_for("the prompt after quitting", Duration::from_secs(10), |s| {
            s.lines().rfind(|l| !l.trim().is_empty()).map(str::trim_end) == Some("READY>")
        });
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "still on the alternate screen"
        );
        assert_eq!(self.display("#{cursor_flag}"), "1", "the cursor is hidden");
        self.type_text("stty -a | grep -o -- '-\\?icanon'; echo usable-$((6*7))");
        self.keys(&["Enter"]);
        let screen = self.wait_for("the shell to answer", Duration::from_secs(10), |s| {
            s.contains("usable-42")
        });
        assert!(
            screen.lines().any(|l| l.trim() == "icanon"),
            "the terminal was left in raw mode:\n{screen}"
        );
    }

    fn display(&self, format: &str) -> String {
        let out = self
            .cmd()
            .args(["display-message", "-p", "-t", "t", format])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls the screen until `ok` holds, or panics with the last screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// Whether tmux can run; under CI its absence is a failure (`cargo xtask setup` installs it).
fn tmux_available(test: &str) -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: CI=true but tmux is not installed (cargo xtask setup installs it)");
        }
        eprintln!("skipping {test}: tmux is not installed");
    }
    found
}

/// Parses `1.5 MiB` into bytes.
fn bytes(number: &str, unit: &str) -> f64 {
    let n: f64 = number.parse().expect("number");
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    };
    n * scale
}

/// Process-table rows on the screen: (pid, comm, copied bytes/s).
fn table_rows(screen: &str) -> Vec<(u32, String, f64)> {
    // The CONTAINER column, where the terminal has room for it, holds a label that never
    // starts with a digit (`?`, `unit cron.service`, `docker 0123456789ab`).
    let row = Regex::new(
        r"^(\d+)\s+(\S+)(?: \(exited\))?\s+(?:\D.*?\s{2,})?(\d+(?:\.\d+)?) (B|KiB|MiB|GiB|TiB)\s",
    )
    .expect("regex");
    screen
        .lines()
        .filter_map(|l| {
            let c = row.captures(l)?;
            Some((c[1].parse().ok()?, c[2].to_string(), bytes(&c[3], &c[4])))
        })
        .collect()
}

#[test]
fn dashboard_in_tmux_shows_a_demo_filters_and_quits_cleanly() {
    if !privileged("dashboard_in_tmux_shows_a_demo_filters_and_quits_cleanly") {
        return;
    }
    if !tmux_available("dashboard_in_tmux_shows_a_demo_filters_and_quits_cleanly") {
        return;
    }
    let demo = demo_bin();
    let scenario = "file-copy";
    let index = zcprof_demos::scenarios()
        .iter()
        .position(|s| s.name == scenario)
        .expect("file-copy is bundled");

    let tmux = Tmux::start(150, 45);
    tmux.ready();
    tmux.type_text(&format!(
        "ZCPROF_DEMO={} {} top -i 500ms",
        demo.display(),
        env!("CARGO_BIN_EXE_zcprof")
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the dashboard", Duration::from_secs(30), |s| {
        s.contains("processes · syscall layer") && s.contains("layers: syscall live")
    });

    // Start the copying baseline of file-copy from the demos tab.
    tmux.keys(&["2"]);
    for _ in 0..index {
        tmux.keys(&["Down"]);
    }
    tmux.wait_for("file-copy selected", Duration::from_secs(5), |s| {
        s.contains(&format!("▶ {scenario}"))
    });
    tmux.keys(&["Enter"]);
    let worker_rate =
        Regex::new(r"\bcopy (\d+(?:\.\d+)?) (B|KiB|MiB|GiB|TiB)/s zc").expect("regex");
    let running = Regex::new(r"running, pid (\d+)").expect("regex");
    let screen = tmux.wait_for(
        "the demo's worker with a non-zero copied rate",
        Duration::from_secs(30),
        |s| {
            running.is_match(s)
                && worker_rate
                    .captures_iter(s)
                    .any(|c| bytes(&c[1], &c[2]) > 0.0)
        },
    );
    let demo_pid: u32 = running.captures(&screen).expect("pid")[1]
        .parse()
        .expect("pid number");
    // The same worker is in the process table below, copying.
    let screen = tmux.wait_for(
        "zcprof-demo copying in the process table",
        Duration::from_secs(10),
        |s| {
            table_rows(s)
                .iter()
                .any(|(_, comm, copied)| comm == "zcprof-demo" && *copied > 0.0)
        },
    );
    println!("demos tab:\n{screen}");

    // `/` narrows the process table to the demo.
    tmux.keys(&["1"]);
    let before = tmux.wait_for(
        "several processes in the table",
        Duration::from_secs(10),
        |s| {
            let rows = table_rows(s);
            rows.len() >= 2 && rows.iter().any(|(_, comm, _)| comm != "zcprof-demo")
        },
    );
    let before = table_rows(&before).len();
    tmux.keys(&["/"]);
    tmux.type_text("zcprof-demo");
    tmux.keys(&["Enter"]);
    let after = tmux.wait_for("the filtered table", Duration::from_secs(10), |s| {
        let rows = table_rows(s);
        s.contains("filter \"zcprof-demo\"")
            && !rows.is_empty()
            && rows.iter().all(|(_, comm, _)| comm == "zcprof-demo")
    });
    let after_rows = table_rows(&after);
    assert!(
        after_rows.len() < before,
        "the filter did not narrow the table ({before} → {})",
        after_rows.len()
    );
    println!("filtered:\n{after}");

    // The detail view's threads panel (`t`) says how to get the split without --threads.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the detail view", Duration::from_secs(10), |s| {
        s.contains("command line:")
    });
    tmux.keys(&["t"]);
    tmux.wait_for("the threads panel", Duration::from_secs(10), |s| {
        s.contains("start zcprof with --threads")
    });
    tmux.keys(&["Escape"]);
    tmux.keys(&["Escape"]);
    // `C` groups the processes by container or cgroup; Enter filters the table to one.
    tmux.keys(&["C"]);
    let groups = tmux.wait_for("the groups view", Duration::from_secs(10), |s| {
        s.contains("containers and cgroups") && s.contains("CONTAINER / CGROUP")
    });
    println!("groups:\n{groups}");
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "the table filtered to a group",
        Duration::from_secs(10),
        |s| s.contains("processes · syscall layer") && s.contains("filter \"^"),
    );

    // `q` quits, restores the terminal and stops the demo.
    tmux.keys(&["q"]);
    tmux.assert_shell_usable();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{demo_pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the demo (pid {demo_pid}) outlived the dashboard"
        );
        sleep(Duration::from_millis(100));
    }
}

/// The pid of the shell's child named `comm` in the pane, once it runs.
fn pane_child(tmux: &Tmux, comm: &str) -> u32 {
    let shell = tmux.display("#{pane_pid}");
    common::wait_for(
        "the pane's zcprof",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let children =
                std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
            children.split_whitespace().find_map(|pid| {
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                (name.trim() == comm).then(|| pid.parse().ok())?
            })
        },
    )
}

/// zcprof's own process is no row of the table (its BTF and /proc reads would be, today),
/// and the header shows its cost apart; `--include-self` lists it.
#[test]
fn dashboard_leaves_zcprof_itself_out_and_shows_its_cost() {
    if !privileged("dashboard_leaves_zcprof_itself_out_and_shows_its_cost") {
        return;
    }
    if !tmux_available("dashboard_leaves_zcprof_itself_out_and_shows_its_cost") {
        return;
    }
    let own_cost =
        Regex::new(r"zcprof itself( \(not listed\))?: CPU \d+\.\d%, moved \d").expect("regex");
    for include_self in [false, true] {
        let tmux = Tmux::start(150, 45);
        tmux.ready();
        tmux.type_text(&format!(
            "{} top -i 500ms{}",
            env!("CARGO_BIN_EXE_zcprof"),
            if include_self { " --include-self" } else { "" }
        ));
        tmux.keys(&["Enter"]);
        let pid = pane_child(&tmux, "zcprof");
        // A few batches: zcprof's reads at start-up are in its totals by then.
        tmux.wait_for("the dashboard's own cost", Duration::from_secs(30), |s| {
            own_cost
                .captures(s)
                .is_some_and(|c| c.get(1).is_some() != include_self)
                && !table_rows(s).is_empty()
        });
        sleep(Duration::from_secs(1));
        let screen = if include_self {
            tmux.wait_for("zcprof's row", Duration::from_secs(10), |s| {
                table_rows(s).iter().any(|(p, _, _)| *p == pid)
            })
        } else {
            let now = tmux.screen();
            assert!(
                table_rows(&now).iter().all(|(p, _, _)| *p != pid),
                "zcprof (pid {pid}) has a row:\n{now}"
            );
            now
        };
        println!("include_self {include_self}:\n{screen}");
        tmux.keys(&["q"]);
        tmux.assert_shell_usable();
    }
}

/// What the panicking child draws before its panic, and the panic's message.
const PANIC: &str = "a test panic inside the dashboard";

#[test]
fn a_panic_in_the_dashboard_gives_the_terminal_back_and_no_color_holds() {
    if !tmux_available("a_panic_in_the_dashboard_gives_the_terminal_back_and_no_color_holds") {
        return;
    }
    let tmux = Tmux::start(120, 40);
    tmux.ready();
    // This test binary, running only its child test below, in the pane.
    let exe = std::env::current_exe().expect("the test binary");
    tmux.type_text(&format!(
        "NO_COLOR=1 RUST_BACKTRACE=0 {} --ignored --exact panicking_dashboard --nocapture --test-threads=1; echo child-status-$?",
        exe.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the dashboard", Duration::from_secs(30), |s| {
        s.contains("processes · syscall layer") && s.contains(" 2 demos ")
    });
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "not on the alternate screen"
    );
    // SGR parameters that set a foreground color: 30-37, 38;…, 90-97.
    let color = Regex::new(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])(?:[;m])").expect("regex");
    let styled = tmux.screen_with_styles();
    assert!(
        !color.is_match(&styled),
        "NO_COLOR=1, yet colored:\n{styled:?}"
    );
    assert!(
        styled.contains("\x1b[7m"),
        "reverse video stays without color:\n{styled:?}"
    );

    tmux.keys(&["x"]);
    // The typed command line has `child-status-$?`; its answer has the status.
    let status = Regex::new(r"child-status-(\d+)").expect("regex");
    let screen = tmux.wait_for("the child to end", Duration::from_secs(30), |s| {
        status.is_match(s)
    });
    assert!(
        screen.contains(PANIC),
        "the panic message is not shown:\n{screen}"
    );
    assert_eq!(
        &status.captures(&screen).expect("status")[1],
        "0",
        "the child did not panic as it should:\n{screen}"
    );
    tmux.assert_shell_usable();
}

/// The child of the test above, run in its tmux pane: the dashboard drawn on the terminal
/// that `zcprof::ui::on_terminal` takes over, panicking at the first key.
#[test]
#[ignore = "run in a tmux pane by a_panic_in_the_dashboard_gives_the_terminal_back_and_no_color_holds"]
#[should_panic(expected = "a test panic inside the dashboard")]
fn panicking_dashboard() {
    use crossterm::event::{Event, read};
    use zcprof::ui::{App, HostInfo, demos::DemoScenario, draw, theme::color_enabled};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut app = App::new(HostInfo::default(), DemoScenario::catalogue());
    app.shared.color = color_enabled();
    let outcome: anyhow::Result<()> = runtime.block_on(zcprof::ui::on_terminal(async |terminal| {
        terminal.draw(|f| draw(f, &app))?;
        while !matches!(read()?, Event::Key(_)) {}
        panic!("{PANIC}");
    }));
    outcome.expect("the terminal was taken over");
}

/// With `--stacks`, the detail view of a process that copies lists its call sites of the
/// last minute (a `dd` here: Debian's, built without frame pointers, so its stack is cut
/// short but its call site is still named, from libc's `read`).
#[test]
fn the_detail_view_shows_the_call_sites_with_stacks() {
    if !privileged("the_detail_view_shows_the_call_sites_with_stacks") {
        return;
    }
    if !tmux_available("the_detail_view_shows_the_call_sites_with_stacks") {
        return;
    }
    let mut dd = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=1M", "status=none"])
        .spawn()
        .expect("dd runs");
    let tmux = Tmux::start(150, 50);
    tmux.ready();
    tmux.type_text(&format!(
        "{} --stacks top -i 500ms",
        env!("CARGO_BIN_EXE_zcprof")
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the dashboard", Duration::from_secs(30), |s| {
        s.contains("processes · syscall layer") && s.contains("stacks live")
    });
    tmux.keys(&["/"]);
    tmux.type_text(&dd.id().to_string());
    tmux.keys(&["Enter"]);
    tmux.wait_for("dd alone in the table", Duration::from_secs(10), |s| {
        let rows = table_rows(s);
        rows.len() == 1 && rows[0].1 == "dd"
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("dd's call sites", Duration::from_secs(15), |s| {
        s.contains("stacks layer · call sites, last minute") && s.contains("read() in ")
    });
    println!("detail with call sites:\n{screen}");
    tmux.keys(&["q"]);
    tmux.assert_shell_usable();
    let _ = dd.kill();
    let _ = dd.wait();
}
