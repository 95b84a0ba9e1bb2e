//! A networked task's own link: the only way a task that allows destinations reaches them.
//!
//! A task whose policy lists destinations runs in the network namespace of a holder container
//! (the project's `pause`, started with no network), into which the executor wires one
//! interface before the task starts:
//!
//! ```text
//!  task + holder netns           router netns (the executor's, or one named in the config)
//!  eth0 10.89.0.2/30 ── veth ── capsule-port ─ bridge capsule-egress 10.89.0.1/30 ── routes
//! ```
//!
//! The task's default route is the bridge's address. The router's [`Firewall`] scope (table
//! `inet capsule_task`, on the bridge and its port) accepts exactly the task's
//! [`EgressRule`]s and counts, logs and remembers every other TCP or UDP attempt, including
//! those to the router's own addresses (the "host's bridge address"), to other containers and to
//! DNS servers; a non-zero count ends the run as a policy violation. The router must forward
//! IPv4 (checked) and route the task's /30 onwards; it does not translate addresses.
//!
//! The names are fixed (`capsule-egress`, `capsule-port`, `capsule_task`): runs in one
//! process take turns, and a link or table a crashed run left behind is replaced by the next,
//! never left to filter another task. One executor per router namespace.
use std::{net::Ipv4Addr, process::Command};

use capsule_primitives::{measurement::ImageDigest, policy::EgressRule};

use crate::firewall::{Denied, Firewall, FirewallError, Scope};

/// The task link's bridge in the router namespace.
pub const BRIDGE: &str = "capsule-egress";
/// The router's end of the veth pair, a port of [`BRIDGE`].
pub const PORT: &str = "capsule-port";
/// The task's end, in the holder's namespace.
pub const TASK_INTERFACE: &str = "eth0";
/// The firewall scope's name (its table is `inet capsule_task`).
pub const SCOPE: &str = "task";

/// Where networked tasks are wired to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressNetwork {
    /// The holder image (the project's `pause` function image): loaded with
    /// [`crate::Executor::ensure_image`] before a networked run.
    pub holder_image: ImageDigest,
    /// The `ip netns` name of the namespace the bridge lives and routes in; `None` for the
    /// executor's own (on the HPC: the host's, whose uplink is the gateway).
    pub router_netns: Option<String>,
    /// The network address of the task link's /30: the bridge takes the first host address,
    /// the task the second.
    pub subnet: Ipv4Addr,
}

impl EgressNetwork {
    /// The default /30 of task links.
    pub const DEFAULT_SUBNET: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 0);

    /// Wires tasks to the executor's own namespace over [`Self::DEFAULT_SUBNET`].
    pub fn new(holder_image: ImageDigest) -> Self {
        Self {
            holder_image,
            router_netns: None,
            subnet: Self::DEFAULT_SUBNET,
        }
    }

    /// The bridge's address (the task's gateway).
    pub fn router_address(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet).wrapping_add(1))
    }

    /// The task's address.
    pub fn task_address(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet).wrapping_add(2))
    }
}

/// Why a task's link could not be wired or unwired.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("cannot run {program}: {source}; install iproute2 and util-linux and run as root")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what}: {stderr}")]
    Ip { what: &'static str, stderr: String },
    #[error("the router namespace {0} does not forward IPv4: set net.ipv4.ip_forward=1 there")]
    NotForwarding(String),
    #[error("the task's subnet {0} is not the network address of a /30")]
    BadSubnet(Ipv4Addr),
    #[error("the network holder has no process (it exited at once): is the holder image the project's `pause`?")]
    HolderGone,
    #[error("the wiring task failed: {0}")]
    Blocking(String),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
}

