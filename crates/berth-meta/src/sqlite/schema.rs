//! Schema migrations, applied in order at open; `PRAGMA user_version`
//! records how many have run. Never edit a released migration: add one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the registry core.
    r#"
    CREATE TABLE repositories (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE blobs (
        digest TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE repository_blobs (
        repository_id INTEGER NOT NULL,
        digest TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (repository_id, digest)
    ) WITHOUT ROWID;
    CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);
    CREATE TABLE manifests (
        repository_id INTEGER NOT NULL,
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        artifact_type TEXT,
        subject TEXT,
        annotations TEXT,
        size INTEGER NOT NULL,
        body BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (repository_id, digest)
    ) WITHOUT ROWID;
    CREATE INDEX manifests_by_subject ON manifests (repository_id, subject) WHERE subject IS NOT NULL;
    CREATE TABLE manifest_references (
        repository_id INTEGER NOT NULL,
        manifest_digest TEXT NOT NULL,
        child_digest TEXT NOT NULL,
        child_is_manifest INTEGER NOT NULL,
        PRIMARY KEY (repository_id, manifest_digest, child_digest)
    ) WITHOUT ROWID;
    CREATE INDEX manifest_references_by_child ON manifest_references (repository_id, child_digest);
    CREATE TABLE tags (
        repository_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (repository_id, name)
    ) WITHOUT ROWID;
    CREATE INDEX tags_by_digest ON tags (repository_id, digest);
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        repository TEXT NOT NULL,
        offset INTEGER NOT NULL,
        hash_state BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX uploads_by_age ON uploads (updated_ms);
    "#,
    // 2: background job leases and their durable progress.
    r#"
    CREATE TABLE job_leases (
        job TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        acquired_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE job_state (
        job TEXT PRIMARY KEY,
        state BLOB NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 3: the blob store's resumable upload state (S3 multipart uploads).
    r#"
    ALTER TABLE uploads ADD COLUMN store_state BLOB NOT NULL DEFAULT x'';
    "#,
    // 4: garbage collection: blobs no repository links, marked when first
    // seen so, then switched to deleting (docs/garbage-collection.md); links
    // by age, for the unreferenced-link scan.
    r#"
    CREATE TABLE blob_gc (
        digest TEXT PRIMARY KEY,
        marked_ms INTEGER NOT NULL,
        deleting INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX repository_blobs_by_age ON repository_blobs (created_ms);
    "#,
    // 5: users (passwords as argon2id PHC strings) and secrets shared by
    // every node (the generated token-signing key).
    r#"
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 6: projects (the first path component of a repository name; one-part
    // names belong to `library`, public as on Docker Hub and Harbor) and
    // their members' roles (Harbor's role ids).
    r#"
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        public INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE project_members (
        project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        role INTEGER NOT NULL,
        PRIMARY KEY (project_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX project_members_by_user ON project_members (user_id);
    INSERT INTO projects (name, public, created_ms) VALUES ('library', 1, 0);
    "#,
    // 7: the audit log (audit.rs): a hash chain, ids contiguous from 1;
    // one row holds the chain head and the anchor left by retention.
    r#"
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        source TEXT NOT NULL,
        action TEXT NOT NULL,
        resource TEXT NOT NULL,
        success INTEGER NOT NULL,
        status INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE audit_chain (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        head_id INTEGER NOT NULL,
        head_hash TEXT NOT NULL,
        anchor_id INTEGER NOT NULL,
        anchor_hash TEXT NOT NULL
    );
    INSERT INTO audit_chain VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000');
    "#,
    // Storage quotas and tag immutability (quotas.rs, immutability.rs):
    // a project's limit in bytes (NULL: none); lookups by digest, so a
    // project's usage can tell what another project counts too; Harbor's
    // immutability rules per project.
    r#"
    ALTER TABLE projects ADD COLUMN storage_limit INTEGER;
    CREATE INDEX manifest_references_by_digest ON manifest_references (child_digest);
    CREATE INDEX manifests_by_digest ON manifests (digest);
    CREATE TABLE immutable_rules (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        repo_decoration TEXT NOT NULL,
        repo_pattern TEXT NOT NULL,
        tag_decoration TEXT NOT NULL,
        tag_pattern TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX immutable_rules_by_project ON immutable_rules (project_id);
    "#,
    // Tag retention (retention.rs): manifests' last pull time, projects'
    // policies (Harbor's JSON), and runs with what each kept or removed.
    r#"
    ALTER TABLE manifests ADD COLUMN last_pulled_ms INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE retention_policies (
        project TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        cron TEXT,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE retention_runs (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        dry_run INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        status TEXT NOT NULL
    );
    CREATE INDEX retention_runs_by_project ON retention_runs (project, id);
    CREATE TABLE retention_items (
        run_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        repository TEXT NOT NULL,
        digest TEXT NOT NULL,
        tags TEXT NOT NULL,
        retained INTEGER NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    "#,
    // Robot accounts (robots.rs, issue #18): project robots go with their
    // project; permissions in a child table (namespace = project or `*`).
    r#"
    CREATE TABLE robots (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE,
        description TEXT NOT NULL DEFAULT '',
        secret_hash TEXT NOT NULL,
        expires_ms INTEGER,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        creator TEXT NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX robots_by_project ON robots (project_id, name);
    CREATE TABLE robot_permissions (
        robot_id INTEGER NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
        namespace TEXT NOT NULL,
        action TEXT NOT NULL,
        PRIMARY KEY (robot_id, namespace, action)
    ) WITHOUT ROWID;
    CREATE INDEX robot_permissions_by_namespace ON robot_permissions (namespace);
    "#,
    // system settings: cluster-wide switches an administrator changes at
    // run time (read-only maintenance mode), polled by every node.
    r#"
    CREATE TABLE system_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // Webhooks (webhooks.rs): policies go with their project, deliveries
    // with their policy (deleted explicitly too, see sqlite/webhooks.rs). AUTOINCREMENT:
    // ids are never reused, so a delivery enqueued for a deleted policy (or a
    // late finish for a deleted delivery) cannot land on a newer one.
    r#"
    CREATE TABLE webhook_policies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        event_types TEXT NOT NULL,
        targets TEXT NOT NULL,
        creator TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        UNIQUE (project_id, name)
    );
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_id INTEGER NOT NULL REFERENCES webhook_policies (id) ON DELETE CASCADE,
        target INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        due_ms INTEGER NOT NULL,
        claimed_by TEXT,
        claimed_until_ms INTEGER,
        last_status INTEGER,
        last_error TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_ms, id) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_by_policy ON webhook_deliveries (policy_id, id DESC);
    CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_ms) WHERE status <> 'pending';
    "#,
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied metadata migration");
    }
    Ok(())
}

pub fn latest_version() -> usize {
    MIGRATIONS.len()
}
