//! `pause`: holds a task's network namespace open while the executor wires the task's link
//! into it, and until the task's container is gone (the role Kubernetes' pause container plays
//! for a pod). It does nothing else: it sleeps until a signal ends it.
fn main() {
    loop {
        std::thread::park();
    }
}
