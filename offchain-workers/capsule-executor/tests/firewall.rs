//! The egress firewall on real nftables with real traffic, in network namespaces this test
//! creates (client, router, server; addresses in 10.77.0.0/16 exist only inside them): the
//! allowlisted connection works; other TCP and UDP to the server and to the router itself are
//! dropped, counted and named; removing the scope leaves the router's ruleset as it was.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::AsFd,
    process::Command,
    time::Duration,
};

use capsule_executor::firewall::{Destination, Firewall, Scope};
use capsule_primitives::policy::{EgressRule, IpAddress, TransportProtocol};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three namespaces and two links: client c0 10.77.1.2 — r0 10.77.1.1 router r1 10.77.2.1 —
/// s0 10.77.2.2 server. Deleted on drop.
struct Topology {
    prefix: String,
}

impl Topology {
    fn new() -> Self {
        let prefix = format!("cfw{}", std::process::id());
        let topology = Self { prefix };
        let (c, r, s) = (topology.ns("c"), topology.ns("r"), topology.ns("s"));
        for ns in [&c, &r, &s] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n", &c, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", &r,
        ]);
        ip(&[
            "-n", &r, "link", "add", "r1", "type", "veth", "peer", "name", "s0", "netns", &s,
        ]);
        for (ns, dev, addr) in [
            (&c, "c0", "10.77.1.2/24"),
            (&r, "r0", "10.77.1.1/24"),
            (&r, "r1", "10.77.2.1/24"),
            (&s, "s0", "10.77.2.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&["-n", &c, "route", "add", "default", "via", "10.77.1.1"]);
        ip(&["-n", &s, "route", "add", "default", "via", "10.77.2.1"]);
        let forwarding = Command::new("ip")
            .args([
                "netns",
                "exec",
                &r,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ])
            .status()
            .expect("sh");
        assert!(forwarding.success());
        topology
    }

    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// Runs `f` on a thread inside namespace `role`.
    fn within<T: Send + 'static>(
        &self,
        role: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.ns(role));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("namespace file");
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("setns");
            f()
        })
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for role in ["c", "r", "s"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .status();
        }
    }
}

fn ruleset(ns: &str) -> String {
    capsule_executor::firewall::list_ruleset(Some(ns)).expect("nft lists the ruleset")
}

#[test]
fn only_the_allowlisted_destination_is_reachable_and_the_rest_is_counted_by_destination() {
    let topology = Topology::new();
    let router = topology.ns("r");
    let before = ruleset(&router);

    // Listeners on the server (allowed 8080, not allowed 9090) and on the router (22).
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for (role, addr) in [
        ("s", "10.77.2.2:8080"),
        ("s", "10.77.2.2:9090"),
        ("r", "10.77.1.1:2222"),
    ] {
        let ready = ready_tx.clone();
        topology.within(role, move || {
            let listener = TcpListener::bind(addr).expect("bind");
            ready.send(()).expect("ready");
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let _ = stream.write_all(b"served\n");
            }
        });
    }
    for _ in 0..3 {
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("listeners up");
    }
    // With no firewall, both server ports answer (so the refusals below are the firewall's).
    let reach = |addr: &'static str| {
        topology
            .within("c", move || {
                let addr: SocketAddr = addr.parse().expect("address");
                TcpStream::connect_timeout(&addr, Duration::from_millis(700)).map(|mut s| {
                    let mut reply = String::new();
                    let _ = s.read_to_string(&mut reply);
                    reply
                })
            })
            .join()
            .expect("client thread")
    };
    assert!(reach("10.77.2.2:9090").is_ok(), "open before the firewall");

    let interfaces = ["r0".to_string()];
    let allow = [EgressRule {
        address: IpAddress::V4([10, 77, 2, 2]),
        port: 8080,
        protocol: TransportProtocol::Tcp,
    }];
    let firewall = Firewall::install(
        &Scope {
            name: "fwtest",
            interfaces: &interfaces,
            allow: &allow,
        },
        Some(&router),
    )
    .expect("installs");

    assert_eq!(reach("10.77.2.2:8080").expect("allowed"), "served\n");
    assert!(reach("10.77.2.2:9090").is_err(), "not allowlisted");
    assert!(reach("10.77.1.1:2222").is_err(), "the router itself");
    topology
        .within("c", || {
            let socket = UdpSocket::bind("10.77.1.2:0").expect("udp");
            socket
                .send_to(b"\x12\x34 query", "10.77.2.2:53")
                .expect("sent");
        })
        .join()
        .expect("client thread");

    let denied = firewall.denied().expect("reads");
    assert!(denied.packets >= 3, "{denied:?}");
    let at = |a: &str, protocol, port| Destination {
        address: a.parse().unwrap(),
        protocol,
        port,
    };
    assert_eq!(
        denied.destinations,
        vec![
            at("10.77.1.1", TransportProtocol::Tcp, 2222),
            at("10.77.2.2", TransportProtocol::Tcp, 9090),
            at("10.77.2.2", TransportProtocol::Udp, 53),
        ]
    );

    firewall.remove().expect("removes");
    assert_eq!(
        ruleset(&router),
        before,
        "the router's ruleset is as before"
    );
    assert!(reach("10.77.2.2:9090").is_ok(), "open again");
}
