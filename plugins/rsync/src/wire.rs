//! rsync's integer and string encodings, in both directions, with no I/O: little-endian
//! ints, the variable-length `varint`/`varlong`, `vstring`s, and the file-index (`ndx`)
//! encoding of protocol 30 that sends differences from the previous index.
//!
//! Decoding pulls from a [`Source`] (the demultiplexed connection, or a byte slice in tests);
//! encoding appends to a `Vec<u8>`. Every length read from the peer is bounded by the caller.

use crate::error::{Error, protocol};

/// Where decoded bytes come from.
pub trait Source {
    /// Fills `buf` completely, or fails (a truncated stream is a protocol error).
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Error>;
}

impl Source for &[u8] {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        if self.len() < buf.len() {
            return Err(protocol("the stream ended early (truncated)"));
        }
        let (head, rest) = self.split_at(buf.len());
        buf.copy_from_slice(head);
        *self = rest;
        Ok(())
    }
}

/// The index that ends a phase (and the file list of protocol 30's incremental recursion).
pub const NDX_DONE: i32 = -1;

/// Extra bytes that follow a varint's first byte, by that byte's top six bits.
const INT_BYTE_EXTRA: [u8; 64] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0x00-0x3F
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0x40-0x7F
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x80-0xBF
    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 6, // 0xC0-0xFF
];

/// One byte.
pub fn read_u8<S: Source + ?Sized>(src: &mut S) -> Result<u8, Error> {
    let mut b = [0u8; 1];
    src.read_exact(&mut b)?;
    Ok(b[0])
}

/// A 16-bit little-endian value.
pub fn read_u16<S: Source + ?Sized>(src: &mut S) -> Result<u16, Error> {
    let mut b = [0u8; 2];
    src.read_exact(&mut b)?;
    Ok(u16::from_le_bytes(b))
}

/// A 32-bit little-endian signed value.
pub fn read_i32<S: Source + ?Sized>(src: &mut S) -> Result<i32, Error> {
    let mut b = [0u8; 4];
    src.read_exact(&mut b)?;
    Ok(i32::from_le_bytes(b))
}

