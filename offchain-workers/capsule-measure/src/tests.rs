use capsule_primitives::report::{verify_merkle_proof, DeviceId, Nonce};

use super::*;
use crate::fixture::{Machine, BLOCK_BYTES, DISK_BLOCKS};

const SALT: [u8; 32] = [0x5a; 32];

fn measure(machine: &Machine, nonce: u8) -> GoldenFields {
    let sources = machine.sources();
    let tree = DiskTree::build(sources.disk.as_deref().expect("disk"), BLOCK_BYTES).expect("tree");
    golden_fields(&sources, &SALT, Some(&tree), &Nonce([nonce; 32]), 4).expect("measures")
}

#[test]
fn a_clean_machine_measures_the_same_twice_and_reads_every_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let (first, second) = (measure(&machine, 1), measure(&machine, 1));
    assert_eq!(first, second);
    assert_eq!(
        first.kernel_cmdline.as_slice(),
        b"console=ttyS0 init_on_free=1 capsule.agent=1"
    );
    let modules: Vec<&[u8]> = first.modules.iter().map(|m| m.as_slice()).collect();
    assert_eq!(modules, [&b"overlay"[..], b"virtio_blk", b"virtio_net"]);
    assert_eq!(
        first.devices.to_vec(),
        vec![
            DeviceId::Pci {
                vendor: 0x1af4,
                device: 0x1041,
                class: 0x020000
            },
            DeviceId::Pci {
                vendor: 0x8086,
                device: 0x29c0,
                class: 0x060000
            },
            DeviceId::Usb {
                vendor: 0x0627,
                product: 0x0001
            },
        ]
    );
    let present: Vec<&[u8]> = first
        .fingerprint
        .sources
        .iter()
        .map(|s| s.name.as_slice())
        .collect();
    assert_eq!(
        present,
        [
            &b"cpu"[..],
            b"dmi/board_serial",
            b"dmi/product_serial",
            b"net/eth0"
        ]
    );
    let missing: Vec<&[u8]> = first
        .fingerprint
        .missing
        .iter()
        .map(|s| s.as_slice())
        .collect();
    assert_eq!(missing, [&b"dmi/chassis_serial"[..]], "named, not fatal");
    assert_ne!(first.partition_table, MeasurementDigest::default());

    // Another nonce samples other blocks; everything else is the same.
    let other = measure(&machine, 2);
    assert_ne!(other.disk, first.disk);
    assert_eq!(
        GoldenFields {
            disk: None,
            ..other
        },
        GoldenFields {
            disk: None,
            ..first
        }
    );
}

#[test]
fn sampled_blocks_prove_against_the_root_until_one_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let tree = DiskTree::build(&machine.path("dev/vda"), BLOCK_BYTES).expect("tree");
    let evidence = tree.evidence(&Nonce([9; 32]), 8).expect("samples");
    assert_eq!(evidence.leaves, DISK_BLOCKS);
    assert_eq!(evidence.samples.len(), 8);
    for sample in evidence.samples.iter() {
        assert!(verify_merkle_proof(
            &evidence.root,
            evidence.leaves,
            sample.index,
            &sample.leaf,
            &sample.proof
        ));
    }
    let changed = evidence.samples[0].index;
    machine.write_disk_block(changed, 0xee);
    let after = tree.evidence(&Nonce([9; 32]), 8).expect("samples");
    let sample = &after.samples[0];
    assert!(
        !verify_merkle_proof(
            &after.root,
            after.leaves,
            sample.index,
            &sample.leaf,
            &sample.proof
        ),
        "a block written since the boot"
    );
    assert_ne!(
        DiskTree::build(&machine.path("dev/vda"), BLOCK_BYTES)
            .expect("tree")
            .root(),
        tree.root()
    );
}

#[test]
fn each_change_shows_in_its_own_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let clean = measure(&machine, 1);

    machine.set_modules(&["virtio_net", "virtio_blk", "overlay", "usb_storage"]);
    let changed = measure(&machine, 1);
    assert_ne!(changed.modules, clean.modules);
    assert_eq!(changed.devices, clean.devices);
    machine.set_modules(&["virtio_net", "virtio_blk", "overlay"]);

    machine.add_pci("0000:00:05.0", 0x10de, 0x2204, 0x030000);
    assert_ne!(measure(&machine, 1).devices, clean.devices);

    let other = tempfile::tempdir().expect("tempdir");
    let swapped = Machine::create(other.path());
    swapped.set_dmi("product_serial", "HPC-SN-0002");
    let serial = measure(&swapped, 1);
    assert_ne!(serial.fingerprint.root(), clean.fingerprint.root());
    let differing: Vec<&[u8]> = serial
        .fingerprint
        .sources
        .iter()
        .zip(clean.fingerprint.sources.iter())
        .filter(|(a, b)| a.leaf != b.leaf)
        .map(|(a, _)| a.name.as_slice())
        .collect();
    assert_eq!(
        differing,
        [&b"dmi/product_serial"[..]],
        "only that source's leaf"
    );

    swapped.remove_dmi("board_serial");
    let removed = measure(&swapped, 1);
    assert!(removed
        .fingerprint
        .missing
        .iter()
        .any(|m| m.as_slice() == b"dmi/board_serial"));

    machine.change_boot_image();
    assert_ne!(measure(&machine, 1).boot_image, clean.boot_image);
}

