//! The demo function and the hostile functions (`capsule-functions`, static musl binaries)
//! against the real engine, under runc and under gVisor: each misbehaviour ends with the
//! outcome the executor promises, and every run leaves the host state as it found it (the
//! cleanup evidence is clean).
use std::{sync::OnceLock, time::Duration};

use capsule_executor::{Executor, Outcome, RunReport, RunSpec, Runtime, Violation};
use capsule_image::{build_function_image_with_mode, ImageArchive};
use capsule_primitives::{policy::ResourceLimits, TaskId};

const PIDS: u32 = 32;
const SCRATCH: u64 = 1 << 20;

fn limits() -> ResourceLimits {
    ResourceLimits {
        memory_bytes: 96 << 20,
        cpu_millis: 1000,
        pids: PIDS,
        tmpfs_bytes: SCRATCH,
        output_bytes: 1 << 20,
    }
}

fn function(name: &str, mode: u32) -> ImageArchive {
    let path = capsule_functions::binary(name).expect("function binaries build");
    let binary = std::fs::read(path).expect("function binary");
    build_function_image_with_mode(&binary, mode)
}

fn hostile() -> &'static ImageArchive {
    static IMAGE: OnceLock<ImageArchive> = OnceLock::new();
    IMAGE.get_or_init(|| function("hostile", 0o555))
}

fn hostile_setuid() -> &'static ImageArchive {
    static IMAGE: OnceLock<ImageArchive> = OnceLock::new();
    IMAGE.get_or_init(|| function("hostile", 0o4755))
}

async fn run(
    runtime: Runtime,
    task: u64,
    image: &ImageArchive,
    stdin: &str,
    inputs: &[(&str, &[u8])],
    limits: ResourceLimits,
    timeout: Duration,
) -> RunReport {
    let executor = Executor::connect(runtime)
        .await
        .expect("the engine answers (scripts/dockerd-up.sh)");
    executor
        .ensure_image(&image.id, Some(&image.tar))
        .await
        .expect("loads");
    let report = executor
        .run(&RunSpec {
            task: TaskId(task),
            image: image.id,
            limits,
            timeout,
            stdin: stdin.as_bytes(),
            inputs,
            egress: &[],
        })
        .await
        .expect("runs");
    assert!(
        report.evidence.is_clean(),
        "task {task} ({stdin:?}) left {:?}",
        report.residue
    );
    report
}

fn stdout(report: &RunReport) -> String {
    String::from_utf8_lossy(&report.stdout).into_owned()
}

