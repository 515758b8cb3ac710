//! Throughput and memory of [`SshClient::exec`] on a long stream: starts the conformance
//! kit's sshd peer on loopback, streams `head -c SIZE /dev/zero` from it (or, with `cat`,
//! feeds SIZE bytes through a remote `cat` and reads them back at once), counts the bytes,
//! and prints MB/s and the peak RSS of this process.
//!
//! usage: `ssh_stream [SIZE] [zero|cat]`; SIZE in bytes or with K/M/G/T (binary) suffix,
//! default 20G. See `scripts/bench-ssh.sh`.

use std::time::{Duration, Instant};

use hoard::client::ssh::{SshClient, SshSettings};
use hoard::client::{ClientConnector, ExitStatus, RemoteProcess};
use hoard_conformance::peers::SshdPeer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let size = parse_size(&args.next().unwrap_or_else(|| "20G".into()))?;
    let mode = args.next().unwrap_or_else(|| "zero".into());

    let peer = SshdPeer::start()?;
    let client = SshClient::new(SshSettings {
        address: peer.address().into(),
        port: peer.port(),
        user: peer.user().into(),
        private_key: peer.client_key(),
        known_hosts: peer.known_hosts(),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(10),
    })
    .await?;
    // Connect first, so the timing below is the stream only.
    let warmup = client.exec(&[b"/bin/true".to_vec()]).await?;
    let _ = warmup.exit.await;

    let started = Instant::now();
    let (received, status) = match mode.as_str() {
        "zero" => {
            let argv = [
                b"/usr/bin/head".to_vec(),
                b"-c".to_vec(),
                size.to_string().into_bytes(),
                b"/dev/zero".to_vec(),
            ];
            let process = client.exec(&argv).await?;
            drain(process, None).await?
        }
        "cat" => {
            let process = client.exec(&[b"/bin/cat".to_vec()]).await?;
            drain(process, Some(size)).await?
        }
        other => return Err(format!("unknown mode {other:?}: zero or cat").into()),
    };
    let seconds = started.elapsed().as_secs_f64();
    if received != size || status != ExitStatus::Code(0) {
        return Err(format!("received {received} of {size} bytes, exit {status:?}").into());
    }
    let mb_per_s = received as f64 / seconds / 1e6;
    println!(
        "mode {mode}: {received} bytes ({:.2} GiB) in {seconds:.2} s = {mb_per_s:.1} MB/s ({:.1} MiB/s); peak RSS (VmHWM) {}",
        received as f64 / (1u64 << 30) as f64,
        received as f64 / seconds / (1u64 << 20) as f64,
        peak_rss().unwrap_or_else(|| "unknown".into()),
    );
    drop(peer);
    Ok(())
}

/// Reads stdout to the end (feeding `feed` zero bytes to stdin meanwhile, if given) and
/// returns the byte count and the exit status.
async fn drain(process: RemoteProcess, feed: Option<u64>) -> Result<(u64, ExitStatus), Error> {
    let RemoteProcess {
        mut stdin,
        mut stdout,
        mut stderr,
        exit,
        kill_on_drop,
    } = process;
    let writer = tokio::spawn(async move {
        if let Some(mut left) = feed {
            let chunk = vec![0u8; 256 * 1024];
            while left > 0 {
                let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
                stdin.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
        }
        stdin.shutdown().await
    });
    let errors = tokio::spawn(async move {
        let mut text = Vec::new();
        stderr.read_to_end(&mut text).await.map(|_| text)
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    writer.await??;
    let text = errors.await??;
    if !text.is_empty() {
        eprintln!("remote stderr: {}", String::from_utf8_lossy(&text));
    }
    let status = exit.await?;
    drop(kill_on_drop);
    Ok((total, status))
}

fn parse_size(text: &str) -> Result<u64, Error> {
    let text = text.trim().trim_end_matches("iB").trim_end_matches('B');
    let (digits, shift) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 10),
        Some('M' | 'm') => (&text[..text.len() - 1], 20),
        Some('G' | 'g') => (&text[..text.len() - 1], 30),
        Some('T' | 't') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let n: u64 = digits.parse()?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text} too large").into())
}

/// This process's peak resident set size, from `/proc/self/status`.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_owned())
}
