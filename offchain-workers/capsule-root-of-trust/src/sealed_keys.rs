//! Secret keys at rest, sealed by the root of trust: a gateway's VRF key and network key live
//! on disk only as blobs its root of trust unseals (ARCHITECTURE, "Keys of a gateway"). A blob
//! copied to another device does not open there.
use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use rand_core::{OsRng, RngCore};

use crate::{RootOfTrust, RootOfTrustError};

/// The secret seeds a gateway keeps sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedKey {
    /// The sr25519 VRF key's 32-byte seed (sortition).
    Vrf,
    /// The libp2p Ed25519 network key's 32-byte seed (peer id).
    Network,
}

impl SealedKey {
    fn file_name(self) -> &'static str {
        match self {
            Self::Vrf => "vrf.sealed",
            Self::Network => "network.sealed",
        }
    }
}

/// A directory of sealed seeds.
pub struct SealedKeys<'r> {
    dir: PathBuf,
    root: &'r dyn RootOfTrust,
}

impl<'r> SealedKeys<'r> {
    pub fn new(dir: &Path, root: &'r dyn RootOfTrust) -> Self {
        Self {
            dir: dir.to_owned(),
            root,
        }
    }

    /// The seed of `key`: unsealed from its blob, or made from the OS's randomness, sealed and
    /// written (mode 0600) on first use.
    pub fn load_or_create(&self, key: SealedKey) -> Result<[u8; 32], RootOfTrustError> {
        let path = self.dir.join(key.file_name());
        let files = |source| RootOfTrustError::Files {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(blob) => self
                .root
                .unseal(&blob)?
                .try_into()
                .map_err(|_| RootOfTrustError::BadKeyFile(path.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.dir).map_err(files)?;
                let mut seed = [0u8; 32];
                OsRng.fill_bytes(&mut seed);
                let blob = self.root.seal(&seed)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(files)?;
                file.write_all(&blob).map_err(files)?;
                file.sync_all().map_err(files)?;
                Ok(seed)
            }
            Err(e) => Err(files(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::SoftwareRootOfTrust;

    #[test]
    fn seeds_persist_sealed_and_open_only_on_their_device() {
        let keys_dir = tempfile::tempdir().expect("tempdir");
        let device = tempfile::tempdir().expect("tempdir");
        let root = SoftwareRootOfTrust::open_or_create(device.path()).expect("root");
        let store = SealedKeys::new(keys_dir.path(), &root);
        let vrf = store.load_or_create(SealedKey::Vrf).expect("made");
        let network = store.load_or_create(SealedKey::Network).expect("made");
        assert_ne!(vrf, network);
        assert_eq!(store.load_or_create(SealedKey::Vrf).expect("unsealed"), vrf);
        let blob = std::fs::read(keys_dir.path().join("vrf.sealed")).expect("blob");
        assert!(!blob.windows(32).any(|w| w == vrf), "not in the clear");

        let other = tempfile::tempdir().expect("tempdir");
        let stranger = SoftwareRootOfTrust::open_or_create(other.path()).expect("root");
        assert!(matches!(
            SealedKeys::new(keys_dir.path(), &stranger).load_or_create(SealedKey::Vrf),
            Err(RootOfTrustError::Unseal)
        ));
    }
}
