//! Storage quotas at push time (Harbor's semantics, counted by
//! `berth_meta::QuotaStore`): a blob upload is refused when the blob is new
//! to its project and would take it past its limit; a manifest when it and
//! the blobs it references that the project does not count yet would. A
//! refused push leaves nothing counted: blobs count only once a manifest
//! references them, and a refused manifest is not stored.
//!
//! The check runs before, not inside, the transaction that stores the push,
//! so two concurrent pushes into one project may together overshoot the
//! limit by at most their own sizes.

use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;
use berth_meta::{project_of, QuotaCheck};
use berth_oci::{Digest, ErrorCode, RepoName};

/// Refuses with `DENIED` if pushing `items` (digest, size) into `repo`
/// would exceed its project's quota, and tells webhooks (`QUOTA_EXCEED`).
pub async fn enforce(ctx: &Ctx<'_>, repo: &RepoName, items: &[(Digest, u64)]) -> ApiResult<()> {
    let project = project_of(repo.as_str());
    let check = ctx.app.meta.quota_check(project, items).await?;
    if check.exceeded() {
        let err = exceeded(project, &check);
        crate::events::quota_exceeded(ctx, repo, items.first().map(|(d, _)| d), &err.message);
        return Err(err);
    }
    Ok(())
}

fn exceeded(project: &str, check: &QuotaCheck) -> ApiError {
    ApiError::new(ErrorCode::Denied).message(format!(
        "project {project}: storage quota {} exceeded (using {}, this push needs {} more)",
        mib(check.limit.unwrap_or(0)),
        mib(check.used),
        mib(check.adding)
    ))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_project_its_quota_and_usage() {
        let check = QuotaCheck { limit: Some(100 << 20), used: 99_824_435, adding: 12 << 20 };
        let err = exceeded("team-a", &check);
        assert_eq!(err.status, http::StatusCode::FORBIDDEN);
        assert_eq!(
            err.message,
            "project team-a: storage quota 100.0 MiB exceeded (using 95.2 MiB, this push needs 12.0 MiB more)"
        );
    }
}
