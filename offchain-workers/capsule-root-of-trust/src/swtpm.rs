//! A TPM 2.0 emulator (swtpm) manufactured and served on loopback for the time of a value: for
//! tests and local runs of the TPM backend. `swtpm_setup` makes the EK and its certificate,
//! signed by swtpm's local CA ([`LOCAL_CA`], made on the machine at its first use).
use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::RootOfTrustError;

/// Where swtpm's local CA keeps its certificates.
pub const LOCAL_CA: &str = "/var/lib/swtpm-localca";

fn failed(what: &str, e: &dyn std::fmt::Display) -> RootOfTrustError {
    RootOfTrustError::Module(format!(
        "swtpm: {what}: {e}; install swtpm and swtpm-tools (scripts/setup.sh)"
    ))
}

/// A new TPM's state in a temporary directory: its EK and EK certificate made by
/// `swtpm_setup`.
fn manufacture() -> Result<tempfile::TempDir, RootOfTrustError> {
    let state = tempfile::tempdir().map_err(|e| failed("temporary state", &e))?;
    let setup = Command::new("swtpm_setup")
        .args(["--tpm2", "--create-ek-cert", "--overwrite", "--tpmstate"])
        .arg(state.path())
        .stdout(Stdio::null())
        .output()
        .map_err(|e| failed("running swtpm_setup", &e))?;
    if !setup.status.success() {
        return Err(failed(
            "swtpm_setup",
            &String::from_utf8_lossy(&setup.stderr),
        ));
    }
    Ok(state)
}

/// A running emulator; killed on drop.
pub struct Swtpm {
    child: Child,
    port: u16,
    _state: tempfile::TempDir,
}

impl Swtpm {
    /// Manufactures a TPM in a temporary directory and serves it on a free loopback port (and
    /// the next one, its control port, where the swtpm TCTI looks for it).
    pub fn start() -> Result<Self, RootOfTrustError> {
        Self::start_in(None)
    }

    /// [`Swtpm::start`] inside network namespace `netns` (by `ip netns` name): its loopback is
    /// then that namespace's.
    pub fn start_in(netns: Option<&str>) -> Result<Self, RootOfTrustError> {
        let state = manufacture()?;
        let port = free_port_pair().ok_or_else(|| failed("ports", &"none free"))?;
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "swtpm"]);
                c
            }
            None => Command::new("swtpm"),
        };
        let child = command
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", state.path().display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .spawn()
            .map_err(|e| failed("starting swtpm", &e))?;
        let netns_file = netns.map(|ns| format!("/run/netns/{ns}"));
        let up = std::thread::spawn(move || {
            if let Some(path) = netns_file {
                use std::os::fd::AsFd;
                let Ok(file) = std::fs::File::open(path) else {
                    return false;
                };
                if rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .is_err()
                {
                    return false;
                }
            }
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        });
        if !up.join().unwrap_or(false) {
            return Err(failed("serving", &"its port did not open within 5 s"));
        }
        Ok(Self {
            child,
            port,
            _state: state,
        })
    }

    /// The TCTI that reaches it.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The local CA's root and issuer certificates (PEM): the pinned CA list of tests.
    pub fn ca_certificates() -> Result<(Vec<u8>, Vec<u8>), RootOfTrustError> {
        let read = |name: &str| {
            let path = PathBuf::from(LOCAL_CA).join(name);
            std::fs::read(&path).map_err(|source| RootOfTrustError::Files { path, source })
        };
        Ok((
            read("swtpm-localca-rootca-cert.pem")?,
            read("issuercert.pem")?,
        ))
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A manufactured emulator behind a QEMU machine's TPM device, on a Unix socket; it ends when
/// the machine does (QEMU's reset keeps it, as a machine's reset keeps its TPM). Killed on drop.
pub struct VmTpm {
    child: Child,
    socket: PathBuf,
    state: tempfile::TempDir,
}

impl VmTpm {
    /// Manufactures a TPM and serves it on a socket in its state directory.
    pub fn start() -> Result<Self, RootOfTrustError> {
        let state = manufacture()?;
        let socket = state.path().join("swtpm-sock");
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.path().display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", socket.display()))
            .arg("--log")
            .arg(format!(
                "file={},level=1",
                state.path().join("swtpm.log").display()
            ))
            .spawn()
            .map_err(|e| failed("starting swtpm", &e))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            if std::time::Instant::now() > deadline {
                return Err(failed("serving", &"its socket did not appear within 5 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            socket,
            state,
        })
    }

    /// QEMU's arguments for a TIS device on this TPM.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=chrtpm,path={}", self.socket.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            "tpm-tis,tpmdev=tpm0".into(),
        ]
    }

    /// The emulator's state directory (its log, `swtpm.log`, is there).
    pub fn state_dir(&self) -> &std::path::Path {
        self.state.path()
    }
}

impl Drop for VmTpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port whose successor is free too.
fn free_port_pair() -> Option<u16> {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Some(port);
        }
    }
    None
}
