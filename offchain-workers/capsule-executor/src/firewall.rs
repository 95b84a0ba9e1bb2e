//! Egress allowlists in nftables: the packets that enter through a set of interfaces (a task's
//! bridge port, or the HPC's link on a gateway) may reach only the listed destinations; every
//! other packet is counted and logged, and TCP and UDP ones are remembered by destination.
//!
//! Each scope is a table of its own (`inet capsule_<name>`), so it coexists with the engine's
//! tables and with other scopes; its base chain on the `prerouting` hook jumps to the scope's
//! rules only for its interfaces and leaves all other traffic to whoever else filters it. A
//! drop in any table is final, so an accept elsewhere cannot undo ours. Prerouting, not forward
//! and input: it sees a packet before the routing decision, so an attempt to reach a
//! destination the router has no route to is counted too (forward never sees it), and so is one
//! to the router's own addresses.
//!
//! What passes, in order:
//! - from the scope's interfaces (`prerouting`): answers on connections the router itself
//!   opened (`ct direction reply`: nothing else can have opened one, see below); packets to
//!   each allowed (address, protocol, port); ICMP errors about a tracked connection (a port
//!   unreachable the task's kernel answers an allowed server with once the task closed its
//!   socket: they go only to peers that could reach the task, see below). Established state
//!   alone is not enough: an entry a previous task on the same address left in the router's
//!   connection table must not carry a later task past its own allowlist.
//! - into the scope's interfaces (`forward`): only answers from an allowed (address, protocol,
//!   port) on an established connection. Nothing routed from elsewhere opens a connection to
//!   the scope's side or answers it from anywhere else.
//!
//! Every other packet from the scope's interfaces (any protocol) is counted in the named
//! counter `denied`, logged (at most [`LOG_RATE`] a second) and dropped; TCP and UDP ones are
//! also added to a dynamic set of their destination (`denied_v4`, `denied_v6`). The log's
//! prefix is `capsule-deny <name> ` (the kernel logs from namespaces other than the initial one
//! only with `net.netfilter.nf_log_all_netns=1`; the counter and sets count regardless).
//! [`Firewall::denied`] reads the counter and the sets: a non-zero count is a policy violation,
//! and the sets say where to.
//!
//! The chains run at priority -150: after connection tracking (-200), before destination NAT
//! (-100), so they judge the destination the task asked for, not a rewritten one.
use std::{
    io::Write,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::{Command, Stdio},
};

use capsule_primitives::policy::{EgressRule, IpAddress, TransportProtocol};
use serde_json::Value;

/// Most destinations the sets remember per scope (the counter counts on past it).
pub const REMEMBERED_DESTINATIONS: u32 = 1024;
/// Most refused packets logged per second per scope, so a task cannot flood the kernel log
/// (where the seccomp kill records are read from).
pub const LOG_RATE: u32 = 10;
/// The hook priority of the scope's chains (see the module docs).
const PRIORITY: i32 = -150;

/// What can go wrong with a scope's rules.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run nft: {0}; install nftables (scripts/setup.sh) and run as root")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused to {what}: {stderr}")]
    Nft { what: &'static str, stderr: String },
    #[error("scope name {0:?}: use 1 to 32 ASCII letters, digits or '_'")]
    BadName(String),
    #[error("interface name {0:?}: use 1 to 15 ASCII letters, digits, '-', '_' or '.'")]
    BadInterface(String),
    #[error("a scope needs at least one interface")]
    NoInterface,
    #[error("cannot read nft's answer: {0}")]
    Answer(String),
}

/// The traffic a scope covers and what it may reach.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    /// Names the table (`capsule_<name>`) and the log prefix.
    pub name: &'a str,
    /// Packets entering through these interfaces are filtered.
    pub interfaces: &'a [String],
    /// The only destinations they may reach.
    pub allow: &'a [EgressRule],
}

/// A destination a scope's traffic tried and was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    pub address: IpAddr,
    pub protocol: TransportProtocol,
    pub port: u16,
}

/// What a scope refused so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Denied {
    /// Refused packets (TCP, UDP, and any other protocol).
    pub packets: u64,
    /// Their destinations, each once, by address, protocol and port (at most [`REMEMBERED_DESTINATIONS`] per family).
    pub destinations: Vec<Destination>,
}

fn check_name(name: &str) -> Result<(), FirewallError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(())
        .ok_or_else(|| FirewallError::BadName(name.into()))
}

fn check_interface(name: &str) -> Result<(), FirewallError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then_some(())
        .ok_or_else(|| FirewallError::BadInterface(name.into()))
}

fn ip(address: &IpAddress) -> IpAddr {
    match *address {
        IpAddress::V4(octets) => IpAddr::V4(Ipv4Addr::from(octets)),
        IpAddress::V6(octets) => IpAddr::V6(Ipv6Addr::from(octets)),
    }
}

fn protocol_name(protocol: TransportProtocol) -> &'static str {
    match protocol {
        TransportProtocol::Tcp => "tcp",
        TransportProtocol::Udp => "udp",
    }
}

