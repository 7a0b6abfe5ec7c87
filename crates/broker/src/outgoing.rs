//! Response frames on their way out. Most are one buffer; a Fetch response
//! is encoded fields with holes for record bytes that go from the segment
//! file to the socket with `sendfile`, so a 50 MiB fetch never becomes a
//! 50 MiB buffer.

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tributary_log::FileSlice;
use tributary_protocol::{Part, RecordsSource};

/// Record runs shorter than this are read into memory and sent inline with
/// the fields around them (one write); longer ones are sent from the file.
pub(crate) const INLINE_RECORDS_MAX: usize = 64 * 1024;

/// One partition's records in a Fetch response.
#[derive(Debug, Clone)]
pub enum Records {
    /// Already in memory.
    Inline(Bytes),
    /// A run of whole batches in a segment file.
    File(FileSlice),
}

impl Records {
    /// No records.
    pub fn empty() -> Records {
        Records::Inline(Bytes::new())
    }
}

impl RecordsSource for Records {
    fn len(&self) -> usize {
        match self {
            Records::Inline(b) => b.len(),
            Records::File(f) => f.len,
        }
    }

    fn in_memory(&self) -> Option<&[u8]> {
        match self {
            Records::Inline(b) => Some(b),
            Records::File(_) => None,
        }
    }
}

/// A complete response frame.
#[derive(Debug)]
pub enum Outgoing {
    /// One encoded buffer.
    Frame(Bytes),
    /// Encoded pieces and record runs, in order.
    Parts(Vec<Part<Records>>),
}

impl From<Bytes> for Outgoing {
    fn from(frame: Bytes) -> Outgoing {
        Outgoing::Frame(frame)
    }
}

/// Writes a whole frame. An error leaves the connection unusable (part of a
/// frame may have been sent), so the caller closes it.
pub(crate) async fn write_outgoing(writer: &mut OwnedWriteHalf, outgoing: Outgoing) -> io::Result<()> {
    match outgoing {
        Outgoing::Frame(bytes) => writer.write_all(&bytes).await,
        Outgoing::Parts(parts) => {
            for part in parts {
                match part {
                    Part::Bytes(bytes) | Part::Records(Records::Inline(bytes)) => writer.write_all(&bytes).await?,
                    Part::Records(Records::File(slice)) => send_file(writer.as_ref(), &slice).await?,
                }
            }
            Ok(())
        }
    }
}

/// Copies `slice` from its file to the socket inside the kernel.
async fn send_file(stream: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let mut offset = slice.position;
    let mut left = slice.len;
    while left > 0 {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, &*slice.file, Some(&mut offset), left).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the segment file ended before the records the response announced",
                ));
            }
            Ok(n) => left -= n.min(left),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
