//! The boot server's staging of the real HPC image (`pxe-image/build.sh`, run here when the
//! target directory has no build yet): the golden digest comes from the build's manifest.
use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Command};

use capsule_boot_server::{
    image::{Build, ImageError, StagedImage, INITRD, IPXE_BIOS, KERNEL, UKI},
    ipxe_script, DhcpConfig,
};
use capsule_primitives::measurement::MeasurementDigest;

fn built_image() -> (PathBuf, MeasurementDigest, String) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("offchain-workers/target"))
        .join("pxe-image");
    if !out.join("manifest.json").exists() {
        let status = Command::new(repo.join("pxe-image/build.sh"))
            .arg("--out")
            .arg(&out)
            .status()
            .expect("pxe-image/build.sh");
        assert!(status.success(), "building the HPC image");
    }
    let build = Build::read(&out).expect("the build's manifest");
    (out, build.golden, build.cmdline)
}

#[test]
fn the_staged_copy_serves_the_images_own_parts_and_refuses_a_changed_byte() {
    let (out, golden, cmdline) = built_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let staged = dir.path().join("serve");
    let image = StagedImage::stage(&out.join(UKI), golden, "/usr/lib/ipxe".as_ref(), &staged)
        .expect("stages");
    let files = image.verify().expect("verifies");
    // BIOS clients get exactly the parts the golden image carries.
    for name in [KERNEL, INITRD] {
        assert_eq!(
            files.files[name].as_ref(),
            std::fs::read(out.join(name))
                .expect("built part")
                .as_slice(),
            "{name}"
        );
    }
    assert_eq!(files.cmdline, cmdline);
    let script = ipxe_script(&files.cmdline);
    assert!(script.contains(&format!("kernel vmlinuz {}\n", files.cmdline)));
    assert!(script.contains(&format!("chain boot.efi {}\n", files.cmdline)));
    // Read-only.
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&staged), 0o555);
    assert_eq!(mode(&staged.join(UKI)), 0o444);
    assert_eq!(mode(&staged.join(IPXE_BIOS)), 0o444);

    // One byte of the staged image changed on disk: the next boot gets nothing.
    std::fs::set_permissions(staged.join(UKI), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let mut bytes = std::fs::read(staged.join(UKI)).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(staged.join(UKI), &bytes).expect("write");
    match image.verify() {
        Err(ImageError::Changed { file, .. }) => assert_eq!(file, UKI),
        other => panic!("a changed image was not refused: {other:?}"),
    }
}

#[test]
fn an_image_that_is_not_golden_is_not_staged() {
    let (out, golden, _) = built_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut other = golden;
    other.0[0] ^= 1;
    let staged = dir.path().join("serve");
    match StagedImage::stage(&out.join(UKI), other, "/usr/lib/ipxe".as_ref(), &staged) {
        Err(ImageError::NotGolden { actual, .. }) => assert_eq!(actual, hex::encode(golden.0)),
        other => panic!("staged against another digest: {other:?}"),
    }
    assert!(!staged.exists(), "nothing written");
    // The kernel alone is no unified image.
    let kernel = dir.path().join("vmlinuz");
    std::fs::copy(out.join(KERNEL), &kernel).expect("copy");
    let digest = {
        use sha2::Digest;
        MeasurementDigest(sha2::Sha256::digest(std::fs::read(&kernel).expect("read")).into())
    };
    assert!(matches!(
        StagedImage::stage(&kernel, digest, "/usr/lib/ipxe".as_ref(), &staged),
        Err(ImageError::NotUnified { .. })
    ));
}

#[test]
fn dnsmasq_serves_only_the_link_with_no_router_no_dns_and_a_long_lease() {
    let config = DhcpConfig {
        interface: "hpc0".into(),
        server: [10, 77, 0, 1].into(),
        range: ([10, 77, 0, 10].into(), [10, 77, 0, 10].into()),
        netmask: [255, 255, 255, 0].into(),
        lease: std::time::Duration::from_secs(2 * 86_400),
        hpc_mac: Some("52:54:00:aa:bb:01".into()),
        router_advertisements: true,
    };
    let args = config.arguments("/srv/tftp".as_ref(), "/run/boot".as_ref());
    for expected in [
        "--port=0",
        "--interface=hpc0",
        "--bind-interfaces",
        "--dhcp-range=10.77.0.10,10.77.0.10,255.255.255.0,172800s",
        "--dhcp-option=option:router",
        "--dhcp-option=option:dns-server",
        "--tftp-root=/srv/tftp",
        "--dhcp-boot=tag:ipxe,http://10.77.0.1:4280/boot.ipxe",
        "--dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi",
        "--dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe",
        "--dhcp-host=52:54:00:aa:bb:01,set:hpc",
        "--dhcp-ignore=tag:!known",
        "--enable-ra",
        "--dhcp-range=::,constructor:hpc0,ra-only",
        "--ra-param=hpc0,60,0",
    ] {
        assert!(
            args.iter().any(|a| a == expected),
            "{expected} missing from {args:?}"
        );
    }
}

#[test]
fn the_authenticode_digest_leaves_out_the_checksum_and_covers_every_section() {
    let (out, golden, _) = built_image();
    let image = std::fs::read(out.join(UKI)).expect("the image");
    let digest = capsule_measure::authenticode_sha256(&image).expect("a PE image");
    assert_ne!(digest, golden.0, "not the file's SHA-256");
    let dir = tempfile::tempdir().expect("tempdir");
    let staged = StagedImage::stage(
        &out.join(UKI),
        golden,
        "/usr/lib/ipxe".as_ref(),
        &dir.path().join("serve"),
    )
    .expect("stages");
    assert_eq!(staged.authenticode(), digest);
    // The PE checksum (the optional header's bytes 64..68) is not hashed.
    let pe = u32::from_le_bytes(image[0x3c..0x40].try_into().expect("4 bytes")) as usize;
    let mut other_checksum = image.clone();
    other_checksum[pe + 24 + 64] ^= 0xff;
    assert_eq!(
        capsule_measure::authenticode_sha256(&other_checksum),
        Some(digest)
    );
    // Every section is: one byte of the initramfs changes the digest.
    let initrd = capsule_measure::uki_section(&image, ".initrd").expect("initramfs");
    let at = initrd.as_ptr() as usize - image.as_ptr() as usize + initrd.len() / 2;
    let mut other_initrd = image.clone();
    other_initrd[at] ^= 1;
    assert_ne!(
        capsule_measure::authenticode_sha256(&other_initrd),
        Some(digest)
    );
    assert_eq!(capsule_measure::authenticode_sha256(b"MZ, but no PE"), None);
}
