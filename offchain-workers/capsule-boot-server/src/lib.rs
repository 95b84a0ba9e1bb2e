//! # Capsule boot server
//!
//! What a gateway runs on its private HPC link so the HPC boots the network's image and nothing
//! else (ARCHITECTURE, flow 2):
//!
//! - [`image`]: the unified kernel image, checked against the golden measurement and staged as a
//!   read-only copy, verified again before every boot; a copy that changed is refused and
//!   nothing is served;
//! - [`dnsmasq`]: DHCP (one lease longer than the longest task, no router, no DNS) and TFTP for
//!   the iPXE binaries, from a dnsmasq child bound to the link and restarted before each boot;
//! - HTTP ([`BootServer::serve_http`]) on [`BOOT_SERVER_PORT`](capsule_primitives::agent::BOOT_SERVER_PORT): the iPXE script, the image and,
//!   for BIOS clients, its kernel and initramfs; and this boot's [`BootConfig`] (the gateway's
//!   Noise key, the boot secret, the fingerprint salt), handed out once per boot.
//!
//! [`BootServer::new_boot`] starts each boot: verify, fresh secret, dnsmasq afresh. The gateway
//! calls it before every power-cycle of the HPC.
//!
//! ```text
//!  firmware ──DHCP──▶ dnsmasq: undionly.kpxe (BIOS) | ipxe.efi (UEFI) ──TFTP──▶ iPXE
//!  iPXE ──DHCP──▶ dnsmasq: http://gateway:4280/boot.ipxe
//!  iPXE ──HTTP──▶ BIOS: vmlinuz + initrd.zst + the image's command line | UEFI: boot.efi
//!  agent ──HTTP──▶ /boot/config (once), /boot.efi (to measure) ──Noise──▶ attestation server
//! ```
pub mod dnsmasq;
pub mod image;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use capsule_primitives::agent::{BootConfig, BOOT_CONFIG_PATH, BOOT_IMAGE_PATH};
use codec::Encode;
use http_body_util::Full;
use hyper::{body::Incoming, Method, Request, Response, StatusCode};
use rand_core::{OsRng, RngCore};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use dnsmasq::{DhcpConfig, Dnsmasq, DnsmasqError, IPXE_SCRIPT_PATH};
pub use image::{ImageError, ServedFiles, StagedImage};

/// At most this many HTTP connections at once (one HPC boots at a time).
pub const MAX_CONNECTIONS: usize = 16;

/// What the boot server needs besides the image.
#[derive(Clone, Debug)]
pub struct BootServerConfig {
    pub dhcp: DhcpConfig,
    /// The dnsmasq binary.
    pub dnsmasq: PathBuf,
    /// dnsmasq's lease file, log and pid file go here.
    pub state_dir: PathBuf,
    /// Where the attestation server listens on the link.
    pub attestation_port: u16,
    /// The gateway's Noise static public key.
    pub gateway_key: [u8; 32],
    /// This HPC's fingerprint salt (kept across boots: the enrolled fingerprint depends on it).
    pub fingerprint_salt: [u8; 32],
    /// Each boot's secret is written here (0600) for the attestation server.
    pub boot_secret_file: PathBuf,
}

/// Why a boot could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootServerError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Dnsmasq(#[from] DnsmasqError),
    #[error("writing the boot secret to {path}: {source}")]
    Secret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What is served during one boot.
#[derive(Default)]
struct Boot {
    /// The verified files; none while refused.
    files: Option<ServedFiles>,
    /// This boot's configuration, until the agent fetched it.
    config: Option<BootConfig>,
    /// Counts boots.
    generation: u64,
}

/// The boot server of one HPC link.
pub struct BootServer {
    image: StagedImage,
    config: BootServerConfig,
    boot: Mutex<Boot>,
    dnsmasq: tokio::sync::Mutex<Option<Dnsmasq>>,
}

impl BootServer {
    /// The staged image.
    pub fn image(&self) -> &StagedImage {
        &self.image
    }

    /// Serves nothing until [`Self::new_boot`].
    pub fn new(image: StagedImage, config: BootServerConfig) -> Self {
        Self {
            image,
            config,
            boot: Mutex::new(Boot::default()),
            dnsmasq: tokio::sync::Mutex::new(None),
        }
    }

