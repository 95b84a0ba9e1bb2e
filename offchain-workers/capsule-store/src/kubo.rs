//! The optional IPFS backend: a kubo node's HTTP RPC (`/api/v0`, documented at
//! docs.ipfs.tech/reference/kubo/rpc). Blocks go in with `block/put` (our codec, sha2-256) and
//! the CID kubo answers must equal ours; blocks come back with `block/get` and are re-hashed
//! here. Headers live in kubo's MFS under `/capsule-headers/<root CID>` (`files/write`,
//! `files/read`). Reads are `offline`, so a missing block is an error, not a network search.
//!
//! The RPC must stay on loopback (kubo's default, 127.0.0.1:5001): it has no authentication.
use std::io::Read;

use capsule_primitives::capsule::{CapsuleCid, CidCodec};

use crate::{verify_block, BlockStore, StoreError};

/// A kubo node's RPC, e.g. `http://127.0.0.1:5001`.
#[derive(Clone, Debug)]
pub struct KuboStore {
    api: String,
    agent: ureq::Agent,
}

const BOUNDARY: &str = "capsule-store-boundary-7d3f0c1e";
/// The largest answer read from kubo (a block is at most 1 MiB; errors are small).
const MAX_ANSWER: u64 = 2 * 1024 * 1024;

impl KuboStore {
    /// The store behind the kubo RPC at `url` (without `/api/v0`).
    pub fn new(url: &str) -> Self {
        Self {
            api: format!("{}/api/v0", url.trim_end_matches('/')),
            // A stalled node must not hang a fetch: a block is at most 1 MiB on loopback.
            agent: ureq::AgentBuilder::new()
                .timeout_connect(std::time::Duration::from_secs(10))
                .timeout(std::time::Duration::from_secs(120))
                .build(),
        }
    }

    fn url(&self, command: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{command}", self.api);
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(value);
        }
        url
    }

    /// POSTs `command`, with `body` as the multipart `file` field if given; returns the answer.
    fn call(
        &self,
        command: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, StoreError> {
        let url = self.url(command, query);
        let request = self.agent.post(&url);
        let result = match body {
            Some(bytes) => {
                let mut form = format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .into_bytes();
                form.extend_from_slice(bytes);
                form.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
                request
                    .set(
                        "Content-Type",
                        &format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .send_bytes(&form)
            }
            None => request.call(),
        };
        let read = |response: ureq::Response| -> Result<Vec<u8>, StoreError> {
            let mut answer = Vec::new();
            response
                .into_reader()
                .take(MAX_ANSWER)
                .read_to_end(&mut answer)
                .map_err(crate::io_error("reading kubo's answer"))?;
            Ok(answer)
        };
        match result {
            Ok(response) => read(response),
            Err(ureq::Error::Status(status, response)) => {
                let answer = read(response).unwrap_or_default();
                Err(StoreError::Kubo {
                    url: self.api.clone(),
                    status,
                    message: error_message(&answer),
                })
            }
            Err(error) => Err(StoreError::Kubo {
                url: self.api.clone(),
                status: 0,
                message: error.to_string(),
            }),
        }
    }
}

/// kubo's errors are `{"Message": "...", "Code": 0, "Type": "error"}`.
fn error_message(answer: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(answer)
        .ok()
        .and_then(|value| value.get("Message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned())
}

fn codec_name(cid: &CapsuleCid) -> &'static str {
    match cid.codec {
        CidCodec::Raw => "raw",
        CidCodec::DagPb => "dag-pb",
    }
}

fn header_path(root: &CapsuleCid) -> String {
    format!("/capsule-headers/{root}")
}

impl BlockStore for KuboStore {
    fn put(&self, cid: &CapsuleCid, block: &[u8]) -> Result<(), StoreError> {
        verify_block(cid, block)?;
        let answer = self.call(
            "block/put",
            &[
                ("cid-codec", codec_name(cid)),
                ("mhtype", "sha2-256"),
                ("mhlen", "32"),
                ("pin", "true"),
            ],
            Some(block),
        )?;
        let key = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|value| value.get("Key")?.as_str().map(str::to_string))
            .unwrap_or_default();
        if key != cid.to_string() {
            return Err(StoreError::KuboCid {
                ours: *cid,
                theirs: key,
            });
        }
        Ok(())
    }

    fn get(&self, cid: &CapsuleCid) -> Result<Vec<u8>, StoreError> {
        let text = cid.to_string();
        let block = self
            .call("block/get", &[("arg", &text), ("offline", "true")], None)
            .map_err(|error| match error {
                StoreError::Kubo { status: 500, .. } => StoreError::Missing(*cid),
                other => other,
            })?;
        verify_block(cid, &block)?;
        Ok(block)
    }

    fn has(&self, cid: &CapsuleCid) -> Result<bool, StoreError> {
        let text = cid.to_string();
        match self.call("block/stat", &[("arg", &text), ("offline", "true")], None) {
            Ok(_) => Ok(true),
            Err(StoreError::Kubo { status: 500, .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    fn put_header(&self, root: &CapsuleCid, header: &[u8]) -> Result<(), StoreError> {
        let path = header_path(root);
        self.call(
            "files/write",
            &[
                ("arg", &path),
                ("create", "true"),
                ("parents", "true"),
                ("truncate", "true"),
            ],
            Some(header),
        )
        .map(drop)
    }

    fn get_header(&self, root: &CapsuleCid) -> Result<Vec<u8>, StoreError> {
        self.call("files/read", &[("arg", &header_path(root))], None)
            .map_err(|error| match error {
                StoreError::Kubo { status: 500, .. } => StoreError::NoHeader(*root),
                other => other,
            })
    }
}
