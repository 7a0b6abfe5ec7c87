//! Length-prefixed framing. The 4-byte size is checked against the limit
//! before any buffer for the frame is allocated.

/// Bytes of the size prefix.
pub const SIZE_PREFIX_LEN: usize = 4;
/// Smallest valid request: api_key, api_version, correlation_id.
pub const REQUEST_HEADER_MIN_LEN: usize = 8;

/// Why a frame's size prefix was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Negative or below the smallest request header.
    TooSmall(i32),
    /// Above `socket.request.max.bytes`.
    TooLarge {
        /// The size the peer sent.
        size: i32,
        /// The configured maximum.
        max: usize,
    },
    /// The first bytes look like a TLS ClientHello on a plaintext listener.
    TlsHandshake,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooSmall(n) => write!(f, "request size {n} is smaller than a request header"),
            FrameError::TooLarge { size, max } => write!(
                f,
                "request size {size} is larger than socket.request.max.bytes={max}; \
                 raise socket.request.max.bytes or check that the client speaks the Kafka protocol"
            ),
            FrameError::TlsHandshake => f.write_str(
                "received a TLS handshake on a PLAINTEXT listener; set the client's security.protocol=PLAINTEXT \
                 or connect to a TLS listener",
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Checks a frame's 4-byte size prefix and returns the payload length.
pub fn check_frame_size(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    // A TLS record header is 0x16 0x03 0x0X: as a size it is ~369 MB.
    if prefix[0] == 0x16 && prefix[1] == 0x03 && prefix[2] <= 0x04 {
        return Err(FrameError::TlsHandshake);
    }
    let size = i32::from_be_bytes(prefix);
    if size < REQUEST_HEADER_MIN_LEN as i32 {
        return Err(FrameError::TooSmall(size));
    }
    if size as usize > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_before_allocation() {
        assert_eq!(check_frame_size(100i32.to_be_bytes(), 1000), Ok(100));
        assert_eq!(check_frame_size((-5i32).to_be_bytes(), 1000), Err(FrameError::TooSmall(-5)));
        assert_eq!(check_frame_size(3i32.to_be_bytes(), 1000), Err(FrameError::TooSmall(3)));
        assert_eq!(check_frame_size(1001i32.to_be_bytes(), 1000), Err(FrameError::TooLarge { size: 1001, max: 1000 }));
        assert_eq!(check_frame_size([0x16, 0x03, 0x01, 0x02], usize::MAX), Err(FrameError::TlsHandshake));
    }
}
