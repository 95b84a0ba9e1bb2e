//! The gateway's one way to act on the HPC's power. The attestation server asks for an action
//! from wherever it found a violation ([`PowerRequests`], which never blocks); one controller
//! task carries the actions out in order. With a boot server, every cycle starts a new boot
//! first (image verified again, fresh secret, DHCP afresh), and a boot that cannot start
//! (the staged image changed) turns the cycle into power-off: the HPC is not booted into
//! anything unverified.
use std::{sync::Arc, time::Instant};

use capsule_attestation::power::{PowerAction, PowerControl, PowerError};
use capsule_boot_server::BootServer;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::Events;

/// Hands power actions to the controller.
pub struct PowerRequests(mpsc::UnboundedSender<(Instant, PowerAction)>);

impl PowerControl for PowerRequests {
    fn act(&self, action: PowerAction) -> Result<(), PowerError> {
        self.0
            .send((Instant::now(), action))
            .map_err(|_| PowerError("the power controller stopped".into()))
    }
}

/// Starts the controller over `backend`; with `boot`, each cycle starts a boot first.
pub fn controller(
    backend: Arc<dyn PowerControl>,
    boot: Option<Arc<BootServer>>,
    events: Events,
) -> PowerRequests {
    let (sender, mut requests) = mpsc::unbounded_channel::<(Instant, PowerAction)>();
    tokio::spawn(async move {
        while let Some((asked, mut action)) = requests.recv().await {
            if let (PowerAction::Cycle, Some(boot)) = (action, &boot) {
                match boot.new_boot().await {
                    Ok(generation) => {
                        events.write(serde_json::json!({"event": "boot", "generation": generation}))
                    }
                    Err(error) => {
                        warn!(%error, "no boot can start: powering the HPC off");
                        events.write(serde_json::json!({
                            "event": "boot_refused",
                            "reason": error.to_string(),
                        }));
                        action = PowerAction::Off;
                    }
                }
            }
            let backend = backend.clone();
            let done = tokio::task::spawn_blocking(move || backend.act(action)).await;
            let name = match action {
                PowerAction::Cycle => "cycle",
                PowerAction::Off => "off",
            };
            match done {
                Ok(Ok(())) => {
                    info!(action = name, "power");
                    events.write(serde_json::json!({
                        "event": "power",
                        "action": name,
                        "after_us": asked.elapsed().as_micros() as u64,
                    }));
                }
                Ok(Err(error)) => {
                    warn!(%error, action = name, "power control failed: the HPC stays suspect");
                    events.write(serde_json::json!({
                        "event": "power_failed",
                        "action": name,
                        "reason": error.to_string(),
                    }));
                }
                Err(error) => warn!(%error, "the power action's task failed"),
            }
        }
    });
    PowerRequests(sender)
}
