//! Shared invalidation (`[cache] invalidation = "redis"`): every table-version bump an
//! instance makes is published on a Redis channel, and bumps other instances publish are
//! applied here, so a write relayed by any instance ends the entries of all of them within
//! the publish delay (`cache::redis_spreads_invalidation_between_instances` measures it).
//!
//! While the subscription is not live, this instance cannot hear of other instances' writes:
//! it serves nothing from the cache ([`Cache::link_up`]), and when the subscription is back it
//! drops everything first (bumps may have been missed). A bump that could not be published is
//! followed, once Redis answers again, by an "everything" bump for the others.

use super::versions::Bump;
use super::Cache;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// How long to wait before connecting again after Redis failed.
const RETRY: Duration = Duration::from_millis(500);

/// Runs the publisher and the subscriber until shutdown.
pub async fn run(cache: Arc<Cache>, url: String, channel: String, shutdown: CancellationToken) {
    let Some(outbox) = cache.take_outbox() else { return };
    let client = match redis::Client::open(url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cache: redis_url does not parse; cache entries will not be served");
            return;
        }
    };
    tokio::select! {
        () = publish(&client, &channel, cache.instance, outbox) => {}
        () = subscribe(&client, &channel, &cache) => {}
        () = shutdown.cancelled() => {}
    }
}

/// Sends each local bump, as `instance|bump`.
async fn publish(client: &redis::Client, channel: &str, instance: u64, mut outbox: UnboundedReceiver<Bump>) {
    let mut lost = false;
    let mut conn = None;
    loop {
        // After a failure, "everything" goes out as soon as Redis answers again, even if no
        // new bump comes: the others must not keep entries the lost one would have ended.
        let next = match lost {
            true => tokio::select! {
                b = outbox.recv() => b,
                () = tokio::time::sleep(RETRY) => Some(Bump::Everything),
            },
            false => outbox.recv().await,
        };
        let Some(bump) = next else { return };
        let bump = if lost { Bump::Everything } else { bump };
        let message = format!("{instance}|{}", bump.encode());
        if conn.is_none() {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => conn = Some(c),
                Err(e) => tracing::warn!(error = %e, "cache: cannot reach Redis to publish an invalidation"),
            }
        }
        let Some(c) = conn.as_mut() else {
            lost = true;
            continue;
        };
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH").arg(channel).arg(&message).query_async(c).await;
        match sent {
            Ok(_) => lost = false,
            Err(e) => {
                tracing::warn!(error = %e, "cache: publishing an invalidation failed");
                conn = None;
                lost = true;
            }
        }
    }
}

/// Applies other instances' bumps; marks the link down whenever the subscription is not live.
async fn subscribe(client: &redis::Client, channel: &str, cache: &Cache) {
    use futures_util::StreamExt;
    loop {
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cache: cannot subscribe to Redis; serving nothing from the cache");
                cache.link_up.store(false, Ordering::Release);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Err(e) = pubsub.subscribe(channel).await {
            tracing::warn!(error = %e, "cache: SUBSCRIBE failed");
            cache.link_up.store(false, Ordering::Release);
            tokio::time::sleep(RETRY).await;
            continue;
        }
        // Whatever others wrote while this instance was not listening is unknown.
        cache.versions.bump(&Bump::Everything);
        cache.link_up.store(true, Ordering::Release);
        tracing::info!(channel, "cache: subscribed to Redis invalidations");
        let mut messages = pubsub.on_message();
        while let Some(m) = messages.next().await {
            let Ok(text) = m.get_payload::<String>() else { continue };
            let Some((from, bump)) = text.split_once('|') else { continue };
            if from.parse::<u64>().ok() == Some(cache.instance) {
                continue;
            }
            cache.remote_bump(&Bump::decode(bump));
        }
        cache.link_up.store(false, Ordering::Release);
        tracing::warn!("cache: the Redis subscription ended; serving nothing from the cache until it is back");
        tokio::time::sleep(RETRY).await;
    }
}
