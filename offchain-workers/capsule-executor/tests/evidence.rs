//! The cleanup evidence can fail: one deliberate residue of each category changes that
//! category's digest, and only that one.
use std::{
    os::unix::process::CommandExt,
    process::{Command, Stdio},
};

use capsule_executor::{
    egress::{self, EgressNetwork},
    host_state::HostState,
    seccomp::RUN_UIDS,
    Executor, Runtime,
};
use capsule_image::{build_function_image, elf};
use capsule_primitives::{evidence::HostStateCategory, measurement::ImageDigest};

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
        &["ip", "link", "del", "capsule-residue"],
    ] {
        let _ = Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The tests here digest the whole host, so they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn changed(executor: &Executor, before: &HostState) -> Vec<HostStateCategory> {
    let after = executor.host_state().await.expect("host state");
    before.digest().differing(&after.digest())
}

#[tokio::test]
async fn one_residue_of_each_category_changes_exactly_that_category() {
    let _turn = ONE_AT_A_TIME.lock().await;
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

    // A link left behind (no address: only its name shows).
    sh(&["ip", "link", "add", "capsule-residue", "type", "bridge"]);
    assert_eq!(
        changed(&executor, &before).await,
        [HostStateCategory::Networks]
    );
    sh(&["ip", "link", "del", "capsule-residue"]);

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

/// With tasks wired to a router namespace, a task link or scope left there shows too.
#[tokio::test]
async fn a_task_link_or_scope_left_in_the_router_namespace_changes_the_evidence() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let router = format!("cev{}r", std::process::id());
    sh(&["ip", "netns", "add", &router]);
    let executor = Executor::connect(Runtime::Runc)
        .await
        .expect("the engine answers (scripts/dockerd-up.sh)")
        .with_egress(EgressNetwork {
            router_netns: Some(router.clone()),
            ..EgressNetwork::new(ImageDigest([0; 32]))
        });
    let before = executor.host_state().await.expect("host state");

    sh(&[
        "ip",
        "-n",
        &router,
        "link",
        "add",
        egress::BRIDGE,
        "type",
        "bridge",
    ]);
    let networks = changed(&executor, &before).await;
    sh(&["ip", "-n", &router, "link", "del", egress::BRIDGE]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &router,
        "nft",
        "add",
        "table",
        "inet",
        "capsule_task",
    ]);
    let rules = changed(&executor, &before).await;
    sh(&[
        "ip",
        "netns",
        "exec",
        &router,
        "nft",
        "delete",
        "table",
        "inet",
        "capsule_task",
    ]);
    let cleaned = changed(&executor, &before).await;
    sh(&["ip", "netns", "del", &router]);

    assert_eq!(networks, [HostStateCategory::Networks]);
    assert_eq!(rules, [HostStateCategory::FirewallRules]);
    assert_eq!(cleaned, vec![], "all cleaned up");
}
