//! The serializer wire format that every Schema Registry aware client uses (magic byte 0, a
//! big-endian schema id, then the payload; for Protobuf the payload starts with the message
//! indexes that locate the message type inside its `.proto` file).

/// Why a framed payload cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("payload of {0} bytes is too short for the 5-byte schema registry header")]
    TooShort(usize),
    #[error("unknown magic byte {0} (expected 0)")]
    UnknownMagic(u8),
    #[error("truncated or over-long varint in the message indexes")]
    BadVarint,
    #[error("message index count {count} is larger than the {remaining} bytes that follow")]
    TooManyIndexes { count: i64, remaining: usize },
    #[error("negative message index count {0}")]
    NegativeCount(i64),
}

/// The magic byte of Confluent's framing.
pub const MAGIC_BYTE: u8 = 0;

/// Splits a framed payload into its schema id and the bytes after the 5-byte header.
pub fn split_framed(payload: &[u8]) -> Result<(i32, &[u8]), FramingError> {
    if payload.len() < 5 {
        return Err(FramingError::TooShort(payload.len()));
    }
    if payload[0] != MAGIC_BYTE {
        return Err(FramingError::UnknownMagic(payload[0]));
    }
    let id = i32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
    Ok((id, &payload[5..]))
}

/// Reads a zig-zag varint (as Protobuf `sint64`, which is how the indexes are written).
fn read_zigzag(bytes: &[u8], pos: &mut usize) -> Result<i64, FramingError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(FramingError::BadVarint)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(FramingError::BadVarint)
}

fn write_zigzag(value: i64, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

/// Decodes Protobuf message indexes at the start of `bytes` (after the 5-byte header) and
/// returns them with the number of bytes they took. A count of 0 means `[0]`, the first
/// top-level message. A count larger than the bytes that follow is rejected before anything is
/// allocated, since every index takes at least one byte.
pub fn read_message_indexes(bytes: &[u8]) -> Result<(Vec<i32>, usize), FramingError> {
    let mut pos = 0;
    let count = read_zigzag(bytes, &mut pos)?;
    if count < 0 {
        return Err(FramingError::NegativeCount(count));
    }
    if count == 0 {
        return Ok((vec![0], pos));
    }
    let remaining = bytes.len() - pos;
    if count as u64 > remaining as u64 {
        return Err(FramingError::TooManyIndexes { count, remaining });
    }
    let mut indexes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let index = read_zigzag(bytes, &mut pos)?;
        indexes.push(i32::try_from(index).map_err(|_| FramingError::BadVarint)?);
    }
    Ok((indexes, pos))
}

/// Encodes message indexes the way the serializers do (`[0]` as the single byte `0x00`).
pub fn encode_message_indexes(indexes: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    if indexes == [0] {
        out.push(0);
        return out;
    }
    write_zigzag(indexes.len() as i64, &mut out);
    for &i in indexes {
        write_zigzag(i64::from(i), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header() {
        assert_eq!(split_framed(&[0, 0, 0, 1, 2, 9]), Ok((258, &[9u8][..])));
        assert_eq!(split_framed(&[0, 0, 0]), Err(FramingError::TooShort(3)));
        assert_eq!(split_framed(&[1, 0, 0, 0, 1]), Err(FramingError::UnknownMagic(1)));
    }

    #[test]
    fn message_indexes() {
        assert_eq!(read_message_indexes(&[0x00, 0xff]), Ok((vec![0], 1)));
        assert_eq!(read_message_indexes(&[0x02, 0x02]), Ok((vec![1], 2)));
        assert_eq!(read_message_indexes(&[0x04, 0x00, 0x00, 7]), Ok((vec![0, 0], 3)));
        assert_eq!(encode_message_indexes(&[0]), vec![0]);
        assert_eq!(encode_message_indexes(&[1]), vec![2, 2]);
        assert_eq!(encode_message_indexes(&[0, 0]), vec![4, 0, 0]);
        for idx in [vec![3, 1, 2], vec![200, 0], vec![0, 5]] {
            let bytes = encode_message_indexes(&idx);
            assert_eq!(read_message_indexes(&bytes), Ok((idx.clone(), bytes.len())));
        }
    }

    #[test]
    fn hostile_indexes_are_rejected() {
        // A count of 2^40 with two bytes after it must not allocate.
        let mut bytes = Vec::new();
        write_zigzag(1 << 40, &mut bytes);
        bytes.extend([0, 0]);
        assert!(matches!(read_message_indexes(&bytes), Err(FramingError::TooManyIndexes { .. })));
        assert_eq!(read_message_indexes(&[0x01]), Err(FramingError::NegativeCount(-1)));
        assert_eq!(read_message_indexes(&[0x80]), Err(FramingError::BadVarint));
        assert_eq!(read_message_indexes(&[]), Err(FramingError::BadVarint));
        assert_eq!(read_message_indexes(&[0xff; 11]), Err(FramingError::BadVarint));
        assert_eq!(read_message_indexes(&[0x04, 0x00]), Err(FramingError::TooManyIndexes { count: 2, remaining: 1 }));
    }
}
