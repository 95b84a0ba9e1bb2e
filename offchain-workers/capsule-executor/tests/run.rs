//! The executor against the real engine (`scripts/dockerd-up.sh`), with function images made
//! from a few bytes of machine code (`capsule_image::elf`): outputs, exit codes, stdin, the
//! output cap, the timeout, and the image checks. Every test checks no container is left.
use std::{process::Command, time::Duration};

use capsule_executor::{Executor, ExecutorError, Outcome, RunReport, RunSpec, Runtime, TASK_LABEL};
use capsule_image::{build_function_image, elf, ImageArchive, ImageError};
use capsule_primitives::{policy::ResourceLimits, TaskId};

fn limits() -> ResourceLimits {
    ResourceLimits {
        memory_bytes: 64 << 20,
        cpu_millis: 1000,
        pids: 16,
        tmpfs_bytes: 1 << 20,
        output_bytes: 1 << 20,
    }
}

async fn executor() -> Executor {
    Executor::connect(Runtime::Runc)
        .await
        .expect("the engine answers (scripts/dockerd-up.sh)")
}

/// Loads the image of `code` and runs it as task `task`.
async fn run(
    task: u64,
    code: &[u8],
    stdin: &[u8],
    limits: ResourceLimits,
    timeout: Duration,
) -> (ImageArchive, RunReport) {
    let executor = executor().await;
    let image = build_function_image(&elf::static_elf(code));
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
            stdin,
            inputs: &[],
            egress: &[],
        })
        .await
        .expect("runs");
    let left = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label={TASK_LABEL}={task}"),
        ])
        .output()
        .expect("docker ps");
    assert!(
        left.stdout.is_empty(),
        "container of task {task} left behind"
    );
    assert!(report.evidence.is_clean(), "residue: {:?}", report.residue);
    (image, report)
}

#[tokio::test]
async fn a_function_completes_with_its_output_and_exit_code() {
    let (_, report) = run(1, elf::PRINT_OK, b"", limits(), Duration::from_secs(30)).await;
    assert_eq!(report.outcome, Outcome::Completed { exit_code: 0 });
    assert_eq!(report.stdout, b"ok\n");
    let (_, report) = run(2, elf::EXIT_3, b"", limits(), Duration::from_secs(30)).await;
    assert_eq!(report.outcome, Outcome::Completed { exit_code: 3 });
}

#[tokio::test]
async fn inputs_arrive_on_stdin_and_output_is_capped() {
    let (_, report) = run(3, elf::ECHO, b"names", limits(), Duration::from_secs(30)).await;
    assert_eq!(report.stdout, b"names");
    let capped = ResourceLimits {
        output_bytes: 1,
        ..limits()
    };
    let (_, report) = run(4, elf::PRINT_OK, b"", capped, Duration::from_secs(30)).await;
    assert_eq!(report.stdout, b"o");
    assert_eq!(report.stdout_dropped, 2);
}

#[tokio::test]
async fn the_timeout_kills_a_spinning_function() {
    let (_, report) = run(5, elf::SPIN, b"", limits(), Duration::from_secs(2)).await;
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert!(report.elapsed >= Duration::from_secs(2));
}

#[tokio::test]
async fn images_are_used_by_digest_only() {
    let executor = executor().await;
    let image = build_function_image(&elf::static_elf(elf::EXIT_3));
    let other = build_function_image(&elf::static_elf(b"\xeb\xfe\x90"));
    // Not in the engine and no archive: never pulled.
    let _ = Command::new("docker")
        .args(["rmi", "--force", &other.docker_id()])
        .output();
    assert!(matches!(
        executor.ensure_image(&other.id, None).await,
        Err(ExecutorError::MissingImage(_))
    ));
    // An archive of another image is refused before the engine sees it.
    assert!(matches!(
        executor.ensure_image(&other.id, Some(&image.tar)).await,
        Err(ExecutorError::Image(ImageError::WrongImage { .. }))
    ));
    let listed = Command::new("docker")
        .args(["image", "inspect", &other.docker_id()])
        .output()
        .unwrap();
    assert!(!listed.status.success(), "the refused image was not loaded");
}

#[tokio::test]
async fn a_memory_bomb_is_oom_killed() {
    let small = ResourceLimits {
        memory_bytes: 32 << 20,
        ..limits()
    };
    let (_, report) = run(6, elf::MEMORY_BOMB, b"", small, Duration::from_secs(60)).await;
    assert_eq!(report.outcome, Outcome::OomKilled);
}

/// (call number, first argument, second argument) of each forbidden call the table names.
const FORBIDDEN: &[(u32, u32, u32, &str)] = &[
    (165, 0, 0, "mount"),
    (133, 0, 0, "mknod"),
    (227, 0, 0, "clock_settime"),
    (101, 0, 0, "ptrace"),
    (250, 0, 0, "keyctl"),
    (41, 2, 3, "socket (raw or packet)"), // socket(AF_INET, SOCK_RAW, 0)
];

#[tokio::test]
async fn forbidden_calls_are_policy_violations_even_from_a_child_whose_parent_exits_0() {
    for &(number, a, b, name) in FORBIDDEN {
        for (how, code) in [
            ("direct", elf::syscall_then_exit(number, a, b)),
            ("forked", elf::forked_syscall(number, a, b)),
        ] {
            let task = 1000 + u64::from(number) * 2 + u64::from(how == "forked");
            let (_, report) = run(task, &code, b"", limits(), Duration::from_secs(30)).await;
            assert_eq!(
                report.outcome,
                Outcome::PolicyViolation(capsule_executor::Violation::Syscall { number, name }),
                "{name}, {how}"
            );
        }
    }
    // An allowed call is no violation.
    let (_, report) = run(
        7,
        &elf::syscall_then_exit(39, 0, 0),
        b"",
        limits(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Completed { exit_code: 0 });
}
