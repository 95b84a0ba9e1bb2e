//! # Capsule executor
//!
//! Runs a task's function, a container image pinned by its image id, on a real Docker engine,
//! exactly as the task defines it and nothing more: no network, no devices, no capabilities,
//! no new privileges, a read-only root, a size-capped scratch, pids, memory and CPU limits, a
//! non-root user, no logs kept by the engine, and a timeout that kills the container. It runs
//! inside the agent on the HPC (runc) and on the gateway for light tasks (gVisor's `runsc`;
//! never plain runc there).
//!
//! Images are used by id only and never pulled: [`Executor::ensure_image`] loads a verified
//! archive when the engine lacks the image, and refuses an archive whose id differs.
//!
//! Inputs are files in `/scratch/in` (or stdin), never environment or arguments; outputs are
//! the files left in `/scratch/out` ([`scratch`]). A seccomp profile kills forbidden calls and
//! the kernel's audit records name them ([`seccomp`]). Every run's [`RunReport`] carries
//! [`CleanupEvidence`]: the host state digested before and after ([`host_state`]).
//!
//! A task whose policy allows destinations gets its own link instead of no network
//! ([`egress`]): a bridge in a router namespace whose [`firewall`] scope accepts exactly those
//! destinations and counts every other TCP or UDP attempt, which ends the run as
//! [`Violation::Destination`]. The firewall module is reused for the HPC's link on a gateway.
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

pub mod egress;
pub mod firewall;
pub mod host_state;
pub mod scratch;
pub mod seccomp;

use bollard::{
    models::{ContainerCreateBody, HostConfig, Mount, MountType},
    query_parameters::{
        AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ImportImageOptionsBuilder,
        KillContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
        WaitContainerOptionsBuilder,
    },
    Docker,
};
use capsule_image::docker_id;
use capsule_primitives::{
    evidence::{CleanupEvidence, HostStateCategory},
    measurement::ImageDigest,
    policy::{EgressRule, ResourceLimits},
    TaskId,
};
use egress::{EgressError, EgressNetwork, TaskLink};
use firewall::{Denied, Destination};
use futures::StreamExt;
use host_state::HostState;
use scratch::Scratch;
pub use scratch::{Outputs, RefusedOutput};
use tokio::io::AsyncWriteExt;
use tracing::{debug, info_span, warn, Instrument};

/// Debian's docker.io speaks API 1.41; we never ask for more.
pub const API_VERSION: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};
/// The label every task container carries, so a sweep after a crash finds them.
pub const TASK_LABEL: &str = "capsule.task";
/// The label of a networked task's holder container (see [`egress`]).
pub const HOLDER_LABEL: &str = "capsule.network-holder";
/// The engine's name for gVisor with the host's network stack (`runsc --network=host`, in the
/// holder's namespace): Debian's runsc cannot start its own network stack on this kernel (see
/// `scripts/dockerd-up.sh`), so networked tasks use the namespace's, through gVisor's filters.
pub const GVISOR_HOSTINET: &str = "runsc-hostinet";
/// Runs and image loads in one process take turns: the cleanup evidence digests the whole host,
/// so a run must not see another run's containers or a newly loaded image.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a teardown may take to show in the host state before what is left is residue.
pub const SETTLE_TIME: Duration = Duration::from_secs(3);
/// Host threads gVisor's sandbox itself needs on top of the function's `pids` limit: its
/// Go kernel and file proxy did not start under a limit of 32 and do under 128.
pub const GVISOR_SANDBOX_PIDS: i64 = 128;
/// Where the function's scratch space is mounted.
pub const SCRATCH: &str = "/scratch";

/// The OCI runtime a task runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// The engine's default (runc): on the HPC, which is wiped after every task.
    Runc,
    /// gVisor (`runsc`, registered with the engine under that name): on the gateway.
    Gvisor,
}

