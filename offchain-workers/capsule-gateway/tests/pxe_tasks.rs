//! Tasks on a PXE-booted HPC: the QEMU machine (TCG) boots the image from its gateway and
//! attests; the gateway then relays tasks from its inbox over the agent channel. The image's
//! container engine starts on the first task, from RAM. The demo's two name lists, sealed to
//! the session key the agent announced, come back as their intersection sealed to the
//! recipient; a hostile task that connects outside its allowlist ends with PolicyViolation,
//! and the HPC stays up and attested (no violation, no power-cycle after the boot's own).
//!
//! Needs root, qemu-system-x86, ipxe, dnsmasq and the built image.
mod common;

use std::{path::Path, time::Duration};

use capsule_format::{Opener, PublicKey, Recipient, SecretKey};
use capsule_image::build_function_image;
use common::{
    hex, read_events,
    vm::{self, attested_after, Firmware},
    wait_for_event, Link,
};
use serde_json::json;

const TASK_TIMEOUT: Duration = Duration::from_secs(240);

fn seal(plain: &[u8], to: [u8; 32]) -> Vec<u8> {
    let mut capsule = Vec::new();
    capsule_format::seal(
        plain,
        &mut capsule,
        &[Recipient::plain(PublicKey(to))],
        &mut |_| {},
    )
    .expect("seals");
    capsule
}

/// The session X25519 key the agent announced on the console (its first stdout line).
fn session_key(console: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(console).expect("console");
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.find("{\"x25519\":").map(|at| &l[at..]))
        .expect("the agent announced its keys");
    let keys: serde_json::Value = serde_json::from_str(line.trim()).expect("keys");
    capsule_channel::key_from_hex(keys["x25519"].as_str().expect("hex")).expect("key")
}

fn post(inbox: &Path, name: &str, task: serde_json::Value) {
    let partial = inbox.join(format!("{name}.partial"));
    std::fs::write(&partial, serde_json::to_vec(&task).expect("json")).expect("write");
    std::fs::rename(partial, inbox.join(format!("{name}.task.json"))).expect("rename");
}

fn function(inbox: &Path, name: &str) -> String {
    let binary = capsule_functions::binary(name).expect("function binaries build");
    let image = build_function_image(&std::fs::read(binary).expect("binary"));
    std::fs::write(inbox.join(format!("{name}.tar")), &image.tar).expect("archive");
    hex(&image.id.0)
}

fn policy(egress: serde_json::Value) -> serde_json::Value {
    json!({
        "memory_bytes": 64 << 20, "cpu_millis": 1000, "pids": 32,
        "tmpfs_bytes": 1 << 20, "output_bytes": 1 << 20, "timeout_secs": 60,
        "egress": egress,
    })
}

#[test]
fn a_pxe_booted_hpc_runs_the_demo_and_contains_a_hostile_task() {
    let build = vm::built_image();
    let link = Link::new();
    vm::bridge(&link);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let events = dir.join("events.jsonl");
    let inbox = dir.join("inbox");
    std::fs::create_dir(&inbox).expect("inbox");
    let (private, _) = capsule_channel::generate_static_key().expect("key");
    std::fs::write(dir.join("noise.key"), hex(&private)).expect("key");
    vm::disk(dir);
    let _machine = vm::machine(&link, dir, "HPC-SN-0001", &Firmware::Bios);
    let inbox_flag = [std::ffi::OsStr::new("--task-inbox"), inbox.as_os_str()];
    let _gateway = vm::gateway(
        &link,
        dir,
        &dir.join("qmp.sock"),
        &build.image,
        &[hex(&build.golden.0)],
        &inbox_flag,
    );
    let (booted, _) = attested_after(&events, 0);
    eprintln!("power-on to attested {booted:.1?}");
    let session = session_key(&dir.join("console-HPC-SN-0001.log"));
    let recipient = SecretKey::generate();
    let boot_events = read_events(&events).len();

    // The demo (the engine starts for it).
    let demo = function(&inbox, "intersect");
    std::fs::write(
        inbox.join("b.capsule"),
        seal(b"Alan\nBarbara\nEdsger\nGrace\n", session),
    )
    .expect("b");
    std::fs::write(
        inbox.join("c.capsule"),
        seal(b"Grace\nAlan\nBarbara\nKen\n", session),
    )
    .expect("c");
    let posted = std::time::Instant::now();
    post(
        &inbox,
        "demo",
        json!({
            "task": 1, "image": demo, "archive": "intersect.tar",
            "inputs": [{"name": "b.list", "capsule": "b.capsule"},
                       {"name": "c.list", "capsule": "c.capsule"}],
            "recipients": [hex(&recipient.public().0)],
            "policy": policy(json!([])),
        }),
    );
    let (_, finished) = wait_for_event(&events, boot_events, "task_finished", TASK_TIMEOUT);
    eprintln!("demo task, engine start included: {:.1?}", posted.elapsed());
    assert_eq!(finished["outcome"], "Completed", "{finished}");
    assert_eq!(finished["exit_code"], 0, "{finished}");
    assert_eq!(finished["evidence_clean"], true, "{finished}");
    let sealed = std::fs::read(inbox.join("demo.out/intersection.capsule")).expect("output");
    let mut opened = Vec::new();
    capsule_format::open(
        sealed.as_slice(),
        &mut opened,
        &Opener::new(std::slice::from_ref(&recipient)),
        &mut |_| {},
    )
    .expect("the recipient opens it");
    assert_eq!(opened, b"Alan\nBarbara\nGrace\n");

    // A hostile task: allowed the gateway's port 8080, it connects to port 9999.
    let skip = read_events(&events).len();
    let hostile = function(&inbox, "hostile");
    std::fs::write(
        inbox.join("behaviour.capsule"),
        seal(b"connect-tcp 10.79.0.1:9999\n", session),
    )
    .expect("behaviour");
    post(
        &inbox,
        "hostile",
        json!({
            "task": 2, "image": hostile, "archive": "hostile.tar",
            "inputs": [{"name": "behaviour", "capsule": "behaviour.capsule"}],
            "recipients": [hex(&recipient.public().0)],
            "policy": policy(json!([{"address": "10.79.0.1", "port": 8080, "protocol": "tcp"}])),
        }),
    );
    let (at, finished) = wait_for_event(&events, skip, "task_finished", TASK_TIMEOUT);
    assert_eq!(finished["outcome"], "PolicyViolation", "{finished}");
    assert_eq!(finished["evidence_clean"], true, "{finished}");

    // The HPC stays up and attested.
    wait_for_event(&events, at, "accepted", Duration::from_secs(30));
    let after = &read_events(&events)[boot_events..];
    assert!(
        after
            .iter()
            .all(|e| e["event"] != "violation" && e["event"] != "power"),
        "{after:?}"
    );
}
