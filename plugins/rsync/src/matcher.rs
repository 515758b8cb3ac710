//! The sender's half of the delta (`match_sums` in rsync): the receiver's block checksums of
//! its basis in a table by weak sum, and a window sliding over the file a byte at a time;
//! where a block matches (weak sum, then strong sum), a block reference goes out instead of
//! the bytes. Content streams through in pieces, so a file of any size needs a few MiB.

use std::collections::HashMap;

use crate::checksum::{Algorithm, Rolling};
use crate::error::{Error, protocol};
use crate::wire::put_i32;

/// Largest literal run per token (rsync's CHUNK_SIZE).
pub const CHUNK: usize = 32 * 1024;

/// The receiver's checksums of its basis.
#[derive(Debug, Default)]
pub struct BlockSums {
    block: usize,
    remainder: usize,
    count: usize,
    strong_len: usize,
    by_weak: HashMap<u32, Vec<(u32, Vec<u8>)>>,
}

impl BlockSums {
    /// Reads `count` checksums of `block`-byte blocks (the last `remainder` bytes long when
    /// not zero), each a weak sum and `strong_len` bytes of strong sum.
    pub fn read<S: crate::wire::Source + ?Sized>(
        src: &mut S,
        count: usize,
        block: usize,
        strong_len: usize,
        remainder: usize,
    ) -> Result<BlockSums, Error> {
        let mut by_weak: HashMap<u32, Vec<(u32, Vec<u8>)>> = HashMap::new();
        for index in 0..count {
            let weak = crate::wire::read_i32(src)? as u32;
            let strong = crate::wire::read_bytes(src, strong_len, 64)?;
            let index = u32::try_from(index).map_err(|_| protocol("too many blocks"))?;
            by_weak.entry(weak).or_default().push((index, strong));
        }
        Ok(BlockSums {
            block,
            remainder,
            count,
            strong_len,
            by_weak,
        })
    }

    fn len_of(&self, index: u32) -> usize {
        if index as usize + 1 == self.count && self.remainder != 0 {
            self.remainder
        } else {
            self.block
        }
    }

    /// The block `window` matches, if any.
    fn find(&self, weak: u32, window: &[u8], algorithm: Algorithm, seed: i32) -> Option<u32> {
        let candidates = self.by_weak.get(&weak)?;
        let mut strong: Option<Vec<u8>> = None;
        for (index, sum) in candidates {
            if self.len_of(*index) != window.len() {
                continue;
            }
            let mine = strong.get_or_insert_with(|| algorithm.block_sum(window, seed));
            if mine.get(..self.strong_len) == Some(sum.as_slice()) {
                return Some(*index);
            }
        }
        None
    }
}

/// Turns a file's content into rsync tokens against `sums`: feed it the content in order,
/// take the encoded tokens as they come, then finish.
pub struct Matcher<'a> {
    sums: &'a BlockSums,
    algorithm: Algorithm,
    seed: i32,
    buf: Vec<u8>,
    /// Start of the window in `buf`.
    pos: usize,
    /// Start of the literal bytes not yet sent.
    literal: usize,
    rolling: Option<Rolling>,
    /// Literal bytes sent.
    pub literal_bytes: u64,
    /// Bytes sent as block references.
    pub matched_bytes: u64,
}

impl<'a> Matcher<'a> {
    /// A matcher for one file.
    pub fn new(sums: &'a BlockSums, algorithm: Algorithm, seed: i32) -> Self {
        Matcher {
            sums,
            algorithm,
            seed,
            buf: Vec::new(),
            pos: 0,
            literal: 0,
            rolling: None,
            literal_bytes: 0,
            matched_bytes: 0,
        }
    }

    fn emit_literal(&mut self, out: &mut Vec<u8>, end: usize) {
        while self.literal < end {
            let n = (end - self.literal).min(CHUNK);
            put_i32(out, n as i32);
            out.extend_from_slice(&self.buf[self.literal..self.literal + n]);
            self.literal += n;
            self.literal_bytes += n as u64;
        }
    }

