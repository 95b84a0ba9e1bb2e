//! The committed test vector of docs/capsule-format.md: `testdata/hello-bound.capsule`, sealed
//! to the key of secret 0x05… bound to the digest 0x07….
use capsule_format::{
    inspect, open, Binding, CapsuleError, Opener, Recipient, SecretKey, StanzaInfo,
};

const VECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/hello-bound.capsule");
const PLAINTEXT: &[u8] = b"hello, capsule\n";

fn key() -> SecretKey {
    SecretKey::from_bytes([5; 32])
}

fn open_with(binding: Option<Binding>) -> Result<Vec<u8>, CapsuleError> {
    let capsule = std::fs::read(VECTOR).expect("the vector is committed");
    let keys = [key()];
    let opener = Opener {
        keys: &keys,
        binding,
    };
    let mut out = Vec::new();
    open(&capsule[..], &mut out, &opener, &mut |_| {})?;
    Ok(out)
}

#[test]
fn the_committed_vector_opens_with_its_key_and_binding_only() {
    assert_eq!(open_with(Some(Binding([7; 32]))).unwrap(), PLAINTEXT);
    assert!(matches!(
        open_with(None),
        Err(CapsuleError::BindingRequired)
    ));
    assert!(matches!(
        open_with(Some(Binding([8; 32]))),
        Err(CapsuleError::NoMatchingIdentity)
    ));
    let capsule = std::fs::read(VECTOR).unwrap();
    let info = inspect(&capsule[..]).unwrap();
    assert!(matches!(info.recipients[0], StanzaInfo::BoundX25519 { .. }));
    assert_eq!(info.recipients.len(), 1, "the bound stanza only");
}

/// Rewrites the vector: `cargo test -p capsule-format --test vectors -- --ignored`.
#[test]
#[ignore]
fn write_the_vector() {
    let key = key();
    let mut capsule = Vec::new();
    capsule_format::seal(
        PLAINTEXT,
        &mut capsule,
        &[Recipient::bound(key.public(), Binding([7; 32]))],
        &mut |_| {},
    )
    .unwrap();
    std::fs::write(VECTOR, capsule).unwrap();
}
