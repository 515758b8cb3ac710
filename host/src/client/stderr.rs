//! A program's standard error between the task that receives it and the plugin that reads
//! it: bytes kept in order up to a cap, appended without ever waiting, so a program that
//! writes a lot to stderr while its reader is busy with stdout can never stall (the reader
//! of stdout would otherwise wait on a program blocked writing stderr). Beyond the cap the
//! oldest whole lines are dropped and the reader gets one marker line saying how many bytes.
//! Used by the ssh client (fed by the channel pump) and the local client (fed by a task that
//! drains the child's pipe).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes of stderr kept for a reader that is not reading it; beyond, the oldest lines are
/// dropped. Generous: tar's messages, even one line per member in a verbose run, stay far
/// below it while the reader is away for a file's content, and a reader that polls stderr
/// whenever it waits never comes near it.
pub(crate) const STDERR_BUFFER_BYTES: usize = 8 << 20;

/// How a program's stderr ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StderrEnd {
    /// The server sent EOF (or closed the channel).
    Eof,
    /// The connection was lost: the reader gets an error once the data is read.
    Lost,
}

/// A program's stderr between the channel pump and its reader: bytes in order, at most
/// `cap` of them. The pump appends and never waits; when the reader falls more than `cap`
/// behind, the oldest bytes are dropped, whole lines at a time, and the reader is told how
/// many with one marker line.
#[derive(Debug)]
pub(crate) struct StderrBuffer {
    cap: usize,
    /// Bytes not read yet.
    data: VecDeque<u8>,
    /// Bytes dropped since the reader last got a marker line.
    dropped: u64,
    /// A drop cut a line: what arrives up to the next newline is dropped too.
    skip_line: bool,
    /// The last byte the reader took ended a line (or it took none).
    reader_at_line_start: bool,
    /// How the stream ended; what is in `data` is still read first.
    end: Option<StderrEnd>,
    /// The reader was dropped: nothing is kept any more.
    reader_gone: bool,
    waker: Option<Waker>,
}

/// Locks a stderr buffer; a panic elsewhere while it was held leaves consistent state.
pub(crate) fn lock(buffer: &StdMutex<StderrBuffer>) -> MutexGuard<'_, StderrBuffer> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StderrBuffer {
    /// An empty buffer keeping at most `cap` bytes, shared by the pump and the reader.
    pub(crate) fn new(cap: usize) -> Arc<StdMutex<StderrBuffer>> {
        Arc::new(StdMutex::new(StderrBuffer {
            cap,
            data: VecDeque::new(),
            dropped: 0,
            skip_line: false,
            reader_at_line_start: true,
            end: None,
            reader_gone: false,
            waker: None,
        }))
    }

    /// Appends `incoming`, dropping the oldest lines beyond the cap. Never waits.
    fn push(&mut self, mut incoming: &[u8]) {
        if self.reader_gone || self.end.is_some() || incoming.is_empty() {
            return;
        }
        self.skip_rest_of_line(&mut incoming);
        let total = self.data.len() + incoming.len();
        if total > self.cap {
            let excess = total - self.cap;
            let old = excess.min(self.data.len());
            let last_dropped = if excess > old {
                incoming[excess - old - 1]
            } else {
                self.data[old - 1]
            };
            self.data.drain(..old);
            incoming = &incoming[excess - old..];
            self.dropped += excess as u64;
            if last_dropped != b'\n' {
                // Whatever is left of the cut line goes too: the reader sees whole lines.
                match self.data.iter().position(|b| *b == b'\n') {
                    Some(end) => {
                        self.data.drain(..=end);
                        self.dropped += end as u64 + 1;
                    }
                    None => {
                        self.dropped += self.data.len() as u64;
                        self.data.clear();
                        self.skip_line = true;
                        self.skip_rest_of_line(&mut incoming);
                    }
                }
            }
        }
        self.data.extend(incoming);
        self.wake();
    }

    /// While a cut line is being skipped: drops `incoming` up to and with its first newline.
    fn skip_rest_of_line(&mut self, incoming: &mut &[u8]) {
        if !self.skip_line {
            return;
        }
        let cut = match incoming.iter().position(|b| *b == b'\n') {
            Some(end) => {
                self.skip_line = false;
                end + 1
            }
            None => incoming.len(),
        };
        self.dropped += cut as u64;
        *incoming = &incoming[cut..];
    }

    fn end(&mut self, end: StderrEnd) {
        if self.end.is_none() {
            self.end = Some(end);
        }
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// The line that stands for the dropped bytes, on a line of its own.
    fn marker(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        if !self.reader_at_line_start {
            line.push(b'\n');
        }
        line.extend_from_slice(
            format!(
                "hoard: {} bytes of standard error dropped (more than {} bytes unread)\n",
                self.dropped, self.cap
            )
            .as_bytes(),
        );
        self.dropped = 0;
        self.reader_at_line_start = true;
        line
    }

    /// Moves as many unread bytes as fit into `out`.
    fn take(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.data.len());
        let (front, back) = self.data.as_slices();
        let first = n.min(front.len());
        out.put_slice(&front[..first]);
        out.put_slice(&back[..n - first]);
        if n > 0 {
            self.reader_at_line_start = self.data[n - 1] == b'\n';
        }
        self.data.drain(..n);
        if self.data.is_empty() && self.data.capacity() > 1 << 20 {
            // A burst is over: give its memory back.
            self.data.shrink_to(64 << 10);
        }
    }
}

/// The pump's end of a stderr buffer; dropping it ends the stream (EOF) if nothing else did.
pub(crate) struct StderrSink(pub(crate) Arc<StdMutex<StderrBuffer>>);

impl StderrSink {
    pub(crate) fn push(&self, data: &[u8]) {
        lock(&self.0).push(data);
    }

