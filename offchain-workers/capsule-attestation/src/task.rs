//! The gateway's side of a task over the agent channel: a [`TaskJob`] (the offer and its data)
//! is relayed to the agent one message at a time, between challenges, so attestation never
//! pauses for a task. The finished task is checked before anyone sees it: the manifest is
//! signed by the boot's attested Ed25519 session key and is about this task, its evidence
//! digest is the cleanup evidence's, and every sealed output fetched has the size and the CID
//! the manifest names. An HPC that fails these checks lied about its result: a violation.
use std::time::{Duration, Instant};

use capsule_channel::Channel;
use capsule_primitives::{
    agent::{AgentMessage, GatewayMessage, TaskOffer, TaskResult, MAX_TASK_CHUNK},
    BoundedVec,
};
use ed25519_dalek::{Signature, VerifyingKey};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::info;

use crate::server::{ask, ServerConfig, Violation};

/// How often the gateway asks a running task how it is.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A task to run on the HPC: the offer, its data (the image archive, then each input capsule,
/// as the offer lists them), and where the outcome goes.
pub struct TaskJob {
    pub offer: TaskOffer,
    pub data: Vec<u8>,
    pub reply: tokio::sync::oneshot::Sender<Result<TaskDelivery, String>>,
}

/// A finished task whose result checked: the agent's result and the sealed outputs, in the
/// manifest's order.
#[derive(Clone, Debug)]
pub struct TaskDelivery {
    pub result: TaskResult,
    pub outputs: Vec<Vec<u8>>,
}

enum Phase {
    Offer,
    Data {
        sent: usize,
    },
    Poll {
        next: Instant,
        /// The task is abandoned when it has not finished by then.
        deadline: Instant,
    },
    Fetch {
        result: Box<TaskResult>,
        outputs: Vec<Vec<u8>>,
        /// The output being fetched, one piece per step.
        current: Vec<u8>,
    },
    Done {
        delivery: Box<TaskDelivery>,
    },
}

/// How long past its own timeout a task may take: the image's load, the engine's start.
pub const TASK_GRACE: Duration = Duration::from_secs(300);

/// One task in flight on one session.
pub struct TaskRelay {
    job: Option<TaskJob>,
    phase: Phase,
}

/// The largest sealed output accepted for `output_bytes` of plaintext: the capsule's STREAM adds
/// 16 bytes per 64 KiB chunk, its header some hundred bytes per recipient.
fn sealed_limit(output_bytes: u64) -> u64 {
    output_bytes
        .saturating_add(output_bytes / 4096)
        .saturating_add(64 << 10)
}

impl TaskRelay {
    pub fn new(job: TaskJob) -> Self {
        Self {
            job: Some(job),
            phase: Phase::Offer,
        }
    }

    /// When the next step is due.
    pub fn due(&self) -> Instant {
        match self.phase {
            Phase::Poll { next, .. } => next,
            _ => Instant::now(),
        }
    }

    /// Tells the job's owner the task did not finish (the session ended, or the agent refused
    /// it).
    pub fn abandon(mut self, why: &str) {
        if let Some(job) = self.job.take() {
            let _ = job.reply.send(Err(why.to_owned()));
        }
    }

