//! The ssh client against a real OpenSSH server on loopback (the conformance kit's
//! [`SshdPeer`]), and the local client against the same expectations where they apply.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hoard::client::local::LocalClient;
use hoard::client::ssh::{SshClient, SshSettings};
use hoard::client::{ClientConnector, ClientError, ExitStatus, RemoteProcess};
use hoard_conformance::peers::{SshdPeer, free_port, generate_ed25519_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

fn settings(peer: &SshdPeer) -> SshSettings {
    SshSettings {
        address: peer.address().to_owned(),
        port: peer.port(),
        user: peer.user().to_owned(),
        private_key: peer.client_key(),
        known_hosts: peer.known_hosts(),
        accept_new_host_keys: false,
        connect_timeout: TIMEOUT,
    }
}

async fn client(peer: &SshdPeer) -> SshClient {
    SshClient::new(settings(peer)).await.expect("client")
}

fn argv(words: &[&[u8]]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.to_vec()).collect()
}

/// Everything a finished program produced.
#[derive(Debug)]
struct Finished {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: ExitStatus,
}

/// Runs `argv` with `input` on stdin, reading both outputs at once, with a deadline.
async fn run(client: &dyn ClientConnector, words: &[&[u8]], input: &[u8]) -> Finished {
    let process = client.exec(&argv(words)).await.expect("exec");
    tokio::time::timeout(Duration::from_secs(60), collect(process, input.to_vec()))
        .await
        .expect("program finished in time")
}

async fn collect(process: RemoteProcess, input: Vec<u8>) -> Finished {
    let RemoteProcess {
        mut stdin,
        mut stdout,
        mut stderr,
        exit,
        kill_on_drop,
    } = process;
    let writer = tokio::spawn(async move {
        if !input.is_empty() {
            stdin.write_all(&input).await.expect("write stdin");
        }
        stdin.shutdown().await.expect("close stdin");
    });
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    a.expect("read stdout");
    b.expect("read stderr");
    writer.await.expect("writer task");
    let status = exit.await.expect("exit status");
    drop(kill_on_drop);
    Finished {
        stdout: out,
        stderr: err,
        status,
    }
}

/// Pseudo-random bytes (xorshift), with `ff fe` and every byte value present.
fn test_bytes(len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len);
    data.extend_from_slice(&[0xff, 0xfe, 0x00, 0x0a, 0x0d, b'\'']);
    data.extend((0..=255u8).rev());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// Feeds `data` to `cat` and drains its output at the same time; returns the output's
/// length and BLAKE3 hash.
async fn cat_round_trip(client: &dyn ClientConnector, cat: &[u8], data: Arc<Vec<u8>>) {
    let process = client.exec(&argv(&[cat])).await.expect("exec cat");
    let RemoteProcess {
        mut stdin,
        mut stdout,
        stderr,
        exit,
        kill_on_drop,
    } = process;
    let input = Arc::clone(&data);
    let writer = tokio::spawn(async move {
        for chunk in input.chunks(1 << 20) {
            stdin.write_all(chunk).await?;
        }
        stdin.shutdown().await
    });
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0usize;
    loop {
        let n = stdout.read(&mut buf).await.expect("read stdout");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n;
    }
    writer.await.expect("writer task").expect("write stdin");
    assert_eq!(exit.await.expect("exit status"), ExitStatus::Code(0));
    drop((stderr, kill_on_drop));
    assert_eq!(total, data.len(), "byte count through cat");
    assert_eq!(
        hasher.finalize(),
        blake3::hash(&data),
        "content through cat differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_round_trip_is_binary_exact_and_full_duplex() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    let data = Arc::new(test_bytes(64 << 20));
    let started = Instant::now();
    cat_round_trip(&client, b"/bin/cat", data).await;
    eprintln!("64 MiB through ssh cat in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cat_round_trip_is_binary_exact() {
    let data = Arc::new(test_bytes(64 << 20));
    cat_round_trip(&LocalClient, b"/bin/cat", data).await;
}

#[tokio::test]
async fn stdout_and_stderr_stay_apart() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    let done = run(
        &client,
        &[
            b"/bin/sh",
            b"-c",
            b"printf out1; printf err1 >&2; printf out2; printf err2 >&2",
        ],
        b"",
    )
    .await;
    assert_eq!(done.stdout, b"out1out2");
    assert_eq!(done.stderr, b"err1err2");
    assert_eq!(done.status, ExitStatus::Code(0));
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    let ok = run(&client, &[b"/bin/true"], b"").await;
    assert_eq!(ok.status, ExitStatus::Code(0));
    let three = run(&client, &[b"/bin/sh", b"-c", b"exit 3"], b"").await;
    assert_eq!(three.status, ExitStatus::Code(3));
    let killed = run(&client, &[b"/bin/sh", b"-c", b"kill -TERM $$"], b"").await;
    assert_eq!(killed.status, ExitStatus::Signal(15));
    let missing = run(&client, &[b"/nonexistent/program"], b"").await;
    assert_eq!(missing.status, ExitStatus::Code(127));
}

#[tokio::test]
async fn argv_reaches_the_remote_program_intact() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    let words: &[&[u8]] = &[
        b"two words",
        b"it's",
        b"\"double\"",
        b"line1\nline2",
        b"\xff\xfe\x80 not utf-8",
        b"",
        b"-n",
        b"$HOME `id` $(id) \\ * ; | &",
        b"'",
    ];
    let mut command: Vec<&[u8]> = vec![b"/usr/bin/printf", b"%s\\0"];
    command.extend_from_slice(words);
    let done = run(&client, &command, b"").await;
    let expected: Vec<u8> = words
        .iter()
        .flat_map(|w| w.iter().copied().chain([0]))
        .collect();
    assert_eq!(done.stdout, expected);
    assert_eq!(done.status, ExitStatus::Code(0));
}

