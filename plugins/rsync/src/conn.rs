//! The connection to the rsync peer: one input and one output byte stream (an exec'd
//! `rsync --server`'s stdout and stdin, or a daemon's TCP socket), rsync's multiplexing in
//! both directions, and the rule that keeps a single-threaded peer of a pipelined protocol
//! from deadlocking: output is only ever written as far as the host accepts without waiting,
//! and whenever the plugin must wait it waits for input, output room *and* the program's
//! stderr at once.
//!
//! Messages the peer multiplexes into its output (its errors, warnings, "file vanished",
//! I/O error flags) are taken out here and copied into the job log.

use std::collections::VecDeque;

use hoard_plugin_sdk::transport::hoard::plugin::job;
use hoard_plugin_sdk::transport::wasi::io::poll;
use hoard_plugin_sdk::transport::wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::error::{Error, client, protocol};
use crate::wire::Source;

/// Largest multiplexed frame this side writes.
const FRAME: usize = 32 * 1024;
/// Largest message (not data) accepted from the peer.
const MAX_MESSAGE: usize = 1 << 20;
/// Bytes asked for per read of the input stream.
const READ_CHUNK: u64 = 256 * 1024;
/// Lines of the peer's messages copied into the job log; the rest are counted.
const MAX_LOGGED: u64 = 2000;

const MPLEX_BASE: u32 = 7;
const MSG_DATA: u32 = 0;
const MSG_ERROR_XFER: u32 = 1;
const MSG_INFO: u32 = 2;
const MSG_ERROR: u32 = 3;
const MSG_WARNING: u32 = 4;
const MSG_ERROR_SOCKET: u32 = 5;
const MSG_LOG: u32 = 6;
const MSG_CLIENT: u32 = 7;
const MSG_ERROR_UTF8: u32 = 8;
const MSG_IO_ERROR: u32 = 22;
const MSG_IO_TIMEOUT: u32 = 33;
const MSG_NOOP: u32 = 42;
const MSG_ERROR_EXIT: u32 = 86;
const MSG_SUCCESS: u32 = 100;
const MSG_DELETED: u32 = 101;
const MSG_NO_SEND: u32 = 102;

/// What the peer told us besides data.
#[derive(Debug, Default)]
pub struct PeerNews {
    /// Files the sender could not open (their indexes).
    pub not_sent: VecDeque<i32>,
    /// The sender's I/O error flags.
    pub io_error: i32,
    /// Error messages seen.
    pub errors: u64,
    /// Warning messages seen.
    pub warnings: u64,
    /// The peer announced it is exiting with an error.
    pub error_exit: bool,
    logged: u64,
}

/// The two streams, their buffers and the multiplexing state.
pub struct Conn {
    input: InputStream,
    output: OutputStream,
    stderr: Option<InputStream>,
    stderr_line: Vec<u8>,
    raw: Vec<u8>,
    raw_pos: usize,
    input_closed: bool,
    mux_in: bool,
    frame_left: usize,
    mux_out: bool,
    unframed: Vec<u8>,
    out: VecDeque<u8>,
    /// Bytes read from the peer (all of them, frames included).
    pub bytes_in: u64,
    /// Bytes written to the peer.
    pub bytes_out: u64,
    /// Messages and flags from the peer.
    pub news: PeerNews,
}

fn stream_error(what: &str, e: StreamError) -> Error {
    match e {
        StreamError::Closed => client(format!("{what}: the connection closed")),
        StreamError::LastOperationFailed(e) => client(format!("{what}: {}", e.to_debug_string())),
    }
}

impl Conn {
    /// A connection over `input` and `output`; `stderr` is drained into the job log.
    pub fn new(input: InputStream, output: OutputStream, stderr: Option<InputStream>) -> Self {
        Conn {
            input,
            output,
            stderr,
            stderr_line: Vec::new(),
            raw: Vec::new(),
            raw_pos: 0,
            input_closed: false,
            mux_in: false,
            frame_left: 0,
            mux_out: false,
            unframed: Vec::new(),
            out: VecDeque::new(),
            bytes_in: 0,
            bytes_out: 0,
            news: PeerNews::default(),
        }
    }

    /// From now on the peer's output is multiplexed.
    pub fn start_mux_in(&mut self) {
        self.mux_in = true;
        self.frame_left = 0;
    }

    /// From now on what this side writes is multiplexed (earlier bytes go out as they are).
    pub fn start_mux_out(&mut self) {
        let raw = std::mem::take(&mut self.unframed);
        self.out.extend(raw);
        self.mux_out = true;
    }

    /// Queues bytes for the peer; they leave as soon as the host accepts them.
    pub fn send(&mut self, data: &[u8]) {
        if self.mux_out {
            self.unframed.extend_from_slice(data);
            if self.unframed.len() >= FRAME {
                self.frame();
            }
        } else {
            self.out.extend(data);
        }
    }

