//! Power control of the HPC: what the gateway does on a violation and between tasks.
//! Backends: [`QmpPower`] for a QEMU machine (the tests' HPC), [`IpmiPower`] for real hardware
//! through `ipmitool` (IPMI 2.0 over LAN, the BMC on the gateway's management link), and
//! [`RecordingPower`], which records what was asked, in memory and optionally in a file a test
//! reads from another process.
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::Command,
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

/// A QEMU machine's power through its QMP socket (`-qmp unix:PATH,server=on,wait=off`): a cycle
/// is `system_reset` and `cont` (the firmware starts again and PXE-boots; a machine started
/// stopped with `-S` starts), off is `quit` (the machine is gone, as without power).
#[derive(Clone, Debug)]
pub struct QmpPower {
    pub socket: PathBuf,
}

impl QmpPower {
    /// Runs one QMP command and returns its `return` value.
    pub fn execute(
        &self,
        command: &str,
        arguments: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, PowerError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            PowerError(format!("QMP at {}: {what}: {e}", self.socket.display()))
        };
        let stream = UnixStream::connect(&self.socket).map_err(|e| failed("connect", &e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| failed("timeout", &e))?;
        let mut writer = stream.try_clone().map_err(|e| failed("clone", &e))?;
        let mut reader = BufReader::new(stream);
        // Answers skip the asynchronous events QEMU interleaves.
        let answer = |reader: &mut BufReader<UnixStream>| -> Result<serde_json::Value, PowerError> {
            loop {
                let mut line = String::new();
                if reader
                    .read_line(&mut line)
                    .map_err(|e| failed("read", &e))?
                    == 0
                {
                    return Err(failed("read", &"closed"));
                }
                let value: serde_json::Value =
                    serde_json::from_str(&line).map_err(|e| failed("not JSON", &e))?;
                if let Some(error) = value.get("error") {
                    return Err(failed(command, error));
                }
                if value.get("QMP").is_some() || value.get("return").is_some() {
                    return Ok(value.get("return").cloned().unwrap_or_default());
                }
            }
        };
        answer(&mut reader)?;
        let mut send =
            |value: serde_json::Value| writeln!(writer, "{value}").map_err(|e| failed("write", &e));
        send(serde_json::json!({"execute": "qmp_capabilities"}))?;
        answer(&mut reader)?;
        let mut request = serde_json::json!({"execute": command});
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        send(request)?;
        match answer(&mut reader) {
            // `quit` may close the socket before it answers.
            Err(_) if command == "quit" => Ok(serde_json::Value::Null),
            other => other,
        }
    }
}

impl PowerControl for QmpPower {
    fn act(&self, action: PowerAction) -> Result<(), PowerError> {
        match action {
            // `cont` also powers on a machine QEMU holds stopped (`-S`): the first boot.
            PowerAction::Cycle => self
                .execute("system_reset", None)
                .and_then(|_| self.execute("cont", None))
                .map(drop),
            PowerAction::Off => self.execute("quit", None).map(drop),
        }
    }
}

/// Real hardware's power through its BMC with `ipmitool` (Debian's package of that name), IPMI
/// 2.0 over LAN (`lanplus`). The password is read by ipmitool from a file, never put on a
/// command line. Not exercised here (no BMC): [`IpmiPower::commands`] is what runs.
#[derive(Clone, Debug)]
pub struct IpmiPower {
    pub host: String,
    pub user: String,
    pub password_file: PathBuf,
}

impl IpmiPower {
    /// The commands an action runs, in order. A cycle is off, then on: `chassis power cycle`
    /// fails on a machine that is off (as the HPC is after its image powers it off), and
    /// `power off` of a machine already off succeeds.
    pub fn commands(&self, action: PowerAction) -> Vec<Command> {
        let steps: &[&str] = match action {
            PowerAction::Cycle => &["off", "on"],
            PowerAction::Off => &["off"],
        };
        steps
            .iter()
            .map(|step| {
                let mut command = Command::new("ipmitool");
                command
                    .args(["-I", "lanplus", "-H", &self.host, "-U", &self.user, "-f"])
                    .arg(&self.password_file)
                    .args(["chassis", "power", step]);
                command
            })
            .collect()
    }
}

impl PowerControl for IpmiPower {
    fn act(&self, action: PowerAction) -> Result<(), PowerError> {
        for mut command in self.commands(action) {
            let output = command.output().map_err(|e| {
                PowerError(format!("running ipmitool (install Debian's ipmitool): {e}"))
            })?;
            if !output.status.success() {
                return Err(PowerError(format!(
                    "ipmitool {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipmi_runs_ipmitool_with_the_password_in_a_file() {
        let power = IpmiPower {
            host: "bmc.hpc".into(),
            user: "capsule".into(),
            password_file: "/etc/capsule/bmc.password".into(),
        };
        let args = |action| -> Vec<Vec<String>> {
            power
                .commands(action)
                .iter()
                .map(|command| {
                    assert_eq!(command.get_program(), "ipmitool");
                    command
                        .get_args()
                        .map(|a| a.to_string_lossy().into_owned())
                        .collect()
                })
                .collect()
        };
        let prefix = [
            "-I",
            "lanplus",
            "-H",
            "bmc.hpc",
            "-U",
            "capsule",
            "-f",
            "/etc/capsule/bmc.password",
            "chassis",
            "power",
        ];
        let with = |step: &str| {
            let mut all: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
            all.push(step.into());
            all
        };
        assert_eq!(args(PowerAction::Cycle), [with("off"), with("on")]);
        assert_eq!(args(PowerAction::Off), [with("off")]);
    }

    #[test]
    fn a_missing_qmp_socket_is_an_error_that_names_it() {
        let power = QmpPower {
            socket: "/nonexistent/qmp.sock".into(),
        };
        let error = power.act(PowerAction::Cycle).expect_err("no socket");
        assert!(error.0.contains("/nonexistent/qmp.sock"), "{error}");
    }
}