#[tokio::test]
async fn a_nul_byte_in_argv_is_refused_before_connecting() {
    let port = free_port().expect("port");
    let client = SshClient::new(SshSettings {
        address: "127.0.0.1".into(),
        port,
        user: "nobody".into(),
        private_key: "/nonexistent".into(),
        known_hosts: "/nonexistent".into(),
        accept_new_host_keys: false,
        connect_timeout: TIMEOUT,
    })
    .await
    .expect("client");
    let error = client
        .exec(&argv(&[b"/bin/echo", b"a\0b"]))
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, ClientError::Spawn { .. }), "{error}");
    let error = client.exec(&[]).await.err().expect("refused");
    assert!(matches!(error, ClientError::Spawn { .. }), "{error}");
}

#[tokio::test]
async fn stdin_eof_reaches_the_remote_on_shutdown_and_on_drop() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    let done = run(&client, &[b"/usr/bin/wc", b"-c"], b"hello").await;
    assert_eq!(done.stdout, b"5\n");

    // Dropping stdin without shutdown also ends the input.
    let process = client
        .exec(&argv(&[b"/usr/bin/wc", b"-c"]))
        .await
        .expect("exec");
    let RemoteProcess {
        mut stdin,
        mut stdout,
        exit,
        kill_on_drop,
        ..
    } = process;
    stdin.write_all(b"abc").await.expect("write");
    drop(stdin);
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, stdout.read_to_end(&mut out))
        .await
        .expect("EOF reached the remote")
        .expect("read");
    assert_eq!(out, b"3\n");
    assert_eq!(exit.await.expect("status"), ExitStatus::Code(0));
    drop(kill_on_drop);
}

#[tokio::test]
async fn writing_to_a_finished_program_fails_instead_of_hanging() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    let process = client.exec(&argv(&[b"/bin/true"])).await.expect("exec");
    let RemoteProcess {
        mut stdin,
        exit,
        kill_on_drop,
        ..
    } = process;
    assert_eq!(exit.await.expect("status"), ExitStatus::Code(0));
    let chunk = vec![0u8; 1 << 20];
    let result = tokio::time::timeout(TIMEOUT, async {
        // More than any window: must fail once the channel is known closed.
        for _ in 0..64 {
            stdin.write_all(&chunk).await?;
        }
        Ok::<(), std::io::Error>(())
    })
    .await
    .expect("write did not hang");
    let error = result.expect_err("write to a closed channel");
    assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    drop(kill_on_drop);
}

fn process_is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for a late reaper has ended too.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Reads stdout up to the first newline: the remote program's pid.
async fn read_pid(stdout: &mut (dyn tokio::io::AsyncRead + Send + Unpin)) -> u32 {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let n = tokio::time::timeout(TIMEOUT, stdout.read(&mut byte))
            .await
            .expect("pid line in time")
            .expect("read");
        assert_ne!(n, 0, "stdout ended before the pid");
        line.push(byte[0]);
    }
    std::str::from_utf8(&line)
        .expect("utf-8")
        .trim()
        .parse()
        .expect("pid")
}

