//! A function that misbehaves on request, so the executor's tests can show each misbehaviour is
//! contained. The behaviour is the first line of stdin, or of the input file `behaviour` when
//! stdin has none (a task sent over the agent channel has no stdin); `forked <behaviour>` runs
//! it in a child while the parent waits and exits 0. Results are printed, one line each, for
//! the test to read.
//!
//! Behaviours: `connect-tcp ADDR:PORT`, `send-udp ADDR:PORT` (a DNS query), `raw-socket`,
//! `mount`, `mknod`, `clock-settime`, `ptrace`, `keyctl`, `memory-bomb`, `spin`, `double-fork`,
//! `fork-bomb`, `fill-scratch`, `write-outside`, `open-devices`, `setuid`.
#![allow(unsafe_code)]

use std::{
    fs::OpenOptions,
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    process::ExitCode,
    time::Duration,
};

fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// A call the seccomp profile kills for: if it returns, print what it returned.
fn forbidden_call(name: &str) -> ExitCode {
    // SAFETY: each call gets valid pointers to live locals or null where the call allows it.
    let result = unsafe {
        match name {
            "raw-socket" => libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) as i64,
            "mount" => libc::mount(
                c"none".as_ptr(),
                c"/scratch/work".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            ) as i64,
            "mknod" => libc::mknod(
                c"/scratch/work/mem".as_ptr(),
                libc::S_IFCHR | 0o600,
                libc::makedev(1, 1),
            ) as i64,
            "clock-settime" => {
                let now = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::clock_settime(libc::CLOCK_REALTIME, &now) as i64
            }
            "ptrace" => libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0),
            "keyctl" => libc::syscall(libc::SYS_keyctl, 0, -3, 0),
            other => {
                println!("unknown behaviour {other:?}");
                return ExitCode::from(64);
            }
        }
    };
    println!("survived {name}: returned {result} ({})", errno());
    ExitCode::from(1)
}

fn forked(behaviour: &str) -> ExitCode {
    // SAFETY: the process is single-threaded; the child only runs the behaviour and exits.
    match unsafe { libc::fork() } {
        -1 => {
            println!("fork failed: {}", errno());
            ExitCode::from(1)
        }
        0 => {
            let code = run(behaviour);
            let _ = io::stdout().flush();
            std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
        }
        child => {
            let mut status = 0;
            // SAFETY: waits for our own child with a valid status pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
            println!("child status {status}");
            ExitCode::SUCCESS
        }
    }
}

fn connect_tcp(target: &str) -> ExitCode {
    let Ok(addr) = target.parse::<SocketAddr>() else {
        println!("bad address {target:?}");
        return ExitCode::from(64);
    };
    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(mut stream) => {
            let _ = stream.write_all(b"hello from a task\n");
            let mut reply = Vec::new();
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = stream.read_to_end(&mut reply);
            println!(
                "connected {addr}; reply {:?}",
                String::from_utf8_lossy(&reply)
            );
        }
        Err(error) => println!("connect {addr}: {error}"),
    }
    ExitCode::SUCCESS
}

/// `ADDR [SOURCE-PORT]`: one DNS query, from the given source port if any.
fn send_udp(argument: &str) -> ExitCode {
    let (target, source_port) = argument.split_once(' ').unwrap_or((argument, "0"));
    let (Ok(addr), Ok(source_port)) = (target.parse::<SocketAddr>(), source_port.parse::<u16>())
    else {
        println!("bad address {argument:?}");
        return ExitCode::from(64);
    };
    // A DNS query for example.com, type A.
    let query: &[u8] =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
    let sent = UdpSocket::bind(("0.0.0.0", source_port)).and_then(|socket| {
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        socket.send_to(query, addr)?;
        let mut buf = [0u8; 512];
        socket.recv(&mut buf)
    });
    match sent {
        Ok(n) => println!("udp {addr}: answer of {n} bytes"),
        Err(error) => println!("udp {addr}: {error}"),
    }
    ExitCode::SUCCESS
}

