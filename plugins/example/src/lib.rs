//! The smallest complete hoard transport: backs up one file of a client.
//!
//! The share is the path of a file on the client. `stat` tells its size, mode and mtime;
//! `cat` streams it; the content goes from `cat`'s stdout into the pool inside the host
//! (`copy-from`), so it never enters this plugin's memory. Grant it with
//! `exec: ["stat", "cat"]` in the host's config.

use hoard_plugin_sdk::transport::hoard::plugin::manifest::{
    Capability, Features, Metadata, PluginInfo,
};
use hoard_plugin_sdk::transport::hoard::plugin::types::{
    BackupJob, Entry, Error, JobSummary, RestoreJob,
};
use hoard_plugin_sdk::transport::hoard::plugin::{client, job, process::ExitStatus, sink, types};
use std::io::Read;

struct SingleFile;

impl hoard_plugin_sdk::transport::Guest for SingleFile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "example".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract: hoard_plugin_sdk::CONTRACT_VERSION.into(),
            description: "backs up one file of a client (the SDK's example)".into(),
            capabilities: vec![
                Capability::Exec("stat".into()),
                Capability::Exec("cat".into()),
            ],
            features: Features {
                incremental: false,
                restore: false,
                delta: false,
                metadata: Metadata::PERMISSIONS | Metadata::OWNER_IDS,
            },
        }
    }

    fn backup(job: BackupJob) -> Result<JobSummary, Error> {
        // 1. Metadata: "size mode-in-hex uid gid mtime".
        let stat = client::exec(&[
            b"stat".to_vec(),
            b"--format=%s %f %u %g %Y".to_vec(),
            job.share.clone(),
        ])?;
        drop(stat.stdin);
        let mut text = String::new();
        hoard_plugin_sdk::io::StreamReader::new(stat.stdout)
            .read_to_string(&mut text)
            .map_err(|e| Error::Client(format!("reading stat output: {e}")))?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [size, mode, uid, gid, mtime] = fields[..] else {
            return Err(Error::Protocol(format!("unexpected stat output {text:?}")));
        };
        let number = |s: &str, radix| {
            u64::from_str_radix(s, radix).map_err(|e| Error::Protocol(format!("{s:?}: {e}")))
        };
        let name = job
            .share
            .rsplit(|b| *b == b'/')
            .next()
            .unwrap_or(b"file")
            .to_vec();
        let mut entry = Entry::file(name, number(size, 10)?)
            .with_mode(number(mode, 16)? as u32 & 0o7777)
            .with_mtime(number(mtime, 10)? as i64, 0);
        entry.uid = number(uid, 10)? as u32;
        entry.gid = number(gid, 10)? as u32;
        job::log(job::Level::Info, &format!("{} bytes to copy", entry.size));

        // 2. Content: from cat's stdout straight into the pool.
        let cat = client::exec(&[b"cat".to_vec(), job.share])?;
        drop(cat.stdin);
        let file = sink::begin_file(&entry)?;
        let moved = file.copy_from(&cat.stdout, entry.size)?;
        file.finish(false)?;
        match cat.process.wait()? {
            ExitStatus::Exited(0) => {}
            other => return Err(Error::Client(format!("cat ended with {other:?}"))),
        }
        job::progress(1, moved);
        Ok(JobSummary {
            entries: 1,
            bytes: moved,
            errors: 0,
            partial: false,
        })
    }

    fn restore(_job: RestoreJob) -> Result<JobSummary, Error> {
        Err(types::Error::Other(
            "the example transport does not restore".into(),
        ))
    }
}

hoard_plugin_sdk::export_transport!(SingleFile);
