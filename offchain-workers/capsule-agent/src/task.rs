//! Tasks over the channel (ARCHITECTURE, flow 5): the agent takes a [`TaskOffer`] and its data
//! (the function's image archive, then the input capsules, sealed to this boot's session key),
//! opens the inputs, runs the function through [`capsule_executor`] (the archive is checked
//! against the image's digest before it is loaded), seals each output to the task's
//! recipients and signs the result manifest with the boot's Ed25519 session key. Plaintext
//! exists only here and inside the function's container.
//!
//! One task at a time. The run happens beside the channel's loop, which keeps answering
//! challenges; the gateway polls for the result and then fetches the sealed outputs in pieces.
use std::sync::{Arc, Mutex};

use capsule_executor::{egress::EgressNetwork, Executor, Outcome, RunSpec, Runtime};
use capsule_format::{Opener, PublicKey, Recipient, SecretKey};
use capsule_primitives::{
    agent::{
        AgentMessage, TaskFile, TaskOffer, TaskResult, MAX_REASON, MAX_TASK_CHUNK,
        MAX_TASK_FILE_NAME,
    },
    task::MAX_RESULTS,
    BoundedVec, ResultManifest, TaskOutcome,
};
use ed25519_dalek::{Signer, SigningKey};
use tracing::{info, info_span, warn, Instrument};

/// What the agent knows of the task.
enum State {
    Idle,
    Receiving {
        offer: TaskOffer,
        data: Vec<u8>,
    },
    Running,
    Finished {
        result: Box<TaskResult>,
        sealed: Vec<Vec<u8>>,
    },
    Failed(String),
}

/// How the agent's tasks run.
#[derive(Clone, Debug, Default)]
pub struct TaskConfig {
    /// The `pause` binary that holds a networked task's namespace; without it, tasks whose
    /// policy allows destinations are refused.
    pub holder_binary: Option<Vec<u8>>,
    /// Starts the container engine when the first task finds none (the boot image's
    /// `engine-up`); the agent then waits for it to answer.
    pub engine_start: Option<std::path::PathBuf>,
}

