//! Tag retention's cache invalidation inside a server: what a run removed
//! is forgotten by this node's manifest cache and, with peers, by every
//! node's — used by `berth serve`'s scheduler and by the admin API's
//! "run now", so both remove tags exactly as a registry `DELETE` does.

use crate::peers;
use crate::state::App;
use berth_jobs::retention::{Invalidate, Removed};
use berth_oci::{RepoName, Tag};
use futures_util::FutureExt;
use std::sync::Arc;

/// The invalidation hook for runs made by this server.
pub fn invalidation(app: Arc<App>) -> Invalidate {
    Arc::new(move |removed: Vec<Removed>| {
        let app = app.clone();
        async move {
            for r in removed {
                let tags: Vec<Tag> = r.tags.iter().filter_map(|t| Tag::parse(t)).collect();
                let done = match RepoName::parse(&r.repository) {
                    Ok(repo) => peers::invalidate(&app, &repo, &tags, Some(&r.digest)).await,
                    // A name the store listed always parses; forget everything if not.
                    Err(_) => peers::invalidate_all(&app).await,
                };
                done.map_err(|e| format!("{e:?}"))?;
            }
            Ok(())
        }
        .boxed()
    })
}
