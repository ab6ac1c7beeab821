//! Decode + classify throughput on one core, over 8M varied commands.
//!
//!     cargo run --release -p smmu-conform --example throughput
//!
//! Prints commands/second for decode alone and for decode + classify (the hot path of checking a
//! captured queue), best of several rounds so that a noisy neighbour does not set the number.
//! docs/performance.md records the result.
//!
//! `SMMU_TPUT_COMMANDS` and `SMMU_TPUT_ROUNDS` override the buffer size and the number of rounds,
//! so that a small run under callgrind counts instructions per command (repeatable on a busy
//! machine; each loop is its own function for `--toggle-collect`):
//!
//!     SMMU_TPUT_COMMANDS=200000 SMMU_TPUT_ROUNDS=1 valgrind --tool=callgrind \
//!         --toggle-collect='throughput::classify_queue_loop' target/release/examples/throughput

use smmu_model::classify::Classifier;
use smmu_model::command::opcode::ARCHITECTED;
use smmu_model::command::{Command, RawCommand};
use smmu_model::profile::{Profile, Queue};
use std::hint::black_box;
use std::time::Instant;

const COMMANDS: usize = 8_000_000;
const ROUNDS: usize = 7;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: deterministic, so every run measures the same buffer.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Mostly architected opcodes with random fields (as a driver's queue is), with some Reserved and
/// IMPLEMENTATION DEFINED ones mixed in.
fn buffer(n: usize) -> Vec<RawCommand> {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    (0..n)
        .map(|_| {
            let (w0, w1) = (rng.next(), rng.next());
            let op = if rng.next() & 15 == 0 {
                w0 as u8
            } else {
                ARCHITECTED[(rng.next() % ARCHITECTED.len() as u64) as usize].0
            };
            RawCommand::new((w0 & !0xff) | op as u64, w1)
        })
        .collect()
}

/// This thread's CPU time in seconds (Linux /proc/thread-self/schedstat, nanoseconds), so that
/// a busy neighbour on a shared machine does not count against us; None elsewhere.
fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Best of `rounds`: commands per second of this thread's CPU time when the platform tells it,
/// else of wall time (printed with the result).
fn best_rate(n: usize, rounds: usize, mut f: impl FnMut() -> u64) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        let c0 = thread_cpu();
        black_box(f());
        let wall = t.elapsed().as_secs_f64();
        let secs = match (c0, thread_cpu()) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => wall,
        };
        best = best.min(secs);
    }
    n as f64 / best
}

/// The hot path of checking a captured queue: its bytes in, one full classification (verdict,
/// RES0 bits, flags) out per command; every part of every result feeds the checksum.
#[inline(never)]
fn classify_queue_loop(classifier: &Classifier, queue: &[u8]) -> u64 {
    let all = classifier.classify_queue(queue).expect("whole commands");
    all.fold(0u64, |acc, c| {
        let r = c.res0_set();
        let v = (r as u64) ^ ((r >> 64) as u64) ^ c.flags().0 as u64;
        acc.wrapping_add(v ^ (c.verdict_code() as u64) << 16)
    })
}

/// The per-command API returning the rich `Classification`, for comparison.
#[inline(never)]
fn classify_each_loop(classifier: &Classifier, queue: &[[u8; 16]]) -> u64 {
    let mut acc = 0u64;
    for b in queue {
        let k = classifier.classify(RawCommand::from_bytes(b));
        let v = (k.res0_set as u64) ^ ((k.res0_set >> 64) as u64) ^ k.flags.0 as u64;
        acc = acc.wrapping_add(v ^ (k.verdict == smmu_model::classify::Verdict::Legal) as u64);
    }
    acc
}

#[inline(never)]
fn typed_decode_loop(classifier: &Classifier, cmds: &[RawCommand]) -> u64 {
    let mut acc = 0u64;
    for c in cmds {
        let d = black_box(Command::decode(*c));
        let k = classifier.classify_compact(*c);
        acc = acc.wrapping_add(k.flags().0 as u64 ^ (k.res0_set() as u64));
        black_box(d);
    }
    acc
}

fn main() {
    let n = env_or("SMMU_TPUT_COMMANDS", COMMANDS);
    let rounds = env_or("SMMU_TPUT_ROUNDS", ROUNDS);
    let cmds = buffer(n);
    let profiles = [
        (
            "qemu-10.0",
            Profile::named("qemu-10.0").expect("named profile"),
        ),
        (
            "smmuv3.4-full",
            Profile::named("smmuv3.4-full").expect("named profile"),
        ),
    ];
    let decode = best_rate(n, rounds, || {
        let mut acc = 0u64;
        for c in &cmds {
            acc = acc.wrapping_add(black_box(Command::decode(*c)).encode().0[0]);
        }
        acc
    });
    println!(
        "{n} commands, best of {rounds} rounds, one core, per second of {}\n  decode + encode                                          {:>6.1} M commands/s",
        if thread_cpu().is_some() { "thread CPU time" } else { "wall time" },
        decode / 1e6
    );
    // The hot path of checking a captured queue: 16-byte entries (two little-endian
    // doublewords, §4.1.1) and a classifier built once per (profile, queue).
    let entries: Vec<[u8; 16]> = cmds.iter().map(|c| c.to_bytes()).collect();
    // Real queues come in runs of one opcode (a range loop of TLBIs, then a SYNC): the same
    // commands sorted by opcode.
    let mut sorted = entries.clone();
    sorted.sort_by_key(|b| b[0]);
    let random: Vec<u8> = entries.concat();
    let grouped: Vec<u8> = sorted.concat();
    for (name, p) in &profiles {
        let classifier = Classifier::new(p, Queue::NonSecure);
        for (label, buf) in [("random mix", &random), ("grouped by opcode", &grouped)] {
            let buf = black_box(buf.as_slice());
            let rate = best_rate(n, rounds, || classify_queue_loop(&classifier, buf));
            println!(
                "  queue bytes -> classify_queue    {name:13} {label:17} {:>6.1} M commands/s",
                rate / 1e6
            );
        }
        let rate = best_rate(n, rounds, || classify_each_loop(&classifier, &entries));
        println!(
            "  entries -> classify (rich)       {name:13} random mix         {:>6.1} M commands/s",
            rate / 1e6
        );
        let rate = best_rate(n, rounds, || typed_decode_loop(&classifier, &cmds));
        println!(
            "  typed decode + classify          {name:13} random mix         {:>6.1} M commands/s",
            rate / 1e6
        );
    }
}
