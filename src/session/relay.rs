//! Streams one backend response to the client, frame by frame, without decoding rows.
//!
//! Frames are copied into the client's write buffer with rewritten sequence ids, and the
//! buffer is written when the backend has nothing more buffered (one write per backend read,
//! so a small result costs one system call each way) or past [`FLUSH_AT`](super::client::FLUSH_AT).

use super::client::{ClientConn, FLUSH_AT};
use crate::backend::{BackendConn, BackendError};
use crate::protocol::caps;
use crate::protocol::codec::frame_len_at;
use crate::protocol::err::ErrPacket;
use crate::protocol::response::{Action, Expect, ResponseScanner};
use bytes::Buf;

/// How a relay failed.
#[derive(Debug)]
pub enum RelayError {
    /// Writing to the client failed; the backend connection was marked broken.
    Client(std::io::Error),
    /// The client closed its connection while waiting for the answer's first byte.
    ClientHungUp,
    /// The backend failed. `clean` says whether an ERR packet can still end the response
    /// the client is reading.
    Backend { error: BackendError, clean: bool, seq: u8 },
}

/// Relays the response to a command already sent on `conn`; the client-side sequence ids
/// start at `seq`. `prepare_as` is the statement id the client is told in a PREPARE_OK (the
/// session's own id; the backend's stays on the backend connection).
///
/// # Performance
/// Frames are walked in place in the backend connection's read buffer: a forwarded frame only
/// gets its sequence byte rewritten, and each unbroken run of forwarded frames is copied to the
/// client's write buffer with one `memcpy`. Only frames the scanner drops or replaces (EOF/OK
/// conversions) break a run.
pub async fn relay(
    client: &mut ClientConn,
    conn: &mut BackendConn,
    expect: Expect,
    mut seq: u8,
    prepare_as: Option<u32>,
) -> Result<ResponseScanner, RelayError> {
    let mut scanner = ResponseScanner::new(expect, client.deprecate_eof(), client.session_track());
    let mut fed = 0usize;
    let mut refused_infile = false;
    let mut first = true;
    while !scanner.is_done() {
        // Until the answer starts (a long statement), a client that hangs up is noticed, so
        // its statement can be stopped instead of running on, holding locks.
        //
        // # Performance
        // No timer and, in the common case, no system call: tokio clears a socket's read
        // readiness after a short read (the command just read), so watching the client only
        // registers a waker; the peek runs when the client socket becomes readable again
        // (hang-up, or a pipelined command, which ends the watch).
        let filled = if std::mem::take(&mut first) {
            tokio::select! {
                biased;
                r = conn.fill_frames() => r,
                () = client.hung_up() => return Err(RelayError::ClientHungUp),
            }
        } else {
            conn.fill_frames().await
        };
        let buf = match filled {
            Ok(b) => b,
            Err(error) => return Err(RelayError::Backend { error, clean: scanner.can_end_with_error(), seq }),
        };
        // Walk every complete frame already buffered.
        let (mut off, mut run) = (0usize, 0usize);
        let mut infile_seq = None;
        while let Some(len) = frame_len_at(buf, off).filter(|len| off + 4 + len <= buf.len()) {
            let end = off + 4 + len;
            let action = match scanner.feed_payload(&buf[off + 4..end]) {
                Ok(a) => a,
                Err(e) => {
                    conn.mark_broken();
                    return Err(RelayError::Backend { error: e.into(), clean: scanner.can_end_with_error(), seq });
                }
            };
            if refused_infile {
                // Everything after a declined upload is swallowed; the client gets ERROR 1148.
                client.extend(&buf[run..off]);
                run = end;
            } else if scanner.local_infile {
                infile_seq = Some(buf[off + 3].wrapping_add(1));
                client.extend(&buf[run..off]);
                run = end;
                if client.has(caps::LOCAL_FILES) {
                    client.put_frame(seq, &buf[off + 4..end]);
                    seq = seq.wrapping_add(1);
                }
            } else {
                fed += 1;
                if let (1, Some(id), Some(_)) = (fed, prepare_as, scanner.prepared) {
                    buf[off + 5..off + 9].copy_from_slice(&id.to_le_bytes());
                }
                match action {
                    Action::Forward => {
                        buf[off + 3] = seq;
                        seq = seq.wrapping_add(1);
                    }
                    Action::Drop => {
                        client.extend(&buf[run..off]);
                        run = end;
                    }
                    Action::Replace(p) => {
                        client.extend(&buf[run..off]);
                        run = end;
                        client.put_frame(seq, &p);
                        seq = seq.wrapping_add(1);
                    }
                }
            }
            off = end;
            if scanner.is_done() || infile_seq.is_some() {
                break;
            }
        }
        client.extend(&buf[run..off]);
        buf.advance(off);
        if let Some(bseq) = infile_seq {
            if client.has(caps::LOCAL_FILES) {
                seq = upload(client, conn, bseq).await?;
            } else {
                // The backend asked because Sluice's own login allows LOCAL INFILE; this
                // client did not. Decline with an empty upload and answer as a server would.
                if let Err(error) = conn.send_packet(bseq, &[]).await {
                    return Err(RelayError::Backend { error, clean: true, seq });
                }
                refused_infile = true;
            }
            scanner.resume_after_infile();
            continue;
        }
        if client.pending() >= FLUSH_AT || (!conn.has_buffered() && !scanner.is_done()) {
            if let Err(e) = client.flush().await {
                conn.mark_broken();
                return Err(RelayError::Client(e));
            }
        }
    }
    if refused_infile {
        let e = ErrPacket::new(1148, "42000", "The used command is not allowed with this MariaDB version");
        client.put_err(seq, &e);
    }
    conn.finish(&scanner);
    Ok(scanner)
}