    pub(crate) fn end(self, end: StderrEnd) {
        lock(&self.0).end(end);
    }
}

impl Drop for StderrSink {
    fn drop(&mut self) {
        lock(&self.0).end(StderrEnd::Eof);
    }
}

/// A program's stderr, read from its [`StderrBuffer`].
pub(crate) struct StderrReader {
    buffer: Arc<StdMutex<StderrBuffer>>,
    /// A marker line not yet read whole.
    marker: Bytes,
}

impl StderrReader {
    pub(crate) fn new(buffer: Arc<StdMutex<StderrBuffer>>) -> Self {
        Self {
            buffer,
            marker: Bytes::new(),
        }
    }
}

impl AsyncRead for StderrReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if self.marker.is_empty() {
            let mut state = lock(&self.buffer);
            if state.dropped == 0 {
                if !state.data.is_empty() {
                    state.take(buf);
                    return Poll::Ready(Ok(()));
                }
                return match state.end {
                    Some(StderrEnd::Eof) => Poll::Ready(Ok(())),
                    Some(StderrEnd::Lost) => {
                        state.end = Some(StderrEnd::Eof);
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "ssh connection lost",
                        )))
                    }
                    None => {
                        state.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                };
            }
            let marker = state.marker();
            drop(state);
            self.marker = Bytes::from(marker);
        }
        let n = buf.remaining().min(self.marker.len());
        let part = self.marker.split_to(n);
        buf.put_slice(&part);
        Poll::Ready(Ok(()))
    }
}

impl Drop for StderrReader {
    fn drop(&mut self) {
        let mut state = lock(&self.buffer);
        state.reader_gone = true;
        state.data = VecDeque::new();
    }
}

/// A reader for a child's stderr pipe, drained into a capped buffer by a task of its own.
pub(crate) fn drained(mut pipe: impl AsyncRead + Send + Unpin + 'static) -> StderrReader {
    use tokio::io::AsyncReadExt;
    let buffer = StderrBuffer::new(STDERR_BUFFER_BYTES);
    let sink = StderrSink(Arc::clone(&buffer));
    tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => sink.push(&chunk[..n]),
                Err(_) => {
                    sink.end(StderrEnd::Lost);
                    return;
                }
            }
        }
        drop(sink);
    });
    StderrReader::new(buffer)
}

#[cfg(test)]
mod tests {
    use super::{StderrBuffer, StderrEnd, StderrReader, StderrSink};

    /// Everything a stderr reader gets until the end.
    async fn read_all(reader: &mut StderrReader) -> std::io::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn stderr_is_kept_whole_under_the_cap() {
        let buffer = StderrBuffer::new(64);
        let sink = StderrSink(std::sync::Arc::clone(&buffer));
        let mut reader = StderrReader::new(buffer);
        sink.push(b"one\ntw");
        sink.push(b"o\n");
        drop(sink);
        assert_eq!(read_all(&mut reader).await.expect("read"), b"one\ntwo\n");
    }

    #[tokio::test]
    async fn stderr_beyond_the_cap_drops_the_oldest_whole_lines_with_a_marker() {
        let buffer = StderrBuffer::new(16);
        let sink = StderrSink(std::sync::Arc::clone(&buffer));
        let mut reader = StderrReader::new(buffer);
        // Never waits, whatever the reader does.
        for line in [&b"aaaa\n"[..], b"bbbb\n", b"cccc\n", b"dddd\n", b"eeee\n"] {
            sink.push(line);
        }
        drop(sink);
        assert_eq!(
            String::from_utf8(read_all(&mut reader).await.expect("read")).expect("text"),
            "hoard: 10 bytes of standard error dropped (more than 16 bytes unread)\n\
             cccc\ndddd\neeee\n"
        );
    }

    #[tokio::test]
    async fn a_cut_line_is_dropped_to_its_end_and_the_marker_starts_a_line() {
        use tokio::io::AsyncReadExt;
        let buffer = StderrBuffer::new(8);
        let sink = StderrSink(std::sync::Arc::clone(&buffer));
        let mut reader = StderrReader::new(buffer);
        sink.push(b"ab");
        let mut first = [0u8; 2];
        reader.read_exact(&mut first).await.expect("read");
        assert_eq!(&first, b"ab");
        // The rest of "ab..." and a line longer than the cap, in pieces, then a short one.
        sink.push(b"cdefgh\nlong-");
        sink.push(b"line-without-end");
        sink.push(b"-yet\nok\n");
        drop(sink);
        assert_eq!(
            String::from_utf8(read_all(&mut reader).await.expect("read")).expect("text"),
            "\nhoard: 33 bytes of standard error dropped (more than 8 bytes unread)\nok\n"
        );
    }

    #[tokio::test]
    async fn lost_stderr_is_an_error_after_its_data() {
        use tokio::io::AsyncReadExt;
        let buffer = StderrBuffer::new(64);
        let sink = StderrSink(std::sync::Arc::clone(&buffer));
        let mut reader = StderrReader::new(buffer);
        sink.push(b"last words\n");
        sink.end(StderrEnd::Lost);
        let mut data = vec![0u8; 11];
        reader.read_exact(&mut data).await.expect("data first");
        assert_eq!(data, b"last words\n");
        let error = read_all(&mut reader).await.expect_err("then the loss");
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
    }

    #[tokio::test]
    async fn a_gone_reader_keeps_nothing() {
        let buffer = StderrBuffer::new(64);
        let sink = StderrSink(std::sync::Arc::clone(&buffer));
        drop(StderrReader::new(std::sync::Arc::clone(&buffer)));
        sink.push(b"nobody reads this\n");
        assert!(super::lock(&buffer).data.is_empty());
    }
}
