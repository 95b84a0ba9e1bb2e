//! # Capsule measure
//!
//! What an HPC's agent measures for a [`HpcReport`](capsule_primitives::HpcReport), read from
//! the paths a [`Sources`] names ([`Sources::system`] for a real machine; tests point them at
//! prepared trees):
//!
//! - golden fields, compared across boots: the SHA-256 of the boot image, the kernel command
//!   line, the loaded module set (`/proc/modules`), the PCI and USB id set (sysfs), the hardware
//!   fingerprint as salted leaves per source (DMI fields, CPU identity, disk serials, MACs;
//!   sources that cannot be read are named, not fatal: microVMs have no DMI at all), the SHA-256
//!   of the partition table (the disk's first 34 sectors: MBR, GPT header and entries), and the
//!   disk's Merkle root with the blocks a challenge's nonce selects, read again for it;
//! - informational fields: process count, memory, uptime.
//!
//! The disk tree is built once per boot ([`DiskTree::build`]) and each challenge re-reads only
//! its sampled blocks; a block changed since the boot yields a leaf the tree does not prove, and
//! the gateway sees it.
use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use capsule_primitives::{
    measurement::MeasurementDigest,
    report::{
        disk_leaf, fingerprint_leaf, sample_indices, DeviceId, DiskEvidence, DiskSample,
        Fingerprint, FingerprintSource, GoldenFields, InformationalFields, MerkleTree, Name, Nonce,
        MAX_DISK_SAMPLES,
    },
    BoundedVec,
};
use sha2::{Digest, Sha256};

/// Bytes of the partition table measured: 34 sectors of 512 bytes (MBR, GPT header, 128
/// entries).
pub const PARTITION_TABLE_BYTES: u64 = 34 * 512;

/// How a fingerprint source's value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// The file's content, trimmed.
    File,
    /// The stable identity lines of `/proc/cpuinfo` (vendor, family, model, name, stepping,
    /// microcode) and the processor count; not the clock speeds.
    CpuInfo,
}

/// One fingerprint source.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct FingerprintInput {
    pub name: String,
    pub path: PathBuf,
    pub kind: SourceKind,
}

/// Where each measurement is read from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Sources {
    pub boot_image: PathBuf,
    pub cmdline: PathBuf,
    pub modules: PathBuf,
    pub pci_devices: PathBuf,
    pub usb_devices: PathBuf,
    pub fingerprint: Vec<FingerprintInput>,
    pub disk: Option<PathBuf>,
    pub disk_block_bytes: u32,
    /// `/proc`, for the informational fields.
    pub proc_dir: PathBuf,
    /// The initramfs this boot actually started from (`/sys/firmware/initrd` with the kernel's
    /// `retain_initrd`). With it, the boot image is a unified kernel image whose `.initrd`
    /// section must equal it: an image that is not the one booted is reported as
    /// [`not_booted`], which no gateway approves.
    #[serde(default)]
    pub booted_initrd: Option<PathBuf>,
}

impl Sources {
    /// A real machine's sources: DMI fields, the CPU, every network interface's permanent
    /// address and every block device's serial present at the call, and disk `disk`.
    pub fn system(boot_image: PathBuf, disk: Option<PathBuf>) -> Self {
        let mut fingerprint: Vec<FingerprintInput> = [
            "product_uuid",
            "product_serial",
            "board_serial",
            "chassis_serial",
            "sys_vendor",
            "product_name",
            "bios_version",
        ]
        .iter()
        .map(|field| FingerprintInput {
            name: format!("dmi/{field}"),
            path: PathBuf::from("/sys/class/dmi/id").join(field),
            kind: SourceKind::File,
        })
        .collect();
        fingerprint.push(FingerprintInput {
            name: "cpu".into(),
            path: "/proc/cpuinfo".into(),
            kind: SourceKind::CpuInfo,
        });
        for (dir, file, prefix) in [
            ("/sys/class/net", "address", "net"),
            ("/sys/block", "serial", "disk"),
        ] {
            let mut entries: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n != "lo")
                        .collect()
                })
                .unwrap_or_default();
            entries.sort();
            for entry in entries {
                fingerprint.push(FingerprintInput {
                    name: format!("{prefix}/{entry}"),
                    path: PathBuf::from(dir).join(&entry).join(file),
                    kind: SourceKind::File,
                });
            }
        }
        let retained = PathBuf::from("/sys/firmware/initrd");
        Self {
            booted_initrd: retained.exists().then_some(retained),
            boot_image,
            cmdline: "/proc/cmdline".into(),
            modules: "/proc/modules".into(),
            pci_devices: "/sys/bus/pci/devices".into(),
            usb_devices: "/sys/bus/usb/devices".into(),
            fingerprint,
            disk,
            disk_block_bytes: 1 << 20,
            proc_dir: "/proc".into(),
        }
    }
}

