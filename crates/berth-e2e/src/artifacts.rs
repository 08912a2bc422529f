//! Scenario 6 of issue 13 with oras-py, plus its part of scenario 8:
//! - an artifact with an `artifactType` pushed and pulled back, files equal;
//! - an SBOM-like artifact attached to an image with `subject`: the PUT
//!   answers `OCI-Subject`, the referrers API (plain HTTP) lists it, with and
//!   without an `artifactType` filter, and no `sha256-<digest>` fallback tag
//!   was written;
//! - a Helm chart as an OCI artifact with Helm's media types, pulled back;
//! - oras-py's tag delete with deletes disabled: 405 UNSUPPORTED, nothing lost.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_testkit::{run_bounded, Oras};
use serde_json::{json as j, Value};

use crate::fixtures::{read_tree, skopeo_ok, Layout};
use crate::registry::{self, json};
use crate::{ensure, Result};

pub const NOTES_TYPE: &str = "application/vnd.berth.e2e.notes.v1";
pub const SBOM_TYPE: &str = "application/spdx+json";
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Runs the scenario; `work` is a scratch dir.
pub fn run(oras: &Oras, registry: SocketAddr, work: &Path) -> Result<()> {
    artifact_with_type(oras, registry, work)?;
    sbom_with_subject(oras, registry, work)?;
    helm_chart(oras, registry, work)?;
    delete_refused(oras, registry)
}

fn write(dir: &Path, name: &str, content: &[u8]) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Pushes with the helper; the parsed result, the push's status checked.
fn push(oras: &Oras, args: Value) -> Result<Value> {
    let result = json(&oras.run("push", &args.to_string())?)?;
    ensure(result["status"] == 201, || format!("manifest PUT did not answer 201: {result}"))?;
    Ok(result)
}

/// Pulls `target` into `dir`; the files that came back.
fn pull(oras: &Oras, target: &str, dir: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    json(&oras.run("pull", &j!({ "target": target, "outdir": dir }).to_string())?)?;
    read_tree(dir)
}

fn artifact_with_type(oras: &Oras, registry: SocketAddr, work: &Path) -> Result<()> {
    let src = work.join("notes");
    let a = write(&src, "notes.txt", b"release notes of an e2e artifact\n")?;
    let b = write(&src, "data.bin", &crate::skopeo_copy::pseudo_random(70_000))?;
    let target = format!("{registry}/e2e/artifact:v1");
    let files = [[a.to_string_lossy(), "text/plain".into()], [b.to_string_lossy(), "application/octet-stream".into()]];
    push(oras, j!({ "target": target, "files": files, "artifact_type": NOTES_TYPE }))?;
    let served = registry::manifest(registry, "e2e/artifact", "v1")?;
    ensure(served.json["artifactType"] == NOTES_TYPE, || format!("artifactType not kept: {}", served.json))?;
    let back = pull(oras, &target, &work.join("notes-back"))?;
    ensure(back == read_tree(&src)?, || format!("pulled back {:?}", back.keys().collect::<Vec<_>>()))
}

fn sbom_with_subject(oras: &Oras, registry: SocketAddr, work: &Path) -> Result<()> {
    let layout = Layout::build(work, "subject-layout", &[("etc/app.conf", b"app=1\n".to_vec())])?;
    skopeo_ok(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &layout.reference(),
        &format!("docker://{registry}/e2e/app:v1"),
    ])?;
    let image = registry::manifest(registry, "e2e/app", "v1")?;
    let subject = j!({ "mediaType": image.content_type, "digest": image.digest, "size": image.bytes.len() });

    let src = work.join("sbom");
    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"e2e app","packages":[{"name":"busybox"}]}"#;
    let path = write(&src, "sbom.spdx.json", sbom)?;
    let files = [[path.to_string_lossy(), SBOM_TYPE.into()]];
    let target = format!("{registry}/e2e/app:sbom");
    let result = push(oras, j!({ "target": target, "files": files, "artifact_type": SBOM_TYPE, "subject": subject }))?;
    let sbom_manifest = registry::manifest(registry, "e2e/app", "sbom")?;
    // Spec: a registry that processed `subject` answers the PUT with OCI-Subject.
    let put = result["log"].as_array().into_iter().flatten().rev().find(|r| r["method"] == "PUT").cloned();
    let oci_subject = put.as_ref().and_then(|p| p["response"]["OCI-Subject"].as_str()).unwrap_or_default().to_owned();
    ensure(oci_subject == image.digest, || format!("manifest PUT with subject: OCI-Subject {oci_subject:?}: {put:?}"))?;

    let referrers = |query: &str| -> Result<(Value, Option<String>)> {
        let r = registry::get(registry, &format!("/v2/e2e/app/referrers/{}{query}", image.digest), &[])?;
        ensure(r.status == 200, || format!("referrers{query}: {}", r.describe()))?;
        ensure(r.header("content-type") == Some("application/vnd.oci.image.index.v1+json"), || {
            format!("referrers content type: {}", r.describe())
        })?;
        Ok((json(&r.text())?, r.header("oci-filters-applied").map(str::to_owned)))
    };
    let (all, _) = referrers("")?;
    let expected = j!([{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sbom_manifest.digest,
        "size": sbom_manifest.bytes.len(),
        "artifactType": SBOM_TYPE,
    }]);
    let listed: Vec<Value> = all["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| j!({ "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "artifactType": d["artifactType"] }))
        .collect();
    ensure(Value::Array(listed) == expected, || format!("referrers list {all}, expected {expected}"))?;
    let (filtered, applied) = referrers(&format!("?artifactType={}", SBOM_TYPE.replace('+', "%2B")))?;
    ensure(filtered["manifests"].as_array().map_or(0, Vec::len) == 1, || format!("filtered referrers: {filtered}"))?;
    ensure(applied.as_deref() == Some("artifactType"), || format!("OCI-Filters-Applied: {applied:?}"))?;
    let (none, _) = referrers("?artifactType=application%2Fvnd.other")?;
    ensure(none["manifests"].as_array().is_some_and(Vec::is_empty), || format!("other type lists: {none}"))?;

    let tags = registry::tags(registry, "e2e/app")?;
    ensure(!tags.iter().any(|t| t.starts_with("sha256-")), || {
        format!("a referrers fallback tag was written: {tags:?}")
    })?;
    ensure(tags == ["sbom", "v1"], || format!("tags of e2e/app: {tags:?}"))?;
    let back = pull(oras, &target, &work.join("sbom-back"))?;
    ensure(back.get("sbom.spdx.json").map(Vec::as_slice) == Some(&sbom[..]), || "SBOM pulled back differs".to_owned())
}

