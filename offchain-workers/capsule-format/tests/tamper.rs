//! A three-chunk capsule, damaged every way the issue lists: each must be a typed error, never a
//! panic, and `open_to_file` must leave nothing behind.
use std::path::Path;

use capsule_format::{
    open, open_to_file, release_to, rewrap, seal, split, Binding, CapsuleError, Opener, Recipient,
    SecretKey, MAX_HEADER_BYTES, MAX_RECIPIENTS,
};

/// age's STREAM chunk: 64 KiB of plaintext, 16 bytes of tag.
const CHUNK: usize = 64 * 1024;
const SEALED_CHUNK: usize = CHUNK + 16;
const NONCE: usize = 16;

fn plaintext() -> Vec<u8> {
    // Two full chunks and a partial third.
    (0..2 * CHUNK + 1234)
        .map(|i| (i * 31 % 251) as u8)
        .collect()
}

fn sealed(recipients: &[Recipient]) -> Vec<u8> {
    let mut out = Vec::new();
    seal(&plaintext()[..], &mut out, recipients, &mut |_| {}).expect("seals");
    out
}

fn open_bytes(capsule: &[u8], opener: &Opener<'_>) -> Result<Vec<u8>, CapsuleError> {
    let mut out = Vec::new();
    open(capsule, &mut out, opener, &mut |_| {})?;
    Ok(out)
}

/// Opens into a fresh directory and checks that an error leaves it empty.
fn open_in_dir(capsule: &[u8], opener: &Opener<'_>) -> Result<Vec<u8>, CapsuleError> {
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("plain");
    match open_to_file(capsule, &destination, opener, &mut |_| {}) {
        Ok(_) => Ok(std::fs::read(&destination).unwrap()),
        Err(error) => {
            assert_empty(dir.path());
            Err(error)
        }
    }
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(left.is_empty(), "a failed open left {left:?}");
}

struct Fixture {
    key: SecretKey,
    capsule: Vec<u8>,
    header_len: usize,
}

fn fixture() -> Fixture {
    let key = SecretKey::generate();
    let capsule = sealed(&[Recipient::plain(key.public())]);
    let header_len = split(&capsule).unwrap().0.len();
    assert_eq!(
        capsule.len(),
        header_len + NONCE + 2 * SEALED_CHUNK + 1234 + 16,
        "three chunks"
    );
    Fixture {
        key,
        capsule,
        header_len,
    }
}

impl Fixture {
    fn opener(&self) -> Opener<'_> {
        Opener::new(std::slice::from_ref(&self.key))
    }

    /// Payload chunk boundaries as file offsets: after the nonce, and after each sealed chunk.
    fn boundaries(&self) -> Vec<usize> {
        let start = self.header_len + NONCE;
        vec![
            self.header_len,
            start,
            start + SEALED_CHUNK,
            start + 2 * SEALED_CHUNK,
            self.capsule.len(),
        ]
    }
}

#[test]
fn a_capsule_opens_for_each_recipient_only() {
    let (a, b, stranger) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let capsule = sealed(&[Recipient::plain(a.public()), Recipient::plain(b.public())]);
    for key in [&a, &b] {
        let opened = open_in_dir(&capsule, &Opener::new(std::slice::from_ref(key))).unwrap();
        assert_eq!(opened, plaintext());
    }
    assert!(matches!(
        open_in_dir(&capsule, &Opener::new(std::slice::from_ref(&stranger))),
        Err(CapsuleError::NoMatchingIdentity)
    ));
}

#[test]
fn a_bound_capsule_needs_its_digest() {
    let key = SecretKey::generate();
    let binding = Binding([7; 32]);
    let capsule = sealed(&[Recipient::bound(key.public(), binding)]);
    let keys = std::slice::from_ref(&key);
    assert_eq!(
        open_in_dir(&capsule, &Opener::new(keys).with_binding(binding)).unwrap(),
        plaintext()
    );
    assert!(matches!(
        open_in_dir(&capsule, &Opener::new(keys)),
        Err(CapsuleError::BindingRequired)
    ));
    assert!(matches!(
        open_in_dir(&capsule, &Opener::new(keys).with_binding(Binding([8; 32]))),
        Err(CapsuleError::NoMatchingIdentity)
    ));
}

#[test]
fn every_flipped_header_byte_is_an_error() {
    let f = fixture();
    for i in 0..f.header_len {
        let mut damaged = f.capsule.clone();
        damaged[i] ^= 0x01;
        let result = open_in_dir(&damaged, &f.opener());
        assert!(
            result.is_err(),
            "byte {i} of the header flipped and it opened"
        );
    }
}

#[test]
fn flips_around_every_chunk_boundary_and_at_random_are_errors() {
    let f = fixture();
    let mut positions: Vec<usize> = f
        .boundaries()
        .into_iter()
        .skip(1)
        .flat_map(|b| b.saturating_sub(24)..(b + 24).min(f.capsule.len()))
        .filter(|i| *i >= f.header_len) // header bytes have their own test
        .collect();
    // Random bytes elsewhere, from a fixed seed (xorshift).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        positions.push(f.header_len + (state as usize) % (f.capsule.len() - f.header_len));
    }
    for i in positions {
        let mut damaged = f.capsule.clone();
        damaged[i] ^= 0x80;
        match open_in_dir(&damaged, &f.opener()) {
            Err(CapsuleError::CorruptPayload) => {}
            other => panic!("payload byte {i} flipped: {other:?}"),
        }
    }
}

