//! One tar run on the client: its standard output read in exact blocks (or moved into the
//! pool inside the host), its standard error drained whenever the plugin would otherwise
//! wait, each message logged and counted, and its exit status judged at the end.
//!
//! tar can fill its stderr pipe with warnings (one per unreadable file) or, in a verbose run,
//! with one line per member, while the plugin waits for its next header: every wait here polls
//! both streams, so neither side can block the other. Only `copy-from` (inside one file's
//! content) waits on stdout alone: tar may go on naming unchanged files on stderr meanwhile
//! (its archive goes out a 64 KiB record at a time), and the host never lets unread stderr
//! stop stdout (both clients keep a program's stderr in a capped buffer of their own).
//!
//! In a verbose `--newer` run the names tar left out are collected from stderr. Should any of
//! stderr be lost (the host dropped some beyond its cap and says so in a line starting with
//! `hoard: `, or the stream failed), the names are incomplete and [`TarRun::take_unchanged`]
//! says so: the caller must list the share another way.

use std::io::Write;

use hoard_plugin_sdk::io::StreamWriter;
use hoard_plugin_sdk::transport::hoard::plugin::process::{ExitStatus, Process};
use hoard_plugin_sdk::transport::hoard::plugin::sink::FileWriter;
use hoard_plugin_sdk::transport::hoard::plugin::types::Error;
use hoard_plugin_sdk::transport::hoard::plugin::{client, job};
use hoard_plugin_sdk::transport::wasi::io::poll;
use hoard_plugin_sdk::transport::wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::command::{Message, Verdict, classify, unchanged_name, verdict};

/// Longest stderr line kept whole; longer ones are cut.
const MAX_LINE: usize = 16 << 10;
/// Bytes read after the end of the archive before giving up on it (tar pads to one record,
/// 64 KiB).
const MAX_TRAILING: u64 = 1 << 20;
/// Messages copied into the job log per run; the rest are only counted.
const MAX_LOGGED: u64 = 2000;
/// How the host's line standing for stderr it dropped (more unread than it keeps) starts
/// and what it says.
const DROPPED_PREFIX: &[u8] = b"hoard: ";
const DROPPED_TEXT: &[u8] = b" bytes of standard error dropped";

/// What tar's messages said, counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Files that could not be read.
    pub unreadable: u64,
    /// Files that changed while read.
    pub changed: u64,
    /// Messages that were neither.
    pub other: u64,
    logged: u64,
}

/// A running tar.
pub struct TarRun {
    process: Process,
    stdin: Option<StreamWriter>,
    stdout: InputStream,
    stderr: Option<InputStream>,
    pending: Vec<u8>,
    /// Log tar's messages at debug level only (a listing run repeats the archive run's).
    quiet: bool,
    /// What the messages said so far.
    pub report: Report,
    /// When collecting (a verbose `--newer` run): the names tar left out as unchanged, as
    /// escaped on its stderr.
    unchanged: Option<Vec<Vec<u8>>>,
    /// Some of stderr was lost (dropped by the host or a failed read): the collected names
    /// may be incomplete.
    stderr_lost: bool,
    what: &'static str,
}

fn client_error(what: &str, e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::Client(format!("{what}: stream closed")),
        StreamError::LastOperationFailed(e) => {
            Error::Client(format!("{what}: {}", e.to_debug_string()))
        }
    }
}

impl TarRun {
    /// Starts tar with `argv`; writes `input` to its standard input and closes it unless
    /// `keep_stdin` (a restore writes the archive there).
    pub fn start(
        argv: &[Vec<u8>],
        input: &[u8],
        keep_stdin: bool,
        quiet: bool,
        what: &'static str,
    ) -> Result<TarRun, Error> {
        let spawned = client::exec(argv)?;
        let mut stdin = StreamWriter::new(spawned.stdin);
        let mut run = TarRun {
            process: spawned.process,
            stdin: None,
            stdout: spawned.stdout,
            stderr: Some(spawned.stderr),
            pending: Vec::new(),
            quiet,
            report: Report::default(),
            unchanged: None,
            stderr_lost: false,
            what,
        };
        if !input.is_empty() {
            stdin
                .write_all(input)
                .and_then(|()| stdin.flush())
                .map_err(|e| Error::Client(format!("{what}: writing tar's file list: {e}")))?;
        }
        if keep_stdin {
            run.stdin = Some(stdin);
        } else {
            stdin
                .close()
                .map_err(|e| Error::Client(format!("{what}: closing tar's input: {e}")))?;
        }
        Ok(run)
    }

