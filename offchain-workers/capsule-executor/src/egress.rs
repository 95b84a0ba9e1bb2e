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
//! The task's default route is the bridge's address; IPv6 is off in its namespace. The
//! router's [`Firewall`] scope (table
//! `inet capsule_task`, on the bridge and its port) accepts exactly the task's
//! [`EgressRule`]s and counts, logs and remembers every other TCP or UDP attempt, including
//! those to the router's own addresses (the "host's bridge address"), to other containers and to
//! DNS servers; a non-zero count ends the run as a policy violation. The router must forward
//! IPv4 (checked) and route the task's /30 onwards; it does not translate addresses.
//!
//! The names are fixed (`capsule-egress`, `capsule-port`, `capsule_task`): runs in one
//! process take turns, and a link or table a crashed run left behind is replaced by the next,
//! never left to filter another task ([`crate::Executor::sweep`] removes them at start). One
//! executor per router namespace. A run that is cancelled cuts its task off at once: dropping
//! the [`TaskLink`] deletes the link.
use std::{fs::File, net::Ipv4Addr, os::fd::AsFd, process::Command};

use capsule_primitives::{measurement::ImageDigest, policy::EgressRule};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

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
    #[error("cannot run {program}: {source}; install iproute2 and run as root")]
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
    #[error("cannot enter or configure the holder's network namespace: {0}")]
    Namespace(#[source] std::io::Error),
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

/// Runs `f` on a thread of its own inside the network namespace `netns` (programs it starts
/// run there too); the thread ends with `f`, so nothing else moves.
fn in_namespace<T: Send>(
    netns: &File,
    f: impl FnOnce() -> Result<T, EgressError> + Send,
) -> Result<T, EgressError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                move_into_link_name_space(netns.as_fd(), Some(LinkNameSpaceType::Network))
                    .map_err(|e| EgressError::Namespace(e.into()))?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(EgressError::Namespace(std::io::Error::other("panicked"))))
    })
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

/// A wired task link. [`TaskLink::remove`] unwires it and says what its scope refused;
/// dropping it unwires it too (a cancelled run's task is cut off at once). The holder's
/// removal ends the task's end with its namespace.
#[derive(Debug)]
pub struct TaskLink {
    router: Option<String>,
    firewall: Option<Firewall>,
}

impl TaskLink {
    /// Wires the holder (process `holder_pid`) to the router and installs the task's scope
    /// before anything runs in the holder's namespace but the holder.
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
        // The namespace is opened once: a holder that died cannot have its pid reused under us.
        let holder =
            File::open(format!("/proc/{holder_pid}/ns/net")).map_err(EgressError::Namespace)?;
        // What a crashed run may have left is replaced, never reused.
        unwire(router);
        let mut link = Self {
            router: router.map(str::to_owned),
            firewall: None,
        };
        let ip = |args: &[&str], what| run_in(router, "ip", args, what).map(drop);
        ip(
            &["link", "add", BRIDGE, "type", "bridge"],
            "create the task's bridge",
        )?;
        ip(
            &[
                "addr",
                "add",
                &format!("{}/30", network.router_address()),
                "dev",
                BRIDGE,
            ],
            "address the task's bridge",
        )?;
        // The router's end is named by its namespace, or by this process for its own.
        let router_ref = router.map_or_else(|| std::process::id().to_string(), str::to_owned);
        let task_address = format!("{}/30", network.task_address());
        let gateway = network.router_address().to_string();
        in_namespace(&holder, || {
            // IPv4 only: no link-local or neighbour discovery traffic of the task's.
            for conf in ["all", "default"] {
                let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
                match std::fs::write(&path, "1") {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(EgressError::Namespace(e))
                    }
                    _ => {}
                }
            }
            let ip = |args: &[&str], what| run_in(None, "ip", args, what).map(drop);
            ip(
                &[
                    "link",
                    "add",
                    TASK_INTERFACE,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    PORT,
                    "netns",
                    &router_ref,
                ],
                "create the task's link into the router",
            )?;
            ip(
                &["addr", "add", &task_address, "dev", TASK_INTERFACE],
                "address the task's interface",
            )?;
            ip(
                &["link", "set", TASK_INTERFACE, "up"],
                "bring the task's interface up",
            )?;
            ip(
                &["route", "add", "default", "via", &gateway],
                "route the task through the bridge",
            )
        })?;
        ip(
            &["link", "set", PORT, "master", BRIDGE, "up"],
            "attach the link to the bridge",
        )?;
        ip(&["link", "set", BRIDGE, "up"], "bring the bridge up")?;
        let interfaces = [BRIDGE.to_string(), PORT.to_string()];
        link.firewall = Some(Firewall::install(
            &Scope {
                name: SCOPE,
                interfaces: &interfaces,
                allow,
            },
            router,
        )?);
        Ok(link)
    }

    /// Cuts the task off (its link first, so nothing passes after the count is read), reads
    /// what the scope refused, and removes the scope.
    pub fn remove(mut self) -> Result<Denied, EgressError> {
        unwire_links(self.router.as_deref());
        let Some(firewall) = self.firewall.take() else {
            return Ok(Denied::default());
        };
        let denied = firewall.denied();
        firewall.remove()?;
        Ok(denied?)
    }
}

impl Drop for TaskLink {
    fn drop(&mut self) {
        // Reached with the firewall still here only when the run did not finish: cut the task
        // off; the firewall's own drop removes its table.
        if self.firewall.is_some() {
            unwire_links(self.router.as_deref());
        }
    }
}

/// Deletes the task link's interfaces in `router`, whichever exist.
fn unwire_links(router: Option<&str>) {
    for link in [PORT, BRIDGE] {
        // Absent is fine: this also clears what a crashed run left, if anything.
        let _ = run_in(router, "ip", &["link", "del", link], "delete a task link");
    }
}

/// Deletes the task link's interfaces and table in `router`, whichever exist: what a crashed
/// or cancelled run may have left.
pub fn unwire(router: Option<&str>) {
    unwire_links(router);
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
