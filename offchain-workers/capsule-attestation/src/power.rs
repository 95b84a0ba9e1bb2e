//! Power control of the HPC: what the gateway does on a violation. Backends for QEMU (QMP) and
//! for real hardware come with the PXE work; [`RecordingPower`] records what was asked, in
//! memory and optionally in a file a test reads from another process.
use std::{
    io::Write,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

/// What can be asked of the HPC's power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    /// Off, then on again: the HPC PXE-boots the image afresh.
    Cycle,
    Off,
}

/// Why power control failed.
#[derive(Debug, thiserror::Error)]
#[error("power control failed: {0}")]
pub struct PowerError(pub String);

/// The HPC's power.
pub trait PowerControl: Send + Sync {
    fn act(&self, action: PowerAction) -> Result<(), PowerError>;
}

/// Records each action with the time it was asked; appends `cycle`/`off` lines to `log` too.
#[derive(Debug, Default)]
pub struct RecordingPower {
    actions: Mutex<Vec<(Instant, PowerAction)>>,
    log: Option<PathBuf>,
}

impl RecordingPower {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also appends a line per action to `log`.
    pub fn with_log(log: PathBuf) -> Self {
        Self {
            actions: Mutex::default(),
            log: Some(log),
        }
    }

    /// The actions so far.
    pub fn actions(&self) -> Vec<(Instant, PowerAction)> {
        self.actions.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// How long after `since` the first action came.
    pub fn first_after(&self, since: Instant) -> Option<Duration> {
        self.actions()
            .first()
            .map(|(at, _)| at.saturating_duration_since(since))
    }
}

impl PowerControl for RecordingPower {
    fn act(&self, action: PowerAction) -> Result<(), PowerError> {
        self.actions
            .lock()
            .map_err(|_| PowerError("the record is poisoned".into()))?
            .push((Instant::now(), action));
        if let Some(log) = &self.log {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| PowerError(format!("{}: {e}", log.display())))?;
            let line = match action {
                PowerAction::Cycle => "cycle\n",
                PowerAction::Off => "off\n",
            };
            file.write_all(line.as_bytes())
                .map_err(|e| PowerError(format!("{}: {e}", log.display())))?;
        }
        Ok(())
    }
}
