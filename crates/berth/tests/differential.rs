//! Differential test: one request script, run against Berth and against
//! CNCF Distribution 2.8 (Debian's `docker-registry`), both with deletes
//! enabled, comparing what the OCI Distribution spec lets a client rely on:
//! status, error `code`, `Docker-Content-Digest`, `Content-Length` (success
//! only: error messages differ in wording), `Content-Type` (success only),
//! `Location` (normalised to its path, upload ids and Distribution's
//! `_state` query elided), `Range`, `Content-Range`, `Docker-Upload-UUID`
//! presence, `Link`, and the body (a digest for blobs and manifests, the
//! JSON for lists).
//!
//! The script is data ([`script`]): each step names a request by templates
//! over values both runs share (digests) and values each run captured
//! (upload `Location`s). The full comparison table is printed; every
//! difference must match an entry of [`ALLOWED`], which says why the spec
//! favours one side (or permits both). A new difference fails the test, and
//! so does an allowance that no longer matches (so the list stays true).

#[path = "support/diff_allowances.rs"]
mod diff_allowances;
#[path = "support/diff_report.rs"]
mod diff_report;
#[path = "support/diff_run.rs"]
mod diff_run;
#[path = "support/diff_script.rs"]
mod diff_script;
mod support;

use berth_testkit::{BerthOptions, BerthServer, Distribution, DistributionOptions};
use diff_allowances::ALLOWED;
use diff_report::{print_table, FIELD_ORDER};
use diff_run::run;
use diff_script::{fixture, script};

#[test]
fn berth_matches_distribution_on_the_oci_1_0_subset() {
    let fx = fixture();
    let steps = script();
    let mut ids = std::collections::HashSet::new();
    for st in &steps {
        assert!(ids.insert(st.id), "duplicate step id {}", st.id);
    }
    let berth = BerthServer::start(BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth")).delete_enabled(true))
        .expect("berth starts");
    let dist = Distribution::start_with(DistributionOptions { delete_enabled: true, ..Default::default() })
        .expect("docker-registry starts");
    let ours = run(berth.addr(), &fx, &steps);
    let theirs = run(dist.addr(), &fx, &steps);

    let mut table =
        vec![["step".to_owned(), "field".into(), "berth".into(), "distribution 2.8".into(), "verdict".into()]];
    let mut new_diffs = Vec::new();
    let mut used = vec![false; ALLOWED.len()];
    let mut same = 0;
    let mut allowed = 0;
    for ((st, b), d) in steps.iter().zip(&ours).zip(&theirs) {
        let mut fields: Vec<&'static str> = b.keys().chain(d.keys()).copied().collect();
        fields.sort_by_key(|f| FIELD_ORDER.iter().position(|o| o == f));
        fields.dedup();
        for field in fields {
            let (bv, dv) = (b.get(field).map(String::as_str), d.get(field).map(String::as_str));
            let verdict = if bv == dv {
                same += 1;
                "=".to_owned()
            } else if let Some(i) =
                ALLOWED.iter().position(|a| a.steps.contains(&st.id) && a.field == field && (a.check)(bv, dv))
            {
                used[i] = true;
                allowed += 1;
                format!("allowed: {}", ALLOWED[i].why)
            } else {
                new_diffs.push(format!("{} [{}] {field}: berth {bv:?}, distribution {dv:?}", st.id, st.desc));
                "NEW DIFFERENCE".to_owned()
            };
            table.push([
                format!("{} ({})", st.id, st.desc),
                field.to_owned(),
                bv.unwrap_or("-").to_owned(),
                dv.unwrap_or("-").to_owned(),
                verdict,
            ]);
        }
    }
    print_table(&table);
    let stale: Vec<String> = ALLOWED
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(a, _)| format!("{:?} {}: {}", a.steps, a.field, a.why))
        .collect();
    println!(
        "\n{} steps, {same} fields equal, {allowed} allowed differences (by {} allowances), {} new, {} stale allowances",
        steps.len(),
        used.iter().filter(|u| **u).count(),
        new_diffs.len(),
        stale.len()
    );
    assert!(new_diffs.is_empty(), "new differences from Distribution 2.8:\n  {}", new_diffs.join("\n  "));
    assert!(stale.is_empty(), "allowances that no longer match (remove or update them):\n  {}", stale.join("\n  "));
}