    /// The writer of tar's standard input (restores).
    pub fn stdin(&mut self) -> Option<&mut StreamWriter> {
        self.stdin.as_mut()
    }

    /// Flushes and closes tar's standard input.
    pub fn close_stdin(&mut self) -> Result<(), Error> {
        if let Some(stdin) = self.stdin.take() {
            stdin
                .close()
                .map_err(|e| Error::Client(format!("{}: closing tar's input: {e}", self.what)))?;
        }
        Ok(())
    }

    /// Reads stderr as a verbose `--newer` run's: names of archived members are skipped, the
    /// names tar left out as unchanged collected ([`TarRun::take_unchanged`]).
    pub fn collect_unchanged(&mut self) {
        self.unchanged = Some(Vec::new());
    }

    /// The names collected by [`TarRun::collect_unchanged`], still escaped; `None` when some
    /// of stderr was lost, so that they may be incomplete (or when not collecting).
    pub fn take_unchanged(&mut self) -> Option<Vec<Vec<u8>>> {
        let names = self.unchanged.as_mut().map(std::mem::take);
        if self.stderr_lost { None } else { names }
    }

    /// Reads whatever stderr has now, without waiting.
    pub fn drain_stderr(&mut self) {
        while let Some(stderr) = &self.stderr {
            match stderr.read(64 << 10) {
                Ok(data) if data.is_empty() => break,
                Ok(data) => self.take_stderr(&data),
                Err(e) => self.stderr_ended(e),
            }
        }
    }

    /// Stderr ended: at its end, or failed (then whatever else tar said is lost).
    fn stderr_ended(&mut self, e: StreamError) {
        self.stderr = None;
        self.flush_pending_line();
        if let StreamError::LastOperationFailed(e) = e {
            self.stderr_lost = true;
            job::log(
                job::Level::Warning,
                &format!(
                    "{}: reading tar's messages failed: {}",
                    self.what,
                    e.to_debug_string()
                ),
            );
        }
    }

    fn take_stderr(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.message(&line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_LINE {
            self.flush_pending_line();
        }
    }

    fn flush_pending_line(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.message(&line[..line.len().min(MAX_LINE)]);
        }
    }

    fn message(&mut self, line: &[u8]) {
        if line.starts_with(DROPPED_PREFIX)
            && line.windows(DROPPED_TEXT.len()).any(|w| w == DROPPED_TEXT)
        {
            // The host's word that it dropped some of stderr; logged and counted below as
            // any message tar's run did not explain.
            self.stderr_lost = true;
        }
        if let Some(names) = &mut self.unchanged {
            // `-v` names each archived member (`./...`); the archive has them already.
            if line.starts_with(b"./") {
                return;
            }
            if let Some(name) = unchanged_name(line) {
                names.push(name.to_vec());
                return;
            }
        }
        let text = String::from_utf8_lossy(line);
        let kind = classify(&text);
        let level = match kind {
            Message::Unreadable => {
                self.report.unreadable += 1;
                job::Level::Error
            }
            Message::Changed => {
                self.report.changed += 1;
                job::Level::Warning
            }
            Message::Note => job::Level::Info,
            Message::Other => {
                self.report.other += 1;
                job::Level::Warning
            }
        };
        let level = if self.quiet { job::Level::Debug } else { level };
        if self.report.logged < MAX_LOGGED {
            job::log(level, &format!("{}: {text}", self.what));
        } else if self.report.logged == MAX_LOGGED {
            job::log(
                job::Level::Warning,
                &format!("{}: more messages from tar, only counted", self.what),
            );
        }
        self.report.logged += 1;
    }

