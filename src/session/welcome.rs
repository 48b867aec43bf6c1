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
            Some(_) => self.check_database().await.err(),
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

    /// The requested database exists: checked on the primary, or, while the primary is
    /// unavailable, where a read would go (a replica has the same schemas), so clients can
    /// still connect to a read-only service through a primary outage.
    async fn check_database(&mut self) -> Result<(), ErrPacket> {
        let on_primary = match self.lease_for(self.default_route()).await {
            Ok(c) => {
                let v = c.server_version.clone();
                self.shared.learn_server_version(&v);
                return Ok(());
            }
            Err(e) => e,
        };
        // The server's own answer (no such database, no access to it) stands.
        if matches!(on_primary.code, 1044 | 1049) {
            return Err(on_primary);
        }
        let read = crate::router::analysis::analyze("SELECT DATABASE()");
        match self.plan(Some(&read), None, None) {
            Ok(route) if route.role == crate::router::Role::Replica => {
                self.release();
                self.lease_for(route).await.map(|_| ())
            }
            _ => Err(on_primary),
        }
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
