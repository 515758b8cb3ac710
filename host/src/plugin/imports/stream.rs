//! Byte streams between a client and a plugin: tokio readers and writers turned into WASI
//! streams, each cut off when the peer stays silent longer than the client timeout (a guest
//! blocked in a host call is not stopped by epochs, so every wait needs its own bound).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use wasmtime_wasi::p2::pipe::AsyncWriteStream;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, InputStream, Pollable, StreamError};

/// Bytes a plugin may hand to an output stream before it must wait.
const WRITE_BUDGET: usize = 1 << 20;

/// Bytes read from the source per wait.
const READ_CHUNK: usize = 1 << 20;

/// A WASI input stream over `reader`, failing after `idle` without data.
pub fn input_stream(
    reader: impl AsyncRead + Send + Unpin + 'static,
    idle: Duration,
    what: &'static str,
) -> DynInputStream {
    Box::new(DirectInput {
        reader: Idle::new(reader, idle, what),
        buffer: BytesMut::new(),
        end: None,
        closed: false,
    })
}

/// An input stream that reads its source when polled, in the caller's task: no helper task
/// and no channel between the source and the plugin (wasmtime's `AsyncReadStream` hops
/// through both for every 64 KiB, which capped a host-side copy at about 1 GB/s).
struct DirectInput<R> {
    reader: R,
    buffer: BytesMut,
    /// How the source ended, reported once the buffer is drained.
    end: Option<StreamError>,
    closed: bool,
}

#[async_trait::async_trait]
impl<R: AsyncRead + Send + Unpin + 'static> Pollable for DirectInput<R> {
    async fn ready(&mut self) {
        if !self.buffer.is_empty() || self.end.is_some() || self.closed {
            return;
        }
        self.buffer.reserve(READ_CHUNK);
        // `read_buf` is cancel-safe: a poll that is dropped (another pollable won) loses nothing.
        match self.reader.read_buf(&mut self.buffer).await {
            Ok(0) => self.end = Some(StreamError::Closed),
            Ok(_) => {}
            Err(e) => self.end = Some(StreamError::LastOperationFailed(e.into())),
        }
    }
}

#[async_trait::async_trait]
impl<R: AsyncRead + Send + Unpin + 'static> InputStream for DirectInput<R> {
    fn read(&mut self, size: usize) -> Result<Bytes, StreamError> {
        if !self.buffer.is_empty() {
            let n = size.min(self.buffer.len());
            return Ok(self.buffer.split_to(n).freeze());
        }
        if self.closed {
            return Err(StreamError::Closed);
        }
        match self.end.take() {
            Some(end) => {
                self.closed = true;
                Err(end)
            }
            None => Ok(Bytes::new()),
        }
    }
}

/// A WASI output stream over `writer`, failing after `idle` without progress.
pub fn output_stream(
    writer: impl AsyncWrite + Send + Unpin + 'static,
    idle: Duration,
    what: &'static str,
) -> DynOutputStream {
    Box::new(AsyncWriteStream::new(
        WRITE_BUDGET,
        Idle::new(writer, idle, what),
    ))
}

/// Wraps a reader or writer; an operation that makes no progress for `idle` fails with
/// `TimedOut`.
pub struct Idle<T> {
    inner: T,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    what: &'static str,
}

impl<T> Idle<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, idle: Duration, what: &'static str) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            what,
        }
    }

    fn progressed(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.idle);
    }

    fn check_timer(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "{}: nothing for {:?} (client timeout)",
                self.what, self.idle
            ),
        ))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.check_timer(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.check_timer(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.check_timer(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
