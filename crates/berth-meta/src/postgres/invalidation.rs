//! Cross-node cache invalidation with acknowledgement, so that several nodes
//! can cache manifests and still honour read-your-writes: after a write
//! returns on one node, the very next request on any node sees it.
//!
//! - A writer, after its transaction commits, takes the next value of
//!   `cache_generation` and `NOTIFY`s it with what changed, then waits until
//!   every *live* node has acknowledged that generation (`cache_nodes.acked`).
//! - Every node `LISTEN`s on a dedicated connection, invalidates what a
//!   notification names, then acknowledges it. Over the same connection it
//!   heartbeats every [`HEARTBEAT`]; a node counts as live while its last
//!   heartbeat (database clock) is younger than [`LIVE_WINDOW`].
//! - A node serves cache hits only while its own last heartbeat succeeded
//!   less than [`CACHE_VALID`] ago, measured from *before* it was sent. As
//!   `CACHE_VALID < LIVE_WINDOW`, a node the writer stops waiting for (dead,
//!   partitioned, stalled) has stopped serving from its cache by then.
//! - After a reconnect, notifications may have been missed: the consumer is
//!   told to flush everything ([`Invalidation::flush_all`]).
//! - A process that writes but serves nothing (`berth gc` removing untagged
//!   manifests) publishes through [`InvalidationBus::publisher`]: it waits
//!   for the live nodes like any writer, and is no node itself.

use super::pool::PostgresOptions;
use crate::MetaError;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

const CHANNEL: &str = "berth_cache";
pub const HEARTBEAT: Duration = Duration::from_millis(500);
pub const CACHE_VALID: Duration = Duration::from_millis(2000);
pub const LIVE_WINDOW: Duration = Duration::from_millis(3000);
/// PostgreSQL's payload limit is 8000 bytes; above this, flush everything.
const MAX_PAYLOAD: usize = 7000;

/// One change to forget. `payload` is opaque to this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    pub generation: i64,
    pub payload: String,
}

impl Invalidation {
    /// Forget everything (after a reconnect, or an oversized change).
    pub fn flush_all(&self) -> bool {
        self.payload == "*"
    }
}

pub struct InvalidationBus {
    pool: deadpool_postgres::Pool,
    node: String,
    started: Instant,
    /// Milliseconds since `started` until which cached entries may be served.
    valid_until: AtomicU64,
    acked: AtomicI64,
    /// The newest generation received; while `acked` lags behind it the
    /// heartbeat does not extend `valid_until` (a stalled consumer must not
    /// keep serving entries it has not invalidated yet).
    received: Arc<AtomicI64>,
}

impl InvalidationBus {
    /// Registers this node and starts listening. Invalidations arrive on the
    /// returned channel; the consumer applies each, then calls [`Self::ack`].
    pub async fn start(opts: &PostgresOptions) -> Result<(Arc<Self>, mpsc::Receiver<Invalidation>), MetaError> {
        // Never hold a connection while waiting (see `publish`): a few serve
        // many concurrent writers and this node's own acks.
        let pool = super::pool::build(&PostgresOptions { pool_size: 4, ..opts.clone() })?;
        let node = uuid_like();
        let bus = Arc::new(InvalidationBus {
            pool,
            node,
            started: Instant::now(),
            valid_until: AtomicU64::new(0),
            acked: AtomicI64::new(0),
            received: Arc::new(AtomicI64::new(0)),
        });
        let (tx, rx) = mpsc::channel(1024);
        let url = opts.url.clone();
        let listener = bus.clone();
        tokio::spawn(async move { listener.listen_forever(url, tx).await });
        Ok((bus, rx))
    }

    /// A bus that only publishes (for a process with no cache of its own,
    /// such as `berth gc`): no listener, not registered as a node, so no
    /// writer ever waits for it.
    pub fn publisher(opts: &PostgresOptions) -> Result<Arc<Self>, MetaError> {
        let pool = super::pool::build(&PostgresOptions { pool_size: 4, ..opts.clone() })?;
        Ok(Arc::new(InvalidationBus {
            pool,
            node: uuid_like(),
            started: Instant::now(),
            valid_until: AtomicU64::new(0),
            acked: AtomicI64::new(0),
            received: Arc::new(AtomicI64::new(0)),
        }))
    }

    /// Whether cached entries may be served now.
    pub fn cache_usable(&self) -> bool {
        (self.started.elapsed().as_millis() as u64) < self.valid_until.load(Ordering::Acquire)
    }

