//! A prepared machine tree for tests: every source a [`Sources`] names, as files under one
//! directory, with the changes the attestation tests make (a module loaded, a device plugged, a
//! serial changed, a disk block written, a fingerprint source removed).
use std::{
    fs,
    io::{Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::{FingerprintInput, SourceKind, Sources};

/// Block size of the fixture's disk.
pub const BLOCK_BYTES: u32 = 4096;
/// Blocks of the fixture's disk.
pub const DISK_BLOCKS: u64 = 64;

/// A machine tree under `root`.
#[derive(Clone, Debug)]
pub struct Machine {
    pub root: PathBuf,
}

fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("fixture directory");
    }
    fs::write(path, content).expect("fixture file");
}

impl Machine {
    /// A clean machine: a boot image, a command line, three modules, two PCI devices and a USB
    /// one, DMI serials, a CPU, a MAC, a disk of [`DISK_BLOCKS`] blocks, and a `/proc`.
    pub fn create(root: &Path) -> Self {
        let machine = Self {
            root: root.to_owned(),
        };
        write(
            &machine.path("boot/hpc.efi"),
            b"the unified kernel image".repeat(100),
        );
        write(
            &machine.path("proc/cmdline"),
            "console=ttyS0 init_on_free=1 capsule.agent=1\n",
        );
        machine.set_modules(&["virtio_net", "virtio_blk", "overlay"]);
        machine.add_pci("0000:00:00.0", 0x8086, 0x29c0, 0x060000);
        machine.add_pci("0000:00:02.0", 0x1af4, 0x1041, 0x020000);
        write(&machine.path("sys/bus/usb/devices/1-1/idVendor"), "0627\n");
        write(&machine.path("sys/bus/usb/devices/1-1/idProduct"), "0001\n");
        fs::create_dir_all(machine.path("sys/bus/usb/devices/usb1")).expect("hub");
        machine.set_dmi("product_serial", "HPC-SN-0001");
        machine.set_dmi("board_serial", "BOARD-0001");
        write(
            &machine.path("proc/cpuinfo"),
            "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
             model name\t: Test CPU\nstepping\t: 7\ncpu MHz\t\t: 2000.123\nmicrocode\t: 0x1\n\n\
             processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
             model name\t: Test CPU\nstepping\t: 7\ncpu MHz\t\t: 2999.999\nmicrocode\t: 0x1\n",
        );
        write(
            &machine.path("sys/class/net/eth0/address"),
            "52:54:00:aa:bb:01\n",
        );
        let disk: Vec<u8> = (0..DISK_BLOCKS * u64::from(BLOCK_BYTES))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        write(&machine.path("dev/vda"), disk);
        write(
            &machine.path("proc/meminfo"),
            "MemTotal:        2048000 kB\nMemFree:  1000 kB\nMemAvailable:    1024000 kB\n",
        );
        write(&machine.path("proc/uptime"), "12.50 20.00\n");
        for pid in ["1", "42", "77"] {
            fs::create_dir_all(machine.path(&format!("proc/{pid}"))).expect("process");
        }
        machine
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// The sources of this tree.
    pub fn sources(&self) -> Sources {
        let mut fingerprint: Vec<FingerprintInput> =
            ["product_serial", "board_serial", "chassis_serial"]
                .iter()
                .map(|field| FingerprintInput {
                    name: format!("dmi/{field}"),
                    path: self.path(&format!("sys/class/dmi/id/{field}")),
                    kind: SourceKind::File,
                })
                .collect();
        fingerprint.push(FingerprintInput {
            name: "cpu".into(),
            path: self.path("proc/cpuinfo"),
            kind: SourceKind::CpuInfo,
        });
        fingerprint.push(FingerprintInput {
            name: "net/eth0".into(),
            path: self.path("sys/class/net/eth0/address"),
            kind: SourceKind::File,
        });
        Sources {
            boot_image: self.path("boot/hpc.efi"),
            cmdline: self.path("proc/cmdline"),
            modules: self.path("proc/modules"),
            pci_devices: self.path("sys/bus/pci/devices"),
            usb_devices: self.path("sys/bus/usb/devices"),
            fingerprint,
            disk: Some(self.path("dev/vda")),
            disk_block_bytes: BLOCK_BYTES,
            proc_dir: self.path("proc"),
            booted_initrd: None,
        }
    }

    /// Replaces the loaded module set.
    pub fn set_modules(&self, names: &[&str]) {
        let text: String = names
            .iter()
            .map(|n| format!("{n} 16384 0 - Live 0x0000000000000000\n"))
            .collect();
        write(&self.path("proc/modules"), text);
    }

    /// Plugs a PCI device in.
    pub fn add_pci(&self, slot: &str, vendor: u16, device: u16, class: u32) {
        let dir = self.path(&format!("sys/bus/pci/devices/{slot}"));
        write(&dir.join("vendor"), format!("0x{vendor:04x}\n"));
        write(&dir.join("device"), format!("0x{device:04x}\n"));
        write(&dir.join("class"), format!("0x{class:06x}\n"));
    }

    /// Sets a DMI field.
    pub fn set_dmi(&self, field: &str, value: &str) {
        write(
            &self.path(&format!("sys/class/dmi/id/{field}")),
            format!("{value}\n"),
        );
    }

    /// Removes a DMI field (a source that cannot be read).
    pub fn remove_dmi(&self, field: &str) {
        let _ = fs::remove_file(self.path(&format!("sys/class/dmi/id/{field}")));
    }

    /// Overwrites disk block `index` with `byte`.
    pub fn write_disk_block(&self, index: u64, byte: u8) {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(self.path("dev/vda"))
            .expect("disk");
        file.seek(SeekFrom::Start(index * u64::from(BLOCK_BYTES)))
            .expect("seek");
        file.write_all(&vec![byte; BLOCK_BYTES as usize])
            .expect("write");
    }

    /// Changes the boot image.
    pub fn change_boot_image(&self) {
        write(&self.path("boot/hpc.efi"), b"another kernel image");
    }
}
