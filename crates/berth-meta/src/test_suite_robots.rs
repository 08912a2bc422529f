//! The [`crate::RobotStore`] part of the shared backend suite (see
//! [`crate::metastore_test_suite!`]). Names and permission shapes follow
//! Harbor's robot accounts v2: `robot$<project>+<name>` for project robots,
//! `robot$<name>` for system robots, permissions (namespace, action).

use crate::{MetaError, MetaStore, NewRobot, RobotAction, RobotPermission, RobotUpdate};

fn perm(namespace: &str, action: RobotAction) -> RobotPermission {
    RobotPermission::new(namespace, action)
}

fn new_robot(name: &str, project: Option<&str>, permissions: Vec<RobotPermission>) -> NewRobot {
    NewRobot {
        name: name.into(),
        project: project.map(str::to_owned),
        description: format!("about {name}"),
        secret_hash: format!("$argon2id$fake${name}"),
        expires_ms: None,
        creator: "alice".into(),
        permissions,
    }
}

pub async fn robots_are_created_found_and_unique(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    let mut ci = new_robot(
        "robot$team-a+ci",
        Some("team-a"),
        vec![perm("team-a", RobotAction::Push), perm("team-a", RobotAction::Pull), perm("team-a", RobotAction::Pull)],
    );
    ci.expires_ms = Some(5_000);
    let created = s.create_robot(&ci, 10).await.unwrap();
    assert_eq!(created.name, "robot$team-a+ci");
    assert_eq!(created.project.as_deref(), Some("team-a"));
    assert_eq!(
        (created.description.as_str(), created.secret_hash.as_str(), created.creator.as_str()),
        ("about robot$team-a+ci", "$argon2id$fake$robot$team-a+ci", "alice")
    );
    assert_eq!((created.expires_ms, created.disabled, created.created_ms), (Some(5_000), false, 10));
    // Stored without duplicates.
    assert_eq!(created.permissions, [perm("team-a", RobotAction::Pull), perm("team-a", RobotAction::Push)]);
    assert_eq!(s.robot_by_name("robot$team-a+ci").await.unwrap().as_ref(), Some(&created));
    assert_eq!(s.robot_by_id(created.id).await.unwrap().as_ref(), Some(&created));
    assert!(s.robot_by_name("robot$team-a+nope").await.unwrap().is_none());
    assert!(s.robot_by_id(created.id + 1000).await.unwrap().is_none());

    let err = s.create_robot(&new_robot("robot$team-a+ci", Some("team-a"), vec![]), 11).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict(_)), "{err}");
    let system = s.create_robot(&new_robot("robot$mirror", None, vec![perm("*", RobotAction::Pull)]), 12).await;
    let system = system.unwrap();
    assert_eq!((system.project, system.permissions), (None, vec![perm("*", RobotAction::Pull)]));
    // A robot without permissions is still a robot (Harbor allows it).
    assert!(s.create_robot(&new_robot("robot$idle", None, vec![]), 13).await.unwrap().permissions.is_empty());
}

pub async fn robots_must_fit_their_project(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    let nope = s.create_robot(&new_robot("robot$nope+ci", Some("nope"), vec![]), 2).await.unwrap_err();
    assert!(matches!(nope, MetaError::NotFound(_)), "{nope}");
    for bad in [
        new_robot("robot$team-b+ci", Some("team-a"), vec![]),
        new_robot("robot$ci", Some("team-a"), vec![]),
        new_robot("robot$team-a+ci", None, vec![]),
        new_robot("ci", None, vec![]),
        new_robot("robot$team-a+ci", Some("team-a"), vec![perm("library", RobotAction::Pull)]),
        new_robot("robot$team-a+ci", Some("team-a"), vec![perm("*", RobotAction::Pull)]),
    ] {
        let err = s.create_robot(&bad, 3).await.unwrap_err();
        assert!(matches!(err, MetaError::Invalid(_)), "{}: {err}", bad.name);
    }
    // Permissions name existing projects (or `*`).
    let ghost = new_robot("robot$ghost", None, vec![perm("*", RobotAction::Pull), perm("nope", RobotAction::Pull)]);
    assert!(matches!(s.create_robot(&ghost, 4).await.unwrap_err(), MetaError::NotFound(_)));
    assert!(s.list_robots(None, None, 10).await.unwrap().is_empty(), "nothing half-created");
    let mirror = s.create_robot(&new_robot("robot$mirror", None, vec![]), 5).await.unwrap();
    let update = RobotUpdate {
        description: String::new(),
        disabled: false,
        expires_ms: None,
        permissions: vec![perm("nope", RobotAction::Pull)],
    };
    assert!(matches!(s.update_robot(mirror.id, &update).await.unwrap_err(), MetaError::NotFound(_)));
}

pub async fn robots_list_by_name_and_project(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    s.create_project("team-b", false, None, 1).await.unwrap();
    for (name, project) in [
        ("robot$team-b+deploy", Some("team-b")),
        ("robot$team-a+ci", Some("team-a")),
        ("robot$mirror", None),
        ("robot$team-a+build", Some("team-a")),
    ] {
        let perms = project.map(|p| vec![perm(p, RobotAction::Pull)]).unwrap_or_default();
        s.create_robot(&new_robot(name, project, perms), 2).await.unwrap();
    }
    let names = |v: Vec<crate::Robot>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_robots(None, None, 10).await.unwrap()),
        ["robot$mirror", "robot$team-a+build", "robot$team-a+ci", "robot$team-b+deploy"]
    );
    assert_eq!(
        names(s.list_robots(None, Some("robot$mirror"), 2).await.unwrap()),
        ["robot$team-a+build", "robot$team-a+ci"]
    );
    assert_eq!(
        names(s.list_robots(Some("team-a"), None, 10).await.unwrap()),
        ["robot$team-a+build", "robot$team-a+ci"]
    );
    assert_eq!(
        names(s.list_robots(Some("team-a"), Some("robot$team-a+build"), 10).await.unwrap()),
        ["robot$team-a+ci"]
    );
    assert!(s.list_robots(Some("nope"), None, 10).await.unwrap().is_empty());
    // Each listed robot carries its permissions.
    let listed = s.list_robots(Some("team-b"), None, 10).await.unwrap();
    assert_eq!(listed[0].permissions, [perm("team-b", RobotAction::Pull)]);
}

