//! Feeds arbitrary bytes to the header parser, `inspect` and `open` (with a fixed key and
//! binding): none may panic, and whatever opens must have parsed.
#![no_main]

use capsule_format::{header::Header, inspect, open, Binding, Opener, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Header::parse(data);
    let _ = inspect(data);
    let keys = [SecretKey::from_bytes([5; 32])];
    let opener = Opener::new(&keys).with_binding(Binding([7; 32]));
    let mut out = Vec::new();
    if open(data, &mut out, &opener, &mut |_| {}).is_ok() {
        assert!(inspect(data).is_ok());
    }
});
