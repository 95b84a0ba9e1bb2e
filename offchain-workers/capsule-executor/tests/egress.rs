//! Networked tasks against the real engine, under runc and under gVisor: a task whose policy
//! allows one destination gets its own link to a router namespace this test creates (with a
//! server namespace behind it; their addresses exist only inside them). The allowlisted
//! connection works; connecting to the router's bridge address, another container's address, a
//! server port or an address nobody allowed, and sending DNS queries, each end the run as
//! `PolicyViolation(Destination)` naming exactly that destination. A flow an earlier task was
//! allowed carries no later task; a cancelled run is cut off at once and swept. Every run leaves
//! the host and the router as it found them (the evidence, which lists the router's interfaces
//! and ruleset, is clean).
use std::{
    io::{BufRead, BufReader, Write},
    net::{IpAddr, TcpListener, UdpSocket},
    sync::OnceLock,
    time::Duration,
};

use capsule_executor::{
    egress::{self, EgressNetwork},
    firewall::Destination,
    Executor, ExecutorError, Outcome, RunReport, RunSpec, Runtime, Violation,
};
use capsule_image::{build_function_image, ImageArchive};
use capsule_primitives::{
    policy::{EgressRule, IpAddress, ResourceLimits, TransportProtocol},
    TaskId,
};
use common::Namespaces;

mod common;

/// The task links' /30 in the router: bridge 10.78.9.1, task 10.78.9.2.
const TASK_SUBNET: [u8; 4] = [10, 78, 9, 0];
const SERVER: [u8; 4] = [10, 78, 2, 2];
const ALLOWED_PORT: u16 = 8080;
/// A UDP server that answers and then keeps sending to whoever asked (keeping the router's
/// connection-table entry alive).
const KEEPALIVE_PORT: u16 = 5353;

fn limits() -> ResourceLimits {
    ResourceLimits {
        memory_bytes: 96 << 20,
        cpu_millis: 1000,
        pids: 32,
        tmpfs_bytes: 1 << 20,
        output_bytes: 1 << 20,
    }
}

fn image(name: &str) -> ImageArchive {
    let path = capsule_functions::binary(name).expect("function binaries build");
    build_function_image(&std::fs::read(path).expect("function binary"))
}

