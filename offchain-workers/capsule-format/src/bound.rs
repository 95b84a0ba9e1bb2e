//! The bound recipient stanza: an X25519 stanza whose wrapping key also derives from a task
//! or function digest: unwrapping takes the secret key and the digest.
//!
//! ```text
//! -> capsule-bound-X25519 <ephemeral share, base64>
//! <ChaCha20-Poly1305(key, zero nonce, file key), base64>
//! key = HKDF-SHA256(ikm = X25519(e, R), salt = E ‖ R, info = "capsule/v1/bound-X25519" ‖ digest)
//! ```
//!
//! The digest is not written anywhere in the capsule: the recipient learns it from the task
//! (the chain). This is the age X25519 stanza with the digest appended to the HKDF label.
//! Plain age tools do not know the tag and cannot open a bound-only capsule, by design.
//!
//! The digest is public (on chain): binding holds only against a key holder that runs code
//! deriving the digest from what it measured, as the attested agent does. Such a holder cannot
//! use a key released for one task under another. Any other key holder can compute any digest,
//! and whoever opened the capsule can seal the plaintext again, unbound. See
//! docs/capsule-format.md.
use std::collections::HashSet;

use age_core::{
    format::{FileKey, Stanza, FILE_KEY_BYTES},
    primitives::{aead_decrypt, aead_encrypt, hkdf},
    secrecy::ExposeSecret,
};
use base64::{prelude::BASE64_STANDARD_NO_PAD, Engine};
use rand::rngs::OsRng;
use x25519_dalek::{EphemeralSecret, PublicKey as DalekPublic};
use zeroize::Zeroize;

use crate::keys::{PublicKey, SecretKey};

/// The stanza tag of a bound recipient.
pub const BOUND_TAG: &str = "capsule-bound-X25519";
const BOUND_LABEL: &[u8] = b"capsule/v1/bound-X25519";
const WRAPPED_LEN: usize = FILE_KEY_BYTES + 16;

/// The digest a bound stanza is tied to: a task's or a function image's (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Binding(pub [u8; 32]);

fn wrapping_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
    binding: &Binding,
) -> [u8; 32] {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let mut info = BOUND_LABEL.to_vec();
    info.extend_from_slice(&binding.0);
    hkdf(&salt, &info, shared)
}

/// Wraps file keys to `key`, bound to `binding`.
pub(crate) struct BoundRecipient {
    pub key: PublicKey,
    pub binding: Binding,
}

impl age::Recipient for BoundRecipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let ephemeral = EphemeralSecret::random_from_rng(OsRng);
        let ephemeral_public = DalekPublic::from(&ephemeral).to_bytes();
        let shared = ephemeral.diffie_hellman(&DalekPublic::from(self.key.0));
        let stanza = bound_stanza(file_key, &self.key, &self.binding, ephemeral_public, shared)
            // A low-order recipient key: nothing secret would protect the file key.
            .ok_or(age::EncryptError::MissingRecipients)?;
        Ok((vec![stanza], HashSet::new()))
    }
}

/// The bound stanza for `file_key`, given the ephemeral share and the X25519 shared secret;
/// `None` for a non-contributory (low-order) shared secret.
fn bound_stanza(
    file_key: &FileKey,
    recipient: &PublicKey,
    binding: &Binding,
    ephemeral_public: [u8; 32],
    shared: x25519_dalek::SharedSecret,
) -> Option<Stanza> {
    if !shared.was_contributory() {
        return None;
    }
    let mut key = wrapping_key(shared.as_bytes(), &ephemeral_public, &recipient.0, binding);
    let body = aead_encrypt(&key, file_key.expose_secret());
    key.zeroize();
    Some(Stanza {
        tag: BOUND_TAG.into(),
        args: vec![BASE64_STANDARD_NO_PAD.encode(ephemeral_public)],
        body,
    })
}

/// Unwraps bound stanzas with `key` and `binding`.
pub(crate) struct BoundIdentity<'a> {
    pub key: &'a SecretKey,
    pub binding: Binding,
}

impl age::Identity for BoundIdentity<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != BOUND_TAG {
            return None;
        }
        let ephemeral: [u8; 32] = match &stanza.args[..] {
            [arg] => match BASE64_STANDARD_NO_PAD
                .decode(arg)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            {
                Some(ephemeral) => ephemeral,
                None => return Some(Err(age::DecryptError::InvalidHeader)),
            },
            _ => return Some(Err(age::DecryptError::InvalidHeader)),
        };
        if stanza.body.len() != WRAPPED_LEN {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        let shared = self
            .key
            .secret()
            .diffie_hellman(&DalekPublic::from(ephemeral));
        if !shared.was_contributory() {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        let mut key = wrapping_key(
            shared.as_bytes(),
            &ephemeral,
            &self.key.public().0,
            &self.binding,
        );
        let unwrapped = aead_decrypt(&key, FILE_KEY_BYTES, &stanza.body);
        key.zeroize();
        // Not this key, or not this binding: either way, not ours.
        let mut plain = unwrapped.ok()?;
        let file_key = FileKey::init_with_mut(|file_key| file_key.copy_from_slice(&plain));
        plain.zeroize();
        Some(Ok(file_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::Identity as _;
    use x25519_dalek::StaticSecret;

    /// The vector in docs/capsule-format.md: recipient secret 0x01…, ephemeral secret 0x02…,
    /// binding 0x03…, file key 0x04….
    #[test]
    fn golden_vector() {
        let recipient = SecretKey::from_bytes([1; 32]);
        let ephemeral = StaticSecret::from([2; 32]);
        let ephemeral_public = DalekPublic::from(&ephemeral).to_bytes();
        let shared = ephemeral.diffie_hellman(&DalekPublic::from(recipient.public().0));
        let file_key = FileKey::new(Box::new([4; 16]));
        let stanza = bound_stanza(
            &file_key,
            &recipient.public(),
            &Binding([3; 32]),
            ephemeral_public,
            shared,
        )
        .expect("contributory");
        assert_eq!(
            stanza.args,
            vec!["zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk".to_string()]
        );
        assert_eq!(
            BASE64_STANDARD_NO_PAD.encode(&stanza.body),
            "LqvDwA+8tvyAY8ApbbKeXAg2MQ6tJEGDKvYq4JVm2vY"
        );
        let opened = BoundIdentity {
            key: &recipient,
            binding: Binding([3; 32]),
        }
        .unwrap_stanza(&stanza)
        .expect("ours")
        .expect("unwraps");
        assert_eq!(opened.expose_secret(), &[4; 16]);
        let other = BoundIdentity {
            key: &recipient,
            binding: Binding([9; 32]),
        };
        assert!(
            other.unwrap_stanza(&stanza).is_none(),
            "another binding opens nothing"
        );
    }
}
