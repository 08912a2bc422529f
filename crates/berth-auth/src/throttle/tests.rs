use super::*;

const S: Duration = Duration::from_secs(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn fail(t: &FailureThrottle, user: &str, addr: IpAddr, now: Instant, times: u32) {
    for _ in 0..times {
        t.failed(user, addr, now);
    }
}

#[test]
fn refused_after_five_failures_with_doubling_backoff() {
    let t = FailureThrottle::new(ThrottleConfig::default());
    let (a, t0) = (ip("192.0.2.1"), Instant::now());
    fail(&t, "alice", a, t0, 4);
    assert_eq!(t.check("alice", a, t0), Ok(()));
    t.failed("alice", a, t0);
    assert_eq!(t.check("alice", a, t0), Err(S));
    assert_eq!(t.check("alice", a, t0 + S), Ok(()));
    // Each further failure doubles the wait.
    t.failed("alice", a, t0 + S);
    assert_eq!(t.check("alice", a, t0 + S), Err(2 * S));
    t.failed("alice", a, t0 + 3 * S);
    assert_eq!(t.check("alice", a, t0 + 3 * S), Err(4 * S));
    assert_eq!(t.check("alice", a, t0 + 5 * S), Err(2 * S));
    // Other users and other sources are not affected.
    assert_eq!(t.check("bob", a, t0 + 3 * S), Ok(()));
    assert_eq!(t.check("alice", ip("192.0.2.2"), t0 + 3 * S), Ok(()));
}

#[test]
fn backoff_is_capped() {
    let t = FailureThrottle::new(ThrottleConfig::default());
    let (a, t0) = (ip("192.0.2.1"), Instant::now());
    fail(&t, "alice", a, t0, 40);
    assert_eq!(t.check("alice", a, t0), Err(Duration::from_secs(900)));
}

#[test]
fn success_resets_only_that_user_and_source() {
    let t = FailureThrottle::new(ThrottleConfig::default());
    let (a, t0) = (ip("192.0.2.1"), Instant::now());
    fail(&t, "alice", a, t0, 4);
    t.succeeded("alice", a);
    fail(&t, "alice", a, t0, 4);
    assert_eq!(t.check("alice", a, t0), Ok(()));
    t.failed("alice", a, t0);
    assert!(t.check("alice", a, t0).is_err());
}

#[test]
fn counters_forget_after_a_quiet_window() {
    let t = FailureThrottle::new(ThrottleConfig::default());
    let (a, t0) = (ip("192.0.2.1"), Instant::now());
    fail(&t, "alice", a, t0, 4);
    let later = t0 + Duration::from_secs(15 * 60) + S;
    t.failed("alice", a, later);
    assert_eq!(t.check("alice", a, later), Ok(()), "the old failures were forgotten");
}

#[test]
fn window_counts_from_the_end_of_a_block() {
    let cfg = ThrottleConfig { max_backoff: Duration::from_secs(3600), ..ThrottleConfig::default() };
    let t = FailureThrottle::new(cfg);
    let (a, t0) = (ip("192.0.2.1"), Instant::now());
    fail(&t, "alice", a, t0, 17); // blocked 2^12 s, longer than the window
    let after = t0 + Duration::from_secs(3601);
    assert_eq!(t.check("alice", a, after), Ok(()));
    t.failed("alice", a, after);
    assert_eq!(t.check("alice", a, after), Err(Duration::from_secs(3600)), "still escalating");
}

#[test]
fn spraying_many_users_from_one_source_is_refused() {
    let t = FailureThrottle::new(ThrottleConfig::default());
    let (a, t0) = (ip("198.51.100.7"), Instant::now());
    for i in 0..50 {
        t.failed(&format!("user{i}"), a, t0);
    }
    assert_eq!(t.check("someone-else", a, t0), Err(S));
    // A success elsewhere does not lift the source's block.
    t.succeeded("user1", a);
    assert!(t.check("user1", a, t0).is_err());
    assert_eq!(t.check("someone-else", ip("198.51.100.8"), t0), Ok(()));
}

#[test]
fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
    let t = FailureThrottle::new(ThrottleConfig::default());
    let t0 = Instant::now();
    fail(&t, "alice", ip("2001:db8:1:2::1"), t0, 5);
    assert!(t.check("alice", ip("2001:db8:1:2:ffff::9"), t0).is_err());
    assert_eq!(t.check("alice", ip("2001:db8:1:3::1"), t0), Ok(()));
    fail(&t, "bob", ip("::ffff:192.0.2.9"), t0, 5);
    assert!(t.check("bob", ip("192.0.2.9"), t0).is_err());
}