/// OpenSSH honours the `signal` request only for non-root logins (a root session runs in
/// the monitor, without privilege separation); the channel close that follows always
/// applies: sshd closes the program's pipes, so a program that writes (as every backup
/// stream does) dies of SIGPIPE.
#[tokio::test]
async fn dropping_the_process_stops_a_writing_remote_program() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    let process = client
        .exec(&argv(&[
            b"/bin/sh",
            b"-c",
            b"echo $$; while sleep 0.1; do echo tick; done",
        ]))
        .await
        .expect("exec");
    let RemoteProcess {
        stdin,
        mut stdout,
        stderr,
        exit,
        kill_on_drop,
    } = process;
    let pid = read_pid(&mut *stdout).await;
    assert!(
        !process_is_gone(pid),
        "remote shell {pid} should be running"
    );
    drop((stdin, stdout, stderr, kill_on_drop));
    let status = tokio::time::timeout(TIMEOUT, exit)
        .await
        .unwrap_or_else(|_| panic!("channel not closed in time; sshd log:\n{}", peer.log_tail()))
        .expect("status");
    assert_ne!(status, ExitStatus::Code(0));
    let deadline = Instant::now() + TIMEOUT;
    while !process_is_gone(pid) {
        assert!(Instant::now() < deadline, "remote shell {pid} still alive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn accepted_logins(peer: &SshdPeer) -> usize {
    std::fs::read_to_string(peer.dir().join("sshd.log"))
        .unwrap_or_default()
        .matches("Accepted publickey")
        .count()
}

#[tokio::test]
async fn one_connection_serves_several_programs_and_is_reopened_when_it_dies() {
    let peer = SshdPeer::start().expect("sshd peer");
    let client = client(&peer).await;
    assert_eq!(accepted_logins(&peer), 0, "connects lazily");
    // Two programs at once and one after: all on one login.
    let (a, b) = tokio::join!(
        run(&client, &[b"/bin/echo", b"a"], b""),
        run(&client, &[b"/bin/echo", b"b"], b"")
    );
    assert_eq!(
        (a.stdout.as_slice(), b.stdout.as_slice()),
        (&b"a\n"[..], &b"b\n"[..])
    );
    let c = run(&client, &[b"/bin/echo", b"c"], b"").await;
    assert_eq!(c.stdout, b"c\n");
    assert_eq!(accepted_logins(&peer), 1, "{}", peer.log_tail());

    // Kill the server side of the connection: the program's streams report the loss, it
    // has no exit status, and the next exec logs in again.
    let killed = client
        .exec(&argv(&[b"/bin/sh", b"-c", b"kill -KILL $PPID; sleep 5"]))
        .await
        .expect("exec");
    let RemoteProcess {
        mut stdout,
        exit,
        kill_on_drop,
        ..
    } = killed;
    let status = tokio::time::timeout(TIMEOUT, exit)
        .await
        .expect("channel ended in time")
        .expect("status");
    assert_eq!(status, ExitStatus::Unknown);
    let mut rest = Vec::new();
    let error = stdout
        .read_to_end(&mut rest)
        .await
        .expect_err("stream reports the loss");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
    drop(kill_on_drop);
    let deadline = Instant::now() + TIMEOUT;
    let d = loop {
        match client.exec(&argv(&[b"/bin/echo", b"d"])).await {
            Ok(process) => break collect(process, Vec::new()).await,
            Err(error) => {
                assert!(Instant::now() < deadline, "no reconnect: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(d.stdout, b"d\n");
    assert_eq!(accepted_logins(&peer), 2, "{}", peer.log_tail());

    // An explicit disconnect: the next exec connects again.
    client.disconnect().await;
    let e = run(&client, &[b"/bin/echo", b"e"], b"").await;
    assert_eq!(e.stdout, b"e\n");
    assert_eq!(accepted_logins(&peer), 3, "{}", peer.log_tail());
}

async fn exec_error(settings: SshSettings) -> ClientError {
    let client = SshClient::new(settings).await.expect("client");
    client
        .exec(&argv(&[b"/bin/true"]))
        .await
        .err()
        .expect("exec must fail")
}

fn write_known_hosts(path: &Path, port: u16, key_line: &str) {
    std::fs::write(path, format!("[127.0.0.1]:{port} {key_line}\n")).expect("known_hosts");
}

#[tokio::test]
async fn a_changed_host_key_is_refused_even_with_accept_new() {
    let peer = SshdPeer::start().expect("sshd peer");
    let scratch = tempfile::tempdir().expect("tempdir");
    let other = scratch.path().join("other");
    generate_ed25519_key(&other, "other").expect("keygen");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let other_line: String = other_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let known_hosts = scratch.path().join("known_hosts");
    write_known_hosts(&known_hosts, peer.port(), &other_line);
    let before = std::fs::read(&known_hosts).expect("read");
    for accept_new in [false, true] {
        let error = exec_error(SshSettings {
            known_hosts: known_hosts.clone(),
            accept_new_host_keys: accept_new,
            ..settings(&peer)
        })
        .await;
        assert!(
            matches!(error, ClientError::HostKeyChanged { .. }),
            "{error}"
        );
    }
    assert_eq!(
        std::fs::read(&known_hosts).expect("read"),
        before,
        "file untouched"
    );
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_without_accept_new() {
    let peer = SshdPeer::start().expect("sshd peer");
    let scratch = tempfile::tempdir().expect("tempdir");
    let known_hosts = scratch.path().join("known_hosts");
    // A key for another port does not vouch for this one.
    write_known_hosts(
        &known_hosts,
        peer.port() ^ 1,
        &peer.host_key_line().expect("key"),
    );
    let before = std::fs::read(&known_hosts).expect("read");
    let error = exec_error(SshSettings {
        known_hosts: known_hosts.clone(),
        ..settings(&peer)
    })
    .await;
    assert!(
        matches!(error, ClientError::HostKeyUnknown { .. }),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&known_hosts).expect("read"),
        before,
        "file untouched"
    );
}

#[tokio::test]
async fn an_unknown_host_key_is_learned_with_accept_new() {
    let peer = SshdPeer::start().expect("sshd peer");
    let scratch = tempfile::tempdir().expect("tempdir");
    let known_hosts = scratch.path().join("new").join("known_hosts");
    let learning = SshClient::new(SshSettings {
        known_hosts: known_hosts.clone(),
        accept_new_host_keys: true,
        ..settings(&peer)
    })
    .await
    .expect("client");
    let done = run(&learning, &[b"/bin/echo", b"hi"], b"").await;
    assert_eq!(done.stdout, b"hi\n");
    let learned = std::fs::read_to_string(&known_hosts).expect("learned file");
    let expected = format!(
        "[127.0.0.1]:{} {}",
        peer.port(),
        peer.host_key_line().expect("key")
    );
    assert_eq!(learned.trim(), expected);

    // The learned file now pins the key for a strict client.
    let strict = SshClient::new(SshSettings {
        known_hosts,
        ..settings(&peer)
    })
    .await
    .expect("client");
    let done = run(&strict, &[b"/bin/echo", b"again"], b"").await;
    assert_eq!(done.stdout, b"again\n");
}

#[tokio::test]
async fn a_wrong_client_key_is_refused() {
    let peer = SshdPeer::start().expect("sshd peer");
    let scratch = tempfile::tempdir().expect("tempdir");
    let stranger = scratch.path().join("stranger");
    generate_ed25519_key(&stranger, "stranger").expect("keygen");
    let error = exec_error(SshSettings {
        private_key: stranger,
        ..settings(&peer)
    })
    .await;
    assert!(matches!(error, ClientError::AuthRefused { .. }), "{error}");
}

#[tokio::test]
async fn an_unreadable_client_key_is_a_key_error() {
    let peer = SshdPeer::start().expect("sshd peer");
    let error = exec_error(SshSettings {
        private_key: peer.dir().join("no-such-key"),
        ..settings(&peer)
    })
    .await;
    assert!(matches!(error, ClientError::Key { .. }), "{error}");
}

#[tokio::test]
async fn a_closed_port_fails_within_the_timeout() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let key = scratch.path().join("key");
    generate_ed25519_key(&key, "key").expect("keygen");
    let port = free_port().expect("port");
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let error = exec_error(SshSettings {
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        private_key: key,
        known_hosts: "/nonexistent".into(),
        accept_new_host_keys: false,
        connect_timeout: timeout,
    })
    .await;
    assert!(started.elapsed() < timeout + Duration::from_secs(1));
    assert!(matches!(error, ClientError::Connect { .. }), "{error}");
}

#[tokio::test]
async fn a_silent_server_times_out_in_the_handshake() {
    // Accepts TCP connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let scratch = tempfile::tempdir().expect("tempdir");
    let key = scratch.path().join("key");
    generate_ed25519_key(&key, "key").expect("keygen");
    let timeout = Duration::from_millis(700);
    let started = Instant::now();
    let error = exec_error(SshSettings {
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        private_key: key,
        known_hosts: "/nonexistent".into(),
        accept_new_host_keys: false,
        connect_timeout: timeout,
    })
    .await;
    let elapsed = started.elapsed();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );
}