/// The table of a scope, as an `nft -f` script.
pub fn ruleset(scope: &Scope<'_>) -> Result<String, FirewallError> {
    check_name(scope.name)?;
    if scope.interfaces.is_empty() {
        return Err(FirewallError::NoInterface);
    }
    for interface in scope.interfaces {
        check_interface(interface)?;
    }
    let table = format!("capsule_{}", scope.name);
    let interfaces = scope
        .interfaces
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let (mut allowed, mut answers) = (String::new(), String::new());
    for rule in scope.allow {
        let family = match rule.address {
            IpAddress::V4(_) => "ip",
            IpAddress::V6(_) => "ip6",
        };
        let (address, protocol, port) =
            (ip(&rule.address), protocol_name(rule.protocol), rule.port);
        allowed.push_str(&format!(
            "\t\t{family} daddr {address} meta l4proto {protocol} th dport {port} accept\n"
        ));
        answers.push_str(&format!(
            "\t\toifname {{ {interfaces} }} ct state established {family} saddr {address} meta l4proto {protocol} th sport {port} accept\n"
        ));
    }
    let size = REMEMBERED_DESTINATIONS;
    let name = scope.name;
    // The table is created empty and deleted first, so installing twice replaces it.
    Ok(format!(
        "table inet {table} {{}}
delete table inet {table}
table inet {table} {{
\tcounter denied {{}}
\tset denied_v4 {{ type ipv4_addr . inet_proto . inet_service; flags dynamic; size {size}; }}
\tset denied_v6 {{ type ipv6_addr . inet_proto . inet_service; flags dynamic; size {size}; }}
\tchain scoped {{
\t\tct direction reply ct state established,related accept
\t\tct state related meta l4proto icmp accept
{allowed}\t\tmeta nfproto ipv4 meta l4proto {{ tcp, udp }} add @denied_v4 {{ ip daddr . meta l4proto . th dport }}
\t\tmeta nfproto ipv6 meta l4proto {{ tcp, udp }} add @denied_v6 {{ ip6 daddr . meta l4proto . th dport }}
\t\tlimit rate {LOG_RATE}/second log prefix \"capsule-deny {name} \"
\t\tcounter name denied drop
\t}}
\tchain prerouting {{
\t\ttype filter hook prerouting priority {PRIORITY}; policy accept;
\t\tiifname {{ {interfaces} }} jump scoped
\t}}
\tchain inbound {{
\t\ttype filter hook forward priority {PRIORITY}; policy accept;
{answers}\t\toifname {{ {interfaces} }} drop
\t}}
}}
"
    ))
}

/// An installed scope. Dropping it removes the table (errors logged);
/// [`Firewall::remove`] does the same and reports them.
#[derive(Debug)]
pub struct Firewall {
    table: String,
    netns: Option<String>,
    installed: bool,
}