/// Runs `program args` in the router namespace `netns` (or here).
fn run_in(
    netns: Option<&str>,
    program: &'static str,
    args: &[&str],
    what: &'static str,
) -> Result<String, EgressError> {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    };
    let out = command
        .args(args)
        .output()
        .map_err(|source| EgressError::Spawn { program, source })?;
    if !out.status.success() {
        return Err(EgressError::Ip {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip args` inside the network namespace of process `pid`.
fn ip_in_process(pid: u32, args: &[&str], what: &'static str) -> Result<(), EgressError> {
    let pid = pid.to_string();
    let mut all = vec!["--target", &pid, "--net", "ip"];
    all.extend_from_slice(args);
    run_in(None, "nsenter", &all, what).map(drop)
}

/// The interface names of namespace `netns` (or this process's), without the `@peer` suffix.
pub fn interfaces(netns: Option<&str>) -> Result<Vec<String>, EgressError> {
    let listed = run_in(netns, "ip", &["-o", "link", "show"], "list the interfaces")?;
    Ok(listed
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect())
}

/// A wired task link. [`TaskLink::remove`] unwires it; the holder's removal ends the
/// task's end with its namespace.
#[derive(Debug)]
pub struct TaskLink {
    router: Option<String>,
    firewall: Firewall,
}

impl TaskLink {
    /// Wires the holder (process `holder_pid`) to the router and installs the task's scope.
    pub fn wire(
        network: &EgressNetwork,
        holder_pid: u32,
        allow: &[EgressRule],
    ) -> Result<Self, EgressError> {
        if u32::from(network.subnet) & 3 != 0 {
            return Err(EgressError::BadSubnet(network.subnet));
        }
        let router = network.router_netns.as_deref();
        let forwarding = run_in(
            router,
            "cat",
            &["/proc/sys/net/ipv4/ip_forward"],
            "read the router's forwarding switch",
        )?;
        if forwarding.trim() != "1" {
            return Err(EgressError::NotForwarding(
                router.unwrap_or("of the executor").to_owned(),
            ));
        }
        // What a crashed run may have left is replaced, never reused.
        unwire(router);
        let ip = |args: &[&str], what| run_in(router, "ip", args, what).map(drop);
        let bridge_address = format!("{}/30", network.router_address());
        let task_address = format!("{}/30", network.task_address());
        let pid = holder_pid.to_string();
        let wired = (|| {
            ip(
                &["link", "add", BRIDGE, "type", "bridge"],
                "create the task's bridge",
            )?;
            ip(
                &["addr", "add", &bridge_address, "dev", BRIDGE],
                "address the task's bridge",
            )?;
            ip(
                &[
                    "link",
                    "add",
                    PORT,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    TASK_INTERFACE,
                    "netns",
                    &pid,
                ],
                "create the task's link into the holder",
            )?;
            ip(
                &["link", "set", PORT, "master", BRIDGE, "up"],
                "attach the link to the bridge",
            )?;
            ip(&["link", "set", BRIDGE, "up"], "bring the bridge up")?;
            ip_in_process(
                holder_pid,
                &["addr", "add", &task_address, "dev", TASK_INTERFACE],
                "address the task's interface",
            )?;
            ip_in_process(
                holder_pid,
                &["link", "set", TASK_INTERFACE, "up"],
                "bring the task's interface up",
            )?;
            ip_in_process(
                holder_pid,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    &network.router_address().to_string(),
                ],
                "route the task through the bridge",
            )?;
            let interfaces = [BRIDGE.to_string(), PORT.to_string()];
            Ok::<_, EgressError>(Firewall::install(
                &Scope {
                    name: SCOPE,
                    interfaces: &interfaces,
                    allow,
                },
                router,
            )?)
        })();
        match wired {
            Ok(firewall) => Ok(Self {
                router: router.map(str::to_owned),
                firewall,
            }),
            Err(error) => {
                unwire(router);
                Err(error)
            }
        }
    }

    /// What the task's scope refused so far.
    pub fn denied(&self) -> Result<Denied, EgressError> {
        Ok(self.firewall.denied()?)
    }

    /// Removes the scope, the port and the bridge.
    pub fn remove(self) -> Result<(), EgressError> {
        let Self { router, firewall } = self;
        let removed = firewall.remove();
        unwire(router.as_deref());
        Ok(removed?)
    }
}

/// Deletes the task link's interfaces and table in `router`, whichever exist.
fn unwire(router: Option<&str>) {
    for link in [PORT, BRIDGE] {
        // Absent is fine: this also clears what a crashed run left, if anything.
        let _ = run_in(router, "ip", &["link", "del", link], "delete a task link");
    }
    let table = format!("capsule_{SCOPE}");
    let _ = run_in(
        router,
        "nft",
        &["delete", "table", "inet", &table],
        "delete a task scope",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_addresses_are_the_first_two_of_the_subnet() {
        let network = EgressNetwork::new(ImageDigest([0; 32]));
        assert_eq!(network.router_address(), Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(network.task_address(), Ipv4Addr::new(10, 89, 0, 2));
    }

    #[test]
    fn a_subnet_that_is_not_a_slash_30_network_is_refused_before_anything_is_touched() {
        let network = EgressNetwork {
            subnet: Ipv4Addr::new(10, 89, 0, 1),
            ..EgressNetwork::new(ImageDigest([0; 32]))
        };
        assert!(matches!(
            TaskLink::wire(&network, 1, &[]),
            Err(EgressError::BadSubnet(_))
        ));
    }
}
