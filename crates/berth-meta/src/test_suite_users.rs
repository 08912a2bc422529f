//! The [`crate::UserStore`] part of the shared backend suite (see
//! [`crate::metastore_test_suite!`]).

use crate::{MetaError, MetaStore, NewUser, Role};

fn new_user(name: &str, admin: bool) -> NewUser {
    NewUser { name: name.into(), password_hash: format!("$argon2id$fake${name}"), admin }
}

pub async fn users_are_unique_and_listed_by_name(s: &dyn MetaStore) {
    let alice = s.create_user(&new_user("alice", false), 10).await.unwrap();
    assert_eq!((alice.name.as_str(), alice.admin, alice.disabled, alice.created_ms), ("alice", false, false, 10));
    let err = s.create_user(&new_user("alice", true), 11).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict(_)), "{err}");
    for n in ["carol", "Bob", "bob"] {
        s.create_user(&new_user(n, false), 12).await.unwrap();
    }
    let names = |v: Vec<crate::User>| v.into_iter().map(|u| u.name).collect::<Vec<_>>();
    // Byte order, as every other listing.
    assert_eq!(names(s.list_users(None, 10).await.unwrap()), ["Bob", "alice", "bob", "carol"]);
    assert_eq!(names(s.list_users(Some("alice"), 1).await.unwrap()), ["bob"]);
    assert_eq!(s.user_by_name("alice").await.unwrap().unwrap(), alice);
    assert!(s.user_by_name("ALICE").await.unwrap().is_none());
    assert!(s.delete_user("bob").await.unwrap());
    assert!(!s.delete_user("bob").await.unwrap());
    assert!(s.user_by_name("bob").await.unwrap().is_none());
}

pub async fn password_change_bumps_the_generation(s: &dyn MetaStore) {
    let before = s.create_user(&new_user("dave", false), 1).await.unwrap();
    assert!(s.set_password("dave", "$argon2id$new").await.unwrap());
    let after = s.user_by_name("dave").await.unwrap().unwrap();
    assert_eq!(after.password_hash, "$argon2id$new");
    assert!(after.generation > before.generation);
    assert!(!s.set_password("nobody", "x").await.unwrap());
    assert!(s.set_disabled("dave", true).await.unwrap());
    assert!(s.user_by_name("dave").await.unwrap().unwrap().disabled);
}

pub async fn first_admin_is_created_once(s: &dyn MetaStore) {
    assert_eq!(s.count_admins().await.unwrap(), 0);
    s.create_user(&new_user("plain", false), 1).await.unwrap();
    assert_eq!(s.count_admins().await.unwrap(), 0, "a plain user is no administrator");
    // Several nodes bootstrapping at once: exactly one administrator.
    let u: Vec<_> = (0..4).map(|i| new_user(&format!("admin{i}"), false)).collect();
    let (a, b, c, d) = tokio::join!(
        s.create_first_admin(&u[0], 2),
        s.create_first_admin(&u[1], 2),
        s.create_first_admin(&u[2], 2),
        s.create_first_admin(&u[3], 2),
    );
    let winners: Vec<_> = [a, b, c, d].into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert!(winners[0].admin);
    assert_eq!(s.count_admins().await.unwrap(), 1);
    // A disabled administrator does not count: bootstrapping may recover.
    assert!(s.set_disabled(&winners[0].name, true).await.unwrap());
    assert_eq!(s.count_admins().await.unwrap(), 0);
    assert!(s.create_first_admin(&new_user("rescue", false), 3).await.unwrap().is_some());
    assert!(s.set_admin("plain", true).await.unwrap());
    assert_eq!(s.count_admins().await.unwrap(), 2);
}

pub async fn secrets_keep_the_first_value(s: &dyn MetaStore) {
    let (a, b, c) = tokio::join!(
        s.secret_or_insert("token-key", &[1; 4], 1),
        s.secret_or_insert("token-key", &[2; 4], 1),
        s.secret_or_insert("token-key", &[3; 4], 1),
    );
    let values = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert!(values.iter().all(|v| *v == values[0] && v.len() == 4), "{values:?}");
    assert_eq!(s.secret_or_insert("token-key", b"other", 2).await.unwrap(), values[0]);
    assert_eq!(s.secret_or_insert("another", b"x", 2).await.unwrap(), b"x");
}

pub async fn library_is_public_from_the_start(s: &dyn MetaStore) {
    let library = s.project_by_name("library").await.unwrap().expect("created by the schema");
    assert!(library.public);
    let (p, role) = s.project_access("library", None).await.unwrap().unwrap();
    assert_eq!((p.name.as_str(), role), ("library", None));
    assert!(s.project_access("nope", None).await.unwrap().is_none());
}

pub async fn projects_members_and_roles(s: &dyn MetaStore) {
    let alice = s.create_user(&new_user("alice", false), 1).await.unwrap();
    let bob = s.create_user(&new_user("bob", false), 1).await.unwrap();
    let team = s.create_project("team-a", false, Some(alice.id), 5).await.unwrap();
    assert_eq!((team.name.as_str(), team.public, team.created_ms), ("team-a", false, 5));
    let err = s.create_project("team-a", true, None, 6).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict(_)), "{err}");
    // The creator is its ProjectAdmin; others hold nothing until added.
    assert_eq!(s.project_access("team-a", Some(alice.id)).await.unwrap().unwrap().1, Some(Role::ProjectAdmin));
    assert_eq!(s.project_access("team-a", Some(bob.id)).await.unwrap().unwrap().1, None);
    assert!(s.set_member("team-a", bob.id, Role::Guest).await.unwrap());
    assert!(s.set_member("team-a", bob.id, Role::Developer).await.unwrap(), "a new role replaces the old");
    assert_eq!(s.project_access("team-a", Some(bob.id)).await.unwrap().unwrap().1, Some(Role::Developer));
    assert!(!s.set_member("nope", bob.id, Role::Guest).await.unwrap());
    assert!(!s.set_member("team-a", 999_999, Role::Guest).await.unwrap());
    let members: Vec<_> = s.members("team-a").await.unwrap().into_iter().map(|m| (m.user_name, m.role)).collect();
    assert_eq!(members, [("alice".to_owned(), Role::ProjectAdmin), ("bob".to_owned(), Role::Developer)]);
    s.create_project("b-team", true, None, 7).await.unwrap();
    let names: Vec<_> = s.list_projects(None, 10).await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["b-team", "library", "team-a"]);
    assert_eq!(s.list_projects(Some("b-team"), 1).await.unwrap()[0].name, "library");
    assert!(s.set_project_public("team-a", true).await.unwrap());
    assert!(s.project_by_name("team-a").await.unwrap().unwrap().public);
    // Deleting a user or a project removes the memberships with it.
    assert!(s.remove_member("team-a", alice.id).await.unwrap());
    assert!(!s.remove_member("team-a", alice.id).await.unwrap());
    assert!(s.delete_user("bob").await.unwrap());
    assert!(s.members("team-a").await.unwrap().is_empty());
    s.set_member("team-a", alice.id, Role::Maintainer).await.unwrap();
    assert!(s.delete_project("team-a").await.unwrap());
    assert!(s.project_access("team-a", Some(alice.id)).await.unwrap().is_none());
    s.create_project("team-a", false, None, 8).await.unwrap();
    assert_eq!(s.project_access("team-a", Some(alice.id)).await.unwrap().unwrap().1, None, "no membership survives");
}
