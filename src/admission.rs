//! Admitting an accepted client (TCP or the Unix socket): the connection limit, the
//! connected-clients gauge, and the session task, or ERROR 1040 in place of the greeting.

use crate::shared::Shared;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Starts the session of an accepted client, or refuses it with ERROR 1040 when
/// `max_client_connections` are connected (TCP and Unix socket together).
pub fn admit(
    shared: &Arc<Shared>,
    live: &Arc<std::sync::atomic::AtomicUsize>,
    stream: crate::tls::ClientStream,
    peer: std::net::SocketAddr,
    shutdown: &CancellationToken,
) {
    let tracker = &shared.tasks;
    shared.metrics.client_connections_total.inc();
    let max = shared.load().config.proxy.max_client_connections;
    let Some(permit) = Slot::take(live, max) else {
        shared.metrics.client_connections_refused.inc();
        tracker.spawn(refuse(stream));
        return;
    };
    let (s, t) = (shared.clone(), shutdown.clone());
    tracker.spawn(async move {
        // Held by a guard, so even a session that panics gives back its gauge and slot.
        let _live = LiveClient::new(s.clone(), permit);
        crate::session::serve(s, stream, peer, t).await;
    });
}

/// One of `max_client_connections`, held until dropped.
struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    /// A slot if fewer than `max` are taken.
    fn take(live: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        let taken = live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        taken.ok().map(|_| Slot(live.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// One connected client: counted in `sluice_client_connections` and holding a slot of
/// `max_client_connections` until dropped, however its task ends.
struct LiveClient {
    shared: Arc<Shared>,
    _permit: Slot,
}

impl LiveClient {
    fn new(shared: Arc<Shared>, permit: Slot) -> LiveClient {
        shared.metrics.client_connections.inc();
        LiveClient { shared, _permit: permit }
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        self.shared.metrics.client_connections.dec();
    }
}

/// Over the connection limit: ERROR 1040 in place of the greeting, as MySQL does.
async fn refuse(mut stream: crate::tls::ClientStream) {
    use tokio::io::AsyncWriteExt;
    let mut out = bytes::BytesMut::new();
    crate::protocol::codec::put_packet(&mut out, 0, &crate::protocol::err::ErrPacket::too_many_connections().encode());
    let _ = stream.write_all(&out).await;
}
