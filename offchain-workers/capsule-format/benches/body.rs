//! The payload body alone, in memory on one core: STREAM sealing and opening of 64 MiB, so the
//! figure is the cipher and chunking, without files or process start (those are in
//! scripts/bench/capsule-throughput.sh). Target: at least 1 GB/s each way.
use age_core::format::FileKey;
use capsule_format::stream::{decrypt, encrypt, NONCE};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LEN: usize = 64 * 1024 * 1024;

fn body(c: &mut Criterion) {
    let plain: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let key = || FileKey::new(Box::new([7; 16]));
    let mut sealed = Vec::with_capacity(LEN + LEN / 4096 + 64);
    encrypt(&key(), &[1; NONCE], &plain[..], &mut sealed, &mut |_| {}).unwrap();
    let mut group = c.benchmark_group("capsule body");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(10);
    group.bench_function("seal 64 MiB", |b| {
        b.iter(|| {
            encrypt(
                &key(),
                &[1; NONCE],
                &plain[..],
                &mut std::io::sink(),
                &mut |_| {},
            )
            .unwrap()
        })
    });
    group.bench_function("open 64 MiB", |b| {
        b.iter(|| decrypt(&key(), &sealed[..], &mut std::io::sink(), &mut |_| {}).unwrap())
    });
    group.finish();
}

criterion_group!(benches, body);
criterion_main!(benches);
