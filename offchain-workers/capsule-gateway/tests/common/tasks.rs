//! The task tests' inbox: function images, capsules sealed to the agent's session key, task
//! files posted as a producer should (written beside, then renamed in).
use std::path::Path;

use capsule_format::{Opener, PublicKey, Recipient, SecretKey};
use capsule_image::build_function_image;
use serde_json::{json, Value};

use super::hex;

/// `plain` sealed to X25519 key `to`.
pub fn seal(plain: &[u8], to: [u8; 32]) -> Vec<u8> {
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

/// What `recipient` reads in `sealed`.
pub fn open(sealed: &[u8], recipient: &SecretKey) -> Vec<u8> {
    let mut opened = Vec::new();
    capsule_format::open(
        sealed,
        &mut opened,
        &Opener::new(std::slice::from_ref(recipient)),
        &mut |_| {},
    )
    .expect("the recipient opens it");
    opened
}

/// A small function's policy with `egress` (a JSON list).
pub fn policy(egress: Value) -> Value {
    json!({
        "memory_bytes": 64 << 20, "cpu_millis": 1000, "pids": 32,
        "tmpfs_bytes": 1 << 20, "output_bytes": 1 << 20, "timeout_secs": 60,
        "egress": egress,
    })
}

/// Writes the function image `name` into the inbox as `name.tar`; returns its id.
pub fn function_image(inbox: &Path, name: &str) -> String {
    let binary = capsule_functions::binary(name).expect("function binaries build");
    let image = build_function_image(&std::fs::read(binary).expect("binary"));
    std::fs::write(inbox.join(format!("{name}.tar")), &image.tar).expect("archive");
    hex(&image.id.0)
}

/// Posts `task` as `name.task.json`.
pub fn post(inbox: &Path, name: &str, task: &Value) {
    let partial = inbox.join(format!("{name}.partial"));
    std::fs::write(&partial, serde_json::to_vec(task).expect("json")).expect("write");
    std::fs::rename(partial, inbox.join(format!("{name}.task.json"))).expect("rename");
}

/// Posts the demo as task 1: two name lists sealed to `session`, the intersection to
/// `recipient`.
pub fn post_demo(inbox: &Path, session: [u8; 32], recipient: &SecretKey) {
    let image = function_image(inbox, "intersect");
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
    post(
        inbox,
        "demo",
        &json!({
            "task": 1, "image": image, "archive": "intersect.tar",
            "inputs": [{"name": "b.list", "capsule": "b.capsule"},
                       {"name": "c.list", "capsule": "c.capsule"}],
            "recipients": [hex(&recipient.public().0)],
            "policy": policy(json!([])),
        }),
    );
}

/// The demo's answer.
pub const DEMO_INTERSECTION: &[u8] = b"Alan\nBarbara\nGrace\n";

/// Posts a hostile task as task 2: allowed TCP to 10.79.0.1:8080, it connects to port 9999.
pub fn post_hostile(inbox: &Path, session: [u8; 32], recipient: &SecretKey) {
    let image = function_image(inbox, "hostile");
    std::fs::write(
        inbox.join("behaviour.capsule"),
        seal(b"connect-tcp 10.79.0.1:9999\n", session),
    )
    .expect("behaviour");
    post(
        inbox,
        "hostile",
        &json!({
            "task": 2, "image": image, "archive": "hostile.tar",
            "inputs": [{"name": "behaviour", "capsule": "behaviour.capsule"}],
            "recipients": [hex(&recipient.public().0)],
            "policy": policy(json!([{"address": "10.79.0.1", "port": 8080, "protocol": "tcp"}])),
        }),
    );
}
