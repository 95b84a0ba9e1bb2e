//! Property tests over the capsule parser, with fixed seeds so every run checks the same cases:
//! - 100,000 generated headers (valid ones, damaged ones, and byte soup behind the version
//!   line): parsing and inspecting never panic, and whatever parses re-serialises to the same
//!   bytes.
//! - 10,000 damaged copies of a real capsule: opening never panics, and succeeds only with the
//!   original plaintext.
use std::sync::OnceLock;

use age_core::format::{FileKey, Stanza};
use capsule_format::{header::Header, inspect, open, seal, Opener, Recipient, SecretKey};
use proptest::{
    prelude::*,
    test_runner::{Config, RngSeed},
};

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A header-like text: the version line, then stanza-ish lines and a MAC-ish line built from
/// the characters headers use, with some arbitrary bytes mixed in.
fn header_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"-> X25519 ".to_vec()),
        Just(b"-> capsule-bound-X25519 ".to_vec()),
        Just(b"-> ".to_vec()),
        Just(b"--- ".to_vec()),
        Just(b"---".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        "[A-Za-z0-9+/]{0,70}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(piece, 0..24),
    )
        .prop_map(|(versioned, pieces)| {
            let mut bytes = if versioned {
                b"age-encryption.org/v1\n".to_vec()
            } else {
                Vec::new()
            };
            bytes.extend(pieces.concat());
            bytes
        })
}

/// A valid header of random stanzas, maybe with one byte changed.
fn built_header() -> impl Strategy<Value = Vec<u8>> {
    let stanza = (
        prop_oneof![Just("X25519"), Just("capsule-bound-X25519"), Just("t-_.x")],
        prop::collection::vec("[A-Za-z0-9+/]{1,50}", 0..3),
        prop::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(tag, args, body)| Stanza {
            tag: tag.to_string(),
            args,
            body,
        });
    (
        prop::collection::vec(stanza, 1..6),
        any::<[u8; 16]>(),
        prop::option::of((any::<usize>(), any::<u8>())),
    )
        .prop_map(|(stanzas, key, edit)| {
            let mut bytes = Header::build(stanzas, &FileKey::new(Box::new(key)))
                .expect("a few small stanzas fit")
                .to_bytes();
            if let Some((position, value)) = edit {
                let position = position % bytes.len();
                bytes[position] = value;
            }
            bytes
        })
}

proptest! {
    #![proptest_config(config(100_000, 0x00ca_9501))]

    #[test]
    fn the_parser_never_panics_and_round_trips_what_it_accepts(
        bytes in prop_oneof![header_like(), built_header()]
    ) {
        if let Ok(header) = Header::parse(&bytes) {
            prop_assert_eq!(header.to_bytes(), bytes.clone());
        }
        let _ = inspect(&bytes[..]);
    }
}

struct Sealed {
    key: SecretKey,
    plaintext: Vec<u8>,
    capsule: Vec<u8>,
}

fn sealed() -> &'static Sealed {
    static SEALED: OnceLock<Sealed> = OnceLock::new();
    SEALED.get_or_init(|| {
        let key = SecretKey::from_bytes([5; 32]);
        let plaintext: Vec<u8> = (0..70_000u32).map(|i| (i % 241) as u8).collect();
        let mut capsule = Vec::new();
        seal(
            &plaintext[..],
            &mut capsule,
            &[Recipient::plain(key.public())],
            &mut |_| {},
        )
        .expect("seals");
        Sealed {
            key,
            plaintext,
            capsule,
        }
    })
}

/// Damage: byte edits at chosen positions, then maybe a cut.
fn damage() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        prop::option::weighted(0.2, any::<usize>()),
    )
}

proptest! {
    #![proptest_config(config(10_000, 0x00ca_9502))]

    #[test]
    fn opening_a_damaged_capsule_never_panics_nor_returns_other_plaintext((edits, cut) in damage()) {
        let sealed = sealed();
        let mut bytes = sealed.capsule.clone();
        // Edits favour the header, where the parser is.
        for (position, value) in edits {
            let position = if position % 2 == 0 { position % 300 } else { position } % bytes.len();
            bytes[position] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        let mut out = Vec::new();
        let keys = std::slice::from_ref(&sealed.key);
        if open(&bytes[..], &mut out, &Opener::new(keys), &mut |_| {}).is_ok() {
            prop_assert_eq!(&out, &sealed.plaintext);
            prop_assert_eq!(&bytes, &sealed.capsule);
        }
    }
}