/// What cannot be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} exceeds what a report carries ({limit})")]
    TooMany { what: &'static str, limit: u32 },
    #[error("disk block size must be between 512 bytes and 64 MiB")]
    BlockSize,
}

fn read(path: &Path) -> Result<Vec<u8>, MeasureError> {
    std::fs::read(path).map_err(|source| MeasureError::Read {
        path: path.to_owned(),
        source,
    })
}

/// What the boot image field holds when the image at `Sources::boot_image` is not the one
/// this machine booted: a digest over the booted initramfs's digest, under its own tag, so it
/// never equals an image's digest.
pub fn not_booted(booted_initrd: &MeasurementDigest) -> MeasurementDigest {
    let mut hasher = Sha256::new();
    hasher.update(b"capsule-measure:not-booted:");
    hasher.update(booted_initrd.0);
    MeasurementDigest(hasher.finalize().into())
}

/// The boot image's SHA-256; where the booted initramfs is known, only if the image carries it.
fn boot_image(sources: &Sources) -> Result<MeasurementDigest, MeasureError> {
    let Some(booted) = &sources.booted_initrd else {
        return sha256_file(&sources.boot_image);
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| MeasureError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let image = read(&sources.boot_image)?;
    let booted = MeasurementDigest(Sha256::digest(read(booted)?).into());
    let carried = uki_initrd(&image).map(|initrd| MeasurementDigest(Sha256::digest(initrd).into()));
    Ok(if carried == Some(booted) {
        MeasurementDigest(Sha256::digest(&image).into())
    } else {
        not_booted(&booted)
    })
}

/// The `.initrd` section of a unified kernel image (a PE file), if it has one.
pub fn uki_initrd(image: &[u8]) -> Option<&[u8]> {
    uki_section(image, ".initrd")
}

/// A section of a unified kernel image (`.linux`, `.initrd`, `.cmdline`, `.osrel`), cut to the
/// section's own size (PE pads raw data to the file alignment); `None` if `image` is not a PE
/// file or has no such section.
pub fn uki_section<'a>(image: &'a [u8], name: &str) -> Option<&'a [u8]> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(image).ok()?;
    let section = file.section_by_name(name)?;
    let data = section.data().ok()?;
    let size = usize::try_from(section.size()).ok()?;
    data.get(..size.min(data.len()))
}

/// The SHA-256 Authenticode digest of PE image `image`: what UEFI firmware measures into
/// PCR 4 when it loads the image (the TPM event log's `EV_EFI_BOOT_SERVICES_APPLICATION`), the
/// file's hash without its checksum, certificate table entry and certificates. `None` if
/// `image` is not a 64-bit PE file.
pub fn authenticode_sha256(image: &[u8]) -> Option<[u8; 32]> {
    let pe = object::read::pe::PeFile64::parse(image).ok()?;
    let mut hasher = Sha256::new();
    authenticode::authenticode_digest(&pe, &mut hasher).ok()?;
    Some(hasher.finalize().into())
}

fn sha256_file(path: &Path) -> Result<MeasurementDigest, MeasureError> {
    let mut file = File::open(path).map_err(|source| MeasureError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|source| MeasureError::Read {
            path: path.to_owned(),
            source,
        })?;
        if n == 0 {
            return Ok(MeasurementDigest(hasher.finalize().into()));
        }
        hasher.update(&buf[..n]);
    }
}