async fn demo(runtime: Runtime) {
    let image = function("intersect", 0o555);
    let alice = b"Ada\nGrace\nEdsger\n  Barbara  \n\nAlan\n";
    let bob = b"Alan\nBarbara\nKen\nGrace\nGrace\n";
    let report = run(
        runtime,
        1,
        &image,
        "",
        &[("alice", alice), ("bob", bob)],
        limits(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Completed { exit_code: 0 });
    assert_eq!(stdout(&report), "3 names in common\n");
    assert_eq!(
        report.outputs.files["intersection"],
        b"Alan\nBarbara\nGrace\n"
    );
    assert!(report.outputs.refused.is_empty());
    // One list only: a clear error, no output.
    let report = run(
        runtime,
        2,
        &image,
        "",
        &[("alice", alice)],
        limits(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Completed { exit_code: 2 });
    assert!(report.outputs.files.is_empty());
}

#[tokio::test]
async fn the_demo_intersects_two_name_lists_under_runc() {
    demo(Runtime::Runc).await;
}

#[tokio::test]
async fn the_demo_intersects_two_name_lists_under_gvisor() {
    demo(Runtime::Gvisor).await;
}

/// Behaviour on stdin, the call's x86-64 number and name as the executor reports it.
const FORBIDDEN: &[(&str, u32, &str)] = &[
    ("raw-socket", 41, "socket (raw or packet)"),
    ("mount", 165, "mount"),
    ("mknod", 133, "mknod"),
    ("clock-settime", 227, "clock_settime"),
    ("ptrace", 101, "ptrace"),
    ("keyctl", 250, "keyctl"),
];

/// Destinations a function without network tries: the host's bridge address, another
/// container's, an address nobody allowed (TEST-NET-1), and a DNS server.
fn destinations() -> Vec<String> {
    vec![
        "connect-tcp 172.17.0.1:80".into(),
        "connect-tcp 172.17.0.2:80".into(),
        "connect-tcp 192.0.2.1:443".into(),
        "send-udp 172.17.0.1:53".into(),
        "send-udp 192.0.2.53:53".into(),
    ]
}

async fn forbidden_calls(runtime: Runtime, base: u64) -> Vec<String> {
    let mut table = Vec::new();
    for (index, &(behaviour, number, name)) in FORBIDDEN.iter().enumerate() {
        for forked in [false, true] {
            let stdin = if forked {
                format!("forked {behaviour}\n")
            } else {
                format!("{behaviour}\n")
            };
            let task = base + 2 * index as u64 + u64::from(forked);
            let report = run(
                runtime,
                task,
                hostile(),
                &stdin,
                &[],
                limits(),
                Duration::from_secs(30),
            )
            .await;
            let said = stdout(&report);
            table.push(format!(
                "{:<24} {:?} {}",
                stdin.trim(),
                report.outcome,
                said.trim()
            ));
            match (runtime, forked) {
                (Runtime::Runc, _) => assert_eq!(
                    report.outcome,
                    Outcome::PolicyViolation(Violation::Syscall { number, name }),
                    "{stdin:?}: {said}"
                ),
                // gVisor's filter kills inside its own kernel and leaves no host record: a
                // SIGSYS exit is all the executor sees, of an unknown call.
                (Runtime::Gvisor, false) => assert_eq!(
                    report.outcome,
                    Outcome::PolicyViolation(Violation::Syscall {
                        number: 0,
                        name: capsule_executor::seccomp::UNRECORDED_IN_GVISOR
                    }),
                    "{stdin:?}: {said}"
                ),
                // A killed child under a parent that exits 0 cannot be reported under gVisor;
                // the call was still stopped: the child died of SIGSYS (status 31).
                (Runtime::Gvisor, true) => {
                    assert_eq!(report.outcome, Outcome::Completed { exit_code: 0 });
                    assert!(said.contains("child status 31"), "{stdin:?}: {said}");
                }
            }
        }
    }
    table
}

#[tokio::test]
async fn forbidden_calls_are_policy_violations_under_runc() {
    let table = forbidden_calls(Runtime::Runc, 100).await;
    println!("{}", table.join("\n"));
}

#[tokio::test]
async fn forbidden_calls_are_stopped_under_gvisor() {
    let table = forbidden_calls(Runtime::Gvisor, 150).await;
    println!("{}", table.join("\n"));
}

async fn containment(runtime: Runtime, base: u64) -> Vec<String> {
    let mut table = Vec::new();
    let mut task = base;
    let mut next = || {
        task += 1;
        task
    };

    // No network: every destination is unreachable, no packet can leave (there is no
    // interface but loopback).
    for stdin in destinations() {
        let report = run(
            runtime,
            next(),
            hostile(),
            &stdin,
            &[],
            limits(),
            Duration::from_secs(30),
        )
        .await;
        let said = stdout(&report);
        table.push(format!("{stdin:<32} {:?}: {}", report.outcome, said.trim()));
        assert_eq!(
            report.outcome,
            Outcome::Completed { exit_code: 0 },
            "{stdin}"
        );
        assert!(said.contains("unreachable"), "{stdin}: {said}");
    }

    let small = ResourceLimits {
        memory_bytes: 32 << 20,
        ..limits()
    };
    let report = run(
        runtime,
        next(),
        hostile(),
        "memory-bomb",
        &[],
        small,
        Duration::from_secs(60),
    )
    .await;
    table.push(format!("{:<32} {:?}", "memory-bomb", report.outcome));
    assert_eq!(report.outcome, Outcome::OomKilled);

    for behaviour in ["spin", "double-fork"] {
        let report = run(
            runtime,
            next(),
            hostile(),
            behaviour,
            &[],
            limits(),
            Duration::from_secs(2),
        )
        .await;
        table.push(format!("{behaviour:<32} {:?}", report.outcome));
        // The evidence's processes category (checked in `run`) shows none outlived it.
        assert_eq!(report.outcome, Outcome::TimedOut, "{behaviour}");
    }

    let report = run(
        runtime,
        next(),
        hostile(),
        "fork-bomb",
        &[],
        limits(),
        Duration::from_secs(30),
    )
    .await;
    let said = stdout(&report);
    table.push(format!(
        "{:<32} {:?}: {}",
        "fork-bomb",
        report.outcome,
        said.trim()
    ));
    match (runtime, said.strip_prefix("forked ")) {
        (_, Some(rest)) => {
            let forked: u32 = rest
                .split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("fork-bomb said {said:?}"));
            assert!(forked < PIDS, "forked {forked} under a limit of {PIDS}");
        }
        // Under gVisor's ptrace platform every process has a host stub: the host's pids limit
        // ends the whole sandbox (exit 2) before the function can tell.
        (Runtime::Gvisor, None) => {
            assert_eq!(
                report.outcome,
                Outcome::Completed { exit_code: 2 },
                "{said}"
            )
        }
        (Runtime::Runc, None) => panic!("fork-bomb: {:?}, said {said:?}", report.outcome),
    }

    let report = run(
        runtime,
        next(),
        hostile(),
        "fill-scratch",
        &[],
        limits(),
        Duration::from_secs(30),
    )
    .await;
    let said = stdout(&report);
    table.push(format!(
        "{:<32} {:?}: {}",
        "fill-scratch",
        report.outcome,
        said.trim()
    ));
    let written: u64 = said
        .strip_prefix("wrote ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("fill-scratch said {said:?}"));
    assert!(
        written <= SCRATCH,
        "wrote {written} into a {SCRATCH}-byte scratch"
    );
    assert!(said.contains("No space left"), "{said}");

    for behaviour in ["write-outside", "open-devices"] {
        let report = run(
            runtime,
            next(),
            hostile(),
            behaviour,
            &[],
            limits(),
            Duration::from_secs(30),
        )
        .await;
        let said = stdout(&report);
        table.push(format!(
            "{behaviour:<32} {:?}: {}",
            report.outcome,
            said.trim().replace('\n', "; ")
        ));
        assert_eq!(report.outcome, Outcome::Completed { exit_code: 0 });
        assert!(said.lines().count() >= 8, "{said}");
        assert!(
            said.lines().all(|l| l.starts_with("refused ")),
            "{behaviour}: {said}"
        );
    }

    let report = run(
        runtime,
        next(),
        hostile_setuid(),
        "setuid",
        &[],
        limits(),
        Duration::from_secs(30),
    )
    .await;
    let said = stdout(&report);
    table.push(format!(
        "{:<32} {:?}: {}",
        "setuid (a set-user-id root /fn)",
        report.outcome,
        said.trim()
    ));
    assert!(!said.contains("euid 0"), "{said}");
    assert!(said.contains("setuid(0) returned -1"), "{said}");
    table
}

#[tokio::test]
async fn hostile_functions_are_contained_under_runc() {
    let table = containment(Runtime::Runc, 200).await;
    println!("{}", table.join("\n"));
}

#[tokio::test]
async fn hostile_functions_are_contained_under_gvisor() {
    let table = containment(Runtime::Gvisor, 300).await;
    println!("{}", table.join("\n"));
}
