//! Variable-length integers as Kafka encodes them inside records: zig-zag
//! `varint`/`varlong` (protobuf style) and the unsigned varint of flexible
//! protocol versions.

use std::io::Read;

/// The input ended inside a varint, or a varint ran past its maximum length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended before the varint did.
    Truncated,
    /// More continuation bytes than a 32- or 64-bit value can hold.
    TooLong,
}

/// Reads an unsigned LEB128 value of at most `max_bytes` bytes from `buf`, advancing it.
#[inline]
fn read_unsigned(buf: &mut &[u8], max_bytes: usize) -> Result<u64, VarintError> {
    // Most varints in a record (lengths, deltas, counts) are one or two bytes.
    let bytes: &[u8] = buf;
    if let Some(&b0) = bytes.first() {
        if b0 < 0x80 {
            *buf = &bytes[1..];
            return Ok(u64::from(b0));
        }
        if let Some(&b1) = bytes.get(1)
            && b1 < 0x80
        {
            *buf = &bytes[2..];
            return Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7));
        }
    }
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let (&byte, rest) = buf.split_first().ok_or(VarintError::Truncated)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(VarintError::TooLong)
}

/// Reads a zig-zag encoded 32-bit varint.
#[inline]
pub fn read_varint(buf: &mut &[u8]) -> Result<i32, VarintError> {
    let raw = read_unsigned(buf, 5)? as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag encoded 64-bit varlong.
#[inline]
pub fn read_varlong(buf: &mut &[u8]) -> Result<i64, VarintError> {
    let raw = read_unsigned(buf, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Reads an unsigned 32-bit varint (flexible protocol versions).
pub fn read_unsigned_varint(buf: &mut &[u8]) -> Result<u32, VarintError> {
    read_unsigned(buf, 5).map(|v| v as u32)
}

/// Reads a zig-zag varint from a byte stream. `Ok(None)` means the stream
/// ended cleanly before the first byte.
pub fn read_varint_from<R: Read>(reader: &mut R) -> std::io::Result<Option<i64>> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let mut byte = [0u8; 1];
        if reader.read(&mut byte)? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "record stream ended inside a varint"));
        }
        raw |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(((raw >> 1) as i64) ^ -((raw & 1) as i64)));
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "varint is longer than 10 bytes"))
}

/// Appends a zig-zag encoded varint (32-bit) to `out`.
pub fn write_varint(out: &mut Vec<u8>, value: i32) {
    write_unsigned(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

/// Appends a zig-zag encoded varlong (64-bit) to `out`.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    write_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends an unsigned varint.
pub fn write_unsigned_varint(out: &mut Vec<u8>, value: u32) {
    write_unsigned(out, u64::from(value));
}

fn write_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The encoded size of a zig-zag varint.
pub fn varint_size(value: i32) -> usize {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        write_varint(&mut out, -1);
        assert_eq!(out, [0x01]);
        out.clear();
        write_varint(&mut out, 300);
        assert_eq!(out, [0xd8, 0x04]);
        assert_eq!(read_varint(&mut &[0xd8u8, 0x04][..]), Ok(300));
        assert_eq!(read_varint(&mut &[0x80u8][..]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&mut &[0xffu8; 6][..]), Err(VarintError::TooLong));
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<i32>()) {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_size(v));
            let mut slice = &out[..];
            prop_assert_eq!(read_varint(&mut slice), Ok(v));
            prop_assert!(slice.is_empty());
            prop_assert_eq!(read_varint_from(&mut &out[..]).ok().flatten(), Some(i64::from(v)));
        }

        #[test]
        fn varlong_round_trips(v in any::<i64>()) {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            let mut slice = &out[..];
            prop_assert_eq!(read_varlong(&mut slice), Ok(v));
            prop_assert!(slice.is_empty());
        }

        #[test]
        fn unsigned_round_trips(v in any::<u32>()) {
            let mut out = Vec::new();
            write_unsigned_varint(&mut out, v);
            prop_assert_eq!(read_unsigned_varint(&mut &out[..]), Ok(v));
        }
    }
}
