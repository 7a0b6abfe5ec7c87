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
///
/// A frame with record runs in files goes out corked (`TCP_CORK`): the small
/// encoded pieces between runs would otherwise leave as packets of their own
/// (the socket has `TCP_NODELAY`), each one a wakeup of the reader. Runs of
/// in-memory pieces go out in one vectored write each; uncorking at the end
/// sends what is left at once.
pub(crate) async fn write_outgoing(writer: &mut OwnedWriteHalf, outgoing: Outgoing) -> io::Result<()> {
    match outgoing {
        Outgoing::Frame(bytes) => writer.write_all(&bytes).await,
        Outgoing::Parts(parts) => {
            let corked = parts.iter().any(|p| matches!(p, Part::Records(Records::File(_))))
                && rustix::net::sockopt::set_tcp_cork(writer.as_ref(), true).is_ok();
            let written = write_parts(writer, parts).await;
            if corked {
                // Uncorking pushes the frame's tail out; a failure here would
                // leave it waiting for the kernel's 200 ms cork timer.
                rustix::net::sockopt::set_tcp_cork(writer.as_ref(), false)?;
            }
            written
        }
    }
}

/// Writes the parts in order: each run of in-memory parts with vectored
/// writes, each file run with `sendfile`.
async fn write_parts(writer: &mut OwnedWriteHalf, parts: Vec<Part<Records>>) -> io::Result<()> {
    let mut memory: Vec<Bytes> = Vec::new();
    for part in parts {
        match part {
            Part::Bytes(bytes) | Part::Records(Records::Inline(bytes)) => {
                if !bytes.is_empty() {
                    memory.push(bytes);
                }
            }
            Part::Records(Records::File(slice)) => {
                write_all_vectored(writer, &mut memory).await?;
                send_file(writer.as_ref(), &slice).await?;
            }
        }
    }
    write_all_vectored(writer, &mut memory).await
}

/// Writes every buffer in `pieces`, as few syscalls as the socket allows, and
/// empties it.
async fn write_all_vectored(writer: &mut OwnedWriteHalf, pieces: &mut Vec<Bytes>) -> io::Result<()> {
    let mut first = 0;
    while first < pieces.len() {
        let slices: Vec<io::IoSlice<'_>> = pieces[first..].iter().map(|b| io::IoSlice::new(b)).collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "the socket took no bytes"));
        }
        while let Some(piece) = pieces.get_mut(first) {
            if n < piece.len() {
                let _ = piece.split_to(n);
                break;
            }
            n -= piece.len();
            first += 1;
        }
    }
    pieces.clear();
    Ok(())
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
