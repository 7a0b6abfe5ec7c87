//! The five Kafka compression codecs. Decompression is streaming where the
//! codec allows it, so a small compressed batch can never make us allocate a
//! buffer sized by a number it claims; raw snappy (librdkafka's writer) is a
//! block format whose claimed length is checked against a bound first.

use std::io::{self, Read, Write};

use crate::error::BatchError;

/// Compression codec of a batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// snappy: raw blocks (librdkafka) or xerial framing (Java).
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// zstd frame.
    Zstd,
}

/// The xerial snappy-java stream header.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Header length: magic + version + compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// Block size snappy-java uses when writing.
const XERIAL_BLOCK_LEN: usize = 32 * 1024;
/// Raw snappy output can be at most this many times its input (a copy op of
/// 64 bytes costs 2 input bytes), plus a small constant.
const SNAPPY_EXPANSION_MAX: usize = 32;

impl Compression {
    /// Decodes attribute bits 0-2.
    pub fn from_attributes(attributes: i16) -> Result<Compression, BatchError> {
        Ok(match attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(BatchError::UnsupportedCompression(other)),
        })
    }

    /// The attribute bits of this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Kafka's name for the codec (`compression.type` values).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a `compression.type` value other than `producer`.
    pub fn from_name(name: &str) -> Option<Compression> {
        Some(match name {
            "uncompressed" | "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// A reader yielding the decompressed bytes of `data`. At most
    /// `output_max` bytes are ever materialised up front (raw snappy only).
    pub fn reader<'a>(self, data: &'a [u8], output_max: usize) -> Result<Box<dyn Read + 'a>, BatchError> {
        Ok(match self {
            Compression::None => Box::new(data),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
            Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(data)
                    .map_err(|e| BatchError::Decompression(format!("zstd: {e}")))?,
            ),
            Compression::Snappy => {
                if data.len() >= XERIAL_HEADER_LEN && data.starts_with(XERIAL_MAGIC) {
                    Box::new(XerialReader::new(&data[XERIAL_HEADER_LEN..], output_max))
                } else {
                    Box::new(io::Cursor::new(snappy_raw_decompress(data, output_max)?))
                }
            }
        })
    }

    /// Decompresses all of `data`, failing if the output exceeds `output_max`.
    pub fn decompress(self, data: &[u8], output_max: usize) -> Result<Vec<u8>, BatchError> {
        let reader = self.reader(data, output_max)?;
        let mut out = Vec::new();
        let read = reader
            .take(output_max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| BatchError::Decompression(format!("{}: {e}", self.name())))?;
        if read > output_max {
            return Err(BatchError::DecompressedTooLarge(output_max));
        }
        Ok(out)
    }

    /// Compresses `data` with this codec. `level` is the codec's level where it has one.
    pub fn compress(self, data: &[u8], level: Option<i32>) -> Vec<u8> {
        match self {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let level =
                    level.map_or(flate2::Compression::default(), |l| flate2::Compression::new(l.clamp(1, 9) as u32));
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
                // Writing into a Vec cannot fail.
                let _ = enc.write_all(data);
                enc.finish().unwrap_or_default()
            }
            Compression::Snappy => xerial_compress(data),
            Compression::Lz4 => {
                let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
                let _ = enc.write_all(data);
                enc.finish().unwrap_or_default()
            }
            Compression::Zstd => zstd::bulk::compress(data, level.unwrap_or(3)).unwrap_or_default(),
        }
    }
}

fn snappy_raw_decompress(data: &[u8], output_max: usize) -> Result<Vec<u8>, BatchError> {
    let claimed = snap::raw::decompress_len(data).map_err(|e| BatchError::Decompression(format!("snappy: {e}")))?;
    let bound = data.len().saturating_mul(SNAPPY_EXPANSION_MAX).saturating_add(1024);
    if claimed > bound {
        return Err(BatchError::Decompression(format!(
            "snappy: block claims {claimed} bytes from {} input bytes",
            data.len()
        )));
    }
    if claimed > output_max {
        return Err(BatchError::DecompressedTooLarge(output_max));
    }
    snap::raw::Decoder::new().decompress_vec(data).map_err(|e| BatchError::Decompression(format!("snappy: {e}")))
}

/// Reads xerial-framed snappy: repeated `[u32 big-endian length][raw block]`.
struct XerialReader<'a> {
    rest: &'a [u8],
    block: io::Cursor<Vec<u8>>,
    output_left: usize,
}

impl<'a> XerialReader<'a> {
    fn new(rest: &'a [u8], output_max: usize) -> XerialReader<'a> {
        XerialReader { rest, block: io::Cursor::new(Vec::new()), output_left: output_max }
    }

    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        if self.rest.len() < 4 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "xerial snappy: truncated block length"));
        }
        let len = u32::from_be_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]]) as usize;
        if len > self.rest.len() - 4 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "xerial snappy: block longer than input"));
        }
        let block = &self.rest[4..4 + len];
        self.rest = &self.rest[4 + len..];
        let out = snappy_raw_decompress(block, self.output_left)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.output_left -= out.len();
        self.block = io::Cursor::new(out);
        Ok(true)
    }
}

impl Read for XerialReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.block.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if !self.next_block()? {
                return Ok(0);
            }
        }
    }
}

fn xerial_compress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2 + 16);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in data.chunks(XERIAL_BLOCK_LEN) {
        let block = encoder.compress_vec(chunk).unwrap_or_default();
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for codec in ALL {
            let packed = codec.compress(&data, None);
            assert_eq!(codec.decompress(&packed, 1 << 20).expect("decompress"), data, "{codec:?}");
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it() {
        let data = b"hello hello hello hello".repeat(100);
        let raw = snap::raw::Encoder::new().compress_vec(&data).expect("compress");
        assert_eq!(Compression::Snappy.decompress(&raw, 1 << 20).expect("decompress"), data);
    }

    #[test]
    fn output_limit_is_enforced() {
        let data = vec![0u8; 100_000];
        for codec in ALL {
            let packed = codec.compress(&data, None);
            assert!(codec.decompress(&packed, 10_000).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage = [0xffu8, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9a];
        for codec in ALL[1..].iter() {
            assert!(codec.decompress(&garbage, 1 << 20).is_err(), "{codec:?}");
        }
        // A raw snappy header claiming 4 GiB from 5 bytes is refused before allocating.
        let lying = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(Compression::Snappy.decompress(&lying, usize::MAX).is_err());
    }
}