#[test]
fn the_cpu_source_ignores_clock_speeds_and_the_salt_hides_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let before = measure(&machine, 1);
    let cpuinfo = std::fs::read_to_string(machine.path("proc/cpuinfo")).expect("cpuinfo");
    std::fs::write(
        machine.path("proc/cpuinfo"),
        cpuinfo.replace("2000.123", "1200.000"),
    )
    .expect("writes");
    assert_eq!(measure(&machine, 1).fingerprint, before.fingerprint);
    let other_salt =
        golden_fields(&machine.sources(), &[1; 32], None, &Nonce([1; 32]), 0).expect("measures");
    assert_ne!(other_salt.fingerprint.root(), before.fingerprint.root());
}

#[test]
fn informational_fields_come_from_proc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let info = informational(&machine.path("proc"));
    assert_eq!(info.processes, 3);
    assert_eq!(info.memory_total_bytes, 2_048_000 * 1024);
    assert_eq!(info.memory_available_bytes, 1_024_000 * 1024);
    assert_eq!(info.uptime_ms, 12_500);
}

#[test]
fn a_missing_command_line_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    std::fs::remove_file(machine.path("proc/cmdline")).expect("removes");
    assert!(matches!(
        golden_fields(&machine.sources(), &SALT, None, &Nonce([1; 32]), 0),
        Err(MeasureError::Read { .. })
    ));
}

/// A minimal PE32+ file with the given sections (name, contents), as `objcopy --add-section`
/// lays out a unified kernel image: raw data padded to 512 bytes.
fn pe_with_sections(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let (pe, optional) = (0x40usize, 240usize);
    let table = pe + 24 + optional;
    let mut raw = (table + 40 * sections.len()).next_multiple_of(512);
    let mut image = vec![0u8; raw];
    image[..2].copy_from_slice(b"MZ");
    image[0x3c..0x40].copy_from_slice(&(pe as u32).to_le_bytes());
    image[pe..pe + 4].copy_from_slice(b"PE\0\0");
    image[pe + 4..pe + 6].copy_from_slice(&0x8664u16.to_le_bytes());
    image[pe + 6..pe + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    image[pe + 20..pe + 22].copy_from_slice(&(optional as u16).to_le_bytes());
    image[pe + 24..pe + 26].copy_from_slice(&0x20bu16.to_le_bytes());
    // NumberOfRvaAndSizes: the 16 data directories (all empty).
    image[pe + 24 + 108..pe + 24 + 112].copy_from_slice(&16u32.to_le_bytes());
    for (i, (name, data)) in sections.iter().enumerate() {
        let header = table + 40 * i;
        let padded = data.len().next_multiple_of(512);
        image[header..header + name.len()].copy_from_slice(name.as_bytes());
        let fields = [data.len(), 0x1000 * (i + 1), padded, raw];
        for (j, value) in fields.iter().enumerate() {
            image[header + 8 + 4 * j..header + 12 + 4 * j]
                .copy_from_slice(&(*value as u32).to_le_bytes());
        }
        image.extend_from_slice(data);
        image.resize(raw + padded, 0);
        raw += padded;
    }
    image
}

#[test]
fn a_unified_image_counts_only_when_it_carries_the_booted_initramfs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let initrd = b"the initramfs this machine booted".to_vec();
    let image = pe_with_sections(&[(".cmdline", b"console=ttyS0"), (".initrd", &initrd)]);
    assert_eq!(
        uki_section(&image, ".initrd"),
        Some(&initrd[..]),
        "cut to its own size"
    );
    assert_eq!(uki_section(&image, ".linux"), None);
    assert_eq!(uki_section(b"not a PE file", ".initrd"), None);
    std::fs::write(machine.path("boot/hpc.efi"), &image).expect("image");
    std::fs::write(machine.path("initrd"), &initrd).expect("initrd");
    let mut sources = machine.sources();
    sources.booted_initrd = Some(machine.path("initrd"));
    let measured = |sources: &Sources| {
        golden_fields(sources, &SALT, None, &Nonce([1; 32]), 0)
            .expect("measures")
            .boot_image
    };
    assert_eq!(
        measured(&sources),
        MeasurementDigest(Sha256::digest(&image).into()),
        "the image that was booted: its digest"
    );
    // Another initramfs booted than the image carries: never the image's digest.
    std::fs::write(machine.path("initrd"), b"another initramfs").expect("initrd");
    let booted = MeasurementDigest(Sha256::digest(b"another initramfs").into());
    assert_eq!(measured(&sources), not_booted(&booted));
    assert_ne!(not_booted(&booted), booted);
}