fn spin() -> ! {
    loop {
        std::hint::spin_loop();
    }
}

fn double_fork() -> ExitCode {
    // SAFETY: single-threaded forks; the children only call async-signal-safe functions.
    unsafe {
        if libc::fork() == 0 {
            libc::setsid();
            if libc::fork() == 0 {
                spin();
            }
            libc::_exit(0);
        }
    }
    println!("grandchild detached");
    let _ = io::stdout().flush();
    spin()
}

fn fork_bomb() -> ExitCode {
    let mut children = 0u32;
    loop {
        // SAFETY: single-threaded fork; the child only sleeps.
        match unsafe { libc::fork() } {
            -1 => {
                println!("forked {children}, then: {}", errno());
                return ExitCode::SUCCESS;
            }
            // SAFETY: pause is async-signal-safe.
            0 => loop {
                unsafe { libc::pause() };
            },
            _ => children += 1,
        }
        if children >= 100_000 {
            println!("forked {children} without limit");
            return ExitCode::from(1);
        }
    }
}

fn fill_scratch() -> ExitCode {
    let block = vec![0x5au8; 64 << 10];
    let mut written = 0u64;
    let result: io::Result<()> = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open("/scratch/work/fill")
        .and_then(|mut file| loop {
            file.write_all(&block)?;
            written += block.len() as u64;
        });
    if let Err(error) = result {
        println!("wrote {written} bytes, then: {error}");
    }
    ExitCode::SUCCESS
}

fn write_outside() -> ExitCode {
    for path in [
        "/x",
        "/etc/x",
        "/tmp/x",
        "/fn",
        "/dev/x",
        "/proc/sys/kernel/hostname",
        "/sys/kernel/x",
        "/scratch/x",
        "/scratch/in/x",
    ] {
        let result = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(b"x"));
        match result {
            Ok(()) => println!("wrote {path}"),
            Err(error) => println!("refused {path}: {error}"),
        }
    }
    ExitCode::SUCCESS
}

fn open_devices() -> ExitCode {
    for path in [
        "/dev/mem",
        "/dev/kmem",
        "/dev/port",
        "/dev/kmsg",
        "/dev/sda",
        "/dev/nvme0n1",
        "/dev/tpm0",
        "/dev/tpmrm0",
    ] {
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(_) => println!("opened {path}"),
            Err(error) => println!("refused {path}: {error}"),
        }
    }
    ExitCode::SUCCESS
}

fn try_setuid() -> ExitCode {
    // SAFETY: plain identity calls.
    let (uid, euid, result) = unsafe { (libc::getuid(), libc::geteuid(), libc::setuid(0)) };
    let error = errno();
    println!("uid {uid} euid {euid}; setuid(0) returned {result} ({error})");
    ExitCode::SUCCESS
}

fn run(behaviour: &str) -> ExitCode {
    let (verb, argument) = behaviour.split_once(' ').unwrap_or((behaviour, ""));
    match verb {
        "forked" => forked(argument),
        "connect-tcp" => connect_tcp(argument),
        "send-udp" => send_udp(argument),
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
            }
        }
        "spin" => spin(),
        "double-fork" => double_fork(),
        "fork-bomb" => fork_bomb(),
        "fill-scratch" => fill_scratch(),
        "write-outside" => write_outside(),
        "open-devices" => open_devices(),
        "setuid" => try_setuid(),
        other => forbidden_call(other),
    }
}

fn main() -> ExitCode {
    let mut line = String::new();
    if let Err(error) = io::stdin().read_line(&mut line) {
        println!("cannot read the behaviour: {error}");
        return ExitCode::from(64);
    }
    if line.trim().is_empty() {
        line = std::fs::read_to_string("/scratch/in/behaviour").unwrap_or_default();
    }
    let code = run(line.lines().next().unwrap_or_default().trim());
    let _ = io::stdout().flush();
    code
}
