//! Sluice's Unix socket (`[proxy] socket`): local clients connect as to a server's socket
//! (the mariadb CLI and mysqltest use it for `localhost`). Sessions there are the same as on
//! TCP, except that TLS is not offered and the socket counts as secure transport, as on a
//! server. Clients on it appear as 127.0.0.1 (login throttling, SHOW SLUICE CLIENTS).

use crate::shared::Shared;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

/// A bound socket and the file it is (device, inode), so that only this process's own file
/// is removed at shutdown.
pub struct Bound {
    listener: UnixListener,
    file: (u64, u64),
}

/// Binds the socket at `path`, taking the path over atomically: bound under a temporary
/// name, made connectable by everyone (as a server's socket), then renamed onto `path`. A
/// process still serving the old file keeps its connections; new ones reach this process
/// (a rolling restart, as with `reuse_port` on TCP).
pub fn bind(path: &str, shared: &Shared) -> std::io::Result<Bound> {
    let tmp = format!("{path}.{}.tmp", std::process::id());
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o777))?;
    std::fs::rename(&tmp, path)?;
    let m = std::fs::metadata(path)?;
    // What `SELECT @@socket` answers through Sluice (the backends' sockets are not
    // reachable through the proxy).
    let _ = shared.client_socket.set(Box::leak(path.to_string().into_boxed_str()));
    Ok(Bound { listener, file: (m.dev(), m.ino()) })
}

/// Accepts until shutdown, then removes the socket file if it is still this process's.
pub async fn serve(
    bound: Bound,
    path: String,
    shared: Arc<Shared>,
    live: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    let local: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = bound.listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept on the Unix socket failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        crate::admission::admit(&shared, &live, crate::tls::Stream::Unix(stream), local, &shutdown);
    }
    if std::fs::metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == bound.file) {
        let _ = std::fs::remove_file(&path);
    }
}
