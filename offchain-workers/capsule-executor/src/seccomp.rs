//! The seccomp profile that kills a function on a forbidden call, and the reader of the
//! kernel's records of those kills.
//!
//! The profile allows what the engine's other limits already contain and kills the process
//! (`SCMP_ACT_KILL_PROCESS`, so a forked child is killed too) on calls a pure function never
//! needs: mounts, device nodes, clock changes, raw and packet sockets, tracing, the kernel
//! keyring, namespaces, modules, BPF and the like. A kill is not told by the exit code (a
//! parent may exit 0 after its child died): the kernel logs every `kill_process` action as an
//! audit record (`type=1326`) with the process's uid, and each run has its own uid, so the
//! records after a run name the calls its processes were killed for.
use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
    sync::atomic::{AtomicU32, Ordering},
};

use serde_json::json;

/// Calls (x86-64 numbers) that kill the process.
pub const KILLED_CALLS: &[(&str, u32)] = &[
    ("mount", 165),
    ("umount2", 166),
    ("pivot_root", 155),
    ("chroot", 161),
    ("mknod", 133),
    ("mknodat", 259),
    ("settimeofday", 164),
    ("clock_settime", 227),
    ("clock_adjtime", 305),
    ("adjtimex", 159),
    ("ptrace", 101),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    ("keyctl", 250),
    ("add_key", 248),
    ("request_key", 249),
    ("unshare", 272),
    ("setns", 308),
    ("init_module", 175),
    ("finit_module", 313),
    ("delete_module", 176),
    ("kexec_load", 246),
    ("reboot", 169),
    ("swapon", 167),
    ("swapoff", 168),
    ("bpf", 321),
    ("perf_event_open", 298),
    ("userfaultfd", 323),
    ("open_by_handle_at", 304),
    ("iopl", 172),
    ("ioperm", 173),
    ("syslog", 103),
    ("acct", 163),
    ("fsopen", 430),
    ("fsmount", 432),
    ("move_mount", 429),
    ("open_tree", 428),
];
/// `socket(2)`'s number: killed for packet sockets (domain 17) and raw sockets (type 3).
const SOCKET: u32 = 41;

/// The profile as the engine takes it (`security_opt: seccomp=<json>`), killing the whole
/// process (runc, the host kernel's filter).
pub fn profile() -> String {
    profile_with("SCMP_ACT_KILL_PROCESS")
}

/// The profile with another kill action: gVisor's 2022 filter knows `SCMP_ACT_KILL` but
/// neither `SCMP_ACT_KILL_PROCESS` nor `SCMP_ACT_KILL_THREAD`.
pub fn profile_with(kill: &str) -> String {
    let names: Vec<&str> = KILLED_CALLS.iter().map(|(name, _)| *name).collect();
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            { "names": names, "action": kill },
            {
                "names": ["socket"],
                "action": kill,
                "args": [{ "index": 0, "value": 17, "op": "SCMP_CMP_EQ" }],
            },
            {
                "names": ["socket"],
                "action": kill,
                // (type & 0xf) == SOCK_RAW: the low bits are the type, the rest flags.
                "args": [{ "index": 1, "value": 15, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ" }],
            },
        ],
    })
    .to_string()
}

/// The name of a killed call's number.
pub fn call_name(number: u32) -> Option<&'static str> {
    if number == SOCKET {
        return Some("socket (raw or packet)");
    }
    KILLED_CALLS
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| *name)
}

/// The uids runs are given: no account of the host uses them.
pub const RUN_UIDS: std::ops::Range<u32> = 200_000..1_200_000;

/// A uid no other run of this process uses at the same time, so audit records name their run.
pub fn run_uid() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let run = NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
    200_000 + (std::process::id() % 1000) * 1000 + run
}

/// The burst of kernel log lines the kernel lets through before it rate-limits them (audit
/// records included, when no audit daemon runs): the default 10 per 5 s would drop kill
/// records of runs close together. Raised to this once, at connect.
pub const AUDIT_BURST: u32 = 1000;
const BURST_SYSCTL: &str = "/proc/sys/kernel/printk_ratelimit_burst";

/// Raises the kernel's log burst to [`AUDIT_BURST`] if it is lower (needs root).
pub fn raise_log_burst() -> io::Result<()> {
    let current: u32 = std::fs::read_to_string(BURST_SYSCTL)?
        .trim()
        .parse()
        .unwrap_or(0);
    if current < AUDIT_BURST {
        std::fs::write(BURST_SYSCTL, AUDIT_BURST.to_string())?;
    }
    Ok(())
}

/// The name reported for a SIGSYS exit whose audit record is missing under runc.
pub const UNRECORDED: &str = "unknown (the kernel's record was lost)";
/// The name reported for a SIGSYS exit under gVisor, whose filter leaves no host record.
pub const UNRECORDED_IN_GVISOR: &str = "unknown (gVisor's filter keeps no record)";

/// The exit status of a process the kernel killed with SIGSYS (seccomp), as the engine reports
/// it: 128 + 31.
pub const SIGSYS_EXIT: i64 = 128 + 31;

/// The kernel log from a point on: opened (non-blocking) at the end before a run, read after.
pub struct KernelLog(File);

impl KernelLog {
    /// Opens `/dev/kmsg` at its end.
    pub fn open_at_end() -> io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(0o4000) // O_NONBLOCK
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(Self(file))
    }

    /// The calls processes of `uid` were killed for since the log was opened.
    pub fn killed_calls(&mut self, uid: u32) -> Vec<u32> {
        let mut calls = Vec::new();
        let mut record = vec![0u8; 8192];
        loop {
            match self.0.read(&mut record) {
                Ok(0) => break,
                Ok(read) => {
                    if let Some(call) = seccomp_kill(&String::from_utf8_lossy(&record[..read]), uid)
                    {
                        calls.push(call);
                    }
                }
                // A record overwritten before we read it: go on with the next.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(_) => break, // WouldBlock: no more records
            }
        }
        calls
    }
}

/// The call number of a seccomp kill record of `uid`, if `record` is one.
fn seccomp_kill(record: &str, uid: u32) -> Option<u32> {
    if !record.contains("type=1326") {
        return None;
    }
    let field = |name: &str| {
        record
            .split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .and_then(|value| value.parse::<u32>().ok())
    };
    (field("uid=")? == uid).then_some(())?;
    field("syscall=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_records_are_read_for_their_uid_only() {
        let record = "12,3456,789,-;audit: type=1326 audit(1764.1:2): auid=4294967295 uid=200001 gid=200001 ses=4294967295 subj=unconfined pid=99 comm=\"fn\" exe=\"/fn\" sig=31 arch=c000003e syscall=165 compat=0 ip=0x400090 code=0x80000000";
        assert_eq!(seccomp_kill(record, 200_001), Some(165));
        assert_eq!(seccomp_kill(record, 200_002), None);
        assert_eq!(seccomp_kill("6,1,2,-;eth0: link up", 200_001), None);
        assert_eq!(call_name(165), Some("mount"));
    }

    #[test]
    fn the_profile_is_json_the_engine_reads() {
        let profile: serde_json::Value = serde_json::from_str(&profile()).unwrap();
        assert_eq!(profile["syscalls"][0]["action"], "SCMP_ACT_KILL_PROCESS");
        assert!(profile["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .contains(&json!("keyctl")));
    }
}
