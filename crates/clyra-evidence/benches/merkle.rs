//! Merkle root of 1,000,000 leaves against plain SHA-256 of the same bytes (the baseline), in the
//! same run. Leaves are generated into one reusable buffer, so both sides stream the same bytes
//! and the comparison is not about memory.
//!
//! The ratio depends on the leaf size: RFC 9162 costs one leaf hash (`0x00 || leaf`) plus, per
//! leaf, one node hash of 65 bytes, which is two SHA-256 blocks whatever the implementation. Plain
//! SHA-256 costs `leaf_len / 64` blocks per leaf. So the lower bound of the ratio is about
//! `(ceil((leaf_len + 10) / 64) + 2) / (leaf_len / 64)`: 6x at 32 bytes, 1.5x near 400 bytes, 1.2x
//! at 1 KiB. Run with `cargo bench -p clyra-evidence --bench merkle`.
//!
//! First measurement (2-core shared box with SHA-NI, sha2 0.10), merkle / plain: 7.4x at 32 bytes,
//! 2.3x at 256, 1.67x at 512, 1.34x at 1 KiB (floors 6.0, 1.75, 1.375, 1.19). The rest over the
//! floor is sha2's fixed cost per hash (init, buffering, padding), paid twice per leaf.

use std::hint::black_box;
use std::time::Duration;

use clyra_evidence::merkle::MerkleTreeBuilder;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::{Digest as _, Sha256};

const LEAVES: u64 = 1_000_000;
const LEAF_SIZES: [usize; 4] = [32, 256, 512, 1024];

/// Writes leaf `i` into `buf`: its index, then a fixed pattern.
fn fill(buf: &mut [u8], i: u64) {
    if let Some(head) = buf.get_mut(..8) {
        head.copy_from_slice(&i.to_le_bytes());
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|j| (j % 251) as u8).collect()
}

fn merkle_root(leaf_len: usize) -> clyra_evidence::Digest {
    let mut buf = pattern(leaf_len);
    let mut tree = MerkleTreeBuilder::new();
    for i in 0..LEAVES {
        fill(&mut buf, i);
        tree.push_data(&buf);
    }
    tree.root()
}

fn plain_sha256(leaf_len: usize) -> [u8; 32] {
    let mut buf = pattern(leaf_len);
    let mut hasher = Sha256::new();
    for i in 0..LEAVES {
        fill(&mut buf, i);
        hasher.update(&buf);
    }
    hasher.finalize().into()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("root_of_1m_leaves");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    for leaf_len in LEAF_SIZES {
        group.throughput(Throughput::Bytes(LEAVES * leaf_len as u64));
        group.bench_with_input(
            BenchmarkId::new("plain_sha256", leaf_len),
            &leaf_len,
            |b, &n| b.iter(|| black_box(plain_sha256(n))),
        );
        group.bench_with_input(
            BenchmarkId::new("merkle_root", leaf_len),
            &leaf_len,
            |b, &n| b.iter(|| black_box(merkle_root(n))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
