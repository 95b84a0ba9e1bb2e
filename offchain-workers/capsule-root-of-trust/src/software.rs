//! Keys in files: **insecure, for dev and local chains only.**
//!
//! `device.key` holds an Ed25519 secret key, `seal.key` a ChaCha20-Poly1305 key; both are made
//! on first use with mode 0600. Anyone who can read the directory can sign as the device and
//! unseal its secrets, which is why the level is [`HardwareLevel::Software`] (never on a
//! committee of a public network) and every open logs a warning.
use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use capsule_primitives::{DevicePublicKey, DeviceSignature, HardwareLevel};
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, Payload},
    ChaCha20Poly1305,
};
use ed25519_dalek::{Signer, SigningKey};
use rand_core::OsRng;
use tracing::warn;

use crate::{RootOfTrust, RootOfTrustError};

/// Bound to every sealed blob.
const SEAL_CONTEXT: &[u8] = b"capsule/software-seal/v1";

/// A root of trust made of two key files.
pub struct SoftwareRootOfTrust {
    device: SigningKey,
    seal: ChaCha20Poly1305,
}

impl SoftwareRootOfTrust {
    /// Opens the keys in `dir`, making any that are missing.
    pub fn open_or_create(dir: &Path) -> Result<Self, RootOfTrustError> {
        let files = |source| RootOfTrustError::Files {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(files)?;
        let device = key_file(&dir.join("device.key"))?;
        let seal = key_file(&dir.join("seal.key"))?;
        warn!(
            dir = %dir.display(),
            "INSECURE root of trust: software keys in files, for dev and local chains only"
        );
        Ok(Self {
            device: SigningKey::from_bytes(&device),
            seal: ChaCha20Poly1305::new(&seal.into()),
        })
    }
}

/// The 32 bytes in `path`, made from the OS's randomness (mode 0600) when it is missing.
fn key_file(path: &Path) -> Result<[u8; 32], RootOfTrustError> {
    let files = |source| RootOfTrustError::Files {
        path: path.to_owned(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| RootOfTrustError::BadKeyFile(PathBuf::from(path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut OsRng, &mut key);
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(files)?;
            file.write_all(&key).map_err(files)?;
            file.sync_all().map_err(files)?;
            Ok(key)
        }
        Err(e) => Err(files(e)),
    }
}

impl RootOfTrust for SoftwareRootOfTrust {
    fn level(&self) -> HardwareLevel {
        HardwareLevel::Software
    }

    fn device_public_key(&self) -> DevicePublicKey {
        DevicePublicKey::Ed25519(self.device.verifying_key().to_bytes())
    }

    fn sign(&self, message: &[u8]) -> Result<DeviceSignature, RootOfTrustError> {
        Ok(DeviceSignature::Ed25519(
            self.device.sign(message).to_bytes(),
        ))
    }

    fn seal(&self, data: &[u8]) -> Result<Vec<u8>, RootOfTrustError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .seal
            .encrypt(
                &nonce,
                Payload {
                    msg: data,
                    aad: SEAL_CONTEXT,
                },
            )
            .map_err(|_| RootOfTrustError::Module("encryption failed".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, RootOfTrustError> {
        if sealed.len() < 12 {
            return Err(RootOfTrustError::Unseal);
        }
        let (nonce, body) = sealed.split_at(12);
        self.seal
            .decrypt(
                nonce.into(),
                Payload {
                    msg: body,
                    aad: SEAL_CONTEXT,
                },
            )
            .map_err(|_| RootOfTrustError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::verify;

    #[test]
    fn keys_persist_sign_and_seal_for_this_directory_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SoftwareRootOfTrust::open_or_create(dir.path()).expect("opens");
        assert_eq!(first.level(), HardwareLevel::Software);
        let mode = std::fs::metadata(dir.path().join("device.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let signature = first.sign(b"evidence").expect("signs");
        assert!(verify(&first.device_public_key(), b"evidence", &signature));
        assert!(!verify(&first.device_public_key(), b"other", &signature));
        let sealed = first.seal(b"vrf secret").expect("seals");
        assert_ne!(&sealed[12..], b"vrf secret");

        let again = SoftwareRootOfTrust::open_or_create(dir.path()).expect("reopens");
        assert_eq!(again.device_public_key(), first.device_public_key());
        assert_eq!(again.unseal(&sealed).expect("unseals"), b"vrf secret");

        let mut changed = sealed.clone();
        changed[20] ^= 1;
        assert!(matches!(
            again.unseal(&changed),
            Err(RootOfTrustError::Unseal)
        ));
        assert!(matches!(
            again.unseal(&[1, 2]),
            Err(RootOfTrustError::Unseal)
        ));
        let other = tempfile::tempdir().expect("tempdir");
        let stranger = SoftwareRootOfTrust::open_or_create(other.path()).expect("opens");
        assert!(matches!(
            stranger.unseal(&sealed),
            Err(RootOfTrustError::Unseal)
        ));
    }

    #[test]
    fn a_malformed_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("device.key"), b"short").expect("writes");
        assert!(matches!(
            SoftwareRootOfTrust::open_or_create(dir.path()),
            Err(RootOfTrustError::BadKeyFile(_))
        ));
    }
}
