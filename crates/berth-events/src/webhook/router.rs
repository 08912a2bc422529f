//! Matching events to policies and queueing deliveries (see the module docs).

use super::payload::{notice_of, Notice};
use super::WebhookOptions;
use crate::Event;
use arc_swap::ArcSwap;
use berth_meta::{MetaStore, NewWebhookDelivery, WebhookPolicy};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

/// Notices waiting to be matched; beyond this they are dropped (counted).
const QUEUE: usize = 16_384;
/// Most notices matched per enqueue transaction.
const BATCH: usize = 256;
/// Other nodes' policy changes are seen within this.
pub(super) const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The enabled policies, by project and by id, and their projects' visibility.
#[derive(Default)]
pub(super) struct Policies {
    by_project: HashMap<String, Vec<WebhookPolicy>>,
    pub(super) by_id: HashMap<i64, WebhookPolicy>,
    public: HashMap<String, bool>,
}

/// Routes events to webhook policies; see the module docs.
pub struct Router {
    pub(super) store: Arc<dyn MetaStore>,
    tx: mpsc::Sender<Notice>,
    pub(super) policies: ArcSwap<Policies>,
    reload: Notify,
    /// Wakes this node's worker when deliveries were queued.
    pub(super) wake: Notify,
    pub(super) opts: WebhookOptions,
    dropped: AtomicU64,
    /// Deliveries sent, retried (an attempt failed, another is due) and given up, on this node.
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub(super) stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Router {
    /// Loads the policies, then starts routing (and delivering, if `opts.deliver`).
    pub async fn start(store: Arc<dyn MetaStore>, opts: WebhookOptions) -> Result<Arc<Router>, berth_meta::MetaError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, _) = watch::channel(false);
        let router = Arc::new(Router {
            store,
            tx,
            policies: ArcSwap::from_pointee(Policies::default()),
            reload: Notify::new(),
            wake: Notify::new(),
            opts,
            dropped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stop,
            tasks: Mutex::new(Vec::new()),
        });
        router.load().await?;
        let mut tasks = vec![tokio::spawn(route(router.clone(), rx)), tokio::spawn(reload(router.clone()))];
        if router.opts.deliver {
            tasks.push(tokio::spawn(super::worker::run(router.clone())));
        }
        *router.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        Ok(router)
    }

    pub fn addresses(&self) -> &crate::outbound::AddressPolicy {
        &self.opts.addresses
    }

    /// Whether any project has an enabled policy: events are not even built otherwise.
    pub fn has_policies(&self) -> bool {
        !self.policies.load().by_project.is_empty()
    }

    /// Queues the event's notice if a policy of its project may want it. Never waits.
    pub fn publish(&self, event: &Event) {
        let project = berth_meta::project_of(&event.target.repository);
        if !self.policies.load().by_project.contains_key(project) {
            return;
        }
        if let Some(notice) = notice_of(event) {
            self.notify(notice);
        }
    }

    /// Queues a notice (quota refusals come this way). Never waits.
    pub fn notify(&self, notice: Notice) {
        if !self.policies.load().by_project.contains_key(notice.project()) {
            return;
        }
        if self.tx.try_send(notice).is_err() && self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!("webhook queue full: events dropped");
        }
    }

    /// Policies changed (through this node's admin API): reload now.
    pub fn invalidate(&self) {
        self.reload.notify_one();
    }

    /// Notices dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    async fn load(&self) -> Result<(), berth_meta::MetaError> {
        let all = self.store.enabled_webhook_policies().await?;
        let mut p = Policies::default();
        for policy in all {
            if !p.public.contains_key(&policy.project) {
                let public = self.store.project_by_name(&policy.project).await?.is_some_and(|pr| pr.public);
                p.public.insert(policy.project.clone(), public);
            }
            p.by_project.entry(policy.project.clone()).or_default().push(policy.clone());
            p.by_id.insert(policy.id, policy);
        }
        self.policies.store(Arc::new(p));
        Ok(())
    }

    /// The deliveries `notice` makes: one per target of each matching policy.
    fn deliveries(&self, notice: &Notice, now_ms: i64) -> Vec<NewWebhookDelivery> {
        let policies = self.policies.load();
        let Some(list) = policies.by_project.get(notice.project()) else { return Vec::new() };
        let public = policies.public.get(notice.project()).copied().unwrap_or(false);
        let mut out = Vec::new();
        for policy in list.iter().filter(|p| p.event_types.iter().any(|t| t == notice.event_type)) {
            let source = format!("/projects/{}/webhook/policies/{}", policy.project, policy.id);
            for (i, target) in policy.targets.iter().enumerate() {
                out.push(NewWebhookDelivery {
                    policy_id: policy.id,
                    target: i as u32,
                    event_type: notice.event_type.to_owned(),
                    payload: notice.payload(&target.payload_format, public, &source),
                    due_ms: now_ms,
                });
            }
        }
        out
    }

    /// Stops routing and delivering; queued notices get at most `wait` to be stored.
    pub async fn shutdown(&self, wait: Duration) {
        let _ = self.stop.send(true);
        crate::join_within(&self.tasks, wait).await;
    }
}

async fn route(router: Arc<Router>, mut rx: mpsc::Receiver<Notice>) {
    let mut stop = router.stop.subscribe();
    loop {
        let first = tokio::select! {
            n = rx.recv() => match n { Some(n) => n, None => return },
            _ = stop.changed() => {
                // Store what is queued, then stop.
                rx.close();
                let mut rest = Vec::new();
                while let Ok(n) = rx.try_recv() {
                    rest.push(n);
                }
                enqueue(&router, &rest).await;
                return;
            }
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(n) => batch.push(n),
                Err(_) => break,
            }
        }
        enqueue(&router, &batch).await;
    }
}

async fn enqueue(router: &Router, notices: &[Notice]) {
    let now = crate::event::now_ms();
    let deliveries: Vec<NewWebhookDelivery> = notices.iter().flat_map(|n| router.deliveries(n, now)).collect();
    if deliveries.is_empty() {
        return;
    }
    // A failing database gets a few tries; the events are lost after that (logged).
    for attempt in 0..3u32 {
        match router.store.enqueue_webhook_deliveries(&deliveries, now).await {
            Ok(()) => {
                router.wake.notify_one();
                return;
            }
            Err(e) if attempt < 2 => {
                tracing::warn!(error = %e, "queueing webhook deliveries failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            Err(e) => tracing::error!(error = %e, deliveries = deliveries.len(), "webhook deliveries lost"),
        }
    }
}

async fn reload(router: Arc<Router>) {
    let mut stop = router.stop.subscribe();
    loop {
        tokio::select! {
            _ = router.reload.notified() => {}
            _ = tokio::time::sleep(RELOAD_EVERY) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = router.load().await {
            tracing::warn!(error = %e, "reloading webhook policies failed");
        }
    }
}