/// Router and server namespaces (router r1 10.78.2.1 — s0 10.78.2.2 server), and a server
/// that answers on the allowed port and on one that is not.
fn topology() -> Namespaces {
    {
        let namespaces = Namespaces::new("cex", &["r", "s"]);
        namespaces.link(("r", "r1", "10.78.2.1/24"), ("s", "s0", "10.78.2.2/24"));
        namespaces.default_route("s", "10.78.2.1");
        namespaces.forward("r");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for port in [ALLOWED_PORT, 9090] {
            let ready = ready_tx.clone();
            namespaces.within("s", move || {
                let listener = TcpListener::bind((IpAddr::from(SERVER), port)).expect("bind");
                ready.send(()).expect("ready");
                for stream in listener.incoming().flatten() {
                    // Read the task's line first, so closing does not reset the reply.
                    let mut line = String::new();
                    let _ = BufReader::new(&stream).read_line(&mut line);
                    let _ = (&stream).write_all(format!("served {}", line).as_bytes());
                }
            });
        }
        let ready = ready_tx.clone();
        namespaces.within("s", move || {
            let socket = UdpSocket::bind((IpAddr::from(SERVER), KEEPALIVE_PORT)).expect("bind");
            ready.send(()).expect("ready");
            let mut buf = [0u8; 512];
            let Ok((_, peer)) = socket.recv_from(&mut buf) else {
                return;
            };
            // Until the namespace goes: nobody minds errors once the task is gone.
            loop {
                let _ = socket.send_to(b"answer", peer);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        for _ in 0..3 {
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the server listens");
        }
        namespaces
    }
}

/// An executor wired to the test's router, with the holder and hostile images loaded.
async fn executor(topology: &Namespaces, runtime: Runtime) -> (Executor, &'static ImageArchive) {
    static IMAGES: OnceLock<(ImageArchive, ImageArchive)> = OnceLock::new();
    let (holder, hostile) = IMAGES.get_or_init(|| (image("pause"), image("hostile")));
    let executor = Executor::connect(runtime)
        .await
        .expect("the engine answers (scripts/dockerd-up.sh)")
        .with_egress(EgressNetwork {
            holder_image: holder.id,
            router_netns: Some(topology.name("r")),
            subnet: TASK_SUBNET.into(),
        });
    for image in [holder, hostile] {
        executor
            .ensure_image(&image.id, Some(&image.tar))
            .await
            .expect("loads");
    }
    (executor, hostile)
}

fn allowed() -> [EgressRule; 1] {
    [EgressRule {
        address: IpAddress::V4(SERVER),
        port: ALLOWED_PORT,
        protocol: TransportProtocol::Tcp,
    }]
}

async fn run(executor: &Executor, hostile: &ImageArchive, task: u64, behaviour: &str) -> RunReport {
    run_allowing(executor, hostile, task, behaviour, &allowed()).await
}

async fn run_allowing(
    executor: &Executor,
    hostile: &ImageArchive,
    task: u64,
    behaviour: &str,
    egress: &[EgressRule],
) -> RunReport {
    let stdin = format!("{behaviour}\n");
    let started = std::time::Instant::now();
    let report = executor
        .run(&RunSpec {
            task: TaskId(task),
            image: hostile.id,
            limits: limits(),
            // gVisor's host network (2022) ignores a UDP socket's receive timeout, so a query
            // nobody answers waits for this.
            timeout: Duration::from_secs(5),
            stdin: stdin.as_bytes(),
            inputs: &[],
            egress,
        })
        .await
        .expect("runs");
    assert!(
        report.evidence.is_clean(),
        "task {task} ({behaviour}) left {:?}",
        report.residue
    );
    eprintln!("{behaviour}: whole run {:?}", started.elapsed());
    report
}

fn stdout(report: &RunReport) -> String {
    String::from_utf8_lossy(&report.stdout).into_owned()
}

async fn networked(topology: &Namespaces, runtime: Runtime, base: u64) {
    let (executor, hostile) = executor(topology, runtime).await;

    let report = run(&executor, hostile, base, "connect-tcp 10.78.2.2:8080").await;
    assert_eq!(
        (report.outcome.clone(), stdout(&report)),
        (
            Outcome::Completed { exit_code: 0 },
            "connected 10.78.2.2:8080; reply \"served hello from a task\\n\"\n".into()
        ),
        "the allowlisted connection works"
    );

    // The router's own (bridge) address, another container's, a server port and an address
    // that are not allowed, and DNS to the router and to an address nobody allowed.
    let attempts = [
        (
            "connect-tcp 10.78.9.1:80",
            "10.78.9.1",
            TransportProtocol::Tcp,
            80,
        ),
        // Docker's default bridge network, where other containers live (on the HPC the router
        // is the host, which routes there; the scope counts before any routing).
        (
            "connect-tcp 172.17.0.2:80",
            "172.17.0.2",
            TransportProtocol::Tcp,
            80,
        ),
        (
            "connect-tcp 10.78.2.2:9090",
            "10.78.2.2",
            TransportProtocol::Tcp,
            9090,
        ),
        (
            "connect-tcp 192.0.2.1:443",
            "192.0.2.1",
            TransportProtocol::Tcp,
            443,
        ),
        (
            "send-udp 10.78.9.1:53",
            "10.78.9.1",
            TransportProtocol::Udp,
            53,
        ),
        (
            "send-udp 192.0.2.53:53",
            "192.0.2.53",
            TransportProtocol::Udp,
            53,
        ),
    ];
    let mut table = Vec::new();
    for (index, (behaviour, address, protocol, port)) in attempts.into_iter().enumerate() {
        let report = run(&executor, hostile, base + 1 + index as u64, behaviour).await;
        let refused = match &report.outcome {
            Outcome::PolicyViolation(Violation::Destination {
                packets,
                destinations,
            }) if *packets > 0 => destinations.clone(),
            other => panic!("{behaviour}: {other:?}, output {:?}", stdout(&report)),
        };
        assert_eq!(
            refused,
            vec![Destination {
                address: address.parse().expect("address"),
                protocol,
                port,
            }],
            "{behaviour}"
        );
        assert!(
            !stdout(&report).contains("connected"),
            "{behaviour}: {}",
            stdout(&report)
        );
        table.push(format!(
            "{behaviour}: {:?} {:?}",
            report.outcome, report.elapsed
        ));
    }
    eprintln!("{runtime:?}:\n{}", table.join("\n"));

    let left = egress::interfaces(Some(&topology.name("r"))).expect("router interfaces");
    assert!(
        !left
            .iter()
            .any(|i| i == egress::BRIDGE || i == egress::PORT),
        "{left:?}"
    );
}

/// A UDP flow an earlier task was allowed, kept alive by its server, does not carry a later
/// task that is not allowed it: established state in the router is not a permission.
async fn stale_flows_are_no_permission(topology: &Namespaces, runtime: Runtime, base: u64) {
    let (executor, hostile) = executor(topology, runtime).await;
    let dns = [EgressRule {
        address: IpAddress::V4(SERVER),
        port: KEEPALIVE_PORT,
        protocol: TransportProtocol::Udp,
    }];
    let behaviour = format!("send-udp 10.78.2.2:{KEEPALIVE_PORT} 40000");
    let first = run_allowing(&executor, hostile, base, &behaviour, &dns).await;
    assert_eq!(first.outcome, Outcome::Completed { exit_code: 0 });
    assert!(
        stdout(&first).contains("answer of"),
        "the allowed flow works both ways: {}",
        stdout(&first)
    );
    let second = run_allowing(&executor, hostile, base + 1, &behaviour, &allowed()).await;
    assert_eq!(
        second.outcome,
        Outcome::PolicyViolation(Violation::Destination {
            packets: 1,
            destinations: vec![Destination {
                address: IpAddr::from(SERVER),
                protocol: TransportProtocol::Udp,
                port: KEEPALIVE_PORT,
            }],
        }),
        "{}",
        stdout(&second)
    );
}

/// A cancelled run's task is cut off at once, and a sweep removes its containers: the host is
/// as it was.
async fn a_cancelled_run_is_cut_off_and_swept(topology: &Namespaces, base: u64) {
    let (executor, hostile) = executor(topology, Runtime::Runc).await;
    let before = executor.host_state().await.expect("host state");
    let running = {
        let (executor, image) = (executor.clone(), hostile.id);
        tokio::spawn(async move {
            executor
                .run(&RunSpec {
                    task: TaskId(base),
                    image,
                    limits: limits(),
                    timeout: Duration::from_secs(60),
                    stdin: b"spin\n",
                    inputs: &[],
                    egress: &allowed(),
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let router = topology.name("r");
    assert!(
        egress::interfaces(Some(&router))
            .expect("router interfaces")
            .iter()
            .any(|i| i == egress::BRIDGE),
        "the run is wired"
    );
    running.abort();
    assert!(running.await.expect_err("cancelled").is_cancelled());
    let left = egress::interfaces(Some(&router)).expect("router interfaces");
    assert!(!left.iter().any(|i| i == egress::PORT), "cut off: {left:?}");
    assert_eq!(
        executor.sweep().await.expect("sweeps"),
        2,
        "the task and its holder"
    );
    let mut residue = Vec::new();
    for _ in 0..50 {
        residue = before.diff(&executor.host_state().await.expect("host state"));
        if residue.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(residue, vec![], "the host is as before the run");
}

/// One test for both runtimes, so the namespaces are made once and deleted at its end.
#[tokio::test]
async fn a_networked_task_reaches_only_its_allowlist_under_runc_and_gvisor() {
    let topology = topology();
    networked(&topology, Runtime::Runc, 700).await;
    stale_flows_are_no_permission(&topology, Runtime::Runc, 720).await;
    networked(&topology, Runtime::Gvisor, 800).await;
    stale_flows_are_no_permission(&topology, Runtime::Gvisor, 820).await;
    a_cancelled_run_is_cut_off_and_swept(&topology, 850).await;
}

#[tokio::test]
async fn a_task_that_allows_destinations_is_refused_by_an_executor_without_a_network() {
    let executor = Executor::connect(Runtime::Runc)
        .await
        .expect("the engine answers (scripts/dockerd-up.sh)");
    let refused = executor
        .run(&RunSpec {
            task: TaskId(900),
            image: capsule_primitives::measurement::ImageDigest([7; 32]),
            limits: limits(),
            timeout: Duration::from_secs(1),
            stdin: b"",
            inputs: &[],
            egress: &allowed(),
        })
        .await;
    assert!(
        matches!(refused, Err(ExecutorError::NoEgressNetwork)),
        "{refused:?}"
    );
}
