//! Capsule keys: X25519 key pairs in age's encodings (`AGE-SECRET-KEY-1…` secret keys in
//! identity files as `age-keygen` writes them, `age1…` public keys), so the `age` tool and ours
//! share keys.
use std::{fmt, str::FromStr};

use age_core::primitives::{bech32_decode, bech32_encode};
use rand::rngs::OsRng;
use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::CapsuleError;

const SECRET_HRP: &str = "age-secret-key-";
const PUBLIC_HRP: &str = "age";

/// An X25519 secret key: opens capsules sealed to its public key, and re-wraps them.
#[derive(Clone)]
pub struct SecretKey(StaticSecret);

impl SecretKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self(StaticSecret::random_from_rng(OsRng))
    }

    /// The key with these 32 secret bytes (clamped by X25519 when used).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// The public key capsules are sealed to.
    pub fn public(&self) -> PublicKey {
        PublicKey(DalekPublic::from(&self.0).to_bytes())
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.0
    }

    /// `AGE-SECRET-KEY-1…`, as in an age identity file.
    pub fn to_age_string(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.0.to_bytes());
        let hrp = bech32::Hrp::parse_unchecked(SECRET_HRP);
        let lower = Zeroizing::new(bech32_encode(hrp, bytes.as_ref()));
        Zeroizing::new(lower.to_uppercase())
    }

    /// The identity file `age-keygen` would write for this key.
    pub fn to_identity_file(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# public key: {}\n{}\n",
            self.public(),
            self.to_age_string().as_str()
        ))
    }

    /// Every key of an identity file (lines that are neither empty nor `#` comments).
    pub fn parse_identity_file(text: &str) -> Result<Vec<Self>, CapsuleError> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::parse)
            .collect::<Result<Vec<Self>, _>>()?;
        if keys.is_empty() {
            return Err(CapsuleError::InvalidKey(
                "the identity file holds no AGE-SECRET-KEY-1… line",
            ));
        }
        Ok(keys)
    }

    /// This key as the `age` crate's identity, for plain X25519 stanzas.
    pub(crate) fn age_identity(&self) -> age::x25519::Identity {
        self.to_age_string()
            .parse()
            .expect("our own encoding of a 32-byte key parses")
    }
}

impl FromStr for SecretKey {
    type Err = CapsuleError;

    fn from_str(text: &str) -> Result<Self, CapsuleError> {
        let bytes: Zeroizing<[u8; 32]> =
            decode(text, SECRET_HRP, "an AGE-SECRET-KEY-1… secret key")?;
        Ok(Self(StaticSecret::from(*bytes)))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_tuple("SecretKey").field(&self.public()).finish()
    }
}

/// An X25519 public key: a capsule recipient (`age1…`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Refuses a low-order point: any secret's shared secret with it is predictable (all
    /// zero), so nothing sealed to it would be secret. Checked on parsing and before sealing.
    pub fn check(&self) -> Result<(), CapsuleError> {
        let probe = StaticSecret::from([0x55; 32]);
        if probe
            .diffie_hellman(&DalekPublic::from(self.0))
            .was_contributory()
        {
            Ok(())
        } else {
            Err(CapsuleError::InvalidKey(
                "a public key that is not a low-order point",
            ))
        }
    }

    /// This key as the `age` crate's recipient, for plain X25519 stanzas.
    pub(crate) fn age_recipient(&self) -> age::x25519::Recipient {
        self.to_string()
            .parse()
            .expect("our own encoding of a 32-byte key parses")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = bech32::Hrp::parse_unchecked(PUBLIC_HRP);
        f.write_str(&bech32_encode(hrp, &self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = CapsuleError;

    fn from_str(text: &str) -> Result<Self, CapsuleError> {
        let bytes: Zeroizing<[u8; 32]> = decode(text, PUBLIC_HRP, "an age1… public key")?;
        let key = Self(*bytes);
        key.check()?;
        Ok(key)
    }
}

/// Decodes 32 bytes from Bech32 text with the human-readable part `hrp` (any case).
fn decode(
    text: &str,
    hrp: &'static str,
    what: &'static str,
) -> Result<Zeroizing<[u8; 32]>, CapsuleError> {
    let invalid = || CapsuleError::InvalidKey(what);
    bech32_decode(
        text.trim(),
        |_| invalid(),
        |found| {
            (found.to_lowercase() == hrp)
                .then_some(())
                .ok_or_else(invalid)
        },
        |_, bytes| {
            let bytes = Zeroizing::new(bytes.collect::<Vec<u8>>());
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(Zeroizing::new)
                .map_err(|_| invalid())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_age_encodings() {
        let key = SecretKey::generate();
        let text = key.to_age_string();
        assert!(text.starts_with("AGE-SECRET-KEY-1"));
        let parsed: SecretKey = text.parse().unwrap();
        assert_eq!(parsed.public(), key.public());
        let public = key.public().to_string();
        assert!(public.starts_with("age1"));
        assert_eq!(public.parse::<PublicKey>().unwrap(), key.public());
        // The age crate reads our encodings as its own.
        assert_eq!(key.age_identity().to_public().to_string(), public);
    }

    #[test]
    fn identity_files_hold_one_key_per_line_with_comments() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        let file = format!(
            "{}\n# another\n\n{}",
            a.to_identity_file().as_str(),
            b.to_age_string().as_str()
        );
        let keys = SecretKey::parse_identity_file(&file).unwrap();
        assert_eq!(
            keys.iter().map(SecretKey::public).collect::<Vec<_>>(),
            vec![a.public(), b.public()]
        );
        assert!(matches!(
            SecretKey::parse_identity_file("# nothing\n"),
            Err(CapsuleError::InvalidKey(_))
        ));
    }

    #[test]
    fn a_key_of_the_other_kind_or_a_garbled_key_is_refused() {
        let key = SecretKey::generate();
        assert!(key.public().to_string().parse::<SecretKey>().is_err());
        assert!(key.to_age_string().parse::<PublicKey>().is_err());
        let mut garbled = key.public().to_string();
        garbled.replace_range(10..11, if &garbled[10..11] == "q" { "p" } else { "q" });
        assert!(garbled.parse::<PublicKey>().is_err());
    }

    #[test]
    fn low_order_public_keys_are_refused() {
        // The all-zero point and the order-8 point (u = 1) make every shared secret zero.
        for point in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            let key = PublicKey(point);
            assert!(matches!(key.check(), Err(CapsuleError::InvalidKey(_))));
            assert!(key.to_string().parse::<PublicKey>().is_err());
        }
        assert!(SecretKey::generate().public().check().is_ok());
    }
}
