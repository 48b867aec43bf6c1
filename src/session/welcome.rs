//! The end of login, once the client is authenticated: the requested database checked on a
//! backend (as a server would), the session state a server derives from the handshake
//! (CLIENT_IGNORE_SPACE), and the OK.

use super::{connect, Session};
use crate::protocol::err::ErrPacket;

impl Session {
    /// Finishes login: a requested database must exist (checked on a backend, as a server
    /// would), then the OK. Returns false if the client was refused.
    pub(super) async fn welcome(&mut self, seq: u8) -> bool {
        let user = &self.login.user;
        self.user_slot = self.shared.sessions.admit(user.name.get_ref(), user.max_connections);
        if self.user_slot.is_none() {
            tracing::info!(user = %user.name.get_ref(), "login refused: the user's max_connections is reached");
            self.client.put_err(seq, &ErrPacket::user_connections(user.name.get_ref()));
            let _ = self.client.flush().await;
            return false;
        }
        let mut refused = match &self.state.want.schema {
            Some(_) => match self.lease_for(self.default_route()).await {
                Ok(c) => {
                    let v = c.server_version.clone();
                    self.shared.learn_server_version(&v);
                    None
                }
                Err(e) => Some(e),
            },
            None => None,
        };
        if refused.is_none() && self.client.has(crate::protocol::caps::IGNORE_SPACE) {
            refused = self.ignore_space().await.err();
        }
        self.release();
        match &refused {
            None => self.client.put_ok(seq, &connect::login_ok()),
            Some(e) => self.client.put_err(seq, e),
        };
        self.client.flush().await.is_ok() && refused.is_none()
    }

    /// CLIENT_IGNORE_SPACE: a server turns it into `IGNORE_SPACE` in the session's sql_mode
    /// (`COUNT (*)` parses); pooled connections never see the client's flag, so Sluice adds it
    /// to the session's sql_mode, which is replayed on every connection like any setting.
    async fn ignore_space(&mut self) -> Result<(), ErrPacket> {
        let route = self.default_route();
        let conn = self.lease_for(route).await?;
        let set = "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',IGNORE_SPACE')";
        let read = match conn.query(set).await {
            Ok(_) => conn.query("SELECT @@SESSION.sql_mode").await,
            Err(e) => Err(e),
        };
        let mode = match read {
            Ok(r) => r.rows.first().and_then(|row| row.first().cloned().flatten()),
            Err(e) => {
                conn.mark_broken();
                let shard = self.snap.topology.shard_name(route.shard).to_string();
                return Err(ErrPacket::backend_unavailable(route.role.as_str(), &shard, &e.to_string()));
            }
        };
        if let Some(mode) = mode {
            self.state.set_var("sql_mode", &mode);
        }
        Ok(())
    }
}
