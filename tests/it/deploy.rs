//! The packaging, checked as far as this machine allows (tests/deploy/check.py): the
//! Kubernetes manifests rendered with `kubectl kustomize`, the compose topology and both
//! Dockerfiles checked against each other and `sluice check`, and, where podman can run
//! containers, the image built from this build's binary, run against the testbed, used by the
//! mariadb CLI, health-checked and stopped with SIGTERM.

#[test]
fn packaging_renders_agrees_with_the_config_and_the_image_runs() {
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deploy/check.py"))
        .args(["--sluice", env!("CARGO_BIN_EXE_sluice")])
        .args(["--primary", &crate::harness::primary_port().to_string()])
        .args(["--replica", &crate::harness::replica_ports()[0].to_string()])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "deploy checks failed:\n{text}");
    assert!(text.contains("deploy checks passed"));
}
