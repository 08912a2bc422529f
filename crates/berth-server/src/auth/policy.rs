//! Who may do what with Berth's own users, until projects and roles
//! (issue #18) replace it: administrators may do anything; other users pull
//! and push every repository but neither delete nor list the catalog;
//! anonymous clients pull when `berth.auth.anonymouspull` says so.
//! One function, used both to fill tokens and to check Basic credentials,
//! so the two paths cannot disagree.

use berth_meta::User;

/// The subset of `requested` actions on the resource that `user` (`None`:
/// anonymous) holds. `*` is granted to administrators only.
pub fn granted(user: Option<&User>, anonymous_pull: bool, kind: &str, requested: &[String]) -> Vec<String> {
    let holds = |action: &str| match user {
        Some(u) if u.disabled => false,
        Some(u) if u.admin => true,
        Some(_) => kind == "repository" && matches!(action, "pull" | "push"),
        None => anonymous_pull && kind == "repository" && action == "pull",
    };
    let mut out: Vec<String> = requested.iter().filter(|a| holds(a)).cloned().collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(admin: bool, disabled: bool) -> User {
        User { id: 1, name: "u".into(), password_hash: String::new(), admin, disabled, created_ms: 0, generation: 0 }
    }

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn interim_policy() {
        let all = v(&["pull", "push", "delete", "*"]);
        assert_eq!(granted(Some(&user(true, false)), false, "repository", &all), all);
        assert_eq!(granted(Some(&user(true, false)), false, "registry", &v(&["*"])), v(&["*"]));
        assert_eq!(granted(Some(&user(false, false)), false, "repository", &all), v(&["pull", "push"]));
        assert!(granted(Some(&user(false, false)), false, "registry", &v(&["*"])).is_empty());
        assert!(granted(Some(&user(true, true)), true, "repository", &all).is_empty(), "disabled");
        assert_eq!(granted(None, true, "repository", &all), v(&["pull"]));
        assert!(granted(None, false, "repository", &all).is_empty());
    }
}
