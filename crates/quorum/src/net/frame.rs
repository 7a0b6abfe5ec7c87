//! Framing on the controller listener:
//!
//! ```text
//! ┌──────────────────────┬─────────┬──────────────────────────────┐
//! │ length: u32, big end │ version │ body: JSON (serde)           │
//! │ = 1 + body length    │ u8 = 1  │                              │
//! └──────────────────────┴─────────┴──────────────────────────────┘
//! ```
//!
//! The length is checked against the limit before any buffer is sized; a
//! frame of another version is refused with its number (so a newer peer is
//! recognised, not misread). One request frame gets one response frame on
//! the same connection, in order.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The framing version this build writes and reads.
pub const FRAME_VERSION: u8 = 1;
/// The default largest frame (a snapshot chunk or a batch of entries fits well within).
pub const FRAME_BYTES_MAX: u32 = 32 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("controller connection: {0}")]
    Io(#[from] std::io::Error),
    /// The length is 0 or over the limit (nothing was allocated).
    #[error("controller frame of {len} bytes is outside 1..={max}")]
    BadLength {
        /// The length read.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A framing version this build does not speak.
    #[error("controller frame version {0} is not supported (this node speaks version {FRAME_VERSION})")]
    Version(u8),
    /// The body is not a message of the expected type.
    #[error("controller frame body does not decode: {0}")]
    Body(String),
}

/// Writes one frame holding `message`.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    message: &T,
    max: u32,
) -> Result<(), FrameError> {
    let body = serde_json::to_vec(message).map_err(|e| FrameError::Body(e.to_string()))?;
    let len = u32::try_from(body.len() + 1).unwrap_or(u32::MAX);
    if len > max {
        return Err(FrameError::BadLength { len, max });
    }
    let mut buf = Vec::with_capacity(body.len() + 5);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(FRAME_VERSION);
    buf.extend_from_slice(&body);
    writer.write_all(&buf).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` if the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    reader: &mut R,
    max: u32,
) -> Result<Option<T>, FrameError> {
    let mut len_bytes = [0u8; 4];
    match reader.read_exact(&mut len_bytes).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len_bytes);
    if len == 0 || len > max {
        return Err(FrameError::BadLength { len, max });
    }
    let version = reader.read_u8().await?;
    if version != FRAME_VERSION {
        return Err(FrameError::Version(version));
    }
    // `len <= max`, checked above, bounds this allocation.
    let mut body = vec![0u8; (len - 1) as usize];
    reader.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map(Some).map_err(|e| FrameError::Body(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &vec!["a".to_string(), "b".to_string()], FRAME_BYTES_MAX).await.expect("test value");
        assert_eq!(&buf[..4], &(buf.len() as u32 - 4).to_be_bytes());
        assert_eq!(buf[4], FRAME_VERSION);
        let back: Option<Vec<String>> = read_frame(&mut buf.as_slice(), FRAME_BYTES_MAX).await.expect("test value");
        assert_eq!(back, Some(vec!["a".to_string(), "b".to_string()]));
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_body() {
        // Claims 4 GiB and provides nothing: refused from the header alone.
        let bytes = [0xff, 0xff, 0xff, 0xff, FRAME_VERSION];
        let err = read_frame::<_, String>(&mut bytes.as_slice(), 1024).await.expect_err("should fail");
        assert!(matches!(err, FrameError::BadLength { len: u32::MAX, max: 1024 }), "{err}");
        let zero = [0, 0, 0, 0];
        assert!(matches!(
            read_frame::<_, String>(&mut zero.as_slice(), 1024).await,
            Err(FrameError::BadLength { len: 0, .. })
        ));
    }

    #[tokio::test]
    async fn another_version_and_a_bad_body_are_refused() {
        let bytes = [0, 0, 0, 3, 9, b'{', b'}'];
        assert!(matches!(read_frame::<_, String>(&mut bytes.as_slice(), 1024).await, Err(FrameError::Version(9))));
        let bytes = [0, 0, 0, 3, FRAME_VERSION, b'{', b'x'];
        assert!(matches!(read_frame::<_, String>(&mut bytes.as_slice(), 1024).await, Err(FrameError::Body(_))));
    }

    #[tokio::test]
    async fn a_clean_close_between_frames_is_not_an_error_but_a_torn_frame_is() {
        assert!(read_frame::<_, String>(&mut [].as_slice(), 1024).await.expect("test value").is_none());
        let torn = [0, 0, 0, 9, FRAME_VERSION, b'"'];
        assert!(matches!(read_frame::<_, String>(&mut torn.as_slice(), 1024).await, Err(FrameError::Io(_))));
    }

    #[tokio::test]
    async fn writing_more_than_the_limit_is_refused() {
        let mut buf = Vec::new();
        let err = write_frame(&mut buf, &"x".repeat(100), 50).await.expect_err("should fail");
        assert!(matches!(err, FrameError::BadLength { .. }));
        assert!(buf.is_empty());
    }
}
