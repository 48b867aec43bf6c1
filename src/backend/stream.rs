//! A read whose rows go on to the client as they arrive (scatter reads that need no merge):
//! column definitions first, then each row as the server sent it, through a bounded channel,
//! so what Sluice holds is bounded by the channel, not by the result.

use super::conn::BackendConn;
use super::BackendError;
use crate::protocol::com;
use crate::protocol::response::{Expect, ResponseScanner};
use bytes::Bytes;
use tokio::sync::mpsc;

/// One step of a streamed read.
#[derive(Debug)]
pub enum Streamed {
    /// The result's column definitions, sent once, before any row.
    Defs(Vec<Bytes>),
    /// One row, as the server sent it (text protocol).
    Row(Bytes),
}

impl BackendConn {
    /// Runs `sql` (one SELECT) and sends its column definitions, then its rows, on `tx` (as
    /// whatever the receiver's message type makes of a [`Streamed`]).
    ///
    /// A receiver that is gone (the client's LIMIT was reached, or it hung up) does not cut
    /// the read short: the rest of the response is read and dropped, so the connection goes
    /// back to its pool with nothing unread. A second result set is a protocol error here
    /// (the connection is marked broken).
    pub async fn stream_rows<T: From<Streamed>>(
        &mut self,
        sql: &str,
        tx: &mpsc::Sender<T>,
    ) -> Result<(), BackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(com::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.send_command(&payload).await?;
        let mut scanner = ResponseScanner::new(Expect::Results, false, true);
        let mut defs = Vec::new();
        let mut defs_sent = false;
        let mut receiving = true;
        while !scanner.is_done() {
            let f = self.read_frame().await?;
            let (rows_before, cols_before) = (scanner.rows, scanner.columns_seen);
            if let Err(e) = scanner.feed(&f) {
                self.mark_broken();
                return Err(e.into());
            }
            if scanner.local_infile {
                // A SELECT never asks for a file; decline as Sluice always does.
                self.send_packet(f.seq.wrapping_add(1), &[]).await?;
                scanner.resume_after_infile();
            }
            if scanner.columns_seen > cols_before {
                if defs_sent {
                    self.mark_broken();
                    return Err(BackendError::Protocol(crate::protocol::ProtocolError::Malformed(
                        "a second result set in a streamed read",
                    )));
                }
                defs.push(f.payload.clone());
            }
            let row = scanner.rows > rows_before;
            if receiving && !defs_sent && (row || (scanner.is_done() && !defs.is_empty())) {
                defs_sent = true;
                receiving = tx.send(Streamed::Defs(std::mem::take(&mut defs)).into()).await.is_ok();
            }
            if receiving && row {
                receiving = tx.send(Streamed::Row(f.payload).into()).await.is_ok();
            }
        }
        self.finish(&scanner);
        match scanner.error {
            Some(e) => Err(BackendError::Server(e)),
            None => Ok(()),
        }
    }
}
