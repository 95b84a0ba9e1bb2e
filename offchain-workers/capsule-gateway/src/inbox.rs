//! The gateway's local task inbox, until tasks come from the chain: a directory where a
//! `NAME.task.json` file asks for one run on the HPC. The gateway takes each file (renamed to
//! `NAME.task.taken`), relays the task over the agent channel, and writes the outcome beside
//! it: `NAME.result.json`, and each sealed output as `NAME.out/OUTPUT.capsule`. A file that
//! cannot be read or is malformed gets a `NAME.result.json` that says why; nothing is lost.
//!
//! ```json
//! { "task": 7,
//!   "image": "<image id, 64 hex digits>", "archive": "demo.tar",
//!   "inputs": [ { "name": "b.list", "capsule": "b.capsule" } ],
//!   "recipients": [ "<X25519 public key, 64 hex digits>" ],
//!   "policy": { "memory_bytes": 67108864, "cpu_millis": 1000, "pids": 32,
//!               "tmpfs_bytes": 1048576, "output_bytes": 1048576, "timeout_secs": 30,
//!               "egress": [ { "address": "10.79.0.1", "port": 8080, "protocol": "tcp" } ] } }
//! ```
//! Relative paths are the inbox's.
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context};
use capsule_attestation::task::{TaskDelivery, TaskJob};
use capsule_primitives::{
    agent::{TaskFile, TaskOffer},
    policy::{EgressRule, IpAddress, ResourceLimits, TaskPolicy, TransportProtocol},
    BoundedVec, ImageDigest, TaskId,
};
use codec::Encode;
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use crate::Events;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFileJson {
    task: u64,
    image: String,
    archive: PathBuf,
    #[serde(default)]
    inputs: Vec<InputJson>,
    recipients: Vec<String>,
    policy: PolicyJson,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputJson {
    name: String,
    capsule: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyJson {
    memory_bytes: u64,
    cpu_millis: u32,
    pids: u32,
    tmpfs_bytes: u64,
    output_bytes: u64,
    timeout_secs: u32,
    #[serde(default)]
    egress: Vec<EgressJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressJson {
    address: IpAddr,
    port: u16,
    protocol: String,
}

fn hex32(text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    capsule_channel::key_from_hex(text).with_context(|| format!("{what} is not 64 hex digits"))
}

/// Reads a task file and what it names into a job's offer and data.
fn read_task(inbox: &Path, path: &Path) -> anyhow::Result<(TaskOffer, Vec<u8>)> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let spec: TaskFileJson = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a task file", path.display()))?;
    let read = |file: &Path| {
        let file = inbox.join(file);
        std::fs::read(&file).with_context(|| format!("reading {}", file.display()))
    };
    let mut data = read(&spec.archive)?;
    let image_archive_bytes = data.len() as u64;
    let mut inputs = Vec::new();
    for input in &spec.inputs {
        let capsule = read(&input.capsule)?;
        inputs.push(TaskFile {
            name: BoundedVec::try_from(input.name.as_bytes().to_vec())
                .map_err(|_| anyhow::anyhow!("input name {} is too long", input.name))?,
            bytes: capsule.len() as u64,
        });
        data.extend_from_slice(&capsule);
    }
    let mut egress = Vec::new();
    for rule in &spec.policy.egress {
        egress.push(EgressRule {
            address: match rule.address {
                IpAddr::V4(v4) => IpAddress::V4(v4.octets()),
                IpAddr::V6(v6) => IpAddress::V6(v6.octets()),
            },
            port: rule.port,
            protocol: match rule.protocol.as_str() {
                "tcp" => TransportProtocol::Tcp,
                "udp" => TransportProtocol::Udp,
                other => bail!("egress protocol {other:?} is neither tcp nor udp"),
            },
        });
    }
    let recipients = spec
        .recipients
        .iter()
        .map(|r| hex32(r, "a recipient"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let too_many = |what: &str| anyhow::anyhow!("the task has too many {what}");
    let offer = TaskOffer {
        task: TaskId(spec.task),
        image: ImageDigest(hex32(&spec.image, "the image id")?),
        policy: TaskPolicy {
            egress: BoundedVec::try_from(egress).map_err(|_| too_many("egress rules"))?,
            limits: ResourceLimits {
                memory_bytes: spec.policy.memory_bytes,
                cpu_millis: spec.policy.cpu_millis,
                pids: spec.policy.pids,
                tmpfs_bytes: spec.policy.tmpfs_bytes,
                output_bytes: spec.policy.output_bytes,
            },
            timeout_secs: spec.policy.timeout_secs,
        },
        image_archive_bytes,
        inputs: BoundedVec::try_from(inputs).map_err(|_| too_many("inputs"))?,
        recipients: BoundedVec::try_from(recipients).map_err(|_| too_many("recipients"))?,
    };
    if let Err(why) = offer.check() {
        bail!("{why}");
    }
    Ok((offer, data))
}

/// `stem` with `suffix` appended (`with_extension` would replace a dotted name's last part).
fn sibling(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes the outputs and `result.json` of a delivered task.
fn write_result(
    stem: &Path,
    delivery: Result<&TaskDelivery, &str>,
) -> anyhow::Result<serde_json::Value> {
    let json = match delivery {
        Err(why) => serde_json::json!({ "error": why }),
        Ok(delivery) => {
            let out = sibling(stem, ".out");
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let result = &delivery.result;
            let mut outputs = Vec::new();
            for ((file, bytes), cid) in result
                .outputs
                .iter()
                .zip(&delivery.outputs)
                .zip(result.manifest.results.iter())
            {
                let name = String::from_utf8_lossy(&file.name).replace('/', "_");
                let path = out.join(format!("{name}.capsule"));
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                outputs.push(serde_json::json!({
                    "name": name,
                    "cid": cid.to_string(),
                    "file": path,
                }));
            }
            serde_json::json!({
                "task": result.manifest.task.0,
                "outcome": format!("{:?}", result.manifest.outcome),
                "exit_code": result.exit_code,
                "evidence_clean": result.evidence.is_clean(),
                "manifest": hex::encode(result.manifest.encode()),
                "signature": hex::encode(result.signature),
                "outputs": outputs,
            })
        }
    };
    let path = sibling(stem, ".result.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(json)
}

/// Watches `inbox` and relays its tasks, one at a time, through `jobs`.
pub async fn watch(inbox: PathBuf, jobs: UnboundedSender<TaskJob>, events: Events) {
    loop {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&inbox)
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".task.json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for path in names {
            let file = path.to_string_lossy().into_owned();
            let stem = PathBuf::from(file.trim_end_matches(".task.json"));
            let taken = sibling(&stem, ".task.taken");
            if let Err(error) = std::fs::rename(&path, &taken) {
                warn!(%error, path = %path.display(), "cannot take the task file");
                continue;
            }
            let job = read_task(&inbox, &taken);
            let (offer, data) = match job {
                Ok(job) => job,
                Err(error) => {
                    warn!(error = format!("{error:#}"), "refusing a task file");
                    let _ = write_result(&stem, Err(&format!("{error:#}")));
                    events.write(serde_json::json!({
                        "event": "task_refused", "file": taken, "reason": format!("{error:#}"),
                    }));
                    continue;
                }
            };
            let task = offer.task.0;
            info!(task, bytes = data.len(), "task taken from the inbox");
            events.write(serde_json::json!({"event": "task_sent", "task": task}));
            let (reply, answer) = tokio::sync::oneshot::channel();
            if jobs.send(TaskJob { offer, data, reply }).is_err() {
                return;
            }
            let delivered = answer
                .await
                .unwrap_or_else(|_| Err("the gateway stopped".into()));
            let written = write_result(&stem, delivered.as_ref().map_err(String::as_str));
            match (&delivered, written) {
                (Ok(delivery), Ok(_)) => events.write(serde_json::json!({
                    "event": "task_finished",
                    "task": task,
                    "outcome": format!("{:?}", delivery.result.manifest.outcome),
                    "exit_code": delivery.result.exit_code,
                    "evidence_clean": delivery.result.evidence.is_clean(),
                    "outputs": delivery.outputs.len(),
                })),
                (Err(why), _) => events.write(serde_json::json!({
                    "event": "task_failed", "task": task, "reason": why,
                })),
                (Ok(_), Err(error)) => events.write(serde_json::json!({
                    "event": "task_failed", "task": task, "reason": format!("{error:#}"),
                })),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