#[test]
fn truncation_at_every_chunk_boundary_is_an_error() {
    let f = fixture();
    let boundaries = f.boundaries();
    let mut cuts: Vec<usize> = boundaries[..boundaries.len() - 1].to_vec();
    cuts.extend([
        0,
        10,
        f.header_len - 1,
        f.header_len + 8,
        f.capsule.len() - 1,
    ]);
    for cut in cuts {
        let result = open_in_dir(&f.capsule[..cut], &f.opener());
        assert!(
            matches!(
                result,
                Err(CapsuleError::TruncatedPayload
                    | CapsuleError::TruncatedHeader
                    | CapsuleError::CorruptPayload)
            ),
            "cut at {cut}: {result:?}"
        );
    }
    // A cut exactly after a full chunk is the dangerous one: it must not look finished.
    for cut in [boundaries[2], boundaries[3]] {
        assert!(matches!(
            open_in_dir(&f.capsule[..cut], &f.opener()),
            Err(CapsuleError::TruncatedPayload)
        ));
    }
}

#[test]
fn reordered_chunks_are_an_error() {
    let f = fixture();
    let start = f.header_len + NONCE;
    let mut swapped = f.capsule.clone();
    let (first, second) = swapped[start..start + 2 * SEALED_CHUNK].split_at_mut(SEALED_CHUNK);
    first.swap_with_slice(second);
    assert!(matches!(
        open_in_dir(&swapped, &f.opener()),
        Err(CapsuleError::CorruptPayload)
    ));
}

#[test]
fn wrong_versions_and_oversized_headers_are_typed_errors() {
    let f = fixture();
    let mut v2 = f.capsule.clone();
    v2[20] = b'2';
    assert!(matches!(
        open_in_dir(&v2, &f.opener()),
        Err(CapsuleError::UnknownVersion(v)) if v == "v2"
    ));
    assert!(matches!(
        open_in_dir(&plaintext(), &f.opener()),
        Err(CapsuleError::NotACapsule)
    ));

    // A header past the size limit: one stanza with a huge body.
    let mut huge = b"age-encryption.org/v1\n-> X25519 AAAA\n".to_vec();
    while huge.len() <= MAX_HEADER_BYTES {
        huge.extend_from_slice(&[b'A'; 64]);
        huge.push(b'\n');
    }
    huge.extend_from_slice(b"\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    assert!(matches!(
        open_in_dir(&huge, &f.opener()),
        Err(CapsuleError::HeaderTooLarge { .. })
    ));

    // One stanza too many, each small.
    let mut many = b"age-encryption.org/v1\n".to_vec();
    for _ in 0..=MAX_RECIPIENTS {
        many.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
    }
    many.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    assert!(matches!(
        open_in_dir(&many, &f.opener()),
        Err(CapsuleError::TooManyRecipients { .. })
    ));
    let too_many: Vec<Recipient> = (0..=MAX_RECIPIENTS)
        .map(|_| Recipient::plain(SecretKey::generate().public()))
        .collect();
    assert!(matches!(
        seal(&b"x"[..], Vec::new(), &too_many, &mut |_| {}),
        Err(CapsuleError::TooManyRecipients { .. })
    ));
}

#[test]
fn rewrapping_keeps_the_payload_and_adds_a_recipient() {
    let f = fixture();
    let executor = SecretKey::generate();
    let binding = Binding([9; 32]);
    let mut rewrapped = Vec::new();
    rewrap(
        &f.capsule[..],
        &mut rewrapped,
        &f.opener(),
        &[Recipient::bound(executor.public(), binding)],
    )
    .expect("the owner re-wraps");
    let (_, old_payload) = split(&f.capsule).unwrap();
    let (new_header, new_payload) = split(&rewrapped).unwrap();
    assert_eq!(
        new_payload, old_payload,
        "the payload is byte for byte the same"
    );
    assert!(new_header.len() > f.header_len);
    assert_eq!(open_bytes(&rewrapped, &f.opener()).unwrap(), plaintext());
    let executor_keys = std::slice::from_ref(&executor);
    assert_eq!(
        open_bytes(
            &rewrapped,
            &Opener::new(executor_keys).with_binding(binding)
        )
        .unwrap(),
        plaintext()
    );
    assert!(matches!(
        open_bytes(&rewrapped, &Opener::new(executor_keys)),
        Err(CapsuleError::NoMatchingIdentity)
    ));

    // Key release: the same, header only, as the owner's gateway does it.
    let (old_header, payload) = split(&f.capsule).unwrap();
    let mut released =
        release_to(old_header, &f.opener(), executor.public(), Some(binding)).expect("released");
    released.extend_from_slice(payload);
    assert_eq!(
        open_bytes(&released, &Opener::new(executor_keys).with_binding(binding)).unwrap(),
        plaintext()
    );

    // Nobody re-wraps without a key, and a tampered header is never re-signed.
    assert!(matches!(
        rewrap(&f.capsule[..], Vec::new(), &Opener::new(executor_keys), &[]),
        Err(CapsuleError::NoMatchingIdentity)
    ));
    let mut tampered = f.capsule.clone();
    tampered[f.header_len - 3] ^= 0x01;
    assert!(rewrap(&tampered[..], Vec::new(), &f.opener(), &[]).is_err());
}

#[test]
fn an_empty_plaintext_seals_and_opens() {
    let key = SecretKey::generate();
    let mut capsule = Vec::new();
    seal(
        &b""[..],
        &mut capsule,
        &[Recipient::plain(key.public())],
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        open_in_dir(&capsule, &Opener::new(std::slice::from_ref(&key))).unwrap(),
        b""
    );
}
