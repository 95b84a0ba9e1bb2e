//! The `capsule` binary end to end: keygen, seal (plain and bound), inspect, open, rewrap,
//! put and get, with `--json` output and the errors users see.
use std::{path::Path, process::Command};

use serde_json::Value;

const DIGEST: &str = "0707070707070707070707070707070707070707070707070707070707070707";

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn capsule(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_capsule"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the capsule binary runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = capsule(dir, &all);
    assert!(run.ok, "capsule {args:?} failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("one JSON object")
}

fn keygen(dir: &Path, name: &str) -> String {
    let out = json(dir, &["keygen", "-o", name]);
    out["public_key"].as_str().unwrap().to_string()
}

#[test]
fn a_capsule_is_sealed_opened_rewrapped_stored_and_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(d.join("data"), &data).unwrap();
    let owner = keygen(d, "owner.key");
    let executor = keygen(d, "executor.key");

    let sealed = json(d, &["seal", "-r", &owner, "-o", "data.cap", "data"]);
    assert_eq!(sealed["plaintext_bytes"], 3_000_000);
    let info = json(d, &["inspect", "data.cap"]);
    assert_eq!(info["recipients"][0]["type"], "X25519");

    json(d, &["open", "-i", "owner.key", "-o", "out", "data.cap"]);
    assert_eq!(std::fs::read(d.join("out")).unwrap(), data);

    // The owner releases the key to the executor, bound to the task.
    json(
        d,
        &[
            "rewrap",
            "-i",
            "owner.key",
            "-r",
            &executor,
            "--bind-new",
            DIGEST,
            "-o",
            "released.cap",
            "data.cap",
        ],
    );
    let info = json(d, &["inspect", "released.cap"]);
    let types: Vec<&str> = info["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"bound-X25519") && types.contains(&"X25519"),
        "{types:?}"
    );
    json(
        d,
        &[
            "open",
            "-i",
            "executor.key",
            "--bind",
            DIGEST,
            "-o",
            "out2",
            "released.cap",
        ],
    );
    assert_eq!(std::fs::read(d.join("out2")).unwrap(), data);

    // Stored: the re-wrapped capsule keeps its name; both headers come back with their capsule.
    let put = json(d, &["put", "--store", "store", "data.cap"]);
    let cid = put["cid"].as_str().unwrap().to_string();
    assert!(cid.starts_with("bafybei"), "{cid}");
    let put_again = json(d, &["put", "--store", "store", "released.cap"]);
    assert_eq!(
        put_again["cid"], put["cid"],
        "re-wrapping never renames a capsule"
    );
    json(d, &["get", "--store", "store", "-o", "fetched.cap", &cid]);
    assert_eq!(
        std::fs::read(d.join("fetched.cap")).unwrap(),
        std::fs::read(d.join("released.cap")).unwrap(),
        "the latest header comes back with the payload"
    );
}

#[test]
fn errors_say_what_to_do_and_leave_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data"), b"secret").unwrap();
    let owner = keygen(d, "owner.key");
    keygen(d, "stranger.key");
    json(
        d,
        &[
            "seal",
            "-r",
            &owner,
            "--bind",
            DIGEST,
            "-o",
            "bound.cap",
            "data",
        ],
    );

    let run = capsule(d, &["open", "-i", "owner.key", "-o", "out", "bound.cap"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("pass the task or function digest"),
        "{}",
        run.stderr
    );
    let run = capsule(
        d,
        &[
            "open",
            "-i",
            "stranger.key",
            "--bind",
            DIGEST,
            "-o",
            "out",
            "bound.cap",
        ],
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("none of the given keys"),
        "{}",
        run.stderr
    );
    assert!(!d.join("out").exists(), "no plaintext after a failed open");

    // Outputs never clobber inputs, nor existing files without --force.
    let run = capsule(d, &["seal", "-r", &owner, "-o", "data", "data"]);
    assert!(run.stderr.contains("is the input itself"), "{}", run.stderr);
    assert_eq!(std::fs::read(d.join("data")).unwrap(), b"secret");
    let run = capsule(d, &["seal", "-r", &owner, "-o", "bound.cap", "data"]);
    assert!(run.stderr.contains("pass --force"), "{}", run.stderr);
    json(
        d,
        &["--force", "seal", "-r", &owner, "-o", "bound.cap", "data"],
    );
    // An older copy cannot undo a re-wrap in the store.
    let executor = keygen(d, "executor.key");
    json(
        d,
        &[
            "rewrap",
            "-i",
            "owner.key",
            "-r",
            &executor,
            "-o",
            "more.cap",
            "bound.cap",
        ],
    );
    json(d, &["put", "--store", "store", "more.cap"]);
    let run = capsule(d, &["put", "--store", "store", "bound.cap"]);
    assert!(
        run.stderr.contains("has recipients this one lacks"),
        "{}",
        run.stderr
    );

    let run = capsule(d, &["seal", "-r", "not-a-key", "-o", "x.cap", "data"]);
    assert!(
        run.stderr.contains("recipients look like age1"),
        "{}",
        run.stderr
    );
    let run = capsule(d, &["keygen", "-o", "owner.key"]);
    assert!(run.stderr.contains("never overwritten"), "{}", run.stderr);
    let run = capsule(d, &["get", "--store", "store", "-o", "y", "bafy-nonsense"]);
    assert!(run.stderr.contains("not a CIDv1"), "{}", run.stderr);
    let run = capsule(d, &["inspect", "data"]);
    assert!(run.stderr.contains("not a capsule"), "{}", run.stderr);
}
