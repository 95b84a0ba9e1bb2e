//! The keys a gateway registers on chain, and the proof of possession it signs for each.
//!
//! A gateway registers three keys (ARCHITECTURE, "Keys of a gateway"): the **device key** in its
//! root of trust (ECDSA P-256 in a Zymbit ZYMKEY4/HSM4 or a TPM 2.0, ECDSA secp256k1 or Ed25519
//! in an HSM6), its **VRF key** (sr25519) and its **network key** (the libp2p Ed25519 key behind
//! its peer id). For each it signs [`key_proof_message`]: a domain tag, the key's role, the
//! chain's genesis hash and the registering account, so a proof cannot be replayed on another
//! chain, for another account or for another role.
//!
//! How each kind signs the 85-byte message (what the runtime verifies):
//! - ECDSA P-256: over SHA-256(message), `r ‖ s` (64 bytes), as Zymbit and TPM 2.0 sign digests;
//! - ECDSA secp256k1: over BLAKE2b-256(message), `r ‖ s ‖ v` (65 bytes), as `sp_core::ecdsa`;
//! - Ed25519 (device or network key): over the message itself;
//! - sr25519 (VRF key): over the message, in schnorrkel's `substrate` signing context, as
//!   `sp_core::sr25519`.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// The domain tag that opens every key proof.
pub const KEY_PROOF_TAG: &[u8; 20] = b"capsule/key-proof/v1";

/// Length of [`key_proof_message`]: tag, role, genesis hash, account.
pub const KEY_PROOF_MESSAGE_LEN: usize = 20 + 1 + 32 + 32;

/// A gateway's device public key, held by its root of trust.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum DevicePublicKey {
    /// NIST P-256, compressed SEC1 (ZYMKEY4, HSM4, TPM 2.0).
    EcdsaP256([u8; 33]),
    /// secp256k1, compressed SEC1 (HSM6).
    EcdsaSecp256k1([u8; 33]),
    /// Ed25519 (HSM6; software keys on dev chains).
    Ed25519([u8; 32]),
}

/// A signature by a [`DevicePublicKey`], in the form its kind produces.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum DeviceSignature {
    /// `r ‖ s` over SHA-256 of the message.
    EcdsaP256([u8; 64]),
    /// `r ‖ s ‖ v` over BLAKE2b-256 of the message.
    EcdsaSecp256k1([u8; 65]),
    /// Over the message.
    Ed25519([u8; 64]),
}

impl DevicePublicKey {
    /// The key's bytes, for uniqueness checks across kinds.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::EcdsaP256(key) | Self::EcdsaSecp256k1(key) => key,
            Self::Ed25519(key) => key,
        }
    }

    /// Whether `signature` is of this key's kind (the runtime refuses mismatches before any
    /// cryptography).
    pub fn matches(&self, signature: &DeviceSignature) -> bool {
        matches!(
            (self, signature),
            (Self::EcdsaP256(_), DeviceSignature::EcdsaP256(_))
                | (Self::EcdsaSecp256k1(_), DeviceSignature::EcdsaSecp256k1(_))
                | (Self::Ed25519(_), DeviceSignature::Ed25519(_))
        )
    }
}

/// Which key a proof of possession is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum KeyRole {
    Device,
    Vrf,
    Network,
}

/// The message a key's holder signs to prove possession: `KEY_PROOF_TAG ‖ role ‖ genesis hash ‖
/// account`.
pub fn key_proof_message(
    role: KeyRole,
    genesis_hash: &[u8; 32],
    account: &[u8; 32],
) -> [u8; KEY_PROOF_MESSAGE_LEN] {
    let mut message = [0u8; KEY_PROOF_MESSAGE_LEN];
    message[..20].copy_from_slice(KEY_PROOF_TAG);
    message[20] = role as u8;
    message[21..53].copy_from_slice(genesis_hash);
    message[53..].copy_from_slice(account);
    message
}

/// The libp2p peer id of an Ed25519 network key: the identity multihash of the protobuf
/// `PublicKey { type: Ed25519, data }` (what `PeerId::from_public_key` returns as bytes).
pub fn peer_id_of_ed25519(network_key: &[u8; 32]) -> [u8; 38] {
    let mut peer_id = [0u8; 38];
    // identity multihash (0x00) of 36 bytes: field 1 varint Ed25519 (1), field 2 bytes (32).
    peer_id[..6].copy_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    peer_id[6..].copy_from_slice(network_key);
    peer_id
}

/// The keys an HPC's agent makes at every boot: the X25519 key data keys are re-wrapped to (its
/// Noise static key) and the Ed25519 key that signs result manifests. A pre-task round attests
/// them; its record keeps them.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct HpcSessionKeys {
    pub x25519: [u8; 32],
    pub ed25519: [u8; 32],
}

/// The Merkle root over the HPC's hardware fingerprint (DMI, CPU, disk serials, MACs), registered
/// with the gateway so a later mismatch shows a hardware change.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Default,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct FingerprintRoot(pub [u8; 32]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_message_is_pinned() {
        let message = key_proof_message(KeyRole::Vrf, &[0x11; 32], &[0x22; 32]);
        assert_eq!(&message[..20], b"capsule/key-proof/v1");
        assert_eq!(message[20], 1);
        assert_eq!(message[21..53], [0x11; 32]);
        assert_eq!(message[53..], [0x22; 32]);
        assert_ne!(
            key_proof_message(KeyRole::Device, &[0x11; 32], &[0x22; 32]),
            key_proof_message(KeyRole::Network, &[0x11; 32], &[0x22; 32])
        );
    }

    #[test]
    fn key_encodings_are_pinned() {
        assert_eq!(DevicePublicKey::EcdsaP256([2; 33]).encode()[0], 0);
        assert_eq!(DevicePublicKey::Ed25519([0; 32]).encode().len(), 33);
        assert_eq!(DevicePublicKey::max_encoded_len(), 34);
        assert_eq!(DeviceSignature::max_encoded_len(), 66);
        assert!(DevicePublicKey::Ed25519([0; 32]).matches(&DeviceSignature::Ed25519([0; 64])));
        assert!(!DevicePublicKey::EcdsaP256([2; 33]).matches(&DeviceSignature::Ed25519([0; 64])));
    }

    #[test]
    fn peer_ids_are_libp2p_ed25519_identity_multihashes() {
        // base58btc of an Ed25519 peer id always starts "12D3KooW".
        let peer_id = peer_id_of_ed25519(&[7; 32]);
        let text = bs58::encode(peer_id).into_string();
        assert!(text.starts_with("12D3KooW"), "{text}");
    }
}
