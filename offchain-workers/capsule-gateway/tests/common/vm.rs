//! The PXE tests' machine: a QEMU machine under TCG (fixed SMBIOS serials, MAC and disk serial;
//! its QMP socket is the gateway's power control) on a tap bridged to the HPC's veth, BIOS or
//! UEFI (OVMF, with a TPM 2.0 emulator), and the gateway that boots it from the built image.
use std::{
    ffi::OsStr,
    io::{Read, Write},
    net::TcpStream,
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use capsule_boot_server::image::Build;
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use super::{ip, wait_for_event, Link, Process};

/// The machine's firmware.
pub enum Firmware {
    /// SeaBIOS: iPXE from the NIC's ROM, then the kernel and initramfs over HTTP.
    Bios,
    /// OVMF with a TPM (QEMU's arguments for its device): the firmware's PXE client, iPXE's EFI
    /// build, then the unified kernel image, measured.
    Uefi { tpm: Vec<String> },
}

impl Firmware {
    fn qemu_args(&self, dir: &Path) -> Vec<String> {
        match self {
            Firmware::Bios => vec![],
            Firmware::Uefi { tpm } => {
                // The machine's own variable store, kept across its boots.
                let vars = dir.join("OVMF_VARS.fd");
                if !vars.exists() {
                    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
                        .expect("OVMF's variable store (install ovmf)");
                }
                let mut args: Vec<String> = [
                    "-machine",
                    "q35",
                    "-drive",
                    "if=pflash,format=raw,unit=0,file=/usr/share/OVMF/OVMF_CODE_4M.fd,readonly=on",
                    "-drive",
                ]
                .map(String::from)
                .to_vec();
                args.push(format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    vars.display()
                ));
                args.extend(tpm.iter().cloned());
                args
            }
        }
    }
}

/// The machine's 8 MiB disk (a fixed pattern), in `dir`.
pub fn disk(dir: &Path) {
    let mut disk = vec![0u8; 8 << 20];
    disk.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]);
    std::fs::write(dir.join("disk.img"), disk).expect("disk");
}

pub const MAC: &str = "52:54:00:aa:bb:01";
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// The built image: `CAPSULE_PXE_IMAGE_DIR` (a build's output directory), or the default
/// build, made here when there is none.
pub fn built_image() -> Build {
    if let Some(dir) = std::env::var_os("CAPSULE_PXE_IMAGE_DIR") {
        return Build::read(Path::new(&dir)).expect("the build in CAPSULE_PXE_IMAGE_DIR");
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("offchain-workers/target"))
        .join("pxe-image");
    Build::read(&out).unwrap_or_else(|_| {
        let status = Command::new(repo.join("pxe-image/build.sh"))
            .arg("--out")
            .arg(&out)
            .status()
            .expect("pxe-image/build.sh");
        assert!(status.success(), "building the HPC image");
        Build::read(&out).expect("the build's manifest")
    })
}

