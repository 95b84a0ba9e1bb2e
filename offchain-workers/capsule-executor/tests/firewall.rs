//! The egress firewall on real nftables with real traffic, in network namespaces this test
//! creates (client, router, server; addresses in 10.77.0.0/16 exist only inside them): the
//! allowlisted connection works; other TCP and UDP to the server, to the router itself and to
//! an address the router has no route to are dropped, counted and named; nothing outside may
//! open a connection into the scope; removing the scope leaves the router's ruleset as it was.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use capsule_executor::firewall::{Destination, Firewall, Scope};
use capsule_primitives::policy::{EgressRule, IpAddress, TransportProtocol};
use common::Namespaces;

mod common;

/// Three namespaces and two links: client c0 10.77.1.2 — r0 10.77.1.1 router r1 10.77.2.1 —
/// s0 10.77.2.2 server.
fn topology() -> Namespaces {
    let namespaces = Namespaces::new("cfw", &["c", "r", "s"]);
    namespaces.link(("c", "c0", "10.77.1.2/24"), ("r", "r0", "10.77.1.1/24"));
    namespaces.link(("r", "r1", "10.77.2.1/24"), ("s", "s0", "10.77.2.2/24"));
    namespaces.default_route("c", "10.77.1.1");
    namespaces.default_route("s", "10.77.2.1");
    namespaces.forward("r");
    namespaces
}

fn ruleset(ns: &str) -> String {
    capsule_executor::firewall::list_ruleset(Some(ns)).expect("nft lists the ruleset")
}

#[test]
fn only_the_allowlisted_destination_is_reachable_and_the_rest_is_counted_by_destination() {
    let topology = topology();
    let router = topology.name("r");
    let before = ruleset(&router);

    // Listeners on the server (allowed 8080, not allowed 9090), on the router (2222) and on
    // the client (7070, for connections into the scope).
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for (role, addr) in [
        ("s", "10.77.2.2:8080"),
        ("s", "10.77.2.2:9090"),
        ("r", "10.77.1.1:2222"),
        ("c", "10.77.1.2:7070"),
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
    for _ in 0..4 {
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("listeners up");
    }
    // With no firewall, both server ports answer (so the refusals below are the firewall's).
    let reach_from = |role: &'static str, addr: &'static str| {
        topology
            .within(role, move || {
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
    let reach = |addr| reach_from("c", addr);
    assert!(reach("10.77.2.2:9090").is_ok(), "open before the firewall");
    assert!(
        reach_from("s", "10.77.1.2:7070").is_ok(),
        "the client is reachable before the firewall"
    );

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
    assert!(
        reach("192.0.2.1:443").is_err(),
        "an address the router has no route to"
    );
    // Nobody routed from elsewhere opens a connection into the scope, and that is not the
    // scope's violation (it is not counted).
    assert!(
        reach_from("s", "10.77.1.2:7070").is_err(),
        "the scoped side cannot be reached from outside"
    );
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
    assert!(denied.packets >= 4, "{denied:?}");
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
            at("192.0.2.1", TransportProtocol::Tcp, 443),
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
