//! The start of a PXE boot: the agent fetches this boot's [`BootConfig`] and the unified kernel
//! image from the gateway's boot server (plain HTTP on the HPC link, which only the gateway and
//! this HPC share), before any channel exists. The configuration is handed out once per boot;
//! the image is kept in RAM so the agent can measure it.
use std::{
    io::Read,
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use capsule_primitives::agent::{BootConfig, BOOT_CONFIG_PATH, BOOT_IMAGE_PATH, BOOT_SERVER_PORT};
use codec::{DecodeAll, MaxEncodedLen};
use tracing::{info, warn};

/// The largest boot image the agent keeps (a unified kernel image with a container engine is
/// far smaller).
pub const MAX_BOOT_IMAGE: u64 = 512 << 20;

/// Why the boot could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("the boot server at {url} did not answer: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("the boot server refused {url} with status {status}: the configuration is handed out once per boot, so power-cycle the HPC from its gateway")]
    Refused { url: String, status: u16 },
    #[error("reading {url}: {source}")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("the boot server's configuration is not a boot configuration")]
    Undecodable,
    #[error("writing the boot image to {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn get(agent: &ureq::Agent, url: &str, limit: u64) -> Result<Vec<u8>, BootError> {
    let response = agent.get(url).call().map_err(|error| match error {
        ureq::Error::Status(status, _) => BootError::Refused {
            url: url.to_owned(),
            status,
        },
        other => BootError::Unreachable {
            url: url.to_owned(),
            source: Box::new(other),
        },
    })?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|source| BootError::Read {
            url: url.to_owned(),
            source,
        })?;
    if body.len() as u64 > limit {
        return Err(BootError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    Ok(body)
}

/// Fetches the boot's configuration and writes the boot image to `image`, retrying an
/// unreachable server for up to `patience` (the link may still be coming up). Blocking.
pub fn fetch(server: IpAddr, image: &Path, patience: Duration) -> Result<BootConfig, BootError> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout(Duration::from_secs(60))
        .build();
    let base = match server {
        IpAddr::V4(v4) => format!("http://{v4}:{BOOT_SERVER_PORT}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{BOOT_SERVER_PORT}"),
    };
    let deadline = Instant::now() + patience;
    let config_url = format!("{base}{BOOT_CONFIG_PATH}");
    let config = loop {
        match get(&agent, &config_url, BootConfig::max_encoded_len() as u64) {
            Err(BootError::Unreachable { .. }) if Instant::now() < deadline => {
                warn!(url = %config_url, "boot server not reachable yet");
                std::thread::sleep(Duration::from_millis(500));
            }
            other => break other?,
        }
    };
    let config =
        BootConfig::decode_all(&mut config.as_slice()).map_err(|_| BootError::Undecodable)?;
    let image_url = format!("{base}{BOOT_IMAGE_PATH}");
    let bytes = get(&agent, &image_url, MAX_BOOT_IMAGE)?;
    std::fs::write(image, &bytes).map_err(|source| BootError::Write {
        path: image.display().to_string(),
        source,
    })?;
    info!(bytes = bytes.len(), "boot configuration and image fetched");
    Ok(config)
}