impl Runtime {
    /// The runtime name the engine is asked for; `None` for its default.
    fn engine_name(self, networked: bool) -> Option<&'static str> {
        match (self, networked) {
            (Self::Runc, _) => None,
            (Self::Gvisor, false) => Some("runsc"),
            (Self::Gvisor, true) => Some(GVISOR_HOSTINET),
        }
    }

    /// The seccomp profile: gVisor's 2022 filter knows `SCMP_ACT_KILL` only.
    fn seccomp_profile(self) -> String {
        match self {
            Self::Runc => seccomp::profile(),
            Self::Gvisor => seccomp::profile_with("SCMP_ACT_KILL"),
        }
    }

    /// The host's pids limit for a function allowed `pids` processes: under gVisor the
    /// sandbox's own threads (its kernel and file proxy, in Go) count too.
    fn host_pids(self, pids: u32) -> i64 {
        let pids = i64::from(pids.max(1));
        match self {
            Self::Runc => pids,
            Self::Gvisor => pids + GVISOR_SANDBOX_PIDS,
        }
    }

    /// The engine's tmpfs mounts: gVisor mounts a writable tmpfs of its own at /tmp unless the
    /// container names one, so name an empty read-only one; /scratch stays the only writable
    /// place.
    fn tmpfs(self) -> Option<std::collections::HashMap<String, String>> {
        match self {
            Self::Runc => None,
            Self::Gvisor => Some([("/tmp".to_string(), "ro,size=4k".to_string())].into()),
        }
    }

    /// The call named for a SIGSYS exit with no audit record: gVisor's filter runs in its own
    /// kernel and logs nothing on the host; under runc the record was lost (rate-limited).
    fn unrecorded_kill(self) -> &'static str {
        match self {
            Self::Runc => seccomp::UNRECORDED,
            Self::Gvisor => seccomp::UNRECORDED_IN_GVISOR,
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The function exited by itself with this code.
    Completed { exit_code: i64 },
    /// The timeout killed it.
    TimedOut,
    /// It exceeded its memory limit.
    OomKilled,
    /// It broke its policy: a forbidden system call, or a destination its policy does not
    /// allow (a forbidden call outranks a destination when both happened).
    PolicyViolation(Violation),
    /// The engine failed; nothing is known about the function.
    EngineError(String),
}

/// How a function broke its policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A forbidden system call, which the seccomp profile killed the process for (the first
    /// one recorded, by x86-64 number and name).
    Syscall { number: u32, name: &'static str },
    /// TCP or UDP packets to destinations the policy does not allow: how many the task's
    /// firewall scope refused, and where to (each destination once).
    Destination {
        packets: u64,
        destinations: Vec<Destination>,
    },
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    pub outcome: Outcome,
    /// Standard output, at most the policy's `output_bytes` (the rest is dropped and counted).
    pub stdout: Vec<u8>,
    /// Standard output bytes past the limit.
    pub stdout_dropped: u64,
    /// The files the function left in `/scratch/out`.
    pub outputs: Outputs,
    /// The host state's digests before and after the run.
    pub evidence: CleanupEvidence,
    /// What the run left behind, entry by entry (empty when the evidence is clean).
    pub residue: Vec<(HostStateCategory, String)>,
    pub elapsed: Duration,
}

/// How the container ended, before its scratch is read and the host compared.
struct Ended {
    outcome: Outcome,
    stdout: Vec<u8>,
    stdout_dropped: u64,
    elapsed: Duration,
}

impl Ended {
    /// The run with what its firewall scope refused: a violation unless a forbidden call
    /// already is one.
    fn refused(mut self, denied: Denied) -> Self {
        let syscall = matches!(
            self.outcome,
            Outcome::PolicyViolation(Violation::Syscall { .. })
        );
        if denied.packets > 0 && !syscall {
            self.outcome = Outcome::PolicyViolation(Violation::Destination {
                packets: denied.packets,
                destinations: denied.destinations,
            });
        }
        self
    }
}

/// A function run: the image, its limits and timeout, and what it reads on stdin.
#[derive(Clone, Debug)]
pub struct RunSpec<'a> {
    /// The task the run is for: its containers carry it in their [`TASK_LABEL`].
    pub task: TaskId,
    pub image: ImageDigest,
    pub limits: ResourceLimits,
    pub timeout: Duration,
    pub stdin: &'a [u8],
    /// Files the function finds in `/scratch/in`, by name.
    pub inputs: &'a [(&'a str, &'a [u8])],
    /// The destinations the task may reach (its policy's `egress`); empty for no network.
    pub egress: &'a [EgressRule],
}