pub async fn robots_update_rotate_and_delete(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    let ci = s.create_robot(&new_robot("robot$team-a+ci", Some("team-a"), vec![]), 2).await.unwrap();
    let update = RobotUpdate {
        description: "pushes from CI".into(),
        disabled: true,
        expires_ms: Some(99),
        permissions: vec![perm("team-a", RobotAction::Delete), perm("team-a", RobotAction::Push)],
    };
    assert!(s.update_robot(ci.id, &update).await.unwrap());
    let after = s.robot_by_id(ci.id).await.unwrap().unwrap();
    assert_eq!((after.description.as_str(), after.disabled, after.expires_ms), ("pushes from CI", true, Some(99)));
    assert_eq!(after.permissions, [perm("team-a", RobotAction::Push), perm("team-a", RobotAction::Delete)]);
    assert_eq!((after.secret_hash, after.generation), (ci.secret_hash.clone(), ci.generation), "secret untouched");
    let wider = RobotUpdate { permissions: vec![perm("library", RobotAction::Pull)], ..update.clone() };
    assert!(matches!(s.update_robot(ci.id, &wider).await.unwrap_err(), MetaError::Invalid(_)));
    assert_eq!(s.robot_by_id(ci.id).await.unwrap().unwrap().permissions.len(), 2, "a refused update changes nothing");
    assert!(!s.update_robot(ci.id + 1000, &update).await.unwrap());

    let generation = s.rotate_robot_secret(ci.id, "$argon2id$rotated").await.unwrap().unwrap();
    assert!(generation > ci.generation);
    let rotated = s.robot_by_id(ci.id).await.unwrap().unwrap();
    assert_eq!((rotated.secret_hash.as_str(), rotated.generation), ("$argon2id$rotated", generation));
    assert_eq!(s.rotate_robot_secret(ci.id + 1000, "x").await.unwrap(), None);

    assert!(s.delete_robot(ci.id).await.unwrap());
    assert!(!s.delete_robot(ci.id).await.unwrap());
    assert!(s.robot_by_name("robot$team-a+ci").await.unwrap().is_none());
    // The name is free again, and the new robot starts with no permissions.
    let again = s.create_robot(&new_robot("robot$team-a+ci", Some("team-a"), vec![]), 3).await.unwrap();
    assert!(again.permissions.is_empty());
}

pub async fn deleting_a_project_deletes_its_robots(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    s.create_project("team-b", false, None, 1).await.unwrap();
    let ci = new_robot("robot$team-a+ci", Some("team-a"), vec![perm("team-a", RobotAction::Push)]);
    let ci = s.create_robot(&ci, 2).await.unwrap();
    s.create_robot(&new_robot("robot$team-b+ci", Some("team-b"), vec![perm("team-b", RobotAction::Pull)]), 2)
        .await
        .unwrap();
    let system =
        vec![perm("team-a", RobotAction::Pull), perm("team-b", RobotAction::Pull), perm("*", RobotAction::Pull)];
    s.create_robot(&new_robot("robot$mirror", None, system), 2).await.unwrap();

    assert!(s.delete_project("team-a").await.unwrap());
    assert!(s.robot_by_name("robot$team-a+ci").await.unwrap().is_none());
    assert!(s.robot_by_id(ci.id).await.unwrap().is_none());
    assert!(s.robot_by_name("robot$team-b+ci").await.unwrap().is_some(), "other projects' robots stay");
    // A system robot loses what it held in the deleted project, so a project
    // re-created under that name does not inherit it.
    let mirror = s.robot_by_name("robot$mirror").await.unwrap().unwrap();
    assert_eq!(mirror.permissions, [perm("*", RobotAction::Pull), perm("team-b", RobotAction::Pull)]);
    s.create_project("team-a", false, None, 3).await.unwrap();
    assert!(s.list_robots(Some("team-a"), None, 10).await.unwrap().is_empty());
    let reborn = s.create_robot(&new_robot("robot$team-a+ci", Some("team-a"), vec![]), 4).await.unwrap();
    assert!(reborn.permissions.is_empty(), "no permission row of the old robot survives");
}

/// A grant racing a project's deletion: either the grant fails (the project
/// is gone) or the deletion removes what it granted; never a permission in
/// a deleted project, which a re-created project would otherwise inherit.
pub async fn concurrent_grant_and_project_delete_leave_no_permission(s: &dyn MetaStore) {
    for round in 0..20 {
        let project = format!("race{round}");
        s.create_project(&project, false, None, 1).await.unwrap();
        let robot = new_robot(&format!("robot$race{round}"), None, vec![perm(&project, RobotAction::Pull)]);
        let (created, deleted) = tokio::join!(s.create_robot(&robot, 2), s.delete_project(&project));
        assert!(deleted.unwrap(), "round {round}");
        match created {
            Ok(r) => {
                let now = s.robot_by_id(r.id).await.unwrap().unwrap();
                assert!(now.permissions.is_empty(), "round {round}: {:?}", now.permissions);
            }
            Err(MetaError::NotFound(_)) => {}
            Err(e) => panic!("round {round}: {e}"),
        }
    }
}
