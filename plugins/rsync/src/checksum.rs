//! The checksums rsync negotiates: the rolling weak sum of a block, the strong sum of a block
//! (seeded), and the whole-file sum that checks a reconstructed file.

use md4::Digest as _;

/// A strong checksum rsync can agree on, strongest first in [`Algorithm::PREFERENCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// XXH3 128-bit.
    Xxh128,
    /// XXH3 64-bit.
    Xxh3,
    /// XXH64.
    Xxh64,
    /// MD5.
    Md5,
    /// MD4 as protocol 30 and later use it (no seed in the file sum).
    Md4,
    /// MD4 as protocols 27 to 29 use it (the seed starts the file sum).
    Md4Old,
}

impl Algorithm {
    /// What this plugin offers, in order of preference (rsync's own order).
    pub const PREFERENCE: [Algorithm; 5] = [
        Algorithm::Xxh128,
        Algorithm::Xxh3,
        Algorithm::Xxh64,
        Algorithm::Md5,
        Algorithm::Md4,
    ];

    /// The name rsync negotiates with.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Xxh128 => "xxh128",
            Algorithm::Xxh3 => "xxh3",
            Algorithm::Xxh64 => "xxh64",
            Algorithm::Md5 => "md5",
            Algorithm::Md4 | Algorithm::Md4Old => "md4",
        }
    }

    /// The algorithm rsync calls `name` (`xxhash` is XXH64).
    pub fn by_name(name: &str) -> Option<Algorithm> {
        match name {
            "xxh128" => Some(Algorithm::Xxh128),
            "xxh3" => Some(Algorithm::Xxh3),
            "xxh64" | "xxhash" => Some(Algorithm::Xxh64),
            "md5" => Some(Algorithm::Md5),
            "md4" => Some(Algorithm::Md4),
            _ => None,
        }
    }

    /// The length of its digest.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Xxh3 | Algorithm::Xxh64 => 8,
            _ => 16,
        }
    }

    /// The strong sum of one block, with the session's seed as rsync mixes it in (with the
    /// seed-order fix of protocol 30's `C` flag for MD5).
    pub fn block_sum(self, data: &[u8], seed: i32) -> Vec<u8> {
        let seed_bytes = seed.to_le_bytes();
        match self {
            Algorithm::Xxh64 => xxhash_rust::xxh64::xxh64(data, seed as u32 as u64)
                .to_le_bytes()
                .to_vec(),
            Algorithm::Xxh3 => xxhash_rust::xxh3::xxh3_64_with_seed(data, seed as u32 as u64)
                .to_le_bytes()
                .to_vec(),
            Algorithm::Xxh128 => xxhash_rust::xxh3::xxh3_128_with_seed(data, seed as u32 as u64)
                .to_le_bytes()
                .to_vec(),
            Algorithm::Md5 => {
                let mut h = md5::Md5::new();
                if seed != 0 {
                    h.update(seed_bytes);
                }
                h.update(data);
                h.finalize().to_vec()
            }
            Algorithm::Md4 | Algorithm::Md4Old => {
                let mut h = md4::Md4::new();
                h.update(data);
                if seed != 0 {
                    h.update(seed_bytes);
                }
                h.finalize().to_vec()
            }
        }
    }

    /// A whole-file sum, as the receiver checks a file against the sender's.
    pub fn file_sum(self, seed: i32) -> FileSum {
        let state = match self {
            Algorithm::Xxh64 => State::Xxh64(Box::new(xxhash_rust::xxh64::Xxh64::new(0))),
            Algorithm::Xxh3 | Algorithm::Xxh128 => State::Xxh3(
                Box::new(xxhash_rust::xxh3::Xxh3::new()),
                self == Algorithm::Xxh128,
            ),
            Algorithm::Md5 => State::Md5(md5::Md5::new()),
            Algorithm::Md4 => State::Md4(md4::Md4::new()),
            Algorithm::Md4Old => {
                let mut h = md4::Md4::new();
                h.update(seed.to_le_bytes());
                State::Md4(h)
            }
        };
        FileSum { state }
    }
}

enum State {
    Xxh64(Box<xxhash_rust::xxh64::Xxh64>),
    Xxh3(Box<xxhash_rust::xxh3::Xxh3>, bool),
    Md5(md5::Md5),
    Md4(md4::Md4),
}

/// A whole-file sum being computed.
pub struct FileSum {
    state: State,
}

impl FileSum {
    /// Adds bytes of the file, in order.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Xxh64(h) => h.update(data),
            State::Xxh3(h, _) => h.update(data),
            State::Md5(h) => h.update(data),
            State::Md4(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        match self.state {
            State::Xxh64(h) => h.digest().to_le_bytes().to_vec(),
            State::Xxh3(h, true) => h.digest128().to_le_bytes().to_vec(),
            State::Xxh3(h, false) => h.digest().to_le_bytes().to_vec(),
            State::Md5(h) => h.finalize().to_vec(),
            State::Md4(h) => h.finalize().to_vec(),
        }
    }
}

/// rsync's weak rolling checksum of a block (`get_checksum1`; bytes are signed chars, with
/// no offset).
pub fn rolling(data: &[u8]) -> u32 {
    Rolling::new(data).value()
}

/// The weak sum of a sliding window, updated a byte at a time (for the sender's matching).
#[derive(Debug, Clone, Copy)]
pub struct Rolling {
    s1: u32,
    s2: u32,
    len: u32,
}

impl Rolling {
    /// The sum of `window`.
    pub fn new(window: &[u8]) -> Self {
        let mut s1: u32 = 0;
        let mut s2: u32 = 0;
        for &b in window {
            s1 = s1.wrapping_add(b as i8 as i32 as u32);
            s2 = s2.wrapping_add(s1);
        }
        Rolling {
            s1,
            s2,
            len: window.len() as u32,
        }
    }

    /// The 32-bit value rsync sends.
    pub fn value(&self) -> u32 {
        (self.s1 & 0xffff).wrapping_add(self.s2 << 16)
    }

    /// Slides the window one byte: `out` leaves at the front, `incoming` joins at the back.
    pub fn roll(&mut self, out: u8, incoming: u8) {
        let out = out as i8 as i32 as u32;
        let incoming = incoming as i8 as i32 as u32;
        self.s1 = self.s1.wrapping_sub(out).wrapping_add(incoming);
        self.s2 = self
            .s2
            .wrapping_sub(self.len.wrapping_mul(out))
            .wrapping_add(self.s1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_matches_the_direct_sum_as_it_slides() {
        let data: Vec<u8> = (0..4000u32).map(|i| (i * 37 % 256) as u8).collect();
        let block = 700;
        let mut r = Rolling::new(&data[..block]);
        for start in 1..data.len() - block {
            r.roll(data[start - 1], data[start + block - 1]);
            assert_eq!(
                r.value(),
                rolling(&data[start..start + block]),
                "at {start}"
            );
        }
    }

    #[test]
    fn md4_old_file_sum_starts_with_the_seed() {
        let mut a = Algorithm::Md4Old.file_sum(0x1234);
        a.update(b"abc");
        let mut direct = md4::Md4::new();
        direct.update(0x1234i32.to_le_bytes());
        direct.update(b"abc");
        assert_eq!(a.finish(), direct.finalize().to_vec());
    }
}