/// `read_longint`: an int, or -1 followed by a 64-bit value.
pub fn read_longint<S: Source + ?Sized>(src: &mut S) -> Result<i64, Error> {
    let first = read_i32(src)?;
    if first != -1 {
        return Ok(i64::from(first));
    }
    let mut b = [0u8; 8];
    src.read_exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

/// A `varint`: one byte whose high bits say how many more follow.
pub fn read_varint<S: Source + ?Sized>(src: &mut S) -> Result<i32, Error> {
    let first = read_u8(src)?;
    let extra = usize::from(INT_BYTE_EXTRA[usize::from(first / 4)]);
    let mut bytes = [0u8; 5];
    if extra == 0 {
        bytes[0] = first;
    } else {
        if extra >= 5 {
            return Err(protocol("varint overflow"));
        }
        src.read_exact(&mut bytes[..extra])?;
        let bit = 1u8 << (8 - extra);
        bytes[extra] = first & (bit - 1);
    }
    Ok(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A `varlong` with at least `min_bytes` bytes.
pub fn read_varlong<S: Source + ?Sized>(src: &mut S, min_bytes: usize) -> Result<i64, Error> {
    let mut head = [0u8; 8];
    src.read_exact(&mut head[..min_bytes])?;
    let mut bytes = [0u8; 9];
    bytes[..min_bytes - 1].copy_from_slice(&head[1..min_bytes]);
    let extra = usize::from(INT_BYTE_EXTRA[usize::from(head[0] / 4)]);
    if extra > 0 {
        if min_bytes + extra > 9 {
            return Err(protocol("varlong overflow"));
        }
        src.read_exact(&mut bytes[min_bytes - 1..min_bytes - 1 + extra])?;
        let bit = 1u8 << (8 - extra);
        bytes[min_bytes + extra - 1] = head[0] & (bit - 1);
    } else {
        bytes[min_bytes - 1] = head[0];
    }
    let mut value = [0u8; 8];
    value.copy_from_slice(&bytes[..8]);
    Ok(i64::from_le_bytes(value))
}

/// A `vstring` of at most `max` bytes.
pub fn read_vstring<S: Source + ?Sized>(src: &mut S, max: usize) -> Result<Vec<u8>, Error> {
    let mut len = usize::from(read_u8(src)?);
    if len & 0x80 != 0 {
        len = (len & 0x7f) * 0x100 + usize::from(read_u8(src)?);
    }
    read_bytes(src, len, max)
}

/// `len` bytes, refused when more than `max`.
pub fn read_bytes<S: Source + ?Sized>(
    src: &mut S,
    len: usize,
    max: usize,
) -> Result<Vec<u8>, Error> {
    if len > max {
        return Err(protocol(format!(
            "a field of {len} bytes (at most {max} expected)"
        )));
    }
    let mut out = vec![0u8; len];
    src.read_exact(&mut out)?;
    Ok(out)
}

/// Appends a 32-bit little-endian value.
pub fn put_i32(out: &mut Vec<u8>, value: i32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a 16-bit little-endian value.
pub fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends `write_longint`.
pub fn put_longint(out: &mut Vec<u8>, value: i64) {
    match i32::try_from(value) {
        Ok(small) if small != -1 && small >= 0 => put_i32(out, small),
        _ => {
            put_i32(out, -1);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// Appends a `varint`.
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    let mut b = [0u8; 5];
    b[1..5].copy_from_slice(&value.to_le_bytes());
    let mut cnt = 4;
    while cnt > 1 && b[cnt] == 0 {
        cnt -= 1;
    }
    let bit = 1u8 << (7 - cnt + 1);
    if b[cnt] >= bit {
        cnt += 1;
        b[0] = !(bit - 1);
    } else if cnt > 1 {
        b[0] = b[cnt] | !(bit.wrapping_mul(2).wrapping_sub(1));
    } else {
        b[0] = b[1];
    }
    out.extend_from_slice(&b[..cnt]);
}

/// Appends a `varlong` of at least `min_bytes` bytes.
pub fn put_varlong(out: &mut Vec<u8>, value: i64, min_bytes: usize) {
    let mut b = [0u8; 9];
    b[1..9].copy_from_slice(&value.to_le_bytes());
    let mut cnt = 8;
    while cnt > min_bytes && b[cnt] == 0 {
        cnt -= 1;
    }
    let bit = 1u8 << (7 + min_bytes - cnt);
    if b[cnt] >= bit {
        cnt += 1;
        b[0] = !(bit - 1);
    } else if cnt > min_bytes {
        b[0] = b[cnt] | !(bit.wrapping_mul(2).wrapping_sub(1));
    } else {
        b[0] = b[cnt];
    }
    out.extend_from_slice(&b[..cnt]);
}

/// Appends a `vstring` (at most 0x7FFF bytes; longer is the caller's error).
pub fn put_vstring(out: &mut Vec<u8>, text: &[u8]) {
    let len = text.len().min(0x7fff);
    if len > 0x7f {
        out.push((len / 0x100) as u8 | 0x80);
    }
    out.push(len as u8);
    out.extend_from_slice(&text[..len]);
}

/// The file-index codec of one direction: protocol 30 sends the difference from the previous
/// index of the same sign; older protocols send plain ints.
#[derive(Debug, Clone)]
pub struct NdxCodec {
    protocol: i32,
    prev_positive: i32,
    prev_negative: i32,
}

impl NdxCodec {
    /// A fresh codec for `protocol`.
    pub fn new(protocol: i32) -> Self {
        NdxCodec {
            protocol,
            prev_positive: -1,
            prev_negative: 1,
        }
    }

    /// Reads one index.
    pub fn read<S: Source + ?Sized>(&mut self, src: &mut S) -> Result<i32, Error> {
        if self.protocol < 30 {
            return read_i32(src);
        }
        let mut b = [read_u8(src)?, 0, 0, 0];
        let negative = if b[0] == 0xff {
            b[0] = read_u8(src)?;
            true
        } else if b[0] == 0 {
            return Ok(NDX_DONE);
        } else {
            false
        };
        let prev = if negative {
            self.prev_negative
        } else {
            self.prev_positive
        };
        let num = if b[0] == 0xfe {
            let mut two = [0u8; 2];
            src.read_exact(&mut two)?;
            if two[0] & 0x80 != 0 {
                let mut rest = [0u8; 2];
                src.read_exact(&mut rest)?;
                i32::from_le_bytes([two[1], rest[0], rest[1], two[0] & 0x7f])
            } else {
                ((i32::from(two[0]) << 8) + i32::from(two[1])).wrapping_add(prev)
            }
        } else {
            i32::from(b[0]).wrapping_add(prev)
        };
        if negative {
            self.prev_negative = num;
            Ok(num.wrapping_neg())
        } else {
            self.prev_positive = num;
            Ok(num)
        }
    }

    /// Appends one index.
    pub fn write(&mut self, out: &mut Vec<u8>, ndx: i32) {
        if self.protocol < 30 {
            put_i32(out, ndx);
            return;
        }
        let (value, diff) = if ndx >= 0 {
            let diff = ndx.wrapping_sub(self.prev_positive);
            self.prev_positive = ndx;
            (ndx, diff)
        } else if ndx == NDX_DONE {
            out.push(0);
            return;
        } else {
            out.push(0xff);
            let value = ndx.wrapping_neg();
            let diff = value.wrapping_sub(self.prev_negative);
            self.prev_negative = value;
            (value, diff)
        };
        if diff > 0 && diff < 0xfe {
            out.push(diff as u8);
        } else if !(0..=0x7fff).contains(&diff) {
            out.push(0xfe);
            out.push(((value >> 24) as u8) | 0x80);
            out.push(value as u8);
            out.push((value >> 8) as u8);
            out.push((value >> 16) as u8);
        } else {
            out.push(0xfe);
            out.push((diff >> 8) as u8);
            out.push(diff as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for value in [
            0,
            1,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            0x1f_ffff,
            0x20_0000,
            i32::MAX,
            -1,
            i32::MIN,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut src = out.as_slice();
            assert_eq!(
                read_varint(&mut src).unwrap(),
                value,
                "{value:#x} as {out:02x?}"
            );
            assert!(src.is_empty());
        }
    }

    #[test]
    fn varlongs_round_trip_with_each_minimum() {
        for min in [3, 4] {
            for value in [
                0i64,
                1,
                0xff_ffff,
                0x100_0000,
                1 << 40,
                i64::MAX,
                -1,
                -86_400 * 365,
            ] {
                let mut out = Vec::new();
                put_varlong(&mut out, value, min);
                let mut src = out.as_slice();
                assert_eq!(
                    read_varlong(&mut src, min).unwrap(),
                    value,
                    "{value} min {min}"
                );
                assert!(src.is_empty());
            }
        }
    }

    #[test]
    fn known_encodings_match_rsync() {
        // 1 is a single byte; 0x80 needs the marker byte 0x80 and one more.
        let mut out = Vec::new();
        put_varint(&mut out, 1);
        put_varint(&mut out, 0x80);
        assert_eq!(out, [0x01, 0x80, 0x80]);
    }

    #[test]
    fn ndx_round_trips_in_sequence() {
        for protocol in [29, 30, 31] {
            let sequence = [0, 1, 2, 5, 300, 301, 70_000, 3, NDX_DONE, -101, -102, 9];
            let mut writer = NdxCodec::new(protocol);
            let mut out = Vec::new();
            for ndx in sequence {
                writer.write(&mut out, ndx);
            }
            let mut reader = NdxCodec::new(protocol);
            let mut src = out.as_slice();
            for ndx in sequence {
                assert_eq!(reader.read(&mut src).unwrap(), ndx, "protocol {protocol}");
            }
            assert!(src.is_empty());
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut src: &[u8] = &[0xc0, 0x01];
        assert!(read_varint(&mut src).is_err());
        let mut src: &[u8] = &[0x85];
        assert!(read_vstring(&mut src, 100).is_err());
        let mut src: &[u8] = &[0x05, b'a'];
        assert!(read_vstring(&mut src, 3).is_err());
    }
}
