//! Interop with the reference `age` tool (Debian's `age` package, which `scripts/setup.sh`
//! installs): unbound capsules are age files both ways, keys are shared, and a re-wrapped
//! capsule still opens with `age`.
use std::{path::Path, process::Command};

use capsule_format::{open, rewrap, seal, split, Opener, Recipient, SecretKey};

fn age(args: &[&str]) -> Vec<u8> {
    let output = Command::new("age")
        .args(args)
        .output()
        .expect("the `age` tool runs (apt-get install age, or scripts/setup.sh)");
    assert!(
        output.status.success(),
        "age {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn data() -> Vec<u8> {
    // Over two STREAM chunks.
    (0..150_000u32).map(|i| (i % 253) as u8).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn age_opens_our_capsules_with_our_identity_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::generate();
    let mut capsule = Vec::new();
    seal(
        &data()[..],
        &mut capsule,
        &[Recipient::plain(key.public())],
        &mut |_| {},
    )
    .unwrap();
    let identity = write(dir.path(), "key.txt", key.to_identity_file().as_bytes());
    let file = write(dir.path(), "capsule.age", &capsule);
    assert_eq!(age(&["--decrypt", "--identity", &identity, &file]), data());
}

#[test]
fn we_open_what_age_seals_with_keys_from_age_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("keygen.txt");
    let status = Command::new("age-keygen")
        .args(["-o", key_path.to_str().unwrap()])
        .output()
        .expect("age-keygen runs");
    assert!(status.status.success());
    let keys = SecretKey::parse_identity_file(&std::fs::read_to_string(&key_path).unwrap())
        .expect("our parser reads age-keygen's file");
    let plain = write(dir.path(), "plain", &data());
    let recipient = keys[0].public().to_string();
    let capsule = age(&["--encrypt", "--recipient", &recipient, &plain]);
    let mut opened = Vec::new();
    open(&capsule[..], &mut opened, &Opener::new(&keys), &mut |_| {}).expect("we open it");
    assert_eq!(opened, data());
}

#[test]
fn a_rewrapped_capsule_opens_with_age_for_the_old_and_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let (owner, newcomer) = (SecretKey::generate(), SecretKey::generate());
    let plain = write(dir.path(), "plain", &data());
    // Sealed by age itself, re-wrapped by us.
    let capsule = age(&[
        "--encrypt",
        "--recipient",
        &owner.public().to_string(),
        &plain,
    ]);
    let mut rewrapped = Vec::new();
    rewrap(
        &capsule[..],
        &mut rewrapped,
        &Opener::new(std::slice::from_ref(&owner)),
        &[Recipient::plain(newcomer.public())],
    )
    .unwrap();
    assert_eq!(split(&rewrapped).unwrap().1, split(&capsule).unwrap().1);
    let file = write(dir.path(), "rewrapped.age", &rewrapped);
    for (name, key) in [("owner", &owner), ("newcomer", &newcomer)] {
        let identity = write(dir.path(), name, key.to_identity_file().as_bytes());
        assert_eq!(
            age(&["--decrypt", "--identity", &identity, &file]),
            data(),
            "{name}"
        );
    }
}