fn helm_chart(oras: &Oras, registry: SocketAddr, work: &Path) -> Result<()> {
    let chart_dir = work.join("chart");
    write(&chart_dir.join("mychart"), "Chart.yaml", b"apiVersion: v2\nname: mychart\nversion: 0.1.0\n")?;
    write(&chart_dir.join("mychart"), "values.yaml", b"replicaCount: 1\n")?;
    write(&chart_dir.join("mychart/templates"), "cm.yaml", b"kind: ConfigMap\n")?;
    let tgz = work.join("push").join("mychart-0.1.0.tgz");
    std::fs::create_dir_all(tgz.parent().expect("parent")).map_err(|e| e.to_string())?;
    let mut tar = Command::new("tar");
    tar.arg("-czf").arg(&tgz).arg("-C").arg(&chart_dir).arg("mychart");
    run_bounded(&mut tar, Duration::from_secs(30))?.ok()?;
    let config =
        write(&work.join("push"), "config.json", br#"{"apiVersion":"v2","name":"mychart","version":"0.1.0"}"#)?;
    let target = format!("{registry}/e2e/charts/mychart:0.1.0");
    let files = [[tgz.to_string_lossy(), HELM_CHART.into()]];
    push(oras, j!({ "target": target, "files": files, "config": [config, HELM_CONFIG] }))?;
    let served = registry::manifest(registry, "e2e/charts/mychart", "0.1.0")?;
    ensure(
        served.json["config"]["mediaType"] == HELM_CONFIG && served.json["layers"][0]["mediaType"] == HELM_CHART,
        || format!("chart manifest lost Helm's media types: {}", served.json),
    )?;
    let config_digest = served.json["config"]["digest"].as_str().unwrap_or_default();
    let config_back = registry::blob(registry, "e2e/charts/mychart", config_digest)?;
    ensure(config_back == std::fs::read(&config).map_err(|e| e.to_string())?, || "chart config differs".to_owned())?;
    let back = pull(oras, &target, &work.join("chart-back"))?;
    let original = std::fs::read(&tgz).map_err(|e| e.to_string())?;
    ensure(back.get("mychart-0.1.0.tgz") == Some(&original), || "chart pulled back differs".to_owned())
}

/// Scenario 8 for oras-py: its tag delete is refused, the artifact stays.
fn delete_refused(oras: &Oras, registry: SocketAddr) -> Result<()> {
    let before = registry::manifest(registry, "e2e/artifact", "v1")?;
    let result =
        json(&oras.run("delete_tag", &j!({ "target": format!("{registry}/e2e/artifact"), "tag": "v1" }).to_string())?)?;
    let delete = result["log"].as_array().into_iter().flatten().find(|r| r["method"] == "DELETE").cloned();
    ensure(result["deleted"] == false && delete.as_ref().is_some_and(|d| d["status"] == 405), || {
        format!("oras-py delete with deletes disabled: expected a refused DELETE (405): {result}")
    })?;
    let after = registry::manifest(registry, "e2e/artifact", "v1")?;
    ensure(after.bytes == before.bytes, || "artifact changed after a refused delete".to_owned())
}
