//! Content-defined chunking of a byte stream (FastCDC 2020), pushed a buffer at a time so a
//! file of any size is cut with memory bounded by the maximum chunk size.

use fastcdc::v2020::FastCDC;

/// Chunk size limits for content-defined chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkParams {
    /// Smallest chunk (except the last of a file).
    pub min: u32,
    /// Target average chunk size.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

impl ChunkParams {
    /// About 1 MiB on average: 256 KiB .. 4 MiB.
    pub const DEFAULT: ChunkParams = ChunkParams {
        min: 256 * 1024,
        avg: 1024 * 1024,
        max: 4 * 1024 * 1024,
    };

    /// Checks the limits against what FastCDC accepts.
    pub fn validate(&self) -> Result<(), String> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&self.min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&self.avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&self.max)
            && self.min <= self.avg
            && self.avg <= self.max;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "chunk sizes {self:?} are outside FastCDC's limits or not min <= avg <= max"
            ))
        }
    }
}

impl Default for ChunkParams {
    fn default() -> Self {
        ChunkParams::DEFAULT
    }
}

/// How many maximum-size chunks' worth of consumed bytes the buffer keeps before moving the
/// unconsumed tail (always less than one maximum chunk) to its front: the tail is moved at
/// most once per this many chunks' worth of input, not once per push.
const CONSUMED_BEFORE_COMPACTION: usize = 3;

/// A streaming chunker: push bytes, receive complete chunks; `finish` yields the tail.
#[derive(Debug)]
pub struct Chunker {
    params: ChunkParams,
    buf: Vec<u8>,
    /// Where the bytes not yet cut into chunks start in `buf`.
    start: usize,
}

impl Chunker {
    /// A chunker (limits already validated) whose stream starts with `buffered`, taken over
    /// rather than copied; the chunks already certain are emitted.
    pub fn starting_with<E>(
        params: ChunkParams,
        mut buffered: Vec<u8>,
        emit: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Chunker, E> {
        let capacity = params.max as usize * (CONSUMED_BEFORE_COMPACTION + 2);
        buffered.reserve(capacity.saturating_sub(buffered.len()));
        let mut chunker = Chunker {
            params,
            buf: buffered,
            start: 0,
        };
        chunker.cut(emit)?;
        Ok(chunker)
    }

    /// Appends `data`, calling `emit` for every chunk whose end is now certain.
    pub fn push<E>(
        &mut self,
        data: &[u8],
        emit: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.start >= self.params.max as usize * CONSUMED_BEFORE_COMPACTION {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
        self.cut(emit)
    }

    /// Emits every chunk whose end is certain from what is buffered.
    fn cut<E>(&mut self, emit: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let max = self.params.max as usize;
        while self.buf.len() - self.start >= max {
            // With at least `max` bytes buffered, the first cut is a real boundary.
            let window = &self.buf[self.start..self.start + max];
            let len = FastCDC::new(window, self.params.min, self.params.avg, self.params.max)
                .next()
                .map_or(max, |c| c.length);
            emit(window.get(..len).unwrap_or(window))?;
            self.start += len;
        }
        Ok(())
    }

    /// Emits the remaining chunks at the end of the stream.
    pub fn finish<E>(self, emit: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let rest = &self.buf[self.start..];
        for c in FastCDC::new(rest, self.params.min, self.params.avg, self.params.max) {
            emit(&rest[c.offset..c.offset + c.length])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    fn chunk_all(input: &[u8], params: ChunkParams, step: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut emit = |b: &[u8]| -> Result<(), ()> {
            out.push(b.to_vec());
            Ok(())
        };
        // The first piece is handed over, the rest pushed.
        let first = step.min(input.len());
        let mut c = Chunker::starting_with(params, input[..first].to_vec(), &mut emit).unwrap();
        for piece in input[first..].chunks(step) {
            c.push(piece, &mut emit).unwrap();
        }
        c.finish(&mut emit).unwrap();
        out
    }

    #[test]
    fn chunks_reassemble_and_do_not_depend_on_push_size() {
        let p = ChunkParams {
            min: 4096,
            avg: 16384,
            max: 65536,
        };
        let input = data(1_000_000, 1);
        let a = chunk_all(&input, p, 1000);
        let b = chunk_all(&input, p, 77_777);
        assert_eq!(a, b);
        assert_eq!(a, chunk_all(&input, p, input.len()));
        assert_eq!(a.concat(), input);
        assert!(a.len() > 20, "{} chunks", a.len());
        assert!(a.iter().all(|c| c.len() <= 65536));
    }

    #[test]
    fn an_insert_changes_only_nearby_chunks() {
        let p = ChunkParams {
            min: 4096,
            avg: 16384,
            max: 65536,
        };
        let input = data(2_000_000, 2);
        let mut edited = input.clone();
        edited.splice(1_000_000..1_000_000, b"inserted bytes".iter().copied());
        let a = chunk_all(&input, p, 65536);
        let b = chunk_all(&edited, p, 65536);
        let set: std::collections::HashSet<_> = a.iter().collect();
        let changed = b.iter().filter(|c| !set.contains(c)).count();
        assert!(changed <= 3, "{changed} of {} chunks changed", b.len());
    }
}