    /// Waits until stdout has data or ended, draining stderr meanwhile.
    fn wait_stdout(&mut self) {
        loop {
            let Some(stderr) = &self.stderr else {
                self.stdout.subscribe().block();
                return;
            };
            let out = self.stdout.subscribe();
            let err = stderr.subscribe();
            let ready = poll::poll(&[&out, &err]);
            if ready.contains(&1) {
                drop((out, err));
                self.drain_stderr();
            }
            if ready.contains(&0) {
                return;
            }
        }
    }

    /// Some bytes of stdout (at most `max`); `None` at its end.
    pub fn read_some(&mut self, max: u64) -> Result<Option<Vec<u8>>, Error> {
        loop {
            match self.stdout.read(max) {
                Ok(data) if data.is_empty() => self.wait_stdout(),
                Ok(data) => return Ok(Some(data)),
                Err(StreamError::Closed) => return Ok(None),
                Err(e) => return Err(client_error(self.what, e)),
            }
        }
    }

    /// Fills `buf` from stdout. `Ok(false)` when stdout ended before the first byte; an error
    /// when it ended inside.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<bool, Error> {
        let mut filled = 0;
        while filled < buf.len() {
            let Some(data) = self.read_some((buf.len() - filled) as u64)? else {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(Error::Protocol(format!(
                    "{}: tar stream truncated inside a header",
                    self.what
                )));
            };
            let n = data.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&data[..n]);
            filled += n;
        }
        Ok(true)
    }

    /// Discards `n` bytes of stdout; an error if it ends first.
    pub fn skip(&mut self, mut n: u64) -> Result<(), Error> {
        while n > 0 {
            self.drain_stderr();
            // Not a blocking skip: a wait here polls stderr too.
            match self.stdout.skip(n.min(1 << 20)) {
                Ok(0) => self.wait_stdout(),
                Ok(k) => n = n.saturating_sub(k),
                Err(StreamError::Closed) => {
                    return Err(Error::Protocol(format!(
                        "{}: tar stream truncated ({n} bytes missing)",
                        self.what
                    )));
                }
                Err(e) => return Err(client_error(self.what, e)),
            }
        }
        Ok(())
    }

    /// Moves `n` bytes of stdout into `file` inside the host; returns the bytes moved (fewer
    /// only when the stream ended).
    pub fn copy_into(&mut self, file: &FileWriter, n: u64) -> Result<u64, Error> {
        self.drain_stderr();
        file.copy_from(&self.stdout, n)
    }

    /// Waits for the end: stdout read to its end (tar pads its last record), stderr drained,
    /// the exit status judged.
    pub fn finish(&mut self) -> Result<(Verdict, Report, ExitStatus), Error> {
        self.close_stdin()?;
        let mut trailing = 0u64;
        while let Some(data) = self.read_some(64 << 10)? {
            trailing += data.len() as u64;
            if trailing > MAX_TRAILING {
                job::log(
                    job::Level::Warning,
                    &format!("{}: data after the end of the archive, ignored", self.what),
                );
                break;
            }
        }
        while let Some(stderr) = &self.stderr {
            match stderr.blocking_read(64 << 10) {
                Ok(data) => self.take_stderr(&data),
                Err(e) => self.stderr_ended(e),
            }
        }
        self.flush_pending_line();
        let status = self.process.wait()?;
        let judged = match status {
            ExitStatus::Exited(code) => verdict(code, self.report.unreadable, self.report.other),
            _ => Verdict::Failed,
        };
        Ok((judged, self.report, status))
    }
}

/// The program ended badly: an error naming the run and status.
pub fn failed(what: &str, status: ExitStatus) -> Error {
    Error::Client(format!(
        "{what}: tar ended with {status:?}; see the messages above"
    ))
}

/// Writes all of `data` to a stream.
pub fn write_all(stream: &mut StreamWriter, data: &[u8], what: &str) -> Result<(), Error> {
    stream
        .write_all(data)
        .map_err(|e| Error::Client(format!("{what}: writing to tar: {e}")))
}

/// The raw output stream under a writer (for `snapshot::copy-to`).
pub fn raw(stream: &StreamWriter) -> &OutputStream {
    stream.stream()
}