/// The HPC side of the link becomes a bridge of the veth and the machine's tap.
pub fn bridge(link: &Link) {
    let ns = link.hpc.as_str();
    ip(&["-n", ns, "addr", "flush", "dev", "h0"]);
    ip(&[
        "-n",
        ns,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
    ]);
    ip(&["-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    for dev in ["h0", "tap0"] {
        ip(&["-n", ns, "link", "set", dev, "master", "br0"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    ip(&["-n", ns, "addr", "add", "10.79.0.2/24", "dev", "br0"]);
    ip(&["-n", ns, "link", "set", "br0", "up"]);
    // The prefix of the gateway's router advertisements (iPXE's IPv6 autoconfiguration).
    ip(&[
        "-n",
        &link.gateway,
        "-6",
        "addr",
        "add",
        "fd79::1/64",
        "dev",
        "g0",
        "nodad",
    ]);
}

/// The machine, held stopped (`-S`) until the gateway powers it on; a guest power-off leaves
/// it stopped too (`-no-shutdown`), as a machine without power that the gateway can cycle.
pub fn machine(link: &Link, dir: &Path, serial: &str, firmware: &Firmware) -> Process {
    let console = std::fs::File::create(dir.join(format!("console-{serial}.log"))).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", &link.hpc, "qemu-system-x86_64"])
        .args(["-accel", "tcg", "-m", "1024", "-smp", "1", "-nographic"])
        .args(firmware.qemu_args(dir))
        .args(["-S", "-no-shutdown"])
        .arg("-qmp")
        .arg(format!(
            "unix:{},server=on,wait=off",
            dir.join("qmp.sock").display()
        ))
        .args([
            "-smbios",
            &format!("type=1,manufacturer=TestLab,product=HPC-Node,serial={serial}"),
        ])
        .args(["-smbios", "type=2,serial=BOARD-0001"])
        .args([
            "-netdev",
            "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={MAC},bootindex=1"),
        ])
        .arg("-drive")
        .arg(format!(
            "file={},if=none,id=d0,format=raw",
            dir.join("disk.img").display()
        ))
        .args(["-device", "virtio-blk-pci,drive=d0,serial=DISK-SN-42"])
        .stdin(Stdio::null())
        .stdout(console.try_clone().expect("log"))
        .stderr(console)
        .spawn()
        .expect("qemu-system-x86_64 (install qemu-system-x86 and ipxe-qemu)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("qmp.sock").exists() {
        assert!(Instant::now() < deadline, "QEMU made no QMP socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    Process(child)
}

pub fn gateway(
    link: &Link,
    dir: &Path,
    qmp_socket: &Path,
    image: &Path,
    digests: &[String],
    extra: &[&OsStr],
) -> Process {
    let mut command = super::gateway_command(link, dir, &digests[0]);
    for digest in &digests[1..] {
        command.args(["--boot-image-digest", digest]);
    }
    let child = command
        .arg("--qmp")
        .arg(qmp_socket)
        .arg("--boot-image")
        .arg(image)
        .args(["--hpc-interface", "g0", "--hpc-address", "10.79.0.1"])
        .args(["--dhcp-range", "10.79.0.50,10.79.0.60", "--hpc-mac", MAC])
        .arg("--boot-dir")
        .arg(dir.join("boot"))
        .args(["--mean-interval-ms", "1000", "--answer-timeout-ms", "10000"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("gateway.log"))
                .expect("log"),
        )
        .spawn()
        .expect("gateway");
    Process(child)
}

/// Runs `qmp` command `request` (JSON) on the machine's socket.
pub fn qmp(dir: &Path, request: serde_json::Value) -> serde_json::Value {
    let execute = request["execute"].as_str().expect("execute").to_owned();
    capsule_attestation::power::QmpPower {
        socket: dir.join("qmp.sock"),
    }
    .execute(&execute, request.get("arguments").cloned())
    .expect("QMP")
}

/// The dnsmasq processes serving from `boot_dir`.
pub fn dnsmasqs(boot_dir: &Path) -> usize {
    dnsmasq_pids(boot_dir).len()
}

/// Their process ids.
pub fn dnsmasq_pids(boot_dir: &Path) -> Vec<u32> {
    let needle = boot_dir.display().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|p| {
            let pid = p.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(p.path().join("cmdline")).ok()?;
            (cmdline.starts_with(b"dnsmasq") && String::from_utf8_lossy(&cmdline).contains(&needle))
                .then_some(pid)
        })
        .collect()
}

/// The HTTP status the boot server gives the HPC's side of the link for `path`.
pub fn http_status(link: &Link, path: &str) -> String {
    let ns = format!("/run/netns/{}", link.hpc);
    let request = format!("GET {path} HTTP/1.1\r\nHost: 10.79.0.1\r\nConnection: close\r\n\r\n");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(ns).expect("namespace");
        move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns");
        let mut stream = TcpStream::connect(("10.79.0.1", 4280)).expect("boot server");
        stream.write_all(request.as_bytes()).expect("request");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    })
    .join()
    .expect("HTTP")
}

/// Waits for the gateway's next power-on after `skip` events and the first report it accepts
/// afterwards; returns the time between them and the index of the acceptance.
pub fn attested_after(events: &Path, skip: usize) -> (Duration, usize) {
    let (powered, _) = wait_for_event(events, skip, "power", Duration::from_secs(30));
    let on = Instant::now();
    let (accepted, _) = wait_for_event(events, powered, "accepted", BOOT_TIMEOUT);
    (on.elapsed(), accepted)
}
