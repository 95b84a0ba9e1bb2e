//! The HPC image as the gateway serves it. [`StagedImage::stage`] takes the unified kernel image
//! a build wrote (`pxe-image/build.sh`), checks it against the golden measurement, and writes a
//! read-only copy: the image itself and, for BIOS clients, its own `.linux`, `.initrd` and
//! `.cmdline` sections (so both paths boot the same parts), with the iPXE binaries that TFTP
//! hands out. [`StagedImage::verify`] reads that copy again before every boot and returns the
//! bytes to serve; a copy that changed on disk is refused and nothing is served.
use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use capsule_measure::uki_section;
use capsule_primitives::measurement::MeasurementDigest;
use sha2::{Digest, Sha256};

/// The unified kernel image, in the build's output and in the staged copy.
pub const UKI: &str = "boot.efi";
/// The kernel, for BIOS clients.
pub const KERNEL: &str = "vmlinuz";
/// The initramfs, for BIOS clients.
pub const INITRD: &str = "initrd.zst";
/// The iPXE binaries TFTP serves: BIOS, then UEFI.
pub const IPXE_BIOS: &str = "undionly.kpxe";
pub const IPXE_EFI: &str = "ipxe.efi";

/// Why the image cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} has SHA-256 {actual}, not the golden measurement {golden}: rebuild the image (pxe-image/build.sh) or approve its digest")]
    NotGolden {
        path: PathBuf,
        actual: String,
        golden: String,
    },
    #[error("{path} is not a unified kernel image: it lacks its {section} section")]
    NotUnified {
        path: PathBuf,
        section: &'static str,
    },
    #[error("the kernel command line in {path} is not UTF-8 text on one line")]
    BadCmdline { path: PathBuf },
    #[error(
        "{path} is not a build manifest of pxe-image/build.sh ({reason}): build the image again"
    )]
    BadManifest { path: PathBuf, reason: String },
    #[error("the staged {file} changed on disk since it was verified (SHA-256 {actual}, staged as {expected}): refusing to serve the image")]
    Changed {
        file: String,
        expected: String,
        actual: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The measurement of the image at `path` (its SHA-256): what [`StagedImage::stage`] expects.
pub fn image_digest(path: &Path) -> Result<MeasurementDigest, ImageError> {
    Ok(MeasurementDigest(sha256(
        &fs::read(path).map_err(io(path))?,
    )))
}

/// What `pxe-image/build.sh` wrote into its output directory: the image and its manifest.
#[derive(Clone, Debug)]
pub struct Build {
    /// The unified kernel image.
    pub image: PathBuf,
    /// Its measurement, as the build recorded it.
    pub golden: MeasurementDigest,
    /// The kernel command line inside it.
    pub cmdline: String,
}

impl Build {
    /// Reads the build in `dir` (its `manifest.json`).
    pub fn read(dir: &Path) -> Result<Self, ImageError> {
        let path = dir.join("manifest.json");
        let bad = |reason: &str| ImageError::BadManifest {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).map_err(io(&path))?)
                .map_err(|e| bad(&e.to_string()))?;
        let golden = manifest["golden"]
            .as_str()
            .and_then(|g| hex::decode(g).ok())
            .and_then(|g| <[u8; 32]>::try_from(g).ok())
            .ok_or_else(|| bad("no golden digest"))?;
        let cmdline = manifest["cmdline"]
            .as_str()
            .ok_or_else(|| bad("no command line"))?
            .to_owned();
        Ok(Self {
            image: dir.join(UKI),
            golden: MeasurementDigest(golden),
            cmdline,
        })
    }
}

/// The files of one boot, as verified.
#[derive(Clone, Debug)]
pub struct ServedFiles {
    /// By name: the image, its parts, the iPXE binaries.
    pub files: BTreeMap<&'static str, Bytes>,
    /// The kernel command line inside the image.
    pub cmdline: String,
}

