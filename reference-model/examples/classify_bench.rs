//! Quick throughput check for decode + classify (the fuzzer's hot path).
//! Run: `cargo run --release -p smmu-model --example classify_bench`

use smmu_model::classify::{classify, Classifier, Verdict};
use smmu_model::command::opcode::ARCHITECTED;
use smmu_model::command::RawCommand;
use smmu_model::profile::{Profile, Queue};
use std::hint::black_box;
use std::time::Instant;

/// This thread's CPU time in seconds (utime + stime from /proc, 10 ms ticks): on a shared,
/// loaded machine wall time includes time the thread was not running at all.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    // A pseudo-random mix of commands, mostly architected opcodes (xorshift; no allocation in
    // the timed loop).
    const N: usize = 1 << 16;
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let cmds: Vec<RawCommand> = (0..N)
        .map(|i| {
            let op = if i % 4 == 0 {
                next() as u8
            } else {
                ARCHITECTED[(next() as usize) % ARCHITECTED.len()].0
            };
            let (a, b) = (next(), next());
            RawCommand::new((a & (a >> 9) & !0xFF) | op as u64, b & (b >> 5))
        })
        .collect();

    // Baseline: the loop itself, touching every command (to normalise on a loaded machine).
    let rounds = 400;
    let t = Instant::now();
    let mut acc = 0u64;
    for _ in 0..rounds {
        for &c in &cmds {
            let c = black_box(c);
            acc = acc.wrapping_add(c.0[0] ^ c.0[1]);
        }
    }
    let dt = t.elapsed();
    println!(
        "baseline loop: {:.2} ns/cmd ({acc:x})",
        dt.as_nanos() as f64 / (rounds * N) as f64
    );

    for name in ["smmuv3.4-full", "qemu-10.0"] {
        let p = Profile::named(name).unwrap();
        let k = Classifier::new(&p, Queue::NonSecure);
        let rounds = 2000;
        let t = Instant::now();
        let c0 = cpu_secs();
        let mut legal = 0usize;
        for _ in 0..rounds {
            for &c in &cmds {
                let r = k.classify(black_box(c));
                legal += (r.verdict == Verdict::Legal) as usize;
            }
        }
        let dt = t.elapsed();
        let cpu = cpu_secs() - c0;
        let n = (rounds * N) as f64;
        println!(
            "{name}: Classifier::classify {:.1} M cmds/s wall ({:.2} ns/cmd), {:.1} M cmds/s CPU time, {legal} legal",
            n / dt.as_secs_f64() / 1e6,
            dt.as_nanos() as f64 / n,
            n / cpu / 1e6,
        );

        // The same commands grouped by opcode (a fuzzer mutating one command kind at a time):
        // the per-kind branches are then predictable.
        let mut sorted = cmds.clone();
        sorted.sort_by_key(|c| c.opcode_byte());
        let t = Instant::now();
        let c0 = cpu_secs();
        let mut legal = 0usize;
        for _ in 0..rounds {
            for &c in &sorted {
                let r = k.classify(black_box(c));
                legal += (r.verdict == Verdict::Legal) as usize;
            }
        }
        let dt = t.elapsed();
        let cpu = cpu_secs() - c0;
        println!(
            "{name}: grouped by opcode    {:.1} M cmds/s wall ({:.2} ns/cmd), {:.1} M cmds/s CPU time, {legal} legal",
            n / dt.as_secs_f64() / 1e6,
            dt.as_nanos() as f64 / n,
            n / cpu / 1e6,
        );

        let rounds = 40;
        let t = Instant::now();
        let mut legal = 0usize;
        for _ in 0..rounds {
            for &c in &cmds {
                let r = classify(black_box(&p), Queue::NonSecure, black_box(c));
                legal += (r.verdict == Verdict::Legal) as usize;
            }
        }
        let dt = t.elapsed();
        let n = (rounds * N) as f64;
        println!(
            "{name}: free classify()      {:.1} M cmds/s ({:.2} ns/cmd), {legal} legal",
            n / dt.as_secs_f64() / 1e6,
            dt.as_nanos() as f64 / n
        );
    }
}
