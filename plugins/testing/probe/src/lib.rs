//! A transport for the runtime's tests and benchmarks: it moves bytes the way real
//! transports do, chosen by the job's `mode` setting, and reports counts. Never built into the
//! server.
//!
//! - `generate`: one file of `size` bytes written through guest memory in `chunk`-byte
//!   writes (the boundary throughput).
//! - `exec-copy`: runs `argv` (space-separated) on the client and moves its stdout into one
//!   file inside the host (`copy-from`).
//! - `exec-read`: runs `argv` and reads its stdout through guest memory, counting bytes.
//! - `echo`: runs `argv` (e.g. `cat`), writes `size` bytes to its stdin while reading its
//!   stdout (full duplex through `wait_readable_or_writable`), stores what came back.

use std::io::Read;

use hoard_plugin_sdk::io::StreamReader;
use hoard_plugin_sdk::transport::hoard::plugin::manifest::{
    Capability, Features, Metadata, PluginInfo,
};
use hoard_plugin_sdk::transport::hoard::plugin::process::ExitStatus;
use hoard_plugin_sdk::transport::hoard::plugin::types::{
    BackupJob, Entry, Error, JobSummary, RestoreJob,
};
use hoard_plugin_sdk::transport::hoard::plugin::{client, job, sink};

struct Probe;

fn setting(job: &BackupJob, name: &str) -> Option<String> {
    job.settings
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.value.clone())
}

fn number(job: &BackupJob, name: &str, default: u64) -> u64 {
    setting(job, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn argv(job: &BackupJob) -> Vec<Vec<u8>> {
    setting(job, "argv")
        .unwrap_or_default()
        .split_whitespace()
        .map(|a| a.as_bytes().to_vec())
        .collect()
}

fn io_error(e: std::io::Error) -> Error {
    Error::Client(e.to_string())
}

fn summary(bytes: u64) -> JobSummary {
    JobSummary {
        entries: 1,
        bytes,
        errors: 0,
        partial: false,
    }
}

fn check_exit(
    process: &hoard_plugin_sdk::transport::hoard::plugin::process::Process,
) -> Result<(), Error> {
    match process.wait()? {
        ExitStatus::Exited(0) => Ok(()),
        other => Err(Error::Client(format!("program ended with {other:?}"))),
    }
}

impl hoard_plugin_sdk::transport::Guest for Probe {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract: hoard_plugin_sdk::CONTRACT_VERSION.into(),
            description: "moves bytes for the runtime's tests and benchmarks".into(),
            capabilities: vec![
                Capability::Exec("cat".into()),
                Capability::Exec("head".into()),
                Capability::Exec("sh".into()),
            ],
            features: Features {
                incremental: false,
                restore: false,
                delta: false,
                metadata: Metadata::empty(),
            },
        }
    }

    fn backup(job: BackupJob) -> Result<JobSummary, Error> {
        let mode = setting(&job, "mode").unwrap_or_default();
        match mode.as_str() {
            "generate" => {
                let size = number(&job, "size", 1 << 30);
                let chunk = number(&job, "chunk", 1 << 20) as usize;
                let data: Vec<u8> = (0..chunk).map(|i| (i % 251) as u8).collect();
                let file = sink::begin_file(&Entry::file(b"generated".to_vec(), size))?;
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk as u64) as usize;
                    file.write(&data[..n])?;
                    left -= n as u64;
                }
                file.finish(false)?;
                Ok(summary(size))
            }
            "exec-copy" => {
                let spawned = client::exec(&argv(&job))?;
                drop(spawned.stdin);
                let file = sink::begin_file(&Entry::file(b"stdout".to_vec(), u64::MAX))?;
                let moved = file.copy_from(&spawned.stdout, u64::MAX)?;
                file.finish(true)?;
                check_exit(&spawned.process)?;
                Ok(summary(moved))
            }
            "exec-read" => {
                let spawned = client::exec(&argv(&job))?;
                drop(spawned.stdin);
                let mut reader = StreamReader::new(spawned.stdout);
                let mut buffer = vec![0u8; 1 << 20];
                let mut total = 0u64;
                loop {
                    let n = reader.read(&mut buffer).map_err(io_error)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                check_exit(&spawned.process)?;
                job::progress(1, total);
                Ok(summary(total))
            }
            "echo" => echo(&job),
            other => Err(Error::Other(format!("unknown mode {other:?}"))),
        }
    }

    fn restore(_job: RestoreJob) -> Result<JobSummary, Error> {
        Err(Error::Other("no restore".into()))
    }
}

/// Feeds `size` pseudo-random bytes to the program while storing what it prints. Neither
/// direction ever blocks the other: it writes only what the stream permits right now and
/// waits on both pollables, so neither pipe can fill up into a deadlock.
fn echo(job: &BackupJob) -> Result<JobSummary, Error> {
    let size = number(job, "size", 1 << 20);
    let spawned = client::exec(&argv(job))?;
    let file = sink::begin_file(&Entry::file(b"echo".to_vec(), size))?;
    let stdout = spawned.stdout;
    let mut stdin = Some(spawned.stdin);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut pending: Vec<u8> = Vec::new();
    let mut generated = 0u64;
    let mut flushing = false;
    let mut flushed = false;
    let mut received = 0u64;
    while received < size {
        let readiness = match &stdin {
            Some(input) => hoard_plugin_sdk::io::wait_readable_or_writable(&stdout, input),
            None => {
                stdout.subscribe().block();
                hoard_plugin_sdk::io::Readiness {
                    readable: true,
                    writable: false,
                }
            }
        };
        if readiness.writable
            && let Some(input) = &stdin
        {
            if pending.is_empty() && generated < size {
                let n = (size - generated).min(64 << 10) as usize;
                pending = (0..n)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                generated += n as u64;
            }
            let permit = input
                .check_write()
                .map_err(|e| Error::Client(format!("{e:?}")))? as usize;
            let n = permit.min(pending.len());
            if n > 0 {
                input
                    .write(&pending[..n])
                    .map_err(|e| Error::Client(format!("{e:?}")))?;
                pending.drain(..n);
            }
            // Every byte handed over: start a flush without blocking (blocking here while
            // the program waits for us to drain its stdout would deadlock), and close its
            // input once the flush is done.
            if pending.is_empty() && generated == size {
                if !flushing {
                    input.flush().map_err(|e| Error::Client(format!("{e:?}")))?;
                    flushing = true;
                } else if input
                    .check_write()
                    .map_err(|e| Error::Client(format!("{e:?}")))?
                    > 0
                {
                    flushed = true;
                }
            }
        }
        if flushed {
            stdin = None;
        }
        if readiness.readable {
            match stdout.read(1 << 20) {
                Ok(data) => {
                    received += data.len() as u64;
                    file.write(&data)?;
                }
                Err(_) => break,
            }
        }
    }
    file.finish(false)?;
    check_exit(&spawned.process)?;
    Ok(summary(received))
}

hoard_plugin_sdk::export_transport!(Probe);