/// What can go wrong before a run starts.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("cannot reach the Docker engine: {0}; is dockerd running (scripts/dockerd-up.sh)?")]
    Connect(#[source] bollard::errors::Error),
    #[error(
        "the engine lacks image {0} and no archive was given; load the task's image archive first"
    )]
    MissingImage(String),
    #[error(transparent)]
    Image(#[from] capsule_image::ImageError),
    #[error("the run's inputs are refused: {0}")]
    BadInput(String),
    #[error("the task allows egress but this executor has no egress network; configure one with Executor::with_egress")]
    NoEgressNetwork,
    #[error("cannot wire the task's network link: {0}")]
    Egress(#[from] EgressError),
    #[error("cannot read the kernel log (/dev/kmsg) where seccomp kills are recorded: {0}; run the executor as root")]
    KernelLog(#[source] std::io::Error),
    #[error("cannot prepare or read the run's scratch tmpfs under {dir}: {source}; the executor must run as root with {dir} writable")]
    Scratch {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the engine refused {what}: {source}")]
    Engine {
        what: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

fn engine(what: &'static str) -> impl FnOnce(bollard::errors::Error) -> ExecutorError {
    move |source| ExecutorError::Engine { what, source }
}

/// A connection to the local engine.
#[derive(Clone, Debug)]
pub struct Executor {
    docker: Docker,
    runtime: Runtime,
    scratch_base: PathBuf,
    egress: Option<EgressNetwork>,
}

impl Executor {
    /// Connects to the engine's unix socket (`/var/run/docker.sock`) at API 1.41.
    pub async fn connect(runtime: Runtime) -> Result<Self, ExecutorError> {
        let docker = Docker::connect_with_socket("/var/run/docker.sock", 120, &API_VERSION)
            .map_err(ExecutorError::Connect)?;
        docker.ping().await.map_err(ExecutorError::Connect)?;
        if let Err(error) = seccomp::raise_log_burst() {
            warn!(%error, "cannot raise the kernel's log burst: seccomp kills of runs close together may go unrecorded");
        }
        Ok(Self {
            docker,
            runtime,
            scratch_base: scratch::DEFAULT_BASE.into(),
            egress: None,
        })
    }

    /// Mounts run scratch spaces under `dir` instead of [`scratch::DEFAULT_BASE`].
    pub fn with_scratch_base(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch_base = dir.into();
        self
    }

    /// Wires tasks that allow destinations to `network` (without one they are refused).
    pub fn with_egress(mut self, network: EgressNetwork) -> Self {
        self.egress = Some(network);
        self
    }

    /// The directory run scratch spaces are mounted under.
    pub fn scratch_base(&self) -> &std::path::Path {
        &self.scratch_base
    }

    /// Makes sure the engine holds `image`: present already, or loaded from `archive` after
    /// the archive was checked against the digest. Never pulls. Waits for a run in progress:
    /// a new image in the middle of a run would be that run's residue.
    pub async fn ensure_image(
        &self,
        image: &ImageDigest,
        archive: Option<&[u8]>,
    ) -> Result<(), ExecutorError> {
        let _turn = ONE_AT_A_TIME.lock().await;
        let id = docker_id(image);
        if self.docker.inspect_image(&id).await.is_ok() {
            return Ok(());
        }
        let archive = archive.ok_or_else(|| ExecutorError::MissingImage(id.clone()))?;
        capsule_image::verify_archive(archive, image)?;
        let mut progress = self.docker.import_image(
            ImportImageOptionsBuilder::new().quiet(true).build(),
            bollard::body_full(archive.to_vec().into()),
            None,
        );
        while let Some(step) = progress.next().await {
            step.map_err(engine("loading the image archive"))?;
        }
        self.docker
            .inspect_image(&id)
            .await
            .map(drop)
            .map_err(engine("inspecting the loaded image"))
    }

    /// What every container of a run shares: a read-only root, no capabilities, no new
    /// privileges, the seccomp profile, no IPC, no logs kept by the engine, the runtime.
    fn hardened(&self, networked: bool) -> HostConfig {
        HostConfig {
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec![
                "no-new-privileges".into(),
                format!("seccomp={}", self.runtime.seccomp_profile()),
            ]),
            ipc_mode: Some("none".into()),
            log_config: Some(bollard::models::HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            runtime: self.runtime.engine_name(networked).map(str::to_owned),
            ..Default::default()
        }
    }

    /// The hardened container configuration of a run; `holder` is the container whose
    /// network namespace a networked task joins.
    fn container_config(
        &self,
        spec: &RunSpec<'_>,
        uid: u32,
        scratch: &Scratch,
        holder: Option<&str>,
    ) -> ContainerCreateBody {
        let limits = &spec.limits;
        let memory = i64::try_from(limits.memory_bytes).unwrap_or(i64::MAX);
        let host = HostConfig {
            network_mode: Some(match holder {
                Some(id) => format!("container:{id}"),
                None => "none".into(),
            }),
            pids_limit: Some(self.runtime.host_pids(limits.pids)),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::from(limits.cpu_millis.max(1)) * 1_000_000),
            tmpfs: self.runtime.tmpfs(),
            mounts: Some(vec![Mount {
                target: Some(SCRATCH.into()),
                source: Some(scratch.dir().to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(false),
                ..Default::default()
            }]),
            init: Some(true),
            ..self.hardened(holder.is_some())
        };
        ContainerCreateBody {
            image: Some(docker_id(&spec.image)),
            // Its own uid, so the kernel's records of seccomp kills name this run.
            user: Some(format!("{uid}:{uid}")),
            network_disabled: Some(holder.is_none()),
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            labels: Some([(TASK_LABEL.to_string(), spec.task.0.to_string())].into()),
            host_config: Some(host),
            ..Default::default()
        }
    }

    /// The holder of a networked task's namespace: the `pause` image, nobody's uid, no
    /// network of the engine's, hardened like the task.
    fn holder_config(&self, spec: &RunSpec<'_>, network: &EgressNetwork) -> ContainerCreateBody {
        const HOLDER_MEMORY: i64 = 16 << 20;
        let host = HostConfig {
            network_mode: Some("none".into()),
            pids_limit: Some(self.runtime.host_pids(4)),
            memory: Some(HOLDER_MEMORY),
            memory_swap: Some(HOLDER_MEMORY),
            ..self.hardened(false)
        };
        ContainerCreateBody {
            image: Some(docker_id(&network.holder_image)),
            user: Some("65534:65534".into()),
            labels: Some(
                [
                    (TASK_LABEL.to_string(), spec.task.0.to_string()),
                    (HOLDER_LABEL.to_string(), "true".to_string()),
                ]
                .into(),
            ),
            host_config: Some(host),
            ..Default::default()
        }
    }

    /// Runs the function once. The container and the scratch space are removed afterwards
    /// whatever happened, and the host state is compared with the state before the run.
    ///
    /// Runs and image loads in one process take turns: the evidence digests the whole host,
    /// so two at once would see each other's containers, mounts and images.
    pub async fn run(&self, spec: &RunSpec<'_>) -> Result<RunReport, ExecutorError> {
        let _turn = ONE_AT_A_TIME.lock().await;
        let span = info_span!("run", task = spec.task.0);
        async {
            let before = self.host_state().await?;
            let (ended, outputs) = self.run_contained(spec).await?;
            let (after, residue) = self.settled_state(&before).await?;
            if !residue.is_empty() {
                warn!(?residue, "the run left host state behind");
            }
            Ok(RunReport {
                outcome: ended.outcome,
                stdout: ended.stdout,
                stdout_dropped: ended.stdout_dropped,
                outputs,
                evidence: CleanupEvidence {
                    task: spec.task,
                    before: before.digest(),
                    after: after.digest(),
                },
                residue,
                elapsed: ended.elapsed,
            })
        }
        .instrument(span)
        .await
    }

    /// The host state once the teardown settled: captured again, for up to
    /// [`SETTLE_TIME`], while it still differs from `before` (the engine finishes some of a
    /// removal after answering).
    async fn settled_state(
        &self,
        before: &HostState,
    ) -> Result<(HostState, Vec<(HostStateCategory, String)>), ExecutorError> {
        let deadline = Instant::now() + SETTLE_TIME;
        loop {
            let after = self.host_state().await?;
            let residue = before.diff(&after);
            if residue.is_empty() || Instant::now() >= deadline {
                return Ok((after, residue));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The host state now, as the evidence lists it (with the egress router's namespace,
    /// when one is configured).
    pub async fn host_state(&self) -> Result<HostState, ExecutorError> {
        let router = self.egress.as_ref().and_then(|e| e.router_netns.as_deref());
        HostState::capture(&self.docker, &self.scratch_base, router).await
    }

    /// Mounts the scratch, runs the container (behind its own link when the task allows
    /// destinations) and removes all of it: how it ended and its outputs.
    async fn run_contained(&self, spec: &RunSpec<'_>) -> Result<(Ended, Outputs), ExecutorError> {
        let uid = seccomp::run_uid();
        let scratch_error = |source| ExecutorError::Scratch {
            dir: self.scratch_base.clone(),
            source,
        };
        scratch::check_input_names(spec.inputs).map_err(ExecutorError::BadInput)?;
        let network = match spec.egress {
            [] => None,
            _ => Some(self.egress.as_ref().ok_or(ExecutorError::NoEgressNetwork)?),
        };
        let scratch = Scratch::mount(
            &self.scratch_base,
            uid,
            spec.limits.tmpfs_bytes,
            spec.inputs,
        )
        .map_err(scratch_error)?;
        let ended = match network {
            None => self.run_container(spec, uid, &scratch, None).await?,
            Some(network) => self.run_networked(spec, uid, &scratch, network).await?,
        };
        let outputs = scratch
            .outputs(spec.limits.output_bytes)
            .map_err(scratch_error)?;
        scratch.remove().map_err(scratch_error)?;
        Ok((ended, outputs))
    }

    /// Creates the task's container, runs it and removes it.
    async fn run_container(
        &self,
        spec: &RunSpec<'_>,
        uid: u32,
        scratch: &Scratch,
        holder: Option<&str>,
    ) -> Result<Ended, ExecutorError> {
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().build()),
                self.container_config(spec, uid, scratch, holder),
            )
            .await
            .map_err(engine("creating the container"))?;
        let ended = self.run_created(&created.id, spec, uid).await;
        self.remove_container(&created.id).await;
        ended
    }

    /// Starts a holder, wires its namespace to the router, runs the task in it, and unwires
    /// and removes all of it; refused destinations make the run a policy violation.
    async fn run_networked(
        &self,
        spec: &RunSpec<'_>,
        uid: u32,
        scratch: &Scratch,
        network: &EgressNetwork,
    ) -> Result<Ended, ExecutorError> {
        let holder = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().build()),
                self.holder_config(spec, network),
            )
            .await
            .map_err(engine("creating the network holder"))?;
        let ended = async {
            self.docker
                .start_container(
                    &holder.id,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .map_err(engine("starting the network holder"))?;
            let pid = self
                .docker
                .inspect_container(
                    &holder.id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .map_err(engine("inspecting the network holder"))?
                .state
                .and_then(|state| state.pid)
                .and_then(|pid| u32::try_from(pid).ok())
                .filter(|&pid| pid > 0)
                .ok_or(ExecutorError::Egress(EgressError::HolderGone))?;
            let (wiring, allow) = (network.clone(), spec.egress.to_vec());
            let link = tokio::task::spawn_blocking(move || TaskLink::wire(&wiring, pid, &allow))
                .await
                .map_err(|e| EgressError::Blocking(e.to_string()))??;
            let ended = self
                .run_container(spec, uid, scratch, Some(&holder.id))
                .await;
            let denied = link.remove();
            Ok(ended?.refused(denied?))
        }
        .await;
        self.remove_container(&holder.id).await;
        ended
    }

    /// Removes a container with its anonymous volumes, whatever state it is in.
    async fn remove_container(&self, id: &str) {
        let removed = self
            .docker
            .remove_container(
                id,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await;
        if let Err(error) = removed {
            warn!(%error, "a container could not be removed: it shows in the run's cleanup evidence; Executor::sweep removes it later");
        }
    }

    /// Removes what a crashed or cancelled run left: containers carrying [`TASK_LABEL`] (tasks
    /// and holders) and, with an egress network, its task link and scope. Returns how many
    /// containers it removed. Run it when the process starts, before the first run.
    pub async fn sweep(&self) -> Result<usize, ExecutorError> {
        let _turn = ONE_AT_A_TIME.lock().await;
        let filters = std::collections::HashMap::from([("label", vec![TASK_LABEL])]);
        let left = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(engine("listing containers left by earlier runs"))?;
        for container in &left {
            if let Some(id) = &container.id {
                self.remove_container(id).await;
            }
        }
        if let Some(network) = &self.egress {
            egress::unwire(network.router_netns.as_deref());
        }
        Ok(left.len())
    }

    async fn run_created(
        &self,
        id: &str,
        spec: &RunSpec<'_>,
        uid: u32,
    ) -> Result<Ended, ExecutorError> {
        let mut kernel_log = seccomp::KernelLog::open_at_end().map_err(ExecutorError::KernelLog)?;
        let attached = self
            .docker
            .attach_container(
                id,
                Some(
                    AttachContainerOptionsBuilder::new()
                        .stream(true)
                        .stdin(true)
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            )
            .await
            .map_err(engine("attaching to the container"))?;
        let started = Instant::now();
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(engine("starting the container"))?;
        // "not-running" after the start: it answers at once if the function already exited
        // (bollard sends a request only when its stream is polled, so a "next-exit" wait made
        // before the start would still be sent after it, and wait forever for a past exit).
        let mut wait = self.docker.wait_container(
            id,
            Some(
                WaitContainerOptionsBuilder::new()
                    .condition("not-running")
                    .build(),
            ),
        );

        let mut input = attached.input;
        let stdin = spec.stdin.to_vec();
        let feed = tokio::spawn(async move {
            // A function may exit without reading its input: a broken pipe is not an error.
            let _ = input.write_all(&stdin).await;
            let _ = input.shutdown().await;
        });
        let limit = spec.limits.output_bytes;
        let mut output = attached.output;
        let collect = tokio::spawn(async move {
            let (mut stdout, mut dropped) = (Vec::new(), 0u64);
            while let Some(Ok(chunk)) = output.next().await {
                if let bollard::container::LogOutput::StdOut { message } = chunk {
                    let room = limit.saturating_sub(stdout.len() as u64) as usize;
                    let kept = message.len().min(room);
                    stdout.extend_from_slice(&message[..kept]);
                    dropped += (message.len() - kept) as u64;
                }
            }
            (stdout, dropped)
        });

        let outcome = match tokio::time::timeout(spec.timeout, wait.next()).await {
            Ok(
                Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })),
            ) => self.exit_outcome(id).await?,
            Ok(Some(Err(error))) => Outcome::EngineError(error.to_string()),
            Ok(None) => Outcome::EngineError("the wait stream ended without an exit".into()),
            Err(_elapsed) => {
                debug!("timeout: killing the container");
                let _ = self
                    .docker
                    .kill_container(
                        id,
                        Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
                    )
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(10), wait.next()).await;
                Outcome::TimedOut
            }
        };
        let elapsed = started.elapsed();
        // A seccomp kill outranks how the container ended: its parent may have exited 0.
        let outcome = match (kernel_log.killed_calls(uid).first(), outcome) {
            (Some(&number), _) => Outcome::PolicyViolation(Violation::Syscall {
                number,
                name: seccomp::call_name(number).unwrap_or("unknown"),
            }),
            // Killed by SIGSYS with no record: still a violation, of an unnamed call.
            (None, Outcome::Completed { exit_code }) if exit_code == seccomp::SIGSYS_EXIT => {
                Outcome::PolicyViolation(Violation::Syscall {
                    number: 0,
                    name: self.runtime.unrecorded_kill(),
                })
            }
            (None, outcome) => outcome,
        };
        feed.abort();
        let (stdout, stdout_dropped) =
            match tokio::time::timeout(Duration::from_secs(5), collect).await {
                Ok(Ok(collected)) => collected,
                _ => (Vec::new(), 0),
            };
        Ok(Ended {
            outcome,
            stdout,
            stdout_dropped,
            elapsed,
        })
    }

    /// The outcome of an exited container, from the engine's record of it.
    async fn exit_outcome(&self, id: &str) -> Result<Outcome, ExecutorError> {
        let inspected = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(engine("inspecting the exited container"))?;
        let state = inspected.state.unwrap_or_default();
        if state.oom_killed == Some(true) {
            return Ok(Outcome::OomKilled);
        }
        Ok(Outcome::Completed {
            exit_code: state.exit_code.unwrap_or(-1),
        })
    }
}
