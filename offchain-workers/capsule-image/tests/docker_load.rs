//! A built image against the real engine: `docker load` reports the id we computed, and the
//! image runs its binary as nobody with no network. The binary is a 136-byte static x86-64
//! ELF assembled here (write "ok\n", exit 0), so the test needs no toolchain for another
//! target. Needs a running engine (`scripts/dockerd-up.sh`, which `scripts/test.sh` runs).
use std::process::Command;

use capsule_image::{build_function_image, verify_archive};

/// A static x86-64 Linux executable that writes "ok\n" to stdout and exits 0.
fn tiny_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let code: &[u8] = &[
        0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
        0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1 (stdout)
        0x48, 0x8d, 0x35, 0x10, 0x00, 0x00, 0x00, // lea rsi, [rip + 16] (the message)
        0xba, 0x03, 0x00, 0x00, 0x00, // mov edx, 3
        0x0f, 0x05, // syscall
        0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
        0x31, 0xff, // xor edi, edi
        0x0f, 0x05, // syscall
        b'o', b'k', b'\n',
    ];
    let total = (64 + 56 + code.len()) as u64;
    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + 64 + 56).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no sections
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R + X
    for word in [0, BASE, BASE, total, total, 0x1000u64] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(code);
    elf
}

fn docker(args: &[&str]) -> (bool, String, String) {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs (scripts/setup.sh installs docker.io)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn docker_loads_the_image_under_our_id_and_runs_it() {
    let image = build_function_image(&tiny_elf());
    verify_archive(&image.tar[..], &image.id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    std::fs::write(&archive, &image.tar).unwrap();

    let (ok, stdout, stderr) = docker(&["load", "--input", archive.to_str().unwrap()]);
    assert!(
        ok,
        "docker load failed (is the engine up? scripts/dockerd-up.sh): {stderr}"
    );
    assert!(
        stdout.contains(&image.docker_id()),
        "docker load reported {stdout:?}, we computed {}",
        image.docker_id()
    );
    let (ok, stdout, stderr) = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        &image.docker_id(),
    ]);
    let _ = docker(&["rmi", "--force", &image.docker_id()]);
    assert!(ok, "the image did not run: {stderr}");
    assert_eq!(stdout, "ok\n");
}