/// The read-only copy of the image in the gateway's serving directory.
#[derive(Debug)]
pub struct StagedImage {
    dir: PathBuf,
    golden: MeasurementDigest,
    authenticode: [u8; 32],
    digests: BTreeMap<&'static str, [u8; 32]>,
    cmdline: String,
}

impl StagedImage {
    /// Checks `uki` against `golden`, then writes the read-only copy into `dir` (created, or
    /// emptied of an earlier copy): the image, its kernel, initramfs and command line, and the
    /// iPXE binaries from `ipxe_dir` (Debian's `/usr/lib/ipxe`).
    pub fn stage(
        uki: &Path,
        golden: MeasurementDigest,
        ipxe_dir: &Path,
        dir: &Path,
    ) -> Result<Self, ImageError> {
        let image = fs::read(uki).map_err(io(uki))?;
        let actual = sha256(&image);
        if actual != golden.0 {
            return Err(ImageError::NotGolden {
                path: uki.to_owned(),
                actual: hex::encode(actual),
                golden: hex::encode(golden.0),
            });
        }
        let part = |section: &'static str| {
            uki_section(&image, section).ok_or_else(|| ImageError::NotUnified {
                path: uki.to_owned(),
                section,
            })
        };
        let (kernel, initrd, cmdline) = (part(".linux")?, part(".initrd")?, part(".cmdline")?);
        let authenticode =
            capsule_measure::authenticode_sha256(&image).ok_or_else(|| ImageError::NotUnified {
                path: uki.to_owned(),
                section: "PE header",
            })?;
        let cmdline = std::str::from_utf8(cmdline)
            .ok()
            .map(|c| c.trim_end_matches(['\0', '\n']).to_owned())
            .filter(|c| !c.contains('\n'))
            .ok_or_else(|| ImageError::BadCmdline {
                path: uki.to_owned(),
            })?;
        let mut contents: Vec<(&'static str, Vec<u8>)> = vec![
            (KERNEL, kernel.to_vec()),
            (INITRD, initrd.to_vec()),
            (UKI, image),
        ];
        for name in [IPXE_BIOS, IPXE_EFI] {
            let path = ipxe_dir.join(name);
            contents.push((name, fs::read(&path).map_err(io(&path))?));
        }
        // A fresh copy: an earlier one is made writable and removed first.
        if dir.exists() {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io(dir))?;
            fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let mut digests = BTreeMap::new();
        for (name, bytes) in &contents {
            let path = dir.join(name);
            fs::write(&path, bytes).map_err(io(&path))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).map_err(io(&path))?;
            digests.insert(*name, sha256(bytes));
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).map_err(io(dir))?;
        Ok(Self {
            dir: dir.to_owned(),
            golden,
            authenticode,
            digests,
            cmdline,
        })
    }

    /// The image's Authenticode SHA-256: what UEFI firmware measures into PCR 4 when it loads
    /// it (its golden measurement is the SHA-256 of the whole file).
    pub fn authenticode(&self) -> [u8; 32] {
        self.authenticode
    }

    /// The staged directory (dnsmasq's TFTP root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The golden measurement the copy was staged for.
    pub fn golden(&self) -> MeasurementDigest {
        self.golden
    }

    /// Reads the copy again and returns its files, if every one still has the digest it was
    /// staged with.
    pub fn verify(&self) -> Result<ServedFiles, ImageError> {
        let mut files = BTreeMap::new();
        for (name, expected) in &self.digests {
            let path = self.dir.join(name);
            let bytes = fs::read(&path).map_err(io(&path))?;
            let actual = sha256(&bytes);
            if &actual != expected {
                return Err(ImageError::Changed {
                    file: (*name).to_owned(),
                    expected: hex::encode(expected),
                    actual: hex::encode(actual),
                });
            }
            files.insert(*name, Bytes::from(bytes));
        }
        Ok(ServedFiles {
            files,
            cmdline: self.cmdline.clone(),
        })
    }
}
