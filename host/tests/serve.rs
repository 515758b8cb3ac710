//! A real `hoard serve` on a short wakeup schedule backs up two sshd-served hosts at once;
//! a second server on the same pool is refused; `hoard backup` queues into the server;
//! SIGTERM arrives while one backup runs; the pool is then consistent (fsck finds nothing),
//! the stopped backup is recorded as partial, and after a restart the next backup completes
//! and restores byte for byte.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoard_conformance::fixture::{build_tree, describe_tree, differences};
use hoard_conformance::peers::SshdPeer;
use hoard_pool::{FsckOptions, Pool};

fn hoard(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hoard"));
    command.arg("--config").arg(config).env("TZ", "UTC");
    command
}

fn run(config: &Path, args: &[&str]) -> (bool, String) {
    let output = hoard(config).args(args).output().expect("run hoard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn status(config: &Path) -> Option<serde_json::Value> {
    let (ok, text) = run(config, &["status", "--json"]);
    if !ok {
        return None;
    }
    serde_json::from_str(&text).ok()
}

/// Waits up to `limit` for `check` to hold on the server's status.
fn wait_for(
    config: &Path,
    limit: Duration,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) {
    let started = Instant::now();
    loop {
        if let Some(s) = status(config)
            && check(&s)
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "timed out waiting for {what}: {:?}",
            status(config)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wakeup hours every three seconds for the next ten minutes, in UTC, starting soon.
fn soon_and_often() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let hours: Vec<String> = (1..200)
        .map(|k| ((now + 2 + 3 * k) % 86_400) as f64 / 3600.0)
        .map(|h| format!("{h:.6}"))
        .collect();
    format!("[{}]", hours.join(", "))
}

fn host_file(peer: &SshdPeer, share: &Path) -> String {
    format!(
        "(address: \"127.0.0.1\", ssh: (user: {:?}, port: {}, key: {:?}, known_hosts: {:?}), shares: [{:?}])",
        peer.user(),
        peer.port(),
        peer.client_key().display().to_string(),
        peer.known_hosts().display().to_string(),
        share.display().to_string(),
    )
}

fn write_config(dir: &Path, pool: &Path, hosts: &[(&str, String)]) {
    common::write_global_config(
        dir,
        pool,
        &format!(
            "defaults: (transport: \"tar\", blackout_periods: []), server: (wakeup_schedule: {}, max_backups: 2, ping_max_rtt: \"2s\")",
            soon_and_often()
        ),
    );
    for (name, text) in hosts {
        std::fs::write(dir.join(format!("hosts/{name}.ron")), text).expect("host file");
    }
}

/// Files of incompressible content, so the backup takes a few seconds.
fn big_tree(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir).expect("dir");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for n in 0..files {
        let mut file = std::fs::File::create(dir.join(format!("f{n:04}.bin"))).expect("file");
        let mut block = vec![0u8; 1 << 20];
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        file.write_all(&block).expect("write");
    }
}

/// A running `hoard serve`, killed if the test fails before it stops it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_server(config: &Path, log: &Path) -> Server {
    Server(
        hoard(config)
            .arg("serve")
            .env("HOARD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("hoard serve"),
    )
}

fn terminate(server: &mut Server) {
    let server = &mut server.0;
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.try_wait().expect("wait") {
            assert!(status.success(), "hoard serve exited with {status}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn history(pool: &Path, host: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(pool.join(format!("history/{host}.jsonl")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn serve_backs_up_two_hosts_survives_sigterm_and_resumes() {
    let alpha_peer =
        SshdPeer::start().expect("sshd peer (run conformance/scripts/install-peers.sh)");
    let beta_peer = SshdPeer::start().expect("second sshd peer");
    let work = tempfile::tempdir().expect("tempdir");
    let alpha_share = work.path().join("alpha/data");
    build_tree(&alpha_share).expect("fixture tree");
    let beta_share = work.path().join("beta/data");
    big_tree(&beta_share, 300);
    let config = work.path().join("config");
    let pool: PathBuf = work.path().join("pool");
    write_config(
        &config,
        &pool,
        &[
            ("alpha", host_file(&alpha_peer, &alpha_share)),
            ("beta", host_file(&beta_peer, &beta_share)),
        ],
    );

    let server_log = work.path().join("serve-1.log");
    let mut server = start_server(&config, &server_log);
    // Both hosts start at the first wakeup and run at once.
    wait_for(
        &config,
        Duration::from_secs(30),
        "two running backups",
        |s| s["running"].as_array().map(Vec::len) == Some(2),
    );

    // A second server on the same pool is refused, clearly.
    let (ok, text) = run(&config, &["serve"]);
    assert!(!ok && text.contains("in use"), "{text}");
    // A user's backup of a busy host is refused by the server, not run beside it.
    let (ok, text) = run(&config, &["backup", "alpha"]);
    assert!(!ok && text.contains("already"), "{text}");

    // Alpha (small) completes; beta is stopped by SIGTERM while it runs.
    wait_for(
        &config,
        Duration::from_secs(60),
        "alpha done, beta moving",
        |s| {
            let running = s["running"].as_array().cloned().unwrap_or_default();
            running.len() == 1
                && running[0]["job"]["host"] == "beta"
                && running[0]["bytes"].as_u64().unwrap_or(0) > 0
        },
    );
    terminate(&mut server);
    assert!(!pool.join("control.sock").exists());

    let alpha_history = history(&pool, "alpha");
    assert_eq!(alpha_history[0]["result"], "ok", "{alpha_history:?}");
    assert_eq!(alpha_history[0]["kind"], "full");
    let beta_history = history(&pool, "beta");
    assert_eq!(
        beta_history.last().map(|r| r["result"].clone()),
        Some("partial".into()),
        "{beta_history:?}"
    );
    {
        let opened = Pool::open(&pool).expect("pool opens after SIGTERM");
        let report = opened.fsck(&FsckOptions::default()).expect("fsck");
        assert!(
            report.corrupt.is_empty()
                && report.missing.is_empty()
                && report.damaged_snapshots.is_empty(),
            "{report:?}"
        );
        let beta = opened.snapshots("beta").expect("snapshots");
        assert_eq!(beta.len(), 1);
        assert!(beta[0].partial);
    }
    let log = std::fs::read_to_string(pool.join("logs/server.log")).expect("server log");
    assert!(log.contains("nightly"), "{log}");
    assert!(log.contains("stopping"), "{log}");

    // After a restart the next wakeup runs beta again, with the partial one as its reference,
    // and it completes.
    let mut server = start_server(&config, &work.path().join("serve-2.log"));
    wait_for(&config, Duration::from_secs(90), "beta complete", |s| {
        s["hosts"]
            .as_array()
            .and_then(|hosts| hosts.iter().find(|h| h["host"] == "beta"))
            .is_some_and(|h| !h["last_backup"].is_null())
    });
    // Alpha is up to date: nothing new runs for it.
    assert_eq!(history(&pool, "alpha").len(), 1);

    // A config that does not parse is reported with its place on SIGHUP, and the config in
    // force stays: the server still answers and knows both hosts.
    let good = std::fs::read_to_string(config.join("hoard.ron")).expect("hoard.ron");
    std::fs::write(config.join("hoard.ron"), "(pool: 12,\n").expect("break hoard.ron");
    Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .expect("kill -HUP");
    let started = Instant::now();
    let log_path = pool.join("logs/server.log");
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("not reloaded")) {
            assert!(line.contains("hoard.ron:1:"), "{line}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no reload report:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // (The CLI reads the broken config itself, so ask the socket directly.)
    let mut socket = std::os::unix::net::UnixStream::connect(pool.join("control.sock"))
        .expect("the server still listens");
    socket
        .write_all(b"{\"request\":\"status\"}\n")
        .expect("request");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut socket, &mut answer).expect("answer");
    let s: serde_json::Value = serde_json::from_str(&answer).expect("json answer");
    assert_eq!(s["hosts"].as_array().map(Vec::len), Some(2), "{s}");
    std::fs::write(config.join("hoard.ron"), good).expect("restore hoard.ron");
    terminate(&mut server);
    let beta_history = history(&pool, "beta");
    assert_eq!(
        beta_history.last().map(|r| r["result"].clone()),
        Some("ok".into())
    );

    // The completed backup restores byte for byte.
    let restored = work.path().join("restored");
    let (ok, text) = run(
        &config,
        &[
            "restore",
            "beta",
            beta_share.to_str().expect("utf-8"),
            "--to",
            restored.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "{text}");
    let diff = differences(
        &describe_tree(&beta_share).expect("describe"),
        &describe_tree(&restored).expect("describe"),
    );
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}
