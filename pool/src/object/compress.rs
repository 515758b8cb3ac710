//! Per-object compression with zstd; objects that do not shrink are stored raw.

use std::borrow::Cow;
use std::cell::RefCell;

/// A reusable zstd compressor at a fixed level.
pub struct Compressor {
    inner: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Compressor {
    /// A compressor at zstd `level`.
    pub fn new(level: i32) -> std::io::Result<Compressor> {
        Ok(Compressor {
            inner: zstd::bulk::Compressor::new(level)?,
            out: Vec::new(),
        })
    }

    /// Compresses `plain`, which it takes over: returns the compressed bytes when they are
    /// smaller at all (by more than a record's worth of bytes), else `plain` itself, so that
    /// neither is copied. `Ok((true, _))` means compressed.
    pub fn compress_owned(&mut self, plain: Vec<u8>) -> std::io::Result<(bool, Vec<u8>)> {
        let compressed = match self.compress(&plain)? {
            (true, out) => out.len(),
            (false, _) => return Ok((false, plain)),
        };
        let mut out = std::mem::take(&mut self.out);
        out.truncate(compressed);
        Ok((true, out))
    }

    /// Compresses `plain`; returns `(true, compressed)` when that is smaller at all (by more
    /// than a record's worth of bytes), else `(false, plain)`. Bytes that look incompressible
    /// (already compressed or encrypted, see `entropy`) are not given to zstd at all. The
    /// output buffer is reused.
    pub fn compress<'a>(&'a mut self, plain: &'a [u8]) -> std::io::Result<(bool, Cow<'a, [u8]>)> {
        if plain.len() < 64 || super::entropy::looks_incompressible(plain) {
            return Ok((false, Cow::Borrowed(plain)));
        }
        self.out.clear();
        self.out
            .reserve(zstd::zstd_safe::compress_bound(plain.len()));
        let n = self.inner.compress_to_buffer(plain, &mut self.out)?;
        if n + 16 < plain.len() {
            Ok((true, Cow::Borrowed(&self.out[..n])))
        } else {
            Ok((false, Cow::Borrowed(plain)))
        }
    }
}

thread_local! {
    /// One decompression context per thread: making one zeroes over 100 KiB, more than
    /// decompressing a small directory object costs.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses an object whose plain size is `plain_len`.
pub fn decompress(stored: &[u8], plain_len: usize) -> std::io::Result<Vec<u8>> {
    let out = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match &mut *slot {
            Some(d) => d,
            empty => empty.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(stored, plain_len)
    })?;
    if out.len() != plain_len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("decompressed to {} bytes, expected {plain_len}", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_shrinks_random_stays_raw() {
        let mut c = Compressor::new(3).unwrap();
        let text = b"hello world ".repeat(1000);
        let (compressed, out) = c.compress(&text).unwrap();
        assert!(compressed);
        assert!(out.len() < text.len() / 10);
        assert_eq!(decompress(&out, text.len()).unwrap(), text);

        let mut rng = fastrand::Rng::with_seed(7);
        let random: Vec<u8> = (0..100_000).map(|_| rng.u8(..)).collect();
        let (compressed, out) = c.compress(&random).unwrap();
        assert!(!compressed);
        assert_eq!(&*out, &random[..]);
    }
}
