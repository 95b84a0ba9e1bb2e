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

use capsule_format::SecretKey;
use common::{
    hex, read_events,
    tasks::{open, post_demo, post_hostile, DEMO_INTERSECTION},
    vm::{self, attested_after, Firmware},
    wait_for_event, Link,
};

const TASK_TIMEOUT: Duration = Duration::from_secs(240);

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
    let posted = std::time::Instant::now();
    post_demo(&inbox, session, &recipient);
    let (_, finished) = wait_for_event(&events, boot_events, "task_finished", TASK_TIMEOUT);
    eprintln!("demo task, engine start included: {:.1?}", posted.elapsed());
    assert_eq!(finished["outcome"], "Completed", "{finished}");
    assert_eq!(finished["exit_code"], 0, "{finished}");
    assert_eq!(finished["evidence_clean"], true, "{finished}");
    let sealed = std::fs::read(inbox.join("demo.out/intersection.capsule")).expect("output");
    assert_eq!(open(&sealed, &recipient), DEMO_INTERSECTION);

    // A hostile task: allowed the gateway's port 8080, it connects to port 9999.
    let skip = read_events(&events).len();
    post_hostile(&inbox, session, &recipient);
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
