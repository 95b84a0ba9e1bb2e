//! Verifies the proofs of possession a gateway signs for its keys
//! (`capsule_primitives::keys`). secp256k1, Ed25519 and sr25519 use the host's functions; P-256
//! has none, so it runs as wasm (the `p256` crate) and is benchmarked as the dearest case.
use capsule_primitives::{
    hashing::{blake2_256, sha256},
    keys::{key_proof_message, DevicePublicKey, DeviceSignature, KeyRole},
};
use sp_core::{ed25519, sr25519};

/// Whether `signature` by `key` proves possession of the device key for `account` on the chain
/// whose genesis hash is `genesis`.
pub fn device_proof_is_valid(
    key: &DevicePublicKey,
    signature: &DeviceSignature,
    genesis: &[u8; 32],
    account: &[u8; 32],
) -> bool {
    let message = key_proof_message(KeyRole::Device, genesis, account);
    match (key, signature) {
        (DevicePublicKey::EcdsaP256(key), DeviceSignature::EcdsaP256(signature)) => {
            p256_verify(key, signature, &message)
        }
        (DevicePublicKey::EcdsaSecp256k1(key), DeviceSignature::EcdsaSecp256k1(signature)) => {
            sp_io::crypto::secp256k1_ecdsa_recover_compressed(signature, &blake2_256(&message))
                .is_ok_and(|recovered| recovered == *key)
        }
        (DevicePublicKey::Ed25519(key), DeviceSignature::Ed25519(signature)) => {
            ed25519_verify(key, signature, &message)
        }
        _ => false,
    }
}

/// Whether `signature` by the sr25519 `key` proves possession of the VRF key.
pub fn vrf_proof_is_valid(
    key: &[u8; 32],
    signature: &[u8; 64],
    genesis: &[u8; 32],
    account: &[u8; 32],
) -> bool {
    let message = key_proof_message(KeyRole::Vrf, genesis, account);
    sp_io::crypto::sr25519_verify(
        &sr25519::Signature::from_raw(*signature),
        &message,
        &sr25519::Public::from_raw(*key),
    )
}

/// Whether `signature` by the Ed25519 `key` proves possession of the network key.
pub fn network_proof_is_valid(
    key: &[u8; 32],
    signature: &[u8; 64],
    genesis: &[u8; 32],
    account: &[u8; 32],
) -> bool {
    ed25519_verify(
        key,
        signature,
        &key_proof_message(KeyRole::Network, genesis, account),
    )
}

fn ed25519_verify(key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> bool {
    sp_io::crypto::ed25519_verify(
        &ed25519::Signature::from_raw(*signature),
        message,
        &ed25519::Public::from_raw(*key),
    )
}

fn p256_verify(key: &[u8; 33], signature: &[u8; 64], message: &[u8]) -> bool {
    use p256::ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey};
    let Ok(key) = VerifyingKey::from_sec1_bytes(key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_prehash(&sha256(message), &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sp_core::{ecdsa, Pair};

    const GENESIS: [u8; 32] = [0x42; 32];
    const ACCOUNT: [u8; 32] = [0x07; 32];

    fn message(role: KeyRole) -> [u8; 85] {
        key_proof_message(role, &GENESIS, &ACCOUNT)
    }

    #[test]
    fn a_p256_proof_as_a_zymbit_or_tpm_signs_it_verifies() {
        use p256::ecdsa::{signature::hazmat::PrehashSigner, Signature, SigningKey};
        let signing = SigningKey::from_slice(&[0x5a; 32]).unwrap();
        let key: [u8; 33] = signing
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .try_into()
            .unwrap();
        let signature: Signature = signing
            .sign_prehash(&sha256(&message(KeyRole::Device)))
            .unwrap();
        let signature: [u8; 64] = signature.to_bytes().into();
        let (key, signature) = (
            DevicePublicKey::EcdsaP256(key),
            DeviceSignature::EcdsaP256(signature),
        );
        assert!(device_proof_is_valid(&key, &signature, &GENESIS, &ACCOUNT));
        assert!(
            !device_proof_is_valid(&key, &signature, &GENESIS, &[0x08; 32]),
            "other account"
        );
        assert!(
            !device_proof_is_valid(&key, &signature, &[0x43; 32], &ACCOUNT),
            "other chain"
        );
        let garbage = DevicePublicKey::EcdsaP256([0xff; 33]);
        assert!(!device_proof_is_valid(
            &garbage, &signature, &GENESIS, &ACCOUNT
        ));
    }

    #[test]
    fn secp256k1_ed25519_and_sr25519_proofs_verify_for_their_role_only() {
        sp_io::TestExternalities::default().execute_with(|| {
            let k1 = ecdsa::Pair::from_seed(&[1; 32]);
            let device = DevicePublicKey::EcdsaSecp256k1(k1.public().0);
            let proof = DeviceSignature::EcdsaSecp256k1(k1.sign(&message(KeyRole::Device)).0);
            assert!(device_proof_is_valid(&device, &proof, &GENESIS, &ACCOUNT));

            let ed = ed25519::Pair::from_seed(&[2; 32]);
            let device = DevicePublicKey::Ed25519(ed.public().0);
            let proof = DeviceSignature::Ed25519(ed.sign(&message(KeyRole::Device)).0);
            assert!(device_proof_is_valid(&device, &proof, &GENESIS, &ACCOUNT));
            let network_proof = ed.sign(&message(KeyRole::Network)).0;
            assert!(network_proof_is_valid(
                &ed.public().0,
                &network_proof,
                &GENESIS,
                &ACCOUNT
            ));
            assert!(
                !network_proof_is_valid(&ed.public().0, &proof_bytes(&proof), &GENESIS, &ACCOUNT),
                "a device proof is not a network proof"
            );

            let sr = sr25519::Pair::from_seed(&[3; 32]);
            let vrf_proof = sr.sign(&message(KeyRole::Vrf)).0;
            assert!(vrf_proof_is_valid(
                &sr.public().0,
                &vrf_proof,
                &GENESIS,
                &ACCOUNT
            ));
            assert!(!vrf_proof_is_valid(
                &sr.public().0,
                &vrf_proof,
                &GENESIS,
                &[0; 32]
            ));

            let mismatched = DeviceSignature::EcdsaP256([0; 64]);
            assert!(!device_proof_is_valid(
                &device,
                &mismatched,
                &GENESIS,
                &ACCOUNT
            ));
        });
    }

    fn proof_bytes(signature: &DeviceSignature) -> [u8; 64] {
        match signature {
            DeviceSignature::Ed25519(bytes) | DeviceSignature::EcdsaP256(bytes) => *bytes,
            DeviceSignature::EcdsaSecp256k1(bytes) => bytes[..64].try_into().unwrap(),
        }
    }
}
