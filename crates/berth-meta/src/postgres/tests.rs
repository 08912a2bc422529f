//! The shared suite against a real PostgreSQL: one private server per test
//! (`berth_testkit::Postgres`, started from a cached `initdb` template, so
//! about half a second each), plus what only this backend has.

use super::*;
use berth_testkit::Postgres;

async fn store(pg: &Postgres) -> PostgresStore {
    let mut opts = PostgresOptions::new(pg.url("postgres"));
    opts.pool_size = 8;
    PostgresStore::connect(&opts).await.unwrap_or_else(|e| panic!("{e}\n{}", pg.log_tail(20)))
}

crate::metastore_test_suite!(|| async {
    // Started on the test's own thread: the server dies with that thread.
    let pg = Postgres::start().unwrap();
    (store(&pg).await, pg)
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_once_by_racing_nodes() {
    let pg = Postgres::start().unwrap();
    // Three nodes start together against an empty database.
    let (a, b, c) = tokio::join!(store(&pg), store(&pg), store(&pg));
    drop((a, b));
    let client = c.pool.get().await.unwrap();
    let rows = client.query("SELECT version FROM schema_migrations ORDER BY version", &[]).await.unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=schema_version() as i32).collect::<Vec<_>>());
    drop(client);
    drop(store(&pg).await);
    let again: i64 =
        c.pool.get().await.unwrap().query_one("SELECT count(*) FROM schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(again as usize, schema_version(), "reopening applies nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_is_a_clear_error() {
    let pg = Postgres::start().unwrap();
    let mut opts = PostgresOptions::new(pg.url("no_such_db"));
    opts.connect_timeout = std::time::Duration::from_secs(5);
    let err = PostgresStore::connect(&opts).await.err().expect("must fail").to_string();
    assert!(err.contains("no_such_db") && err.contains("3D000"), "{err}");
    let err = PostgresStore::connect(&PostgresOptions::new("postgres://[::1")).await.err().unwrap().to_string();
    assert!(err.contains("invalid PostgreSQL URL"), "{err}");
}

/// Lexical byte order does not depend on the database's locale: in an ICU
/// `en-US` database "a" sorts before "C" unless the columns say `"C"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_order_in_a_database_with_a_natural_language_collation() {
    let pg = Postgres::start().unwrap();
    let (admin, conn) = tokio_postgres::connect(&pg.url("postgres"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    for db in ["icu_tags", "icu_catalog"] {
        let sql = format!("CREATE DATABASE {db} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'");
        admin.batch_execute(&sql).await.unwrap();
    }
    let row = admin.query_one("SELECT 'a' < 'C' COLLATE \"en-US-x-icu\"", &[]).await.unwrap();
    assert!(row.get::<_, bool>(0), "the premise: en-US puts a before C");
    let (tags, catalog) = (PostgresOptions::new(pg.url("icu_tags")), PostgresOptions::new(pg.url("icu_catalog")));
    crate::test_suite::tags_move_and_list_lexically(&PostgresStore::connect(&tags).await.unwrap()).await;
    crate::test_suite::catalog_pages_lexically(&PostgresStore::connect(&catalog).await.unwrap()).await;
}
