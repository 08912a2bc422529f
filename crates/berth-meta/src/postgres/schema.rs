//! Schema migrations, applied in order at open inside one transaction;
//! `schema_migrations` records which have run. Never edit a released
//! migration: add one. Versions match SQLite's (`sqlite/schema.rs`): the
//! same number means the same tables on both backends.
//!
//! Nodes starting together serialise on a transaction-scoped advisory
//! lock, so exactly one applies each migration and the others then find it
//! recorded. DDL is transactional in PostgreSQL: a failed migration leaves
//! nothing behind.
//!
//! Every text key is `COLLATE "C"`: byte order, as SQLite's BINARY and Go's
//! `sort.Strings` (catalog and tag pages must match Distribution's), and
//! whatever locale the database was created with.

use tokio_postgres::Client;

const MIGRATIONS: &[&str] = &[
    // 1: the registry core.
    r#"
    CREATE TABLE repositories (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE blobs (
        digest TEXT COLLATE "C" PRIMARY KEY,
        size BIGINT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE repository_blobs (
        repository_id BIGINT NOT NULL,
        digest TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (repository_id, digest)
    );
    CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);
    CREATE TABLE manifests (
        repository_id BIGINT NOT NULL,
        digest TEXT COLLATE "C" NOT NULL,
        media_type TEXT NOT NULL,
        artifact_type TEXT,
        subject TEXT COLLATE "C",
        annotations TEXT,
        size BIGINT NOT NULL,
        body BYTEA NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (repository_id, digest)
    );
    CREATE INDEX manifests_by_subject ON manifests (repository_id, subject) WHERE subject IS NOT NULL;
    CREATE TABLE manifest_references (
        repository_id BIGINT NOT NULL,
        manifest_digest TEXT COLLATE "C" NOT NULL,
        child_digest TEXT COLLATE "C" NOT NULL,
        child_is_manifest BOOLEAN NOT NULL,
        PRIMARY KEY (repository_id, manifest_digest, child_digest)
    );
    CREATE INDEX manifest_references_by_child ON manifest_references (repository_id, child_digest);
    CREATE TABLE tags (
        repository_id BIGINT NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        digest TEXT COLLATE "C" NOT NULL,
        updated_ms BIGINT NOT NULL,
        PRIMARY KEY (repository_id, name)
    );
    CREATE INDEX tags_by_digest ON tags (repository_id, digest);
    CREATE TABLE uploads (
        id TEXT COLLATE "C" PRIMARY KEY,
        repository TEXT NOT NULL,
        upload_offset BIGINT NOT NULL,
        hash_state BYTEA NOT NULL,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    CREATE INDEX uploads_by_age ON uploads (updated_ms);
    "#,
    // 2: background job leases and their durable progress.
    r#"
    CREATE TABLE job_leases (
        job TEXT COLLATE "C" PRIMARY KEY,
        holder TEXT COLLATE "C" NOT NULL,
        expires_ms BIGINT NOT NULL,
        acquired_ms BIGINT NOT NULL
    );
    CREATE TABLE job_state (
        job TEXT COLLATE "C" PRIMARY KEY,
        state BYTEA NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    "#,
    // 3: the blob store's resumable upload state (S3 multipart uploads).
    r#"
    ALTER TABLE uploads ADD COLUMN store_state BYTEA NOT NULL DEFAULT '\x';
    "#,
    // 4: garbage collection: blobs no repository links, marked when first
    // seen so, then switched to deleting (docs/garbage-collection.md); links
    // by age, for the unreferenced-link scan.
    r#"
    CREATE TABLE blob_gc (
        digest TEXT COLLATE "C" PRIMARY KEY,
        marked_ms BIGINT NOT NULL,
        deleting BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX repository_blobs_by_age ON repository_blobs (created_ms);
    "#,
    // 5: cross-node cache invalidation (postgres/invalidation.rs): the
    // generation of every published change and what each node acknowledged.
    r#"
    CREATE SEQUENCE cache_generation;
    CREATE TABLE cache_nodes (
        node_id TEXT COLLATE "C" PRIMARY KEY,
        acked BIGINT NOT NULL,
        heartbeat TIMESTAMPTZ NOT NULL
    );
    "#,
    // 6: users (passwords as argon2id PHC strings) and secrets shared by
    // every node (the generated token-signing key).
    r#"
    CREATE TABLE users (
        id BIGSERIAL PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        admin BOOLEAN NOT NULL DEFAULT false,
        disabled BOOLEAN NOT NULL DEFAULT false,
        created_ms BIGINT NOT NULL,
        generation BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE secrets (
        name TEXT COLLATE "C" PRIMARY KEY,
        value BYTEA NOT NULL,
        created_ms BIGINT NOT NULL
    );
    "#,
    // 7: projects (the first path component of a repository name; one-part
    // names belong to `library`, public as on Docker Hub and Harbor) and
    // their members' roles (Harbor's role ids).
    r#"
    CREATE TABLE projects (
        id BIGSERIAL PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        public BOOLEAN NOT NULL DEFAULT false,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE project_members (
        project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        role INTEGER NOT NULL,
        PRIMARY KEY (project_id, user_id)
    );
    CREATE INDEX project_members_by_user ON project_members (user_id);
    INSERT INTO projects (name, public, created_ms) VALUES ('library', true, 0);
    "#,
    // 8: the audit log (audit.rs): a hash chain, ids contiguous from 1;
    // one row holds the chain head (locked by every append) and the anchor
    // left by retention.
    r#"
    CREATE TABLE audit_log (
        id BIGINT PRIMARY KEY,
        time_ms BIGINT NOT NULL,
        actor TEXT NOT NULL,
        source TEXT NOT NULL,
        action TEXT NOT NULL,
        resource TEXT NOT NULL,
        success BOOLEAN NOT NULL,
        status INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE audit_chain (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        head_id BIGINT NOT NULL,
        head_hash TEXT NOT NULL,
        anchor_id BIGINT NOT NULL,
        anchor_hash TEXT NOT NULL
    );
    INSERT INTO audit_chain VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000');
    "#,
    // Storage quotas and tag immutability (quotas.rs, immutability.rs):
    // a project's limit in bytes (NULL: none); lookups by digest, so a
    // project's usage can tell what another project counts too; Harbor's
    // immutability rules per project.
    r#"
    ALTER TABLE projects ADD COLUMN storage_limit BIGINT;
    CREATE INDEX manifest_references_by_digest ON manifest_references (child_digest);
    CREATE INDEX manifests_by_digest ON manifests (digest);
    CREATE TABLE immutable_rules (
        id BIGSERIAL PRIMARY KEY,
        project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        repo_decoration TEXT NOT NULL,
        repo_pattern TEXT NOT NULL,
        tag_decoration TEXT NOT NULL,
        tag_pattern TEXT NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX immutable_rules_by_project ON immutable_rules (project_id);
    "#,
    // Tag retention (retention.rs): manifests' last pull time, projects'
    // policies (Harbor's JSON), and runs with what each kept or removed.
    r#"
    ALTER TABLE manifests ADD COLUMN last_pulled_ms BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE retention_policies (
        project TEXT COLLATE "C" PRIMARY KEY,
        policy TEXT NOT NULL,
        cron TEXT,
        updated_ms BIGINT NOT NULL
    );
    CREATE TABLE retention_runs (
        id BIGSERIAL PRIMARY KEY,
        project TEXT COLLATE "C" NOT NULL,
        dry_run BOOLEAN NOT NULL,
        started_ms BIGINT NOT NULL,
        finished_ms BIGINT,
        status TEXT NOT NULL
    );
    CREATE INDEX retention_runs_by_project ON retention_runs (project, id);
    CREATE TABLE retention_items (
        run_id BIGINT NOT NULL,
        seq INTEGER NOT NULL,
        repository TEXT NOT NULL,
        digest TEXT NOT NULL,
        tags TEXT NOT NULL,
        retained BOOLEAN NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    "#,
    // Robot accounts (robots.rs, issue #18): project robots go with their
    // project; permissions in a child table (namespace = project or `*`).
    r#"
    CREATE TABLE robots (
        id BIGSERIAL PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        project_id BIGINT REFERENCES projects (id) ON DELETE CASCADE,
        description TEXT NOT NULL DEFAULT '',
        secret_hash TEXT NOT NULL,
        expires_ms BIGINT,
        disabled BOOLEAN NOT NULL DEFAULT false,
        created_ms BIGINT NOT NULL,
        creator TEXT NOT NULL,
        generation BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX robots_by_project ON robots (project_id, name);
    CREATE TABLE robot_permissions (
        robot_id BIGINT NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
        namespace TEXT COLLATE "C" NOT NULL,
        action TEXT NOT NULL,
        PRIMARY KEY (robot_id, namespace, action)
    );
    CREATE INDEX robot_permissions_by_namespace ON robot_permissions (namespace);
    "#,
    // system settings: cluster-wide switches an administrator changes at
    // run time (read-only maintenance mode), polled by every node.
    r#"
    CREATE TABLE system_settings (
        key TEXT COLLATE "C" PRIMARY KEY,
        value TEXT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    "#,
    // Webhooks (webhooks.rs): policies cascade with their project,
    // deliveries with their policy. Claims lock due rows `FOR UPDATE SKIP
    // LOCKED` through `webhook_deliveries_due`.
    r#"
    CREATE TABLE webhook_policies (
        id BIGSERIAL PRIMARY KEY,
        project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        name TEXT COLLATE "C" NOT NULL,
        description TEXT NOT NULL,
        enabled BOOLEAN NOT NULL,
        event_types TEXT NOT NULL,
        targets TEXT NOT NULL,
        creator TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        UNIQUE (project_id, name)
    );
    CREATE TABLE webhook_deliveries (
        id BIGSERIAL PRIMARY KEY,
        policy_id BIGINT NOT NULL REFERENCES webhook_policies (id) ON DELETE CASCADE,
        target INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        due_ms BIGINT NOT NULL,
        claimed_by TEXT,
        claimed_until_ms BIGINT,
        last_status INTEGER,
        last_error TEXT,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_ms, id) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_by_policy ON webhook_deliveries (policy_id, id DESC);
    CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_ms) WHERE status <> 'pending';
    "#,
];

pub async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtext('berth-meta schema'));
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let applied: i32 = tx.query_one("SELECT COALESCE(max(version), 0) FROM schema_migrations", &[]).await?.get(0);
    if applied as usize > MIGRATIONS.len() {
        tracing::warn!(database = applied, known = MIGRATIONS.len(), "metadata schema is newer than this berth");
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        let version = (i + 1) as i32;
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&version]).await?;
        tracing::info!(version, "applied metadata migration");
    }
    tx.commit().await
}

pub fn latest_version() -> usize {
    MIGRATIONS.len()
}