    /// Starts a boot: stops DHCP, verifies the staged image again, makes a fresh boot secret,
    /// and starts DHCP and TFTP afresh. Returns the boot's number. When the image changed on
    /// disk, nothing is served (no DHCP, TFTP or HTTP) until a later call succeeds.
    pub async fn new_boot(&self) -> Result<u64, BootServerError> {
        let mut dnsmasq = self.dnsmasq.lock().await;
        if let Some(running) = dnsmasq.take() {
            running.stop().await;
        }
        let refuse = |boot: &mut Boot| {
            boot.files = None;
            boot.config = None;
        };
        let files = match self.image.verify() {
            Ok(files) => files,
            Err(error) => {
                if let Ok(mut boot) = self.boot.lock() {
                    refuse(&mut boot);
                }
                warn!(%error, "the staged image failed verification: serving nothing");
                return Err(error.into());
            }
        };
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        write_secret(&self.config.boot_secret_file, &secret)?;
        let generation = {
            let mut boot = self.boot.lock().unwrap_or_else(|p| p.into_inner());
            boot.generation += 1;
            boot.files = Some(files);
            boot.config = Some(BootConfig {
                attestation_port: self.config.attestation_port,
                gateway_key: self.config.gateway_key,
                boot_secret: secret,
                fingerprint_salt: self.config.fingerprint_salt,
            });
            boot.generation
        };
        match Dnsmasq::start(
            &self.config.dnsmasq,
            &self.config.dhcp,
            self.image.dir(),
            &self.config.state_dir,
        )
        .await
        {
            Ok(running) => *dnsmasq = Some(running),
            Err(error) => {
                if let Ok(mut boot) = self.boot.lock() {
                    refuse(&mut boot);
                }
                return Err(error.into());
            }
        }
        info!(generation, golden = %hex::encode(self.image.golden().0), "boot ready");
        Ok(generation)
    }

    /// Whether this boot's configuration is still waiting for its agent.
    pub fn config_pending(&self) -> bool {
        self.boot
            .lock()
            .map(|b| b.config.is_some())
            .unwrap_or(false)
    }

    /// Stops DHCP and TFTP.
    pub async fn stop(&self) {
        if let Some(running) = self.dnsmasq.lock().await.take() {
            running.stop().await;
        }
    }

    /// Serves HTTP on `listener` (bind it to the link's address and [`BOOT_SERVER_PORT`](capsule_primitives::agent::BOOT_SERVER_PORT)) until
    /// `shutdown`.
    pub async fn serve_http(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let tracker = tokio_util::task::TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "accepting an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                warn!(%peer, "too many HTTP connections: dropped");
                continue;
            };
            let server = self.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let server = server.clone();
                    async move { Ok::<_, std::convert::Infallible>(server.answer(peer, request)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    result = connection => if let Err(error) = result {
                        warn!(%peer, %error, "HTTP connection ended");
                    },
                }
                drop(permit);
            });
        }
        tracker.close();
        tracker.wait().await;
    }

    fn answer(&self, peer: SocketAddr, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        let reply = |status: StatusCode, body: Bytes| {
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            response
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
        }
        let mut boot = self.boot.lock().unwrap_or_else(|p| p.into_inner());
        let Some(files) = &boot.files else {
            warn!(%peer, path, "refused: no verified image to serve");
            return reply(StatusCode::SERVICE_UNAVAILABLE, Bytes::new());
        };
        let body = match path {
            IPXE_SCRIPT_PATH => Some(Bytes::from(ipxe_script(&files.cmdline))),
            BOOT_CONFIG_PATH => match boot.config.take() {
                Some(config) => Some(Bytes::from(config.encode())),
                None => {
                    warn!(%peer, "refused: this boot's configuration was handed out already");
                    return reply(StatusCode::GONE, Bytes::new());
                }
            },
            _ => path
                .strip_prefix('/')
                .and_then(|name| files.files.get(name))
                .cloned(),
        };
        match body {
            Some(body) => {
                info!(%peer, path, bytes = body.len(), "served");
                reply(StatusCode::OK, body)
            }
            None => reply(StatusCode::NOT_FOUND, Bytes::new()),
        }
    }
}

/// The iPXE script: UEFI clients chain the unified kernel image (the firmware measures it);
/// BIOS clients boot its kernel and initramfs with its command line. Paths are relative to the
/// script's own URL.
///
/// iPXE hands a chained EFI image its name as its load options, and with Secure Boot off
/// systemd's stub lets load options replace the image's own command line: the kernel would
/// boot with `boot.efi` as its whole command line. So UEFI clients get the image's command
/// line as arguments too (the kernel sees `boot.efi` first, which it passes on to /init);
/// the stub measures what it used into PCR 12.
pub fn ipxe_script(cmdline: &str) -> String {
    format!(
        "#!ipxe\n\
         iseq ${{platform}} efi && goto uefi ||\n\
         kernel {kernel} {cmdline}\n\
         initrd {initrd}\n\
         boot\n\
         :uefi\n\
         chain {uki} {cmdline}\n",
        kernel = image::KERNEL,
        initrd = image::INITRD,
        uki = BOOT_IMAGE_PATH.trim_start_matches('/'),
    )
}

fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), BootServerError> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let error = |source| BootServerError::Secret {
        path: path.to_owned(),
        source,
    };
    // Written beside and renamed over, so a reader sees the old secret or the new one.
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(error)?;
    file.write_all(hex::encode(secret).as_bytes())
        .map_err(error)?;
    file.sync_all().map_err(error)?;
    std::fs::rename(&partial, path).map_err(error)
}