fn bounded<T, const N: u32>(
    items: Vec<T>,
    what: &'static str,
) -> Result<BoundedVec<T, capsule_primitives::ConstU32<N>>, MeasureError> {
    BoundedVec::try_from(items).map_err(|_| MeasureError::TooMany { what, limit: N })
}

fn name(text: &str) -> Result<Name, MeasureError> {
    Name::try_from(text.as_bytes().to_vec()).map_err(|_| MeasureError::TooMany {
        what: "a name's bytes",
        limit: capsule_primitives::report::MAX_NAME,
    })
}

/// The loaded modules, by name, sorted (none when the kernel has no module support).
pub fn modules(path: &Path) -> Result<Vec<String>, MeasureError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

fn hex_number(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    u32::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

/// The PCI and USB devices, sorted.
pub fn devices(pci: &Path, usb: &Path) -> Vec<DeviceId> {
    let mut devices = Vec::new();
    for entry in std::fs::read_dir(pci).into_iter().flatten().flatten() {
        let dir = entry.path();
        if let (Some(vendor), Some(device), Some(class)) = (
            hex_number(&dir.join("vendor")),
            hex_number(&dir.join("device")),
            hex_number(&dir.join("class")),
        ) {
            devices.push(DeviceId::Pci {
                vendor: vendor as u16,
                device: device as u16,
                class,
            });
        }
    }
    for entry in std::fs::read_dir(usb).into_iter().flatten().flatten() {
        let dir = entry.path();
        if let (Some(vendor), Some(product)) = (
            hex_number(&dir.join("idVendor")),
            hex_number(&dir.join("idProduct")),
        ) {
            devices.push(DeviceId::Usb {
                vendor: vendor as u16,
                product: product as u16,
            });
        }
    }
    devices.sort();
    devices
}

/// The value of a fingerprint source, or `None` when it cannot be read or is empty.
fn source_value(input: &FingerprintInput) -> Option<Vec<u8>> {
    let text = std::fs::read(&input.path).ok()?;
    let value = match input.kind {
        SourceKind::File => String::from_utf8_lossy(&text).trim().as_bytes().to_vec(),
        SourceKind::CpuInfo => {
            let text = String::from_utf8_lossy(&text);
            let mut lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    let key = l.split(':').next().unwrap_or("").trim();
                    matches!(
                        key,
                        "vendor_id"
                            | "cpu family"
                            | "model"
                            | "model name"
                            | "stepping"
                            | "microcode"
                    )
                })
                .collect();
            let processors = text.lines().filter(|l| l.starts_with("processor")).count();
            lines.sort();
            lines.dedup();
            let mut value = lines.join("\n");
            value.push_str(&format!("\nprocessors: {processors}"));
            value.into_bytes()
        }
    };
    (!value.is_empty()).then_some(value)
}

/// The fingerprint: a salted leaf per readable source, in name order, and the unreadable ones
/// named.
pub fn fingerprint(
    inputs: &[FingerprintInput],
    salt: &[u8; 32],
) -> Result<Fingerprint, MeasureError> {
    let mut inputs: Vec<&FingerprintInput> = inputs.iter().collect();
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    inputs.dedup_by(|a, b| a.name == b.name);
    let (mut sources, mut missing) = (Vec::new(), Vec::new());
    for input in inputs {
        match source_value(input) {
            Some(value) => sources.push(FingerprintSource {
                name: name(&input.name)?,
                leaf: fingerprint_leaf(salt, input.name.as_bytes(), &value),
            }),
            None => missing.push(name(&input.name)?),
        }
    }
    Ok(Fingerprint {
        sources: bounded(sources, "fingerprint sources")?,
        missing: bounded(missing, "missing fingerprint sources")?,
    })
}

/// The disk's Merkle tree over blocks, built once per boot.
#[derive(Clone, Debug)]
pub struct DiskTree {
    path: PathBuf,
    block_bytes: u32,
    /// Kept whole: a challenge's proofs are read from it, not recomputed.
    tree: MerkleTree,
}

