//! Network namespaces the tests create (their addresses exist only inside them) and threads
//! that run inside one.
#![allow(dead_code)]
use std::{os::fd::AsFd, process::Command, thread::JoinHandle};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces named `<prefix><role>`, deleted on drop.
pub struct Namespaces {
    prefix: String,
    roles: Vec<String>,
}

impl Namespaces {
    /// Namespaces for `roles`, each with its loopback up, named after this process.
    pub fn new(tag: &str, roles: &[&str]) -> Self {
        let namespaces = Self {
            prefix: format!("{tag}{}", std::process::id()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        for role in roles {
            let ns = namespaces.name(role);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        namespaces
    }

    /// The `ip netns` name of `role`.
    pub fn name(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// A veth pair from `a` (interface `a_dev`, address `a_addr`) to `b`, both up.
    pub fn link(
        &self,
        (a, a_dev, a_addr): (&str, &str, &str),
        (b, b_dev, b_addr): (&str, &str, &str),
    ) {
        let (a, b) = (self.name(a), self.name(b));
        ip(&[
            "-n", &a, "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &b,
        ]);
        for (ns, dev, addr) in [(&a, a_dev, a_addr), (&b, b_dev, b_addr)] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// Routes everything from `role` through `via`.
    pub fn default_route(&self, role: &str, via: &str) {
        ip(&[
            "-n",
            &self.name(role),
            "route",
            "add",
            "default",
            "via",
            via,
        ]);
    }

    /// Makes `role` forward IPv4.
    pub fn forward(&self, role: &str) {
        let status = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name(role),
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ])
            .status()
            .expect("sh");
        assert!(status.success());
    }

    /// Runs `f` on a thread inside namespace `role`.
    pub fn within<T: Send + 'static>(
        &self,
        role: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name(role));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("namespace file");
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("setns");
            f()
        })
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for role in &self.roles {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name(role)])
                .status();
        }
    }
}