/// How long a started engine may take to answer.
const ENGINE_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// The engine, started first if it does not answer and `config` says how.
async fn connect(config: &TaskConfig) -> Result<Executor, String> {
    let first = match Executor::connect(Runtime::Runc).await {
        Ok(executor) => return Ok(executor),
        Err(error) => error,
    };
    let Some(start) = &config.engine_start else {
        return Err(format!("the container engine: {first}"));
    };
    let started = std::time::Instant::now();
    info!(program = %start.display(), "starting the container engine");
    let status = std::process::Command::new(start)
        .status()
        .map_err(|e| format!("running {}: {e}", start.display()))?;
    if !status.success() {
        return Err(format!("{} failed: {status}", start.display()));
    }
    loop {
        match Executor::connect(Runtime::Runc).await {
            Ok(executor) => {
                info!(elapsed = ?started.elapsed(), "the container engine answers");
                return Ok(executor);
            }
            Err(error) if started.elapsed() > ENGINE_START_TIMEOUT => {
                return Err(format!(
                    "the container engine did not answer within {ENGINE_START_TIMEOUT:?} of its start: {error}"
                ))
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

/// The agent's task side, for one boot.
pub struct Tasks {
    state: Arc<Mutex<State>>,
    config: TaskConfig,
    opener_key: SecretKey,
    signing: SigningKey,
    executor: Arc<tokio::sync::OnceCell<Executor>>,
}

fn refused(reason: &str) -> AgentMessage {
    let mut reason = reason.as_bytes().to_vec();
    reason.truncate(MAX_REASON as usize);
    AgentMessage::TaskRefused(BoundedVec::truncate_from(reason))
}

impl Tasks {
    /// Inputs are opened with the boot's X25519 key (`noise_private`); manifests are signed
    /// with `signing`.
    pub fn new(noise_private: [u8; 32], signing: SigningKey, config: TaskConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::Idle)),
            config,
            opener_key: SecretKey::from_bytes(noise_private),
            signing,
            executor: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock is a panic elsewhere: the state it holds is still the last one set.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// An offer: taken when no task is in hand and it passes its checks.
    pub fn offer(&self, offer: TaskOffer) -> AgentMessage {
        if let Err(why) = offer.check() {
            return refused(why);
        }
        if !offer.policy.egress.is_empty() && self.config.holder_binary.is_none() {
            return refused("this HPC runs no networked tasks (its agent has no holder image)");
        }
        self.with_state(|state| match state {
            State::Idle | State::Failed(_) => {
                info!(
                    task = offer.task.0,
                    bytes = offer.data_bytes(),
                    "task offered"
                );
                // Grown as pieces come: an offer's size is a claim, not memory to set aside.
                let capacity = usize::try_from(offer.data_bytes().min(16 << 20)).unwrap_or(0);
                *state = State::Receiving {
                    data: Vec::with_capacity(capacity),
                    offer,
                };
                AgentMessage::TaskAck
            }
            _ => refused("a task is already in hand: one at a time"),
        })
    }

    /// The next piece of the task's data; the last one starts the run.
    pub fn data(&self, piece: &[u8]) -> AgentMessage {
        let complete = self.with_state(|state| {
            let State::Receiving { offer, data } = state else {
                return Err("no task is waiting for data");
            };
            let expected = offer.data_bytes();
            if data.len() as u64 + piece.len() as u64 > expected {
                *state = State::Idle;
                return Err("more data than the offer announced");
            }
            data.extend_from_slice(piece);
            if (data.len() as u64) < expected {
                return Ok(None);
            }
            match std::mem::replace(state, State::Running) {
                State::Receiving { offer, data } => Ok(Some((offer, data))),
                _ => Ok(None),
            }
        });
        match complete {
            Err(why) => refused(why),
            Ok(None) => AgentMessage::TaskAck,
            Ok(Some((offer, data))) => {
                self.start(offer, data);
                AgentMessage::TaskAck
            }
        }
    }

    fn start(&self, offer: TaskOffer, data: Vec<u8>) {
        let state = self.state.clone();
        let executor = self.executor.clone();
        let key = self.opener_key.clone();
        let signing = self.signing.clone();
        let config = self.config.clone();
        let span = info_span!("task", task = offer.task.0);
        tokio::spawn(
            async move {
                // A run that ends abnormally (a panic) leaves the task failed, not running.
                let mut guard = Unfinished {
                    state: state.clone(),
                    ended: false,
                };
                let ended = run(&executor, &config, &key, &signing, &offer, &data).await;
                guard.ended = true;
                drop(data);
                let next = match ended {
                    Ok((result, sealed)) => {
                        info!(outcome = ?result.manifest.outcome, outputs = sealed.len(), "task finished");
                        State::Finished {
                            result: Box::new(result),
                            sealed,
                        }
                    }
                    Err(why) => {
                        warn!(%why, "task failed");
                        State::Failed(why)
                    }
                };
                *state.lock().unwrap_or_else(|p| p.into_inner()) = next;
            }
            .instrument(span),
        );
    }

    /// How the task is.
    pub fn poll(&self) -> AgentMessage {
        self.with_state(|state| match state {
            State::Running => AgentMessage::TaskRunning,
            State::Finished { result, .. } => AgentMessage::TaskFinished((**result).clone()),
            State::Failed(why) => {
                let answer = refused(why);
                *state = State::Idle;
                answer
            }
            State::Receiving { .. } => refused("the task's data is not all here yet"),
            State::Idle => refused("no task is in hand"),
        })
    }

    /// A piece of sealed output `index` from `offset`.
    pub fn output(&self, index: u32, offset: u64) -> AgentMessage {
        self.with_state(|state| {
            let State::Finished { sealed, .. } = state else {
                return refused("no finished task");
            };
            let Some(output) = sealed.get(index as usize) else {
                return refused("no such output");
            };
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(output.len());
            let end = start
                .saturating_add(MAX_TASK_CHUNK as usize)
                .min(output.len());
            AgentMessage::TaskOutputChunk(BoundedVec::truncate_from(output[start..end].to_vec()))
        })
    }

    /// The gateway has the outputs.
    pub fn done(&self) -> AgentMessage {
        self.with_state(|state| match state {
            State::Finished { .. } | State::Failed(_) | State::Idle => {
                *state = State::Idle;
                AgentMessage::TaskAck
            }
            _ => refused("the task has not finished"),
        })
    }
}

/// Marks the task failed when dropped before the run ended.
struct Unfinished {
    state: Arc<Mutex<State>>,
    ended: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.ended {
            *self.state.lock().unwrap_or_else(|p| p.into_inner()) =
                State::Failed("the task's run ended abnormally".into());
        }
    }
}

/// Opens the inputs, runs the function, seals the outputs and signs the manifest.
async fn run(
    executor: &tokio::sync::OnceCell<Executor>,
    config: &TaskConfig,
    key: &SecretKey,
    signing: &SigningKey,
    offer: &TaskOffer,
    data: &[u8],
) -> Result<(TaskResult, Vec<Vec<u8>>), String> {
    let (archive, mut rest) = data.split_at(offer.image_archive_bytes as usize);
    let keys = [key.clone()];
    let opener = Opener::new(&keys);
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for input in offer.inputs.iter() {
        let name = std::str::from_utf8(&input.name)
            .map_err(|_| "an input's name is not UTF-8".to_string())?
            .to_owned();
        let (capsule, after) = rest.split_at(input.bytes as usize);
        rest = after;
        let mut plain = Vec::new();
        capsule_format::open(capsule, &mut plain, &opener, &mut |_| {})
            .map_err(|e| format!("input {name}: {e}"))?;
        inputs.push((name, plain));
    }
    let executor = executor
        .get_or_try_init(|| async {
            let mut executor = connect(config).await?;
            if let Some(holder) = &config.holder_binary {
                let image = capsule_image::build_function_image(holder);
                executor
                    .ensure_image(&image.id, Some(&image.tar))
                    .await
                    .map_err(|e| format!("loading the holder image: {e}"))?;
                executor = executor.with_egress(EgressNetwork::new(image.id));
            }
            Ok::<_, String>(executor)
        })
        .await?;
    executor
        .ensure_image(&offer.image, Some(archive))
        .await
        .map_err(|e| format!("the function image: {e}"))?;
    let named: Vec<(&str, &[u8])> = inputs
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    let egress: Vec<_> = offer.policy.egress.iter().copied().collect();
    let report = executor
        .run(&RunSpec {
            task: offer.task,
            image: offer.image,
            limits: offer.policy.limits,
            timeout: std::time::Duration::from_secs(offer.policy.timeout_secs.into()),
            stdin: &[],
            inputs: &named,
            egress: &egress,
        })
        .await
        .map_err(|e| format!("running the function: {e}"))?;
    drop(inputs);
    let (outcome, exit_code) = match &report.outcome {
        Outcome::Completed { exit_code } => (TaskOutcome::Completed, Some(*exit_code)),
        Outcome::TimedOut => (TaskOutcome::TimedOut, None),
        Outcome::OomKilled => (TaskOutcome::OomKilled, None),
        Outcome::PolicyViolation(violation) => {
            info!(?violation, "the function broke its policy");
            (TaskOutcome::PolicyViolation, None)
        }
        Outcome::EngineError(error) => return Err(format!("the container engine failed: {error}")),
    };
    let recipients: Vec<Recipient> = offer
        .recipients
        .iter()
        .map(|key| Recipient::plain(PublicKey(*key)))
        .collect();
    let (mut sealed, mut cids, mut files) = (Vec::new(), Vec::new(), Vec::new());
    // What a result carries: at most MAX_RESULTS outputs, by name order, with names a result
    // can hold. The rest are dropped, never the signed outcome.
    let (kept, dropped): (Vec<_>, Vec<_>) =
        report
            .outputs
            .files
            .iter()
            .enumerate()
            .partition(|(i, (name, _))| {
                *i < MAX_RESULTS as usize && name.len() <= MAX_TASK_FILE_NAME as usize
            });
    if !dropped.is_empty() {
        warn!(
            dropped = dropped.len(),
            "outputs a result cannot carry were dropped"
        );
    }
    for (_, (name, bytes)) in kept {
        let mut capsule = Vec::new();
        capsule_format::seal(bytes.as_slice(), &mut capsule, &recipients, &mut |_| {})
            .map_err(|e| format!("sealing output {name}: {e}"))?;
        let (_, payload) =
            capsule_format::split(&capsule).map_err(|e| format!("output {name}: {e}"))?;
        cids.push(capsule_store::payload_cid(payload));
        files.push(TaskFile {
            name: BoundedVec::try_from(name.as_bytes().to_vec())
                .map_err(|_| format!("output name {name} is too long"))?,
            bytes: capsule.len() as u64,
        });
        sealed.push(capsule);
    }
    let too_many = || "more outputs than a result carries".to_string();
    let manifest = ResultManifest {
        task: offer.task,
        outcome,
        results: BoundedVec::try_from(cids).map_err(|_| too_many())?,
        evidence: report.evidence.digest(),
    };
    let signature = signing.sign(&manifest.signing_message()).to_bytes();
    Ok((
        TaskResult {
            manifest,
            signature,
            evidence: report.evidence,
            exit_code,
            outputs: BoundedVec::try_from(files).map_err(|_| too_many())?,
        },
        sealed,
    ))
}
