//! Benchmark of the plugin boundary (issue 2's figures), with the `probe` test component:
//!
//! 1. file content through guest memory (`file-writer.write`) in 64 KiB and 1 MiB chunks;
//! 2. the host-side copy (`copy-from`) from a local `head -c N /dev/zero`, next to the
//!    source alone (`head -c N /dev/zero | cat > /dev/null` is what bounds it);
//! 3. plugin load: first (compile), cached, and per-job instantiation;
//! 4. an exec stream over ssh on loopback (`head -c SIZE /dev/zero` on the client) read by the
//!    plugin through guest memory, with the server's peak RSS.
//!
//! Run with `scripts/bench-plugin.sh [SSH_SIZE]` (release build).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoard::client::ClientConnector;
use hoard::client::local::LocalClient;
use hoard::client::ssh::{SshClient, SshSettings};
use hoard::plugin::bindings::{BackupJob, BackupLevel, Setting};
use hoard::plugin::cache::CompileCache;
use hoard::plugin::catalog::PluginSource;
use hoard::plugin::imports::sink::CountingSink;
use hoard::plugin::{CapabilityGrant, JobContext, PluginCatalog, PluginEngine, RuntimeLimits};

fn job(settings: &[(&str, String)]) -> BackupJob {
    BackupJob {
        host: "bench".into(),
        address: "127.0.0.1".into(),
        share: b"/".to_vec(),
        level: BackupLevel::Full,
        has_reference: false,
        includes: vec![],
        excludes: vec![],
        one_file_system: false,
        settings: settings
            .iter()
            .map(|(n, v)| Setting {
                name: n.to_string(),
                value: v.clone(),
            })
            .collect(),
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    format!("{:.2} GB/s", bytes as f64 / elapsed.as_secs_f64() / 1e9)
}

fn parse_size(s: &str) -> u64 {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().unwrap_or(1);
    n * match unit {
        "G" => 1 << 30,
        "M" => 1 << 20,
        "K" => 1 << 10,
        _ => 1,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ssh_size = std::env::args().nth(1).unwrap_or_else(|| "20G".into());
    let probe_path = std::path::Path::new(env!("HOARD_TEST_PLUGIN_DIR")).join("probe.wasm");
    let wasm = std::fs::read(&probe_path)?;
    let cache_dir = tempfile::tempdir()?;
    let engine =
        PluginEngine::new(CompileCache::in_dir(cache_dir.path())).map_err(|e| format!("{e:#}"))?;
    let limits = RuntimeLimits::default();

    // 3. Loads.
    let started = Instant::now();
    let catalog = PluginCatalog::load(engine.clone(), limits.clone(), None).await?;
    let builtins = started.elapsed();
    let started = Instant::now();
    let _ = catalog
        .load_component(&wasm, PluginSource::File(probe_path.clone()))
        .await?;
    let first = started.elapsed();
    let started = Instant::now();
    let probe = catalog
        .load_component(&wasm, PluginSource::File(probe_path.clone()))
        .await?;
    let cached = started.elapsed();
    let rounds = 1000;
    let started = Instant::now();
    for _ in 0..rounds {
        probe.instantiate_only(&engine, &limits).await?;
    }
    let per_job = started.elapsed() / rounds;
    println!(
        "load: built-ins {builtins:.2?}; probe ({} KiB) first load (compile + describe) {first:.2?}, cached load {cached:.2?}, per-job instantiation {per_job:.1?}",
        wasm.len() / 1024
    );

    // 1. Through guest memory.
    let size: u64 = 4 << 30;
    for chunk in [64u64 << 10, 1 << 20] {
        let context = JobContext {
            sink: Some(Box::new(CountingSink::default())),
            ..JobContext::default()
        };
        let started = Instant::now();
        let run = probe
            .backup(
                &engine,
                &limits,
                job(&[
                    ("mode", "generate".into()),
                    ("size", size.to_string()),
                    ("chunk", chunk.to_string()),
                ]),
                context,
            )
            .await;
        let elapsed = started.elapsed();
        run.result?;
        println!(
            "guest memory, {} KiB chunks: {} in {elapsed:.2?} = {}",
            chunk >> 10,
            size,
            rate(size, elapsed)
        );
    }

    // 2. Host-side copy from a local program, and the source alone.
    let mut grant = CapabilityGrant::default();
    grant.exec.insert("head".into(), "/usr/bin/head".into());
    let copy_size: u64 = 4 << 30;
    let started = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {copy_size} /dev/zero | cat > /dev/null"))
        .status()?;
    let source_alone = started.elapsed();
    assert!(status.success());
    let context = JobContext {
        grant: grant.clone(),
        client: Some(Arc::new(LocalClient)),
        sink: Some(Box::new(CountingSink::default())),
        ..JobContext::default()
    };
    let started = Instant::now();
    let run = probe
        .backup(
            &engine,
            &limits,
            job(&[
                ("mode", "exec-copy".into()),
                ("argv", format!("head -c {copy_size} /dev/zero")),
            ]),
            context,
        )
        .await;
    let elapsed = started.elapsed();
    let summary = run.result?;
    println!(
        "host-side copy from `head -c {copy_size} /dev/zero`: {} in {elapsed:.2?} = {} (the source through a pipe alone: {})",
        summary.bytes,
        rate(summary.bytes, elapsed),
        rate(copy_size, source_alone)
    );

    // 4. Over ssh.
    let peer = hoard_conformance::peers::SshdPeer::start()?;
    let client = SshClient::new(SshSettings {
        address: "127.0.0.1".into(),
        port: peer.port(),
        user: peer.user().to_string(),
        private_key: peer.client_key(),
        known_hosts: peer.known_hosts(),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(10),
    })
    .await?;
    let client: Arc<dyn ClientConnector> = Arc::new(client);
    let bytes = parse_size(&ssh_size);
    let context = JobContext {
        grant,
        client: Some(client),
        sink: Some(Box::new(CountingSink::default())),
        ..JobContext::default()
    };
    let started = Instant::now();
    let run = probe
        .backup(
            &engine,
            &limits,
            job(&[
                ("mode", "exec-read".into()),
                ("argv", format!("head -c {bytes} /dev/zero")),
            ]),
            context,
        )
        .await;
    let elapsed = started.elapsed();
    let summary = run.result?;
    println!(
        "ssh exec stream read by the plugin: {} bytes in {elapsed:.2?} = {:.0} MB/s; server peak RSS {} MiB",
        summary.bytes,
        summary.bytes as f64 / elapsed.as_secs_f64() / 1e6,
        peak_rss_kib() / 1024
    );
    Ok(())
}