    /// One exchange with the agent. `Ok(true)` when the task is over (its owner was told).
    pub async fn step<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        channel: &mut Channel<S>,
        config: &ServerConfig,
        session_key: &[u8; 32],
    ) -> Result<bool, Violation> {
        let Some(job) = self.job.as_ref() else {
            return Ok(true);
        };
        let refused = |reason: &BoundedVec<u8, _>| String::from_utf8_lossy(reason).into_owned();
        let next = match std::mem::replace(&mut self.phase, Phase::Offer) {
            Phase::Offer => match ask(
                channel,
                config,
                &GatewayMessage::TaskOffer(job.offer.clone()),
            )
            .await?
            {
                AgentMessage::TaskAck => Phase::Data { sent: 0 },
                AgentMessage::TaskRefused(reason) => return Ok(self.finish(Err(refused(&reason)))),
                _ => return Err(Violation::Undecodable),
            },
            Phase::Data { sent } => {
                let end = (sent + MAX_TASK_CHUNK as usize).min(job.data.len());
                let piece = BoundedVec::truncate_from(job.data[sent..end].to_vec());
                match ask(channel, config, &GatewayMessage::TaskData(piece)).await? {
                    AgentMessage::TaskAck if end == job.data.len() => {
                        info!(task = job.offer.task.0, bytes = end, "task data sent");
                        let timeout =
                            Duration::from_secs(job.offer.policy.timeout_secs.into()) + TASK_GRACE;
                        Phase::Poll {
                            next: Instant::now() + POLL_INTERVAL,
                            deadline: Instant::now() + timeout,
                        }
                    }
                    AgentMessage::TaskAck => Phase::Data { sent: end },
                    AgentMessage::TaskRefused(reason) => {
                        return Ok(self.finish(Err(refused(&reason))))
                    }
                    _ => return Err(Violation::Undecodable),
                }
            }
            Phase::Poll { deadline, .. } => match ask(channel, config, &GatewayMessage::TaskPoll)
                .await?
            {
                AgentMessage::TaskRunning if Instant::now() > deadline => {
                    return Ok(self.finish(Err(
                        "the task did not finish within its timeout and the grace for loading it"
                            .into(),
                    )))
                }
                AgentMessage::TaskRunning => Phase::Poll {
                    next: Instant::now() + POLL_INTERVAL,
                    deadline,
                },
                AgentMessage::TaskFinished(result) => {
                    check_result(&job.offer, &result, session_key)?;
                    Phase::Fetch {
                        result: Box::new(result),
                        outputs: Vec::new(),
                        current: Vec::new(),
                    }
                }
                AgentMessage::TaskRefused(reason) => return Ok(self.finish(Err(refused(&reason)))),
                _ => return Err(Violation::Undecodable),
            },
            Phase::Fetch {
                result,
                mut outputs,
                mut current,
            } => {
                let index = outputs.len();
                let Some(file) = result.outputs.get(index) else {
                    // Every output is here: tell the agent, then deliver.
                    match ask(channel, config, &GatewayMessage::TaskDone).await? {
                        AgentMessage::TaskAck => {}
                        _ => return Err(Violation::Undecodable),
                    }
                    self.phase = Phase::Done {
                        delivery: Box::new(TaskDelivery {
                            result: *result,
                            outputs,
                        }),
                    };
                    return Ok(self.deliver());
                };
                // One piece per step, so challenges go on between them; every piece but the
                // last is whole (an agent cannot stall the gateway with tiny ones).
                let request = GatewayMessage::TaskOutputRequest {
                    index: index as u32,
                    offset: current.len() as u64,
                };
                let left = file.bytes - current.len() as u64;
                match ask(channel, config, &request).await? {
                    AgentMessage::TaskOutputChunk(piece)
                        if piece.len() as u64 == left.min(u64::from(MAX_TASK_CHUNK)) =>
                    {
                        current.extend_from_slice(&piece)
                    }
                    _ => return Err(lied("an output piece is not the size it must be")),
                }
                if (current.len() as u64) == file.bytes {
                    let cid = capsule_format::split(&current)
                        .map(|(_, payload)| capsule_store::payload_cid(payload))
                        .map_err(|_| lied("an output is not a capsule"))?;
                    if result.manifest.results.get(index) != Some(&cid) {
                        return Err(lied("an output's CID is not the manifest's"));
                    }
                    outputs.push(std::mem::take(&mut current));
                }
                Phase::Fetch {
                    result,
                    outputs,
                    current,
                }
            }
            done @ Phase::Done { .. } => done,
        };
        self.phase = next;
        Ok(false)
    }

    fn deliver(&mut self) -> bool {
        match std::mem::replace(&mut self.phase, Phase::Offer) {
            Phase::Done { delivery } => self.finish(Ok(*delivery)),
            other => {
                self.phase = other;
                false
            }
        }
    }

    fn finish(&mut self, outcome: Result<TaskDelivery, String>) -> bool {
        if let Some(job) = self.job.take() {
            let _ = job.reply.send(outcome);
        }
        true
    }
}

fn lied(what: &str) -> Violation {
    Violation::Task(format!("the agent's task result does not check: {what}"))
}

/// The result is this task's, signed by the session key, with the evidence its manifest names
/// and outputs within the policy's limits.
fn check_result(
    offer: &TaskOffer,
    result: &TaskResult,
    session_key: &[u8; 32],
) -> Result<(), Violation> {
    let key = VerifyingKey::from_bytes(session_key).map_err(|_| lied("no session key"))?;
    key.verify_strict(
        &result.manifest.signing_message(),
        &Signature::from_bytes(&result.signature),
    )
    .map_err(|_| lied("the manifest is not signed by the attested session key"))?;
    if result.manifest.task != offer.task || result.evidence.task != offer.task {
        return Err(lied("the manifest is another task's"));
    }
    if result.evidence.digest() != result.manifest.evidence {
        return Err(lied("the evidence is not the manifest's"));
    }
    if result.outputs.len() != result.manifest.results.len() {
        return Err(lied("the outputs are not the manifest's"));
    }
    let total = result
        .outputs
        .iter()
        .fold(0u64, |sum, file| sum.saturating_add(file.bytes));
    if total > sealed_limit(offer.policy.limits.output_bytes) {
        return Err(lied("the outputs are larger than the policy allows"));
    }
    Ok(())
}