fn nft(
    netns: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
    what: &'static str,
) -> Result<String, FirewallError> {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nft"]);
            c
        }
        None => Command::new("nft"),
    };
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(FirewallError::Spawn)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(FirewallError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(FirewallError::Spawn)?;
    if !out.status.success() {
        return Err(FirewallError::Nft {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The whole ruleset of network namespace `netns` (or this process's), without counters:
/// what the cleanup evidence digests.
pub fn list_ruleset(netns: Option<&str>) -> Result<String, FirewallError> {
    nft(
        netns,
        &["--stateless", "list", "ruleset"],
        None,
        "list the ruleset",
    )
}

impl Firewall {
    /// Installs `scope`'s table, in network namespace `netns` (by `ip netns` name) or in this
    /// process's.
    pub fn install(scope: &Scope<'_>, netns: Option<&str>) -> Result<Self, FirewallError> {
        let script = ruleset(scope)?;
        nft(
            netns,
            &["-f", "-"],
            Some(&script),
            "install the scope's table",
        )?;
        Ok(Self {
            table: format!("capsule_{}", scope.name),
            netns: netns.map(str::to_owned),
            installed: true,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// What the scope refused so far.
    pub fn denied(&self) -> Result<Denied, FirewallError> {
        let ns = self.netns.as_deref();
        let counter = nft(
            ns,
            &["-j", "list", "counter", "inet", &self.table, "denied"],
            None,
            "list the counter",
        )?;
        let packets = objects(&counter, "counter")?
            .first()
            .and_then(|c| c.get("packets"))
            .and_then(Value::as_u64)
            .ok_or_else(|| FirewallError::Answer(format!("no packet count in {counter}")))?;
        let mut destinations = Vec::new();
        for set in ["denied_v4", "denied_v6"] {
            let listed = nft(
                ns,
                &["-j", "-nnn", "list", "set", "inet", &self.table, set],
                None,
                "list the refused destinations",
            )?;
            for object in objects(&listed, "set")? {
                for element in object
                    .get("elem")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    destinations.push(destination(element).ok_or_else(|| {
                        FirewallError::Answer(format!("unexpected set element {element}"))
                    })?);
                }
            }
        }
        destinations.sort_by_key(|d| (d.address, protocol_name(d.protocol), d.port));
        destinations.dedup();
        Ok(Denied {
            packets,
            destinations,
        })
    }

    /// Deletes the table.
    pub fn remove(mut self) -> Result<(), FirewallError> {
        self.delete()
    }

    fn delete(&mut self) -> Result<(), FirewallError> {
        if self.installed {
            nft(
                self.netns.as_deref(),
                &["delete", "table", "inet", &self.table],
                None,
                "delete the scope's table",
            )?;
            self.installed = false;
        }
        Ok(())
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if let Err(error) = self.delete() {
            tracing::warn!(%error, table = %self.table, "cannot remove a firewall scope");
        }
    }
}

/// The objects of kind `kind` in an `nft -j` answer.
fn objects(answer: &str, kind: &str) -> Result<Vec<Value>, FirewallError> {
    let parsed: Value =
        serde_json::from_str(answer).map_err(|e| FirewallError::Answer(e.to_string()))?;
    Ok(parsed
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get(kind).cloned())
        .collect())
}

/// One `address . protocol . port` element, in either of the forms nft prints.
fn destination(element: &Value) -> Option<Destination> {
    let element = element
        .get("elem")
        .and_then(|e| e.get("val"))
        .unwrap_or(element);
    let parts = element.get("concat")?.as_array()?;
    let [address, protocol, port] = parts.as_slice() else {
        return None;
    };
    let protocol = match protocol {
        Value::String(name) if name == "tcp" => TransportProtocol::Tcp,
        Value::String(name) if name == "udp" => TransportProtocol::Udp,
        Value::Number(n) if n.as_u64() == Some(6) => TransportProtocol::Tcp,
        Value::Number(n) if n.as_u64() == Some(17) => TransportProtocol::Udp,
        _ => return None,
    };
    let port = match port {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some(Destination {
        address: address.as_str()?.parse().ok()?,
        protocol,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(address: [u8; 4], port: u16) -> EgressRule {
        EgressRule {
            address: IpAddress::V4(address),
            port,
            protocol: TransportProtocol::Tcp,
        }
    }

    #[test]
    fn the_ruleset_scopes_by_interface_and_allows_exactly_the_rules() {
        let interfaces = ["veth-t42".to_string()];
        let allow = [rule([10, 77, 2, 2], 8080)];
        let text = ruleset(&Scope {
            name: "task_42",
            interfaces: &interfaces,
            allow: &allow,
        })
        .unwrap();
        assert!(text.contains("table inet capsule_task_42 {\n"));
        assert_eq!(
            text.matches("iifname { \"veth-t42\" } jump scoped").count(),
            1
        );
        assert!(text.contains("ip daddr 10.77.2.2 meta l4proto tcp th dport 8080 accept"));
        assert!(text.contains(
            "oifname { \"veth-t42\" } ct state established ip saddr 10.77.2.2 meta l4proto tcp th sport 8080 accept"
        ));
        assert_eq!(
            text.matches(" accept\n").count(),
            4,
            "answers on the router's own connections, ICMP errors, the rule, and its answers"
        );
        assert!(text.contains("limit rate 10/second log prefix \"capsule-deny task_42 \"\n"));
        assert!(text.contains("\t\tcounter name denied drop\n"));
        assert!(text.contains("\t\toifname { \"veth-t42\" } drop\n"));
    }

    #[test]
    fn names_that_could_break_the_script_are_refused() {
        let good = ["eth0".to_string()];
        for bad in ["", "a b", "x;flush ruleset", "é", &"n".repeat(33)] {
            assert!(matches!(
                ruleset(&Scope {
                    name: bad,
                    interfaces: &good,
                    allow: &[]
                }),
                Err(FirewallError::BadName(_))
            ));
        }
        for bad in ["", "eth0\" }", "a b", "sixteen-chars-xx"] {
            assert!(matches!(
                ruleset(&Scope {
                    name: "t",
                    interfaces: &[bad.to_string()],
                    allow: &[]
                }),
                Err(FirewallError::BadInterface(_))
            ));
        }
        assert!(matches!(
            ruleset(&Scope {
                name: "t",
                interfaces: &[],
                allow: &[]
            }),
            Err(FirewallError::NoInterface)
        ));
    }

    #[test]
    fn set_elements_parse_in_both_forms() {
        let named: Value = serde_json::json!({"concat": ["10.0.0.3", "tcp", 80]});
        let numeric: Value =
            serde_json::json!({"elem": {"val": {"concat": ["fd00::1", 17, "53"]}}});
        assert_eq!(
            destination(&named),
            Some(Destination {
                address: "10.0.0.3".parse().unwrap(),
                protocol: TransportProtocol::Tcp,
                port: 80
            })
        );
        assert_eq!(
            destination(&numeric),
            Some(Destination {
                address: "fd00::1".parse().unwrap(),
                protocol: TransportProtocol::Udp,
                port: 53
            })
        );
        assert_eq!(
            destination(&serde_json::json!({"concat": ["x", "tcp", 1]})),
            None
        );
    }
}
