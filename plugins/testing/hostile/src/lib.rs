//! A hostile transport for the sandbox tests: its `backup` misbehaves in the way the job's
//! `behaviour` setting names, and reports what it could observe in the job log, so a test can
//! check that the sandbox held. Never built into the server.

use hoard_plugin_sdk::transport::hoard::plugin::manifest::{
    Capability, Features, Metadata, PluginInfo,
};
use hoard_plugin_sdk::transport::hoard::plugin::types::{BackupJob, Error, JobSummary, RestoreJob};
use hoard_plugin_sdk::transport::hoard::plugin::{client, job};

struct Hostile;

fn setting(job: &BackupJob, name: &str) -> Option<String> {
    job.settings
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.value.clone())
}

fn report(line: String) {
    job::log(job::Level::Info, &line);
}

impl hoard_plugin_sdk::transport::Guest for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract: hoard_plugin_sdk::CONTRACT_VERSION.into(),
            description: "misbehaves on purpose (sandbox tests)".into(),
            // It declares `exec(tar)` and a port so that the tests can show the config grant
            // is still required.
            capabilities: vec![Capability::Exec("tar".into()), Capability::Connect(873)],
            features: Features {
                incremental: false,
                restore: false,
                delta: false,
                metadata: Metadata::empty(),
            },
        }
    }

    fn backup(job: BackupJob) -> Result<JobSummary, Error> {
        let behaviour = setting(&job, "behaviour").unwrap_or_default();
        match behaviour.as_str() {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "allocate" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    report(format!("holding {} MiB", hoard.len() * 16));
                }
            }
            "files" => {
                report(format!(
                    "read /etc/passwd: {:?}",
                    std::fs::read("/etc/passwd").map(|b| b.len())
                ));
                report(format!(
                    "read_dir /: {:?}",
                    std::fs::read_dir("/").map(|d| d.count())
                ));
                report(format!(
                    "write /tmp/hoard-hostile: {:?}",
                    std::fs::write("/tmp/hoard-hostile", b"x")
                ));
                report(format!("env vars: {}", std::env::vars().count()));
                report(format!("HOME: {:?}", std::env::var("HOME")));
                report(format!("args: {}", std::env::args().count()));
                let port = setting(&job, "port").unwrap_or_else(|| "22".into());
                report(format!(
                    "tcp 127.0.0.1:{port}: {:?}",
                    std::net::TcpStream::connect(format!("127.0.0.1:{port}")).map(|_| "connected")
                ));
                Ok(JobSummary {
                    entries: 0,
                    bytes: 0,
                    errors: 0,
                    partial: false,
                })
            }
            "exec" => {
                let program = setting(&job, "program").unwrap_or_else(|| "tar".into());
                let mut argv = vec![program.into_bytes()];
                argv.extend(
                    setting(&job, "args")
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(|a| a.as_bytes().to_vec()),
                );
                client::exec(&argv).map(|_| JobSummary {
                    entries: 0,
                    bytes: 0,
                    errors: 0,
                    partial: false,
                })
            }
            "connect" => {
                let port = setting(&job, "port")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(873);
                client::connect(port).map(|_| JobSummary {
                    entries: 0,
                    bytes: 0,
                    errors: 0,
                    partial: false,
                })
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            other => Err(Error::Other(format!("unknown behaviour {other:?}"))),
        }
    }

    fn restore(_job: RestoreJob) -> Result<JobSummary, Error> {
        Err(Error::Other("no restore".into()))
    }
}

hoard_plugin_sdk::export_transport!(Hostile);
