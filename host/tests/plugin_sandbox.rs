//! The sandbox against real hostile components (built from `plugins/testing` by build.rs):
//! deadlines, the memory cap, no files, no environment, no network, capabilities refused
//! without a grant, panics contained — and a well-behaved job running right after each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoard::client::local::LocalClient;
use hoard::plugin::bindings::{BackupJob, BackupLevel, Setting};
use hoard::plugin::cache::CompileCache;
use hoard::plugin::catalog::{LoadedPlugin, PluginSource};
use hoard::plugin::imports::sink::{BackupSink, CountingSink};
use hoard::plugin::run::JobRun;
use hoard::plugin::{CapabilityGrant, JobContext, PluginEngine, PluginError, RuntimeLimits};
use tokio::sync::OnceCell;

struct Fixture {
    engine: Arc<PluginEngine>,
    hostile: Arc<LoadedPlugin>,
    probe: Arc<LoadedPlugin>,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

fn limits() -> RuntimeLimits {
    RuntimeLimits {
        memory_bytes: 64 << 20,
        job_deadline: Duration::from_secs(60),
        ..RuntimeLimits::default()
    }
}

async fn fixture() -> &'static Fixture {
    FIXTURE
        .get_or_init(|| async {
            let cache = CompileCache::in_dir(concat!(env!("CARGO_TARGET_TMPDIR"), "/compiled"));
            let engine = PluginEngine::new(cache).expect("engine");
            let catalog = hoard::plugin::PluginCatalog::load(engine.clone(), limits(), None)
                .await
                .expect("catalog");
            let dir = std::path::Path::new(env!("HOARD_TEST_PLUGIN_DIR"));
            let load = |name: &str| {
                let path = dir.join(format!("{name}.wasm"));
                let catalog = &catalog;
                async move {
                    let wasm = std::fs::read(&path).expect("test plugin built");
                    catalog
                        .load_component(&wasm, PluginSource::File(path))
                        .await
                        .expect("loads")
                }
            };
            let hostile = load("hostile").await;
            let probe = load("probe").await;
            Fixture {
                engine,
                hostile,
                probe,
            }
        })
        .await
}

fn job(settings: &[(&str, &str)]) -> BackupJob {
    BackupJob {
        host: "testhost".into(),
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
                value: v.to_string(),
            })
            .collect(),
    }
}

fn context(grant: CapabilityGrant) -> JobContext {
    JobContext {
        host: "testhost".into(),
        grant,
        client: Some(Arc::new(LocalClient)),
        sink: Some(Box::new(CountingSink::hashing())),
        ..JobContext::default()
    }
}

fn grant_exec(programs: &[(&str, &str)]) -> CapabilityGrant {
    let mut grant = CapabilityGrant::default();
    for (name, path) in programs {
        grant.exec.insert(name.to_string(), path.into());
    }
    grant
}

async fn backup(
    plugin: &LoadedPlugin,
    settings: &[(&str, &str)],
    grant: CapabilityGrant,
) -> JobRun<hoard::plugin::bindings::JobSummary> {
    backup_within(limits(), plugin, settings, grant).await
}

async fn backup_within(
    limits: RuntimeLimits,
    plugin: &LoadedPlugin,
    settings: &[(&str, &str)],
    grant: CapabilityGrant,
) -> JobRun<hoard::plugin::bindings::JobSummary> {
    let f = fixture().await;
    plugin
        .backup(&f.engine, &limits, job(settings), context(grant))
        .await
}

/// A small well-behaved job, run after each failure to show the server goes on.
async fn healthy_job_runs() {
    let f = fixture().await;
    let run = backup(
        &f.probe,
        &[("mode", "generate"), ("size", "100000"), ("chunk", "4096")],
        CapabilityGrant::default(),
    )
    .await;
    let summary = run.result.expect("a healthy job after a failed one");
    assert_eq!(summary.bytes, 100_000);
}

