//! The cleanup evidence can fail: one deliberate residue of each category changes that
//! category's digest, and only that one.
use std::{
    os::unix::process::CommandExt,
    process::{Command, Stdio},
};

use capsule_executor::{host_state::HostState, seccomp::RUN_UIDS, Executor, Runtime};
use capsule_image::{build_function_image, elf};
use capsule_primitives::evidence::HostStateCategory;

fn sh(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(status.success(), "{args:?}: {status}");
}

/// Removes what an interrupted earlier run of this test may have left.
fn sweep() {
    for args in [
        &["docker", "rm", "-f", "capsule-residue"][..],
        &["docker", "volume", "rm", "capsule-residue"],
        &["docker", "network", "rm", "capsule-residue"],
        &["nft", "delete", "table", "inet", "capsule_residue"],
    ] {
        let _ = Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn changed(executor: &Executor, before: &HostState) -> Vec<HostStateCategory> {
    let after = executor.host_state().await.expect("host state");
    before.digest().differing(&after.digest())
}

#[tokio::test]
async fn one_residue_of_each_category_changes_exactly_that_category() {
    sweep();
    let base = tempfile::tempdir().expect("tempdir");
    let executor = Executor::connect(Runtime::Runc)
        .await
        .expect("the engine answers (scripts/dockerd-up.sh)")
        .with_scratch_base(base.path());
    let image = build_function_image(&elf::static_elf(elf::EXIT_3));
    executor
        .ensure_image(&image.id, Some(&image.tar))
        .await
        .expect("loads");
    let before = executor.host_state().await.expect("host state");
    assert_eq!(changed(&executor, &before).await, vec![], "a quiet host");

    // Containers: one created and never removed.
    sh(&[
        "docker",
        "create",
        "--name",
        "capsule-residue",
        &image.docker_id(),
    ]);
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::Containers]
    );
    sh(&["docker", "rm", "capsule-residue"]);

    sh(&["docker", "volume", "create", "capsule-residue"]);
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::Volumes]
    );
    sh(&["docker", "volume", "rm", "capsule-residue"]);

    // A network of loopback addresses: no address outside 127.0.0.0/8 appears on the host.
    sh(&[
        "docker",
        "network",
        "create",
        "--internal",
        "--subnet",
        "127.77.0.0/24",
        "capsule-residue",
    ]);
    // The engine adds its isolation rules for the network too.
    assert_eq!(
        changed(&executor, &before).await,
        [
            HostStateCategory::Networks,
            HostStateCategory::FirewallRules
        ]
    );
    sh(&["docker", "network", "rm", "capsule-residue"]);

    let point = tempfile::tempdir().expect("tempdir");
    let point_str = point.path().to_str().expect("utf-8 path");
    sh(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=64k",
        "capsule-residue",
        point_str,
    ]);
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::Mounts]
    );
    sh(&["umount", point_str]);

    std::fs::create_dir(base.path().join("run-left-behind")).expect("mkdir");
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::ScratchDirs]
    );
    std::fs::remove_dir(base.path().join("run-left-behind")).expect("rmdir");

    let other = build_function_image(&elf::static_elf(&[elf::EXIT_3, &[0x90]].concat()));
    executor
        .ensure_image(&other.id, Some(&other.tar))
        .await
        .expect("loads");
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::Images]
    );
    sh(&["docker", "image", "rm", &other.docker_id()]);

    sh(&["nft", "add", "table", "inet", "capsule_residue"]);
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::FirewallRules]
    );
    sh(&["nft", "delete", "table", "inet", "capsule_residue"]);

    // A process under a run uid, as one escaping its container would be.
    let mut left = Command::new("sleep")
        .arg("60")
        .uid(RUN_UIDS.end - 1)
        .gid(RUN_UIDS.end - 1)
        .spawn()
        .expect("sleep");
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::Processes]
    );
    left.kill().expect("kill");
    left.wait().expect("reaped");

    assert_eq!(changed(&executor, &before).await, vec![], "all cleaned up");
}
