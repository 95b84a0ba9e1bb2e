//! Tasks over the agent channel, between the two real processes: `capsule-gateway attest` with a
//! task inbox in the gateway's namespace, `capsule-agent` in the HPC's (its task link's router;
//! the Docker engine runs the functions). The demo's two name lists go in as capsules sealed to
//! the agent's session key; the intersection comes back sealed to the recipient, under a
//! manifest the gateway checked. A hostile task that connects outside its allowlist ends with
//! PolicyViolation, and the HPC stays attested. A malformed task file is refused with a reason.
//! Attestation goes on throughout (reports accepted, no violation, no power-cycle).
//!
//! Needs root, network namespaces and the Docker engine (scripts/dockerd-up.sh).
use std::{ffi::OsStr, process::Command, time::Duration};

use capsule_format::{Opener, SecretKey};
use capsule_primitives::ResultManifest;
use codec::Decode;
use common::{tasks::*, *};

mod common;

const TASK_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn tasks_run_over_the_channel_while_the_hpc_stays_attested() {
    let setup = setup();
    let inbox = setup.path("inbox");
    std::fs::create_dir(&inbox).expect("inbox");
    // The HPC's namespace routes a networked task's link (the executor checks forwarding).
    let status = Command::new("ip")
        .args([
            "netns",
            "exec",
            &setup.link.hpc,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .expect("sysctl");
    assert!(status.success());
    let holder = capsule_functions::binary("pause").expect("pause");
    let _gateway = setup.gateway_with(300, &[OsStr::new("--task-inbox"), inbox.as_os_str()]);
    let _agent = setup.agent_args(PORT, &[OsStr::new("--holder-binary"), holder.as_os_str()]);
    setup.wait_for(0, "accepted", Duration::from_secs(30));
    let (session_x25519, _) = setup.agent_keys();
    let recipient = SecretKey::generate();

    // The demo: two name lists in, their intersection out, sealed to the recipient.
    post_demo(&inbox, session_x25519, &recipient);
    let finished = setup.wait_for(0, "task_finished", TASK_TIMEOUT);
    assert_eq!(finished["task"], 1, "{finished}");
    assert_eq!(finished["outcome"], "Completed", "{finished}");
    assert_eq!(finished["exit_code"], 0, "{finished}");
    assert_eq!(finished["evidence_clean"], true, "{finished}");
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(inbox.join("demo.result.json")).expect("result"))
            .expect("json");
    let sealed = std::fs::read(inbox.join("demo.out/intersection.capsule")).expect("output");
    assert_eq!(open(&sealed, &recipient), DEMO_INTERSECTION);
    // The manifest names the output by the CID of what came back.
    let manifest = ResultManifest::decode(
        &mut hex::decode(result["manifest"].as_str().expect("hex"))
            .expect("hex")
            .as_slice(),
    )
    .expect("manifest");
    let (_, payload) = capsule_format::split(&sealed).expect("capsule");
    assert_eq!(
        manifest.results.to_vec(),
        vec![capsule_store::payload_cid(payload)]
    );
    // The session key cannot open it: only the recipient can.
    assert!(capsule_format::open(
        sealed.as_slice(),
        &mut Vec::new(),
        &Opener::new(&[SecretKey::generate()]),
        &mut |_| {},
    )
    .is_err());

    // A hostile task: allowed one destination, it connects to another.
    let skip = setup.events().len();
    post_hostile(&inbox, session_x25519, &recipient);
    let finished = setup.wait_for(skip, "task_finished", TASK_TIMEOUT);
    assert_eq!(finished["task"], 2, "{finished}");
    assert_eq!(finished["outcome"], "PolicyViolation", "{finished}");
    assert_eq!(finished["evidence_clean"], true, "{finished}");

    // A malformed task file: refused, with why.
    let skip = setup.events().len();
    std::fs::write(inbox.join("broken.task.json"), b"{\"task\": 3}").expect("write");
    let refused = setup.wait_for(skip, "task_refused", Duration::from_secs(10));
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not a task file"),
        "{refused}"
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(inbox.join("broken.result.json")).expect("result"))
            .expect("json");
    assert!(result["error"].is_string(), "{result}");

    // The HPC stayed attested throughout: reports after the tasks, no violation, no cycle.
    let skip = setup.events().len();
    setup.wait_for(skip, "accepted", Duration::from_secs(10));
    assert!(
        setup.events().iter().all(|e| e["event"] != "violation"),
        "{:?}",
        setup.events()
    );
    assert_eq!(setup.power_cycles(), 0);
}
