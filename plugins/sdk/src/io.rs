//! `std::io` adapters over the host's `wasi:io` byte streams.
//!
//! [`StreamReader`] and [`StreamWriter`] make an exec'd program's stdout and stdin, or a TCP
//! connection, ordinary readers and writers (buffer them as usual). A protocol that must read
//! and write at once can take the streams' pollables and wait on both with
//! [`wait_readable_or_writable`].

use std::io;

use crate::transport::wasi::io::poll;
use crate::transport::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// Reads from a host input stream, blocking until data arrives; `Ok(0)` at end of stream.
pub struct StreamReader {
    stream: InputStream,
}

impl StreamReader {
    /// Wraps an input stream.
    pub fn new(stream: InputStream) -> Self {
        Self { stream }
    }

    /// The wrapped stream (e.g. for [`crate::transport::hoard::plugin::sink::FileWriter::copy_from`]).
    pub fn stream(&self) -> &InputStream {
        &self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> InputStream {
        self.stream
    }
}

impl io::Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.stream.blocking_read(buf.len() as u64) {
            Ok(data) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
            Err(StreamError::Closed) => Ok(0),
            Err(StreamError::LastOperationFailed(e)) => Err(io::Error::other(e.to_debug_string())),
        }
    }
}

/// Writes to a host output stream, as much per call as the host permits. `write` and `flush`
/// block until the host accepts: fine for one direction at a time; a protocol that must also
/// drain the program's output while writing should use [`wait_readable_or_writable`] and write
/// only what `check-write` permits (see the probe test plugin's `echo` mode).
pub struct StreamWriter {
    stream: OutputStream,
}

impl StreamWriter {
    /// Wraps an output stream.
    pub fn new(stream: OutputStream) -> Self {
        Self { stream }
    }

    /// The wrapped stream.
    pub fn stream(&self) -> &OutputStream {
        &self.stream
    }

    /// Flushes, then gives the stream back.
    pub fn into_inner(mut self) -> io::Result<OutputStream> {
        io::Write::flush(&mut self)?;
        Ok(self.stream)
    }

    /// Flushes and drops the stream, which ends the input of the program behind it.
    pub fn close(self) -> io::Result<()> {
        self.into_inner().map(drop)
    }
}

fn stream_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"),
        StreamError::LastOperationFailed(e) => io::Error::other(e.to_debug_string()),
    }
}

impl io::Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let permit = loop {
            let permit = self.stream.check_write().map_err(stream_error)?;
            if permit > 0 {
                break permit;
            }
            self.stream.subscribe().block();
        };
        let n = buf.len().min(usize::try_from(permit).unwrap_or(usize::MAX));
        self.stream.write(&buf[..n]).map_err(stream_error)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.blocking_flush().map_err(stream_error)
    }
}

/// Which side of [`wait_readable_or_writable`] became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The input stream has data (or ended).
    pub readable: bool,
    /// The output stream accepts bytes.
    pub writable: bool,
}

/// Blocks until `input` can be read or `output` can be written, whichever comes first: the
/// building block of a single-threaded protocol that reads and writes at once (rsync's
/// generator and receiver).
pub fn wait_readable_or_writable(input: &InputStream, output: &OutputStream) -> Readiness {
    let pollables = [input.subscribe(), output.subscribe()];
    let refs: Vec<&poll::Pollable> = pollables.iter().collect();
    let ready = poll::poll(&refs);
    Readiness {
        readable: ready.contains(&0),
        writable: ready.contains(&1),
    }
}
