//! A built image against the real engine: `docker load` reports the id we computed, and the
//! image runs its binary as nobody with no network. The binary is a 156-byte static x86-64
//! ELF (`capsule_image::elf`: write "ok\n", exit 0), so the test needs no toolchain for another
//! target. Needs a running engine (`scripts/dockerd-up.sh`, which `scripts/test.sh` runs).
use std::process::Command;

use capsule_image::{
    build_function_image,
    elf::{static_elf, PRINT_OK},
    verify_archive,
};

fn docker(args: &[&str]) -> (bool, String, String) {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs (scripts/setup.sh installs docker.io)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn docker_loads_the_image_under_our_id_and_runs_it() {
    let image = build_function_image(&static_elf(PRINT_OK));
    verify_archive(&image.tar[..], &image.id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    std::fs::write(&archive, &image.tar).unwrap();

    let (ok, stdout, stderr) = docker(&["load", "--input", archive.to_str().unwrap()]);
    assert!(
        ok,
        "docker load failed (is the engine up? scripts/dockerd-up.sh): {stderr}"
    );
    assert!(
        stdout.contains(&image.docker_id()),
        "docker load reported {stdout:?}, we computed {}",
        image.docker_id()
    );
    let (ok, stdout, stderr) = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        &image.docker_id(),
    ]);
    let _ = docker(&["rmi", "--force", &image.docker_id()]);
    assert!(ok, "the image did not run: {stderr}");
    assert_eq!(stdout, "ok\n");
}