    /// Adds content; tokens that are ready go to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.buf.extend_from_slice(data);
        self.scan(out, false);
        // Drop what was sent.
        if self.literal > (4 << 20) {
            let cut = self.literal;
            self.buf.drain(..cut);
            self.pos -= cut;
            self.literal = 0;
        }
    }

    /// Ends the file: matches what is left (the last block may be short) and sends the rest
    /// as literal data.
    pub fn finish(mut self, out: &mut Vec<u8>) -> (u64, u64) {
        self.scan(out, true);
        let end = self.buf.len();
        self.emit_literal(out, end);
        (self.literal_bytes, self.matched_bytes)
    }

    fn scan(&mut self, out: &mut Vec<u8>, at_end: bool) {
        let block = self.sums.block;
        if block == 0 || self.sums.count == 0 {
            if !at_end {
                // Nothing can match: send full chunks as they come.
                let ready = self.buf.len() - (self.buf.len() - self.literal) % CHUNK;
                self.emit_literal(out, ready);
                self.pos = self.literal;
            }
            return;
        }
        loop {
            let available = self.buf.len() - self.pos;
            let window_len = if available >= block {
                block
            } else if at_end && available > 0 && available == self.sums.remainder {
                available
            } else {
                return;
            };
            let window = &self.buf[self.pos..self.pos + window_len];
            let weak = match self.rolling {
                Some(r) if window_len == block => r.value(),
                _ => {
                    let r = Rolling::new(window);
                    self.rolling = Some(r);
                    r.value()
                }
            };
            if let Some(index) = self.sums.find(weak, window, self.algorithm, self.seed) {
                let start = self.pos;
                self.emit_literal(out, start);
                put_i32(out, -(index as i32 + 1));
                self.matched_bytes += window_len as u64;
                self.pos += window_len;
                self.literal = self.pos;
                self.rolling = None;
                continue;
            }
            if window_len < block {
                return;
            }
            // Slide one byte, when the byte after the window is here.
            if self.pos + block >= self.buf.len() {
                if at_end {
                    // Too few bytes left for a full block: try the short last block.
                    self.pos += 1;
                    self.rolling = None;
                    if self.buf.len() - self.pos < self.sums.remainder.max(1) {
                        return;
                    }
                    continue;
                }
                return;
            }
            let outgoing = self.buf[self.pos];
            let incoming = self.buf[self.pos + block];
            if let Some(r) = &mut self.rolling {
                r.roll(outgoing, incoming);
            }
            self.pos += 1;
            if self.pos - self.literal >= CHUNK {
                let end = self.literal + CHUNK;
                self.emit_literal(out, end);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rebuilds a file from tokens and the basis, as the receiver does.
    fn apply(tokens: &[u8], basis: &[u8], block: usize) -> Vec<u8> {
        let mut src = tokens;
        let mut out = Vec::new();
        loop {
            let t = crate::wire::read_i32(&mut src).unwrap();
            if t == 0 {
                break;
            }
            if t > 0 {
                let data = crate::wire::read_bytes(&mut src, t as usize, CHUNK).unwrap();
                out.extend(data);
            } else {
                let i = (-(t + 1)) as usize;
                let end = ((i + 1) * block).min(basis.len());
                out.extend_from_slice(&basis[i * block..end]);
            }
        }
        out
    }

    fn sums_of(basis: &[u8], block: usize, algorithm: Algorithm, seed: i32) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in basis.chunks(block) {
            put_i32(&mut out, crate::checksum::rolling(chunk) as i32);
            out.extend(algorithm.block_sum(chunk, seed));
        }
        out
    }

    fn noise(len: usize, mut state: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn edits_insertions_and_tails_rebuild_exactly() {
        let algorithm = Algorithm::Xxh128;
        let block = 700;
        let basis = noise(100_000, 7);
        let mut edited = basis.clone();
        edited[50_000..50_010].copy_from_slice(b"0123456789");
        edited.splice(20_000..20_000, b"inserted bytes".iter().copied());
        edited.truncate(90_123);
        edited.extend_from_slice(&basis[99_500..]);
        let raw = sums_of(&basis, block, algorithm, 42);
        let count = basis.len().div_ceil(block);
        let sums =
            BlockSums::read(&mut raw.as_slice(), count, block, 16, basis.len() % block).unwrap();
        for piece in [1usize, 777, 65_536, 1 << 20] {
            let mut matcher = Matcher::new(&sums, algorithm, 42);
            let mut out = Vec::new();
            for part in edited.chunks(piece) {
                matcher.feed(part, &mut out);
            }
            let (literal, matched) = matcher.finish(&mut out);
            put_i32(&mut out, 0);
            assert_eq!(apply(&out, &basis, block), edited, "pieces of {piece}");
            assert_eq!(literal + matched, edited.len() as u64);
            assert!(
                literal < 5_000,
                "{literal} literal bytes for three small changes"
            );
        }
    }

    #[test]
    fn without_sums_everything_is_literal() {
        let sums = BlockSums::default();
        let data = noise(100_000, 3);
        let mut matcher = Matcher::new(&sums, Algorithm::Md5, 0);
        let mut out = Vec::new();
        matcher.feed(&data, &mut out);
        let (literal, matched) = matcher.finish(&mut out);
        put_i32(&mut out, 0);
        assert_eq!((literal, matched), (100_000, 0));
        assert_eq!(apply(&out, &[], 1), data);
    }
}
