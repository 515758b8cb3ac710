//! A cheap look at an object before it is compressed: bytes that are already compressed or
//! encrypted (media, archives, random data) have a byte distribution close to uniform, and
//! zstd would spend its time searching them for matches only to store them raw.
//!
//! The test samples the object (a 64-byte piece every 512 bytes, so an eighth of it, spread
//! over the whole object) and computes the Shannon entropy of the sampled bytes. Only a
//! distribution within a few hundredths of a bit of uniform counts as incompressible: text,
//! executables, databases and zero-filled images are far below it. What it cannot see is a
//! long repeat of random bytes inside one object (the same random block twice); such an object
//! is then stored raw, which costs space, never correctness.

/// Objects shorter than this are always given to zstd: the sample would be too small to
/// judge, and the object too small for the time to matter.
const MIN_LEN: usize = 4096;

/// Bytes taken at each sampling step.
const PIECE: usize = 64;

/// Distance between the starts of two pieces.
const STRIDE: usize = 512;

/// Entropy, in bits per byte, at or above which the sample counts as incompressible, once
/// the estimate's bias for a sample of its size is taken off. Uniform bytes are 8; a byte
/// distribution this close to uniform leaves zstd's entropy coder little more than 1% to gain.
const THRESHOLD_BITS: f64 = 7.9;

/// Pieces looked at before an early verdict: most compressible data (text, code) is far
/// below the threshold after a kilobyte, and need not be sampled further.
const FIRST_PIECES: usize = 16;

/// Entropy (bias taken off) below which the first pieces settle it: compressible.
const CLEARLY_COMPRESSIBLE_BITS: f64 = 7.0;

/// True when `data` looks incompressible (see the module docs).
pub(crate) fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < MIN_LEN {
        return false;
    }
    let mut counts = [0u32; 256];
    let mut sampled = 0usize;
    for (n, start) in (0..data.len()).step_by(STRIDE).enumerate() {
        if n == FIRST_PIECES && entropy_bits(&counts, sampled) < CLEARLY_COMPRESSIBLE_BITS {
            return false;
        }
        let piece = &data[start..(start + PIECE).min(data.len())];
        for &byte in piece {
            counts[usize::from(byte)] += 1;
        }
        sampled += piece.len();
    }
    entropy_bits(&counts, sampled) >= THRESHOLD_BITS
}

/// Shannon entropy in bits per byte of `sampled` bytes counted in `counts`, with the
/// estimate's bias for a sample of that size added back.
fn entropy_bits(counts: &[u32; 256], sampled: usize) -> f64 {
    let total = sampled as f64;
    let plug_in: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum();
    // The plug-in estimate falls short of the true entropy by about (k - 1) / (2 n ln 2)
    // bits for k possible symbols and n samples (Miller-Madow); add it back.
    plug_in + 255.0 / (2.0 * total * std::f64::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    #[test]
    fn random_and_compressed_bytes_are_incompressible() {
        for len in [MIN_LEN, 6000, 52 << 10, 1 << 20, 4 << 20] {
            assert!(looks_incompressible(&random(len, len as u64)), "{len}");
        }
        // zstd's own output, of text made of random words (the benchmark's kind).
        let mut rng = fastrand::Rng::with_seed(9);
        let words = b"backup pool share snapshot restore client server plugin stream chunk ";
        let mut text = Vec::new();
        while text.len() < 4 << 20 {
            let w = rng.usize(..60);
            text.extend_from_slice(&words[w..w + 10]);
        }
        let compressed = zstd::bulk::compress(&text, 3).expect("compress");
        assert!(looks_incompressible(&compressed), "{}", compressed.len());
    }

    #[test]
    fn structured_data_is_compressed() {
        let text = b"backup pool share snapshot restore client server plugin ".repeat(2000);
        assert!(!looks_incompressible(&text));
        assert!(!looks_incompressible(&vec![0u8; 1 << 20]));
        // Random bytes with every other kilobyte zeroed: half of it compresses.
        let mut holes = random(1 << 20, 3);
        for block in holes.chunks_mut(2048) {
            block[1024..].fill(0);
        }
        assert!(!looks_incompressible(&holes));
        // Random bytes drawn from 128 values only: 7 bits of entropy, an eighth to gain.
        let narrow: Vec<u8> = random(1 << 20, 4).iter().map(|b| b & 0x7f).collect();
        assert!(!looks_incompressible(&narrow));
        // Too short to judge.
        assert!(!looks_incompressible(&random(MIN_LEN - 1, 5)));
    }
}