/// Forwards the client's LOCAL INFILE data packets to the backend until the empty packet that
/// ends them. Returns the client-side sequence id the response continues with.
async fn upload(client: &mut ClientConn, conn: &mut BackendConn, mut bseq: u8) -> Result<u8, RelayError> {
    if let Err(e) = client.flush().await {
        conn.mark_broken();
        return Err(RelayError::Client(e));
    }
    loop {
        // The backend connection waits for this client: its next packet has a deadline too.
        let limit = client.read_timeout();
        let p = match tokio::time::timeout(limit, client.read_packet()).await {
            Ok(Ok(Some(p))) => p,
            Ok(Ok(None) | Err(_)) | Err(_) => {
                conn.mark_broken();
                return Err(RelayError::Client(std::io::ErrorKind::UnexpectedEof.into()));
            }
        };
        let seq = p.seq.wrapping_add(1);
        bseq = match conn.send_packet(bseq, &p.payload).await {
            Ok(s) => s,
            Err(error) => return Err(RelayError::Backend { error, clean: true, seq }),
        };
        if p.payload.is_empty() {
            return Ok(seq);
        }
    }
}

/// A statement's deadline, for [`relay_by`].
pub struct Deadline<'a> {
    /// `max_statement_time_ms` (the user's or the proxy's).
    pub limit: std::time::Duration,
    /// The session's control block: where `KILL QUERY` finds the backend thread.
    pub ctl: &'a crate::sessions::Control,
    /// How long the kill may take to land, and the answer after it (at least a second).
    pub connect_timeout_ms: u64,
    /// Counts statements killed at their deadline.
    pub killed: &'a prometheus::IntCounter,
}

/// [`relay`], under the statement's deadline when it has one. Past the limit the statement is
/// killed on its backend (`KILL QUERY` on a connection of its own, as for a client's KILL) and
/// the relay goes on: the server answers ERROR 1317 and its connection stays usable. A backend
/// that does not answer within `connect_timeout_ms` (at least a second) of the kill (frozen,
/// or cut off without a reset) is given up and its connection discarded: if no byte of the
/// answer has left yet, the client is told with ERROR 1969 and the session goes on; otherwise
/// part of the answer has reached the client and its connection closes rather than showing a
/// half result as whole.
pub async fn relay_by(
    client: &mut ClientConn,
    conn: &mut BackendConn,
    expect: Expect,
    seq: u8,
    prepare_as: Option<u32>,
    deadline: Option<Deadline<'_>>,
) -> Result<ResponseScanner, RelayError> {
    let Some(d) = deadline else { return relay(client, conn, expect, seq, prepare_as).await };
    let mark = (client.flushed(), client.pending());
    let abandoned = {
        let relayed = relay(client, conn, expect, seq, prepare_as);
        tokio::pin!(relayed);
        tokio::select! {
            r = &mut relayed => return r,
            () = tokio::time::sleep(d.limit) => {}
        }
        d.killed.inc();
        tracing::info!(limit = ?d.limit, "statement past max_statement_time_ms; killing it on its backend");
        if let Err(e) = d.ctl.kill(d.connect_timeout_ms, crate::sessions::Scope::Query).await {
            tracing::warn!(error = %e, "could not kill a statement past its deadline");
        }
        let grace = d.connect_timeout_ms.max(1000);
        match tokio::time::timeout(std::time::Duration::from_millis(grace), relayed).await {
            Ok(r) => return r,
            Err(_) => grace,
        }
    };
    conn.mark_broken();
    tracing::warn!(
        grace_ms = abandoned,
        "a backend did not answer after its statement was killed; connection discarded"
    );
    let error = BackendError::Deadline(abandoned);
    if client.flushed() == mark.0 {
        client.truncate(mark.1);
        return Err(RelayError::Backend { error, clean: true, seq });
    }
    Err(RelayError::Backend { error, clean: false, seq })
}
