//! # Capsule function images
//!
//! A task's function is a static binary in a container image pinned by its image id (the
//! primitives' `ImageDigest`: Docker's image id, the SHA-256 of the image's config JSON). This
//! crate builds such images without a registry or a Dockerfile: one layer holding the binary at
//! `/fn`, a config that runs it as `65534:65534`, written as a `docker save` archive
//! (`manifest.json`, the config, the layer) that `docker load` accepts. Everything in it is
//! fixed (file modes, owners, times, JSON key order), so the same binary always gives the same
//! image id.
//!
//! [`verify_archive`] is the other side: before an archive is loaded, its config must hash to
//! the task's digest and every layer must hash to the config's `diff_ids`, so the engine loads
//! exactly the image the task names.
use std::io::Read;

pub mod elf;

use capsule_primitives::measurement::ImageDigest;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Where the function binary sits in the image, and what the image runs.
pub const ENTRYPOINT: &str = "/fn";
/// The user the function runs as (nobody:nogroup).
pub const USER: &str = "65534:65534";
/// The largest archive member read when verifying (a function binary is a few MiB).
pub const MAX_MEMBER_BYTES: u64 = 256 * 1024 * 1024;

/// Why an archive is not the image it should be.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image archive is not a docker-save tar: {0}")]
    Malformed(String),
    #[error("the image's config hashes to {actual}, not the task's image {expected}; refusing to load it")]
    WrongImage { expected: String, actual: String },
    #[error("layer {layer} does not hash to the config's diff_id; the archive was altered")]
    WrongLayer { layer: String },
    #[error("reading the image archive: {0}")]
    Io(#[from] std::io::Error),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A built image: its id and its `docker load` archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageArchive {
    pub id: ImageDigest,
    pub tar: Vec<u8>,
}

/// An image id as Docker prints and takes it: `sha256:<hex>`.
pub fn docker_id(id: &ImageDigest) -> String {
    format!("sha256:{}", hex(&id.0))
}

impl ImageArchive {
    /// The id as Docker prints it: `sha256:<hex>`.
    pub fn docker_id(&self) -> String {
        docker_id(&self.id)
    }
}

/// Appends a regular file with fixed metadata.
fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, bytes)
}

/// The image running `binary` (a static executable) as [`ENTRYPOINT`], as [`USER`].
pub fn build_function_image(binary: &[u8]) -> ImageArchive {
    build_function_image_with_mode(binary, 0o555)
}

/// [`build_function_image`] with the binary's file mode given: tests use it to ship a
/// set-user-id root binary (`0o4755`) and show it gains nothing.
pub fn build_function_image_with_mode(binary: &[u8], mode: u32) -> ImageArchive {
    let layer = {
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, &ENTRYPOINT[1..], mode, binary).expect("writing to memory");
        builder.into_inner().expect("writing to memory")
    };
    let diff_id = format!("sha256:{}", hex(&sha256(&layer)));
    // serde_json's maps are ordered by key, so the bytes (and the id) are fixed.
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": [ENTRYPOINT],
            "User": USER,
            "WorkingDir": "/",
            "Env": [],
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    }))
    .expect("JSON of JSON");
    let id = sha256(&config);
    let config_name = format!("{}.json", hex(&id));
    let layer_name = format!("{}/layer.tar", hex(&sha256(&layer)));
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": null,
        "Layers": [layer_name],
    }]))
    .expect("JSON of JSON");
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, &config_name, 0o444, &config).expect("writing to memory");
    append(&mut builder, &layer_name, 0o444, &layer).expect("writing to memory");
    append(&mut builder, "manifest.json", 0o444, &manifest).expect("writing to memory");
    ImageArchive {
        id: ImageDigest(id),
        tar: builder.into_inner().expect("writing to memory"),
    }
}

/// Checks a `docker save` archive against `expected` before it is loaded: one image, whose
/// config hashes to `expected` and whose layers hash to the config's `diff_ids`.
pub fn verify_archive(archive: impl Read, expected: &ImageDigest) -> Result<(), ImageError> {
    let malformed = |what: &str| ImageError::Malformed(what.to_string());
    let mut members = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(archive).entries()? {
        let entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        if entry.size() > MAX_MEMBER_BYTES {
            return Err(malformed("a member is larger than a function image may be"));
        }
        let mut bytes = Vec::new();
        entry.take(MAX_MEMBER_BYTES).read_to_end(&mut bytes)?;
        members.insert(path, bytes);
    }
    let manifest: Value = serde_json::from_slice(
        members
            .get("manifest.json")
            .ok_or_else(|| malformed("no manifest.json"))?,
    )
    .map_err(|_| malformed("manifest.json is not JSON"))?;
    let [image] = manifest.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(malformed("the archive must hold exactly one image"));
    };
    let config_name = image["Config"]
        .as_str()
        .ok_or_else(|| malformed("no Config"))?;
    let config = members
        .get(config_name)
        .ok_or_else(|| malformed("the config named by the manifest is missing"))?;
    let actual = sha256(config);
    if actual != expected.0 {
        return Err(ImageError::WrongImage {
            expected: hex(&expected.0),
            actual: hex(&actual),
        });
    }
    let config: Value =
        serde_json::from_slice(config).map_err(|_| malformed("the config is not JSON"))?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| malformed("the config has no diff_ids"))?;
    let layers = image["Layers"]
        .as_array()
        .ok_or_else(|| malformed("no Layers"))?;
    if layers.len() != diff_ids.len() {
        return Err(malformed(
            "the manifest's layers and the config's diff_ids differ in number",
        ));
    }
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let name = layer
            .as_str()
            .ok_or_else(|| malformed("a layer name is not a string"))?;
        let bytes = members
            .get(name)
            .ok_or_else(|| malformed("a layer named by the manifest is missing"))?;
        if diff_id.as_str() != Some(&format!("sha256:{}", hex(&sha256(bytes)))) {
            return Err(ImageError::WrongLayer {
                layer: name.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_binary_gives_the_same_image() {
        let a = build_function_image(b"\x7fELF binary");
        assert_eq!(a, build_function_image(b"\x7fELF binary"));
        assert_ne!(a.id, build_function_image(b"\x7fELF other").id);
        verify_archive(&a.tar[..], &a.id).expect("its own digest");
    }

    #[test]
    fn an_archive_for_another_digest_or_with_an_altered_layer_is_refused() {
        let image = build_function_image(b"binary");
        let other = build_function_image(b"another");
        assert!(matches!(
            verify_archive(&image.tar[..], &other.id),
            Err(ImageError::WrongImage { .. })
        ));
        // Alter a byte of the binary inside the layer (the config, and so the id, unchanged).
        let mut altered = image.tar.clone();
        let at = altered
            .windows(6)
            .rposition(|w| w == b"binary")
            .expect("the binary is stored plainly");
        altered[at] = b'B';
        assert!(matches!(
            verify_archive(&altered[..], &image.id),
            Err(ImageError::WrongLayer { .. })
        ));
        assert!(matches!(
            verify_archive(&b"not a tar"[..], &image.id),
            Err(ImageError::Malformed(_) | ImageError::Io(_))
        ));
    }
}