fn log_text(run: &JobRun<impl Sized>) -> String {
    run.log
        .lines()
        .iter()
        .map(|l| l.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_plugin_is_stopped_at_its_deadline() {
    let f = fixture().await;
    let started = Instant::now();
    let deadline = RuntimeLimits {
        job_deadline: Duration::from_secs(2),
        ..limits()
    };
    let run = backup_within(
        deadline,
        &f.hostile,
        &[("behaviour", "spin")],
        CapabilityGrant::default(),
    )
    .await;
    let elapsed = started.elapsed();
    match run.result {
        Err(PluginError::Deadline { plugin, .. }) => assert_eq!(plugin, "hostile"),
        other => panic!("expected a deadline, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(4),
        "stopped after {elapsed:?}"
    );
    healthy_job_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_past_the_cap_fails_cleanly() {
    let f = fixture().await;
    let run = backup(
        &f.hostile,
        &[("behaviour", "allocate")],
        CapabilityGrant::default(),
    )
    .await;
    match &run.result {
        Err(PluginError::Memory { plugin, limit }) => {
            assert_eq!(plugin, "hostile");
            assert_eq!(*limit, 64 << 20);
        }
        other => panic!("expected the memory cap, got {other:?}\n{}", log_text(&run)),
    }
    healthy_job_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_files_no_environment_no_network() {
    let f = fixture().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port().to_string();
    let run = backup(
        &f.hostile,
        &[("behaviour", "files"), ("port", &port)],
        CapabilityGrant::default(),
    )
    .await;
    let log = log_text(&run);
    assert!(run.result.is_ok(), "{:?}\n{log}", run.result.err());
    for expected in [
        "read /etc/passwd: Err(",
        "read_dir /: Err(",
        "write /tmp/hoard-hostile: Err(",
        "env vars: 0",
        "HOME: Err(NotPresent)",
        "args: 0",
        &format!("tcp 127.0.0.1:{port}: Err("),
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_err(),
        "the plugin reached a loopback port"
    );
    assert!(!std::path::Path::new("/tmp/hoard-hostile").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_without_a_grant_is_refused_by_name() {
    let f = fixture().await;
    let run = backup(
        &f.hostile,
        &[("behaviour", "exec"), ("program", "tar")],
        CapabilityGrant::default(),
    )
    .await;
    match run.result {
        Err(PluginError::Failed {
            plugin,
            error,
            not_granted,
        }) => {
            assert_eq!(plugin, "hostile");
            assert!(not_granted);
            assert!(
                error.contains("capability exec(tar)") && error.contains("testhost"),
                "{error}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Granted in config but not declared in its manifest: still refused.
    let grant = grant_exec(&[("sh", "/bin/sh")]);
    let run = backup(
        &f.hostile,
        &[("behaviour", "exec"), ("program", "sh")],
        grant,
    )
    .await;
    assert!(
        matches!(
            run.result,
            Err(PluginError::Failed {
                not_granted: true,
                ..
            })
        ),
        "{:?}",
        run.result
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_program_cannot_be_turned_against_the_server() {
    let f = fixture().await;
    let grant = grant_exec(&[("tar", "/usr/bin/tar")]);
    let run = backup(
        &f.hostile,
        &[
            ("behaviour", "exec"),
            ("args", "-c --to-command=sh -f /dev/null ."),
        ],
        grant,
    )
    .await;
    match run.result {
        Err(PluginError::Failed {
            error,
            not_granted: true,
            ..
        }) => assert!(error.contains("--to-command"), "{error}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_a_grant_is_refused_by_name() {
    let f = fixture().await;
    let run = backup(
        &f.hostile,
        &[("behaviour", "connect"), ("port", "873")],
        CapabilityGrant::default(),
    )
    .await;
    match run.result {
        Err(PluginError::Failed {
            error,
            not_granted: true,
            ..
        }) => {
            assert!(
                error.contains("plugin hostile") && error.contains("connect(873)"),
                "{error}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_the_job_and_the_next_job_runs() {
    let f = fixture().await;
    let run = backup(
        &f.hostile,
        &[("behaviour", "panic")],
        CapabilityGrant::default(),
    )
    .await;
    match &run.result {
        Err(PluginError::Trap { plugin, message }) => {
            assert_eq!(plugin, "hostile");
            assert!(message.contains("panics on purpose"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    healthy_job_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_duplex_exec_round_trips_bytes() {
    let f = fixture().await;
    let grant = grant_exec(&[("cat", "/bin/cat")]);
    let size = 8 << 20;
    let run = backup(
        &f.probe,
        &[
            ("mode", "echo"),
            ("argv", "cat"),
            ("size", &size.to_string()),
        ],
        grant,
    )
    .await;
    let summary = run.result.as_ref().expect("echo through cat");
    assert_eq!(summary.bytes, size);
    let sink = downcast(run.sink);
    assert_eq!(sink.bytes, size);
    // The same xorshift stream the plugin generated, hashed here.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hasher = blake3::Hasher::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(64 << 10);
        let block: Vec<u8> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        hasher.update(&block);
        left -= n;
    }
    assert_eq!(sink.content_hash(), hasher.finalize());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_side_copy_moves_a_stream_into_the_sink() {
    let f = fixture().await;
    let grant = grant_exec(&[("head", "/usr/bin/head")]);
    let run = backup(
        &f.probe,
        &[("mode", "exec-copy"), ("argv", "head -c 3000000 /dev/zero")],
        grant,
    )
    .await;
    assert_eq!(
        run.result.as_ref().map(|s| s.bytes).ok(),
        Some(3_000_000),
        "{:?}",
        run.result
    );
    let sink = downcast(run.sink);
    assert_eq!(sink.bytes, 3_000_000);
    assert_eq!(sink.content_hash(), blake3::hash(&vec![0u8; 3_000_000]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_load_comes_from_the_compile_cache() {
    let dir = std::path::Path::new(env!("HOARD_TEST_PLUGIN_DIR"));
    let wasm = std::fs::read(dir.join("probe.wasm")).expect("probe");
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let engine = PluginEngine::new(CompileCache::in_dir(cache_dir.path())).expect("engine");
    let (_, first) = engine
        .cache()
        .load(engine.engine(), &wasm)
        .expect("compile");
    let (_, second) = engine.cache().load(engine.engine(), &wasm).expect("cached");
    use hoard::plugin::cache::CacheOutcome;
    assert_eq!((first, second), (CacheOutcome::Compiled, CacheOutcome::Hit));
}

fn downcast(sink: Option<Box<dyn BackupSink>>) -> Box<CountingSink> {
    let sink = sink.expect("the sink comes back");
    let any: Box<dyn std::any::Any> = sink.into_any();
    any.downcast::<CountingSink>().expect("a counting sink")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_port_connects_to_the_client_address() {
    let f = fixture().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let mut grant = CapabilityGrant::default();
    grant.connect_ports.insert(port);
    let run = backup(
        &f.hostile,
        &[("behaviour", "connect"), ("port", &port.to_string())],
        grant,
    )
    .await;
    assert!(run.result.is_ok(), "{:?}", run.result);
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_ok(),
        "the granted connection never arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_folder_loads_without_a_rebuild_and_skips_broken_files() {
    let f = fixture().await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = std::path::Path::new(env!("HOARD_TEST_PLUGIN_DIR"));
    std::fs::copy(dir.join("probe.wasm"), folder.path().join("probe.wasm")).expect("copy");
    std::fs::write(
        folder.path().join("broken.wasm"),
        b"\0asm this is not a component",
    )
    .expect("write");
    let catalog =
        hoard::plugin::PluginCatalog::load(f.engine.clone(), limits(), Some(folder.path()))
            .await
            .expect("a broken file does not stop the rest");
    assert!(
        catalog.get("probe").is_some(),
        "the folder's plugin is loaded"
    );
    assert!(catalog.get("tar").is_some(), "built-ins stay");
    assert_eq!(catalog.problems().len(), 1);
    assert!(catalog.problems()[0].path.ends_with("broken.wasm"));
}
