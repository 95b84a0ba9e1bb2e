//! # Capsule root of trust
//!
//! What holds a device's keys and secrets, behind one trait, [`RootOfTrust`]: it names its
//! [`HardwareLevel`], exports its device public key, signs messages the way
//! [`capsule_primitives::keys`] fixes for each key kind, and seals data (the VRF and network
//! keys at rest) so only this device unseals it.
//!
//! Backends:
//! - [`software::SoftwareRootOfTrust`]: keys in files. **Insecure, for dev and local chains
//!   only**: it says so in its level ([`HardwareLevel::Software`]) and in a warning at every
//!   open.
//! - `zymbit::Zymbit` (feature `zymbit`): a Zymbit module through the vendor's C library
//!   `libzk_app_utils`, loaded at run time and written against its documented API. No module
//!   exists on the machines that build and test this project, so that backend compiles in CI
//!   but is **untested here**; its docs say what was checked.
//!
//! - `tpm::Tpm` (feature `tpm`): a TPM 2.0 through tss-esapi over Debian's tpm2-tss, tested
//!   against swtpm: EK certificate checked against a pinned CA list, an attestation key bound to
//!   the EK by make/activate-credential ([`credential`] makes credentials in software), quotes
//!   over a pinned PCR selection; `tpm::TpmRootOfTrust` is the trait on a TPM (a deterministic
//!   P-256 device key of the owner hierarchy, sealing under its storage primary).
//!
//! [`sealed_keys`] keeps the VRF and network keys' seeds on disk sealed by whichever backend.
//!
//! [`verify`] checks a device signature for any key kind: what a verifier on another gateway
//! runs on a countersignature. [`tpm_quote`] checks an HPC's TPM quote without a TPM.
use capsule_primitives::{DevicePublicKey, DeviceSignature, HardwareLevel};

pub mod credential;
pub mod event_log;
pub mod sealed_keys;
pub mod software;
#[cfg(feature = "tpm")]
pub mod swtpm;
#[cfg(feature = "tpm")]
pub mod tpm;
pub mod tpm_quote;
#[cfg(feature = "zymbit")]
pub mod zymbit;

/// What can go wrong with a root of trust.
#[derive(Debug, thiserror::Error)]
pub enum RootOfTrustError {
    #[error("cannot read or write the key files under {path}: {source}")]
    Files {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {0} is malformed: delete it to make a new key (the old one is lost)")]
    BadKeyFile(std::path::PathBuf),
    #[error("sealed data does not unseal here: it was sealed by another device or changed")]
    Unseal,
    #[error("the hardware module failed: {0}")]
    Module(String),
    #[error("the hardware module reports tampering: {0}")]
    Tampered(String),
}

/// A device's root of trust.
pub trait RootOfTrust: Send + Sync {
    /// How much of its trust can be proven.
    fn level(&self) -> HardwareLevel;
    /// The device public key, as registered on chain.
    fn device_public_key(&self) -> DevicePublicKey;
    /// Signs `message` as its key kind signs (see [`capsule_primitives::keys`]).
    fn sign(&self, message: &[u8]) -> Result<DeviceSignature, RootOfTrustError>;
    /// Seals `data` so only this device unseals it.
    fn seal(&self, data: &[u8]) -> Result<Vec<u8>, RootOfTrustError>;
    /// Unseals what [`RootOfTrust::seal`] sealed on this device.
    fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, RootOfTrustError>;
}

/// The compressed SEC1 form of the P-256 point `x ‖ y` (64 bytes), checked to be on the curve:
/// how TPMs and Zymbit modules hand out keys, and how the chain registers them.
pub fn p256_compressed(xy: &[u8]) -> Option<[u8; 33]> {
    if xy.len() != 64 {
        return None;
    }
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    sec1[1..].copy_from_slice(xy);
    let key = p256::PublicKey::from_sec1_bytes(&sec1).ok()?;
    p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, true)
        .as_bytes()
        .try_into()
        .ok()
}

/// Whether `signature` is `key`'s over `message`, by the key kind's convention: P-256 over
/// SHA-256(message) (`r ‖ s`), secp256k1 over BLAKE2b-256(message) (`r ‖ s ‖ v`, the
/// recovered key must be `key`), Ed25519 over the message.
pub fn verify(key: &DevicePublicKey, message: &[u8], signature: &DeviceSignature) -> bool {
    match (key, signature) {
        (DevicePublicKey::EcdsaP256(key), DeviceSignature::EcdsaP256(signature)) => {
            use p256::ecdsa::{signature::Verifier, Signature, VerifyingKey};
            let (Ok(key), Ok(signature)) = (
                VerifyingKey::from_sec1_bytes(key),
                Signature::from_slice(signature),
            ) else {
                return false;
            };
            key.verify(message, &signature).is_ok()
        }
        (DevicePublicKey::EcdsaSecp256k1(key), DeviceSignature::EcdsaSecp256k1(signature)) => {
            use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
            let digest = capsule_primitives::hashing::blake2_256(message);
            let (Ok(rs), Some(id)) = (
                Signature::from_slice(&signature[..64]),
                RecoveryId::from_byte(signature[64]),
            ) else {
                return false;
            };
            VerifyingKey::recover_from_prehash(&digest, &rs, id)
                .map(|recovered| recovered.to_encoded_point(true).as_bytes() == key.as_slice())
                .unwrap_or(false)
        }
        (DevicePublicKey::Ed25519(key), DeviceSignature::Ed25519(signature)) => {
            let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
                return false;
            };
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
                .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_and_secp256k1_signatures_verify_by_their_conventions() {
        use p256::ecdsa::{signature::Signer, SigningKey};
        let signing = SigningKey::from_slice(&[7u8; 32]).expect("scalar");
        let signature: p256::ecdsa::Signature = signing.sign(b"message");
        let mut key = [0u8; 33];
        key.copy_from_slice(signing.verifying_key().to_encoded_point(true).as_bytes());
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&signature.to_bytes());
        let (key, sig) = (
            DevicePublicKey::EcdsaP256(key),
            DeviceSignature::EcdsaP256(sig),
        );
        assert!(verify(&key, b"message", &sig));
        assert!(!verify(&key, b"massage", &sig));

        let signing = k256::ecdsa::SigningKey::from_slice(&[9u8; 32]).expect("scalar");
        let digest = capsule_primitives::hashing::blake2_256(b"message");
        let (rs, id) = signing.sign_prehash_recoverable(&digest).expect("signs");
        let mut sig = [0u8; 65];
        sig[..64].copy_from_slice(&rs.to_bytes());
        sig[64] = id.to_byte();
        let mut key = [0u8; 33];
        key.copy_from_slice(signing.verifying_key().to_encoded_point(true).as_bytes());
        let (key, sig) = (
            DevicePublicKey::EcdsaSecp256k1(key),
            DeviceSignature::EcdsaSecp256k1(sig),
        );
        assert!(verify(&key, b"message", &sig));
        assert!(!verify(&key, b"massage", &sig));
        assert!(!verify(
            &DevicePublicKey::Ed25519([1; 32]),
            b"message",
            &sig
        ));
    }
}