impl DiskTree {
    /// Reads the whole disk once.
    pub fn build(path: &Path, block_bytes: u32) -> Result<Self, MeasureError> {
        if !(512..=64 << 20).contains(&block_bytes) {
            return Err(MeasureError::BlockSize);
        }
        let error = |source| MeasureError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(error)?;
        let mut block = vec![0u8; block_bytes as usize];
        let mut leaves = Vec::new();
        loop {
            let n = read_full(&mut file, &mut block).map_err(error)?;
            if n == 0 {
                break;
            }
            leaves.push(disk_leaf(leaves.len() as u64, &block[..n]));
            if n < block.len() {
                break;
            }
        }

        Ok(Self {
            path: path.to_owned(),
            block_bytes,
            tree: MerkleTree::new(leaves),
        })
    }

    pub fn root(&self) -> [u8; 32] {
        self.tree.root()
    }

    /// The evidence for `nonce`: `count` sampled blocks, each read again now, with its proof.
    pub fn evidence(&self, nonce: &Nonce, count: u32) -> Result<DiskEvidence, MeasureError> {
        let error = |source| MeasureError::Read {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(error)?;
        let mut block = vec![0u8; self.block_bytes as usize];
        let mut samples = Vec::new();
        for index in sample_indices(
            nonce,
            self.tree.leaves().len() as u64,
            count.min(MAX_DISK_SAMPLES),
        ) {
            file.seek(SeekFrom::Start(index * u64::from(self.block_bytes)))
                .map_err(error)?;
            let n = read_full(&mut file, &mut block).map_err(error)?;
            let proof = self.tree.proof(index as usize);
            samples.push(DiskSample {
                index,
                leaf: disk_leaf(index, &block[..n]),
                proof: bounded(proof, "proof depth")?,
            });
        }
        Ok(DiskEvidence {
            root: self.tree.root(),
            leaves: self.tree.leaves().len() as u64,
            block_bytes: self.block_bytes,
            samples: bounded(samples, "disk samples")?,
        })
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The golden fields for a challenge.
pub fn golden_fields(
    sources: &Sources,
    salt: &[u8; 32],
    disk: Option<&DiskTree>,
    nonce: &Nonce,
    disk_samples: u32,
) -> Result<GoldenFields, MeasureError> {
    let cmdline = String::from_utf8_lossy(&read(&sources.cmdline)?)
        .trim()
        .as_bytes()
        .to_vec();
    let modules = modules(&sources.modules)?
        .iter()
        .map(|m| name(m))
        .collect::<Result<Vec<_>, _>>()?;
    let partition_table = match &sources.disk {
        Some(path) => {
            let mut file = File::open(path).map_err(|source| MeasureError::Read {
                path: path.clone(),
                source,
            })?;
            let mut table = vec![0u8; PARTITION_TABLE_BYTES as usize];
            let n = read_full(&mut file, &mut table).map_err(|source| MeasureError::Read {
                path: path.clone(),
                source,
            })?;
            MeasurementDigest(Sha256::digest(&table[..n]).into())
        }
        None => MeasurementDigest::default(),
    };
    Ok(GoldenFields {
        boot_image: boot_image(sources)?,
        kernel_cmdline: bounded(cmdline, "the kernel command line")?,
        modules: bounded(modules, "modules")?,
        devices: bounded(
            devices(&sources.pci_devices, &sources.usb_devices),
            "devices",
        )?,
        fingerprint: fingerprint(&sources.fingerprint, salt)?,
        partition_table,
        disk: disk
            .map(|tree| tree.evidence(nonce, disk_samples))
            .transpose()?,
    })
}

/// Processes, memory and uptime, from `proc_dir` (zero where unreadable).
pub fn informational(proc_dir: &Path) -> InformationalFields {
    let processes = std::fs::read_dir(proc_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count() as u32
        })
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string(proc_dir.join("meminfo")).unwrap_or_default();
    let kib = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let uptime_ms = std::fs::read_to_string(proc_dir.join("uptime"))
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|s| s.parse::<f64>().ok())
        })
        .map(|secs| (secs * 1000.0) as u64)
        .unwrap_or(0);
    InformationalFields {
        processes,
        memory_total_bytes: kib("MemTotal:"),
        memory_available_bytes: kib("MemAvailable:"),
        uptime_ms,
    }
}

pub mod fixture;

#[cfg(test)]
mod tests;