    fn frame(&mut self) {
        if !self.mux_out {
            let raw = std::mem::take(&mut self.unframed);
            self.out.extend(raw);
            return;
        }
        for chunk in self.unframed.chunks(FRAME) {
            let header = ((MPLEX_BASE + MSG_DATA) << 24) | chunk.len() as u32;
            self.out.extend(header.to_le_bytes());
            self.out.extend(chunk);
        }
        self.unframed.clear();
    }

    /// Writes what the host accepts now, without waiting.
    fn write_some(&mut self) -> Result<(), Error> {
        while !self.out.is_empty() {
            let permit = self
                .output
                .check_write()
                .map_err(|e| stream_error("write to rsync", e))?;
            if permit == 0 {
                return Ok(());
            }
            // The queue's first contiguous run, as far as the host takes it.
            let front = self.out.as_slices().0;
            let n = front
                .len()
                .min(usize::try_from(permit).unwrap_or(usize::MAX));
            self.output
                .write(&front[..n])
                .map_err(|e| stream_error("write to rsync", e))?;
            self.out.drain(..n);
            self.bytes_out += n as u64;
        }
        Ok(())
    }

    /// Sends everything queued, reading (and buffering) input meanwhile.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.frame();
        loop {
            self.write_some()?;
            if self.out.is_empty() {
                break;
            }
            self.wait(true)?;
        }
        // A flush completes when the stream accepts writes again; input keeps being read
        // meanwhile, so a peer that is writing to this side cannot block it.
        self.output
            .flush()
            .map_err(|e| stream_error("flush to rsync", e))?;
        loop {
            let permit = self
                .output
                .check_write()
                .map_err(|e| stream_error("flush to rsync", e))?;
            if permit > 0 {
                return Ok(());
            }
            self.wait(true)?;
        }
    }

    /// Bytes queued for the peer and not yet accepted by the host.
    pub fn pending_output(&self) -> usize {
        self.out.len() + self.unframed.len()
    }

    /// Frames what is queued and writes what the host accepts now, without waiting.
    pub fn pump(&mut self) -> Result<(), Error> {
        if self.unframed.len() >= FRAME / 2 {
            self.frame();
        }
        self.write_some()
    }

    /// Waits until input, output room (when `want_write`) or stderr is ready, and takes in
    /// what arrived.
    fn wait(&mut self, want_write: bool) -> Result<(), Error> {
        let mut pollables = Vec::with_capacity(3);
        let input_index = if self.input_closed {
            None
        } else {
            pollables.push(self.input.subscribe());
            Some(pollables.len() - 1)
        };
        let output_index = if want_write {
            pollables.push(self.output.subscribe());
            Some(pollables.len() - 1)
        } else {
            None
        };
        let stderr_index = self.stderr.as_ref().map(|s| {
            pollables.push(s.subscribe());
            pollables.len() - 1
        });
        if pollables.is_empty() {
            return Err(client("rsync closed its output"));
        }
        let refs: Vec<&poll::Pollable> = pollables.iter().collect();
        let ready = poll::poll(&refs);
        drop(refs);
        drop(pollables);
        if stderr_index.is_some_and(|i| ready.contains(&(i as u32))) {
            self.drain_stderr();
        }
        if input_index.is_some_and(|i| ready.contains(&(i as u32))) {
            self.read_input()?;
        }
        let _ = output_index;
        Ok(())
    }

    fn read_input(&mut self) -> Result<(), Error> {
        match self.input.read(READ_CHUNK) {
            Ok(data) => {
                self.bytes_in += data.len() as u64;
                if self.raw_pos > 0 && self.raw_pos == self.raw.len() {
                    self.raw.clear();
                    self.raw_pos = 0;
                } else if self.raw_pos > (1 << 20) {
                    self.raw.drain(..self.raw_pos);
                    self.raw_pos = 0;
                }
                self.raw.extend_from_slice(&data);
                Ok(())
            }
            Err(StreamError::Closed) => {
                self.input_closed = true;
                Ok(())
            }
            Err(e) => Err(stream_error("read from rsync", e)),
        }
    }

    fn drain_stderr(&mut self) {
        let Some(stderr) = &self.stderr else { return };
        match stderr.read(64 * 1024) {
            Ok(data) => {
                self.stderr_line.extend_from_slice(&data);
                while let Some(end) = self.stderr_line.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.stderr_line.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if !text.is_empty() {
                        self.news.errors += u64::from(text.contains("error"));
                        let line = if text.starts_with("rsync") {
                            text
                        } else {
                            format!("rsync: {text}")
                        };
                        self.log(job::Level::Warning, &line);
                    }
                }
                if self.stderr_line.len() > 16 * 1024 {
                    self.stderr_line.clear();
                }
            }
            Err(_) => self.stderr = None,
        }
    }

    fn log(&mut self, level: job::Level, text: &str) {
        self.news.logged += 1;
        if self.news.logged <= MAX_LOGGED {
            job::log(level, text);
        } else if self.news.logged == MAX_LOGGED + 1 {
            job::log(
                job::Level::Warning,
                "further rsync messages are counted, not logged",
            );
        }
    }

    /// Reads raw bytes (below the multiplexing), waiting as long as it takes.
    fn raw_read_exact(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let mut filled = 0;
        while filled < buf.len() {
            let available = self.raw.len() - self.raw_pos;
            if available == 0 {
                if self.input_closed {
                    return Err(self.closed_error());
                }
                self.write_some()?;
                let want_write = !self.out.is_empty();
                self.wait(want_write)?;
                continue;
            }
            let n = available.min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&self.raw[self.raw_pos..self.raw_pos + n]);
            self.raw_pos += n;
            filled += n;
        }
        Ok(())
    }

    fn closed_error(&mut self) -> Error {
        // What rsync said last usually explains why it hung up.
        self.drain_stderr();
        if self.news.error_exit {
            client("rsync ended the transfer with an error (see the job log)")
        } else {
            protocol("rsync closed the connection in the middle of the protocol (truncated)")
        }
    }

    /// Reads one multiplexed header and, for a message, its body.
    fn next_frame(&mut self) -> Result<(), Error> {
        let mut header = [0u8; 4];
        self.raw_read_exact(&mut header)?;
        let word = u32::from_le_bytes(header);
        let len = (word & 0x00ff_ffff) as usize;
        let tag = (word >> 24).wrapping_sub(MPLEX_BASE);
        if tag == MSG_DATA {
            self.frame_left = len;
            return Ok(());
        }
        if len > MAX_MESSAGE {
            return Err(protocol(format!("a message of {len} bytes (tag {tag})")));
        }
        let mut body = vec![0u8; len];
        self.raw_read_exact(&mut body)?;
        self.message(tag, &body)
    }

    fn message(&mut self, tag: u32, body: &[u8]) -> Result<(), Error> {
        let int = |body: &[u8]| -> Result<i32, Error> {
            <[u8; 4]>::try_from(body)
                .map(i32::from_le_bytes)
                .map_err(|_| protocol(format!("message {tag} of {} bytes", body.len())))
        };
        match tag {
            MSG_ERROR_XFER | MSG_ERROR | MSG_ERROR_SOCKET | MSG_ERROR_UTF8 => {
                self.news.errors += 1;
                let text = String::from_utf8_lossy(body).trim_end().to_owned();
                self.log(job::Level::Error, &format!("rsync: {text}"));
            }
            MSG_WARNING => {
                self.news.warnings += 1;
                let text = String::from_utf8_lossy(body).trim_end().to_owned();
                self.log(job::Level::Warning, &format!("rsync: {text}"));
            }
            MSG_INFO | MSG_LOG | MSG_CLIENT => {
                let text = String::from_utf8_lossy(body).trim_end().to_owned();
                self.log(job::Level::Info, &format!("rsync: {text}"));
            }
            MSG_NO_SEND => {
                let ndx = int(body)?;
                self.news.not_sent.push_back(ndx);
            }
            MSG_IO_ERROR => self.news.io_error |= int(body)?,
            MSG_ERROR_EXIT => {
                self.news.error_exit = true;
            }
            MSG_NOOP | MSG_IO_TIMEOUT | MSG_SUCCESS | MSG_DELETED => {}
            other => return Err(protocol(format!("unknown message tag {other}"))),
        }
        Ok(())
    }

    /// Takes the next file index the sender said it could not send, if any.
    pub fn take_not_sent(&mut self) -> Option<i32> {
        self.news.not_sent.pop_front()
    }

    /// Sends a multiplexed message (not data) of this side.
    pub fn send_message(&mut self, tag: u32, body: &[u8]) {
        self.frame();
        let header = ((MPLEX_BASE + tag) << 24) | body.len() as u32;
        self.out.extend(header.to_le_bytes());
        self.out.extend(body);
    }

    /// The output stream itself, for the host to write a secret into (after a flush).
    pub fn output(&self) -> &OutputStream {
        &self.output
    }

    /// Whether unread data is buffered (a check that the peer said nothing more).
    pub fn buffered(&self) -> usize {
        self.raw.len() - self.raw_pos
    }
}

impl Source for Conn {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        if !self.mux_in {
            return self.raw_read_exact(buf);
        }
        let mut filled = 0;
        while filled < buf.len() {
            if self.frame_left == 0 {
                self.next_frame()?;
                continue;
            }
            let n = self.frame_left.min(buf.len() - filled);
            self.raw_read_exact(&mut buf[filled..filled + n])?;
            self.frame_left -= n;
            filled += n;
        }
        Ok(())
    }
}
