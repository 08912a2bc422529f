//! The [`crate::SystemSettingsStore`] part of the shared backend suite (see
//! [`crate::metastore_test_suite!`]).

use crate::MetaStore;

pub async fn system_settings_are_absent_then_replaced(s: &dyn MetaStore) {
    assert_eq!(s.system_setting("readonly").await.unwrap(), None);
    s.set_system_setting("readonly", "true", 1).await.unwrap();
    assert_eq!(s.system_setting("readonly").await.unwrap().as_deref(), Some("true"));
    s.set_system_setting("readonly", "false", 2).await.unwrap();
    assert_eq!(s.system_setting("readonly").await.unwrap().as_deref(), Some("false"));
    // Keys are independent and exact.
    assert_eq!(s.system_setting("READONLY").await.unwrap(), None);
    s.set_system_setting("other", "x", 3).await.unwrap();
    assert_eq!(s.system_setting("readonly").await.unwrap().as_deref(), Some("false"));
}

pub async fn system_settings_last_writer_wins_under_races(s: &dyn MetaStore) {
    // Concurrent writers never fail on the primary key; one value remains.
    let task = |i: i64| async move {
        let value = if i % 2 == 0 { "true" } else { "false" };
        s.set_system_setting("race", value, i).await.unwrap();
    };
    tokio::join!(task(0), task(1), task(2), task(3), task(4), task(5), task(6), task(7));
    let v = s.system_setting("race").await.unwrap();
    assert!(matches!(v.as_deref(), Some("true" | "false")), "{v:?}");
}