    /// Publishes a change (after its transaction committed) and waits until
    /// every live node has applied it.
    pub async fn publish(&self, payload: &str) -> Result<(), MetaError> {
        let payload = if payload.len() > MAX_PAYLOAD { "*" } else { payload };
        let generation: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT g.n, pg_notify($1, g.n::text || chr(9) || $2::text)::text
                 FROM (SELECT nextval('cache_generation') AS n) g",
                &[&CHANNEL, &payload],
            )
            .await
            .map_err(super::pool::error_from)?
            .get(0);
        let deadline = Instant::now() + LIVE_WINDOW;
        let lagging = "SELECT count(*) FROM cache_nodes
                       WHERE acked < $1 AND heartbeat > now() - make_interval(secs => $2)";
        let window = LIVE_WINDOW.as_secs_f64();
        let mut pause = Duration::from_micros(500);
        loop {
            // A connection only for the query: holding one across the wait
            // would starve the acks this node itself must record (a pool
            // deadlock that stalled concurrent pushes for the whole window).
            let n: i64 = self
                .client()
                .await?
                .query_one(lagging, &[&generation, &window])
                .await
                .map_err(super::pool::error_from)?
                .get(0);
            if n == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // Those nodes stopped serving from their caches by now.
                tracing::warn!(generation, nodes = n, "cache invalidation not acknowledged; proceeding");
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, MetaError> {
        self.pool.get().await.map_err(|e| MetaError::Database(format!("PostgreSQL pool: {e}")))
    }

    /// Records that every invalidation up to `generation` was applied.
    pub async fn ack(&self, generation: i64) {
        self.acked.fetch_max(generation, Ordering::AcqRel);
        let acked = self.acked.load(Ordering::Acquire);
        let Ok(client) = self.pool.get().await else { return };
        let _ = client
            .execute("UPDATE cache_nodes SET acked = GREATEST(acked, $2) WHERE node_id = $1", &[&self.node, &acked])
            .await;
    }

    async fn listen_forever(self: Arc<Self>, url: String, tx: mpsc::Sender<Invalidation>) {
        loop {
            if let Err(e) = self.listen_once(&url, &tx).await {
                tracing::warn!(error = %e, "cache invalidation listener lost; cache off until it reconnects");
            }
            self.valid_until.store(0, Ordering::Release);
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn listen_once(&self, url: &str, tx: &mpsc::Sender<Invalidation>) -> Result<(), MetaError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| MetaError::Database(e.to_string()))?;
        let (client, mut connection) = config.connect(NoTls).await.map_err(super::pool::error_from)?;
        let events = tx.clone();
        let received = self.received.clone();
        let driver = tokio::spawn(async move {
            while let Some(msg) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match msg {
                    Ok(AsyncMessage::Notification(n)) => {
                        let Some((generation, payload)) = n.payload().split_once('\t') else { continue };
                        let Ok(generation) = generation.parse() else { continue };
                        received.fetch_max(generation, Ordering::AcqRel);
                        let _ = events.send(Invalidation { generation, payload: payload.to_owned() }).await;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let result = async {
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(super::pool::error_from)?;
            // Everything published before this point was missed: acknowledge
            // it by flushing, then count this node as up to date.
            // `last_value` of a sequence nextval has never returned is its
            // start, the generation the first publish will get: counting it
            // as seen would acknowledge that publish before it arrives.
            let current: i64 = client
                .query_one(
                    "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM cache_generation",
                    &[],
                )
                .await
                .map_err(super::pool::error_from)?
                .get(0);
            self.received.fetch_max(current, Ordering::AcqRel);
            let _ = tx.send(Invalidation { generation: current, payload: "*".into() }).await;
            client
                .execute(
                    "INSERT INTO cache_nodes (node_id, acked, heartbeat) VALUES ($1, $2, now())
                     ON CONFLICT (node_id) DO UPDATE SET heartbeat = now()",
                    &[&self.node, &self.acked.load(Ordering::Acquire)],
                )
                .await
                .map_err(super::pool::error_from)?;
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tick.tick().await;
                let sent = self.started.elapsed();
                let caught_up = self.acked.load(Ordering::Acquire) >= self.received.load(Ordering::Acquire);
                client
                    .execute(
                        "UPDATE cache_nodes SET heartbeat = now(), acked = GREATEST(acked, $2) WHERE node_id = $1",
                        &[&self.node, &self.acked.load(Ordering::Acquire)],
                    )
                    .await
                    .map_err(super::pool::error_from)?;
                if caught_up {
                    self.valid_until.store((sent + CACHE_VALID).as_millis() as u64, Ordering::Release);
                }
                // Forget nodes gone for an hour.
                let _ =
                    client.execute("DELETE FROM cache_nodes WHERE heartbeat < now() - interval '1 hour'", &[]).await;
            }
        }
        .await;
        driver.abort();
        result
    }
}

fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    format!("node-{:016x}-{}", h.finish(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    async fn wait_usable(bus: &InvalidationBus) {
        for _ in 0..100 {
            if bus.cache_usable() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cache never became usable");
    }

    /// Applies (records) and acknowledges everything, like the server does.
    fn consume(bus: Arc<InvalidationBus>, mut rx: mpsc::Receiver<Invalidation>) -> Arc<Mutex<Vec<String>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Some(inv) = rx.recv().await {
                log.lock().unwrap().push(inv.payload.clone());
                bus.ack(inv.generation).await;
            }
        });
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publish_returns_only_after_every_live_node_applied_it() {
        let pg = berth_testkit::Postgres::start().unwrap();
        let opts = PostgresOptions::new(pg.url("postgres"));
        // Migrations (including the generation sequence) come with the store.
        let _store = super::super::PostgresStore::connect(&opts).await.unwrap();
        let (a, a_rx) = InvalidationBus::start(&opts).await.unwrap();
        let (b, b_rx) = InvalidationBus::start(&opts).await.unwrap();
        let _a_seen = consume(a.clone(), a_rx);
        let b_seen = consume(b.clone(), b_rx);
        wait_usable(&a).await;
        wait_usable(&b).await;
        for i in 0..20 {
            let change = format!("repo\t\ttag{i}");
            a.publish(&change).await.unwrap();
            // Read-your-writes: B applied it before A's publish returned.
            assert!(b_seen.lock().unwrap().contains(&change), "B missed {change}");
        }
        assert!(b.cache_usable());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publisher_reaches_every_node_and_is_not_waited_for() {
        let pg = berth_testkit::Postgres::start().unwrap();
        let opts = PostgresOptions::new(pg.url("postgres"));
        let _store = super::super::PostgresStore::connect(&opts).await.unwrap();
        let (a, a_rx) = InvalidationBus::start(&opts).await.unwrap();
        let a_seen = consume(a.clone(), a_rx);
        wait_usable(&a).await;
        let gc = InvalidationBus::publisher(&opts).unwrap();
        assert!(!gc.cache_usable());
        gc.publish("repo\tsha256:00\t").await.unwrap();
        assert!(a_seen.lock().unwrap().iter().any(|p| p == "repo\tsha256:00\t"), "A applied it first");
        // A node's own writes do not wait for the publisher (it is no node).
        let started = Instant::now();
        a.publish("repo\t\tx").await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_publishes_do_not_wait_for_the_window() {
        let pg = berth_testkit::Postgres::start().unwrap();
        let opts = PostgresOptions::new(pg.url("postgres"));
        let _store = super::super::PostgresStore::connect(&opts).await.unwrap();
        let (a, a_rx) = InvalidationBus::start(&opts).await.unwrap();
        let (b, b_rx) = InvalidationBus::start(&opts).await.unwrap();
        let _seen = (consume(a.clone(), a_rx), consume(b.clone(), b_rx));
        wait_usable(&a).await;
        wait_usable(&b).await;
        let started = Instant::now();
        let writers: Vec<_> = (0..16)
            .map(|i| {
                let a = a.clone();
                tokio::spawn(async move { a.publish(&format!("repo\t\tt{i}")).await })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        // Far below one LIVE_WINDOW: nobody waited for a timeout.
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_that_stops_applying_stops_serving_and_is_not_waited_for_forever() {
        let pg = berth_testkit::Postgres::start().unwrap();
        let opts = PostgresOptions::new(pg.url("postgres"));
        let _store = super::super::PostgresStore::connect(&opts).await.unwrap();
        let (a, a_rx) = InvalidationBus::start(&opts).await.unwrap();
        let (stalled, _stalled_rx) = InvalidationBus::start(&opts).await.unwrap(); // never consumed
        let _a_seen = consume(a.clone(), a_rx);
        wait_usable(&a).await;
        tokio::time::sleep(HEARTBEAT * 2).await;
        let started = Instant::now();
        a.publish("repo\t\tx").await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= LIVE_WINDOW - Duration::from_millis(100), "should wait for the live node: {waited:?}");
        assert!(waited < LIVE_WINDOW + Duration::from_secs(2), "bounded: {waited:?}");
        assert!(!stalled.cache_usable(), "a node behind on invalidations must not serve its cache");
    }
}
