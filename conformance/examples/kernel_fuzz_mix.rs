//! What a kernel fuzzing campaign spends its executions on (docs/performance.md): the first N
//! inputs of `smmu-conform fuzz --backend kernel --seed S` (the same generator and RNG), counted
//! by outcome (refused at setup without reaching the guest, judged clean, a known divergence, a
//! new finding, a harness error), with the guest batches that reached the kernel, their host
//! commands, and the guest boots.
//!
//! `cargo run --release -p smmu-conform --example kernel_fuzz_mix -- [N] [SEED] [unaimed]`
//!
//! `unaimed`: draw as campaigns did before the generator aimed at the backend
//! ([`Forwarder::aim`]), for comparison.

use smmu_conform::backend::kernel::KernelForwarder;
use smmu_conform::backend::Forwarder;
use smmu_conform::forwarder::fuzz::{judge_new, run_input_full, FwdVerdict};
use smmu_conform::forwarder::gen::generate_aimed;
use smmu_conform::fuzz::known::Known;
use smmu_conform::fuzz::Rng;
use smmu_conform::gen::Mode;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20261208);
    let aimed = args.get(3).map(String::as_str) != Some("unaimed");
    let mut fwd = match KernelForwarder::open("kernel") {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kernel_fuzz_mix: {e}");
            std::process::exit(2);
        }
    };
    let known = Known::for_forwarder("kernel").unwrap_or_default();
    let mut rng = Rng::new(seed);
    let (mut refused, mut clean, mut known_hits, mut new, mut harness) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut batches, mut guest_cmds, mut host_cmds, mut errors) = (0u64, 0u64, 0u64, 0u64);
    // Batches the kernel carried out whole (no error) and the host commands of those.
    let (mut accepted, mut accepted_host) = (0u64, 0u64);
    let start = Instant::now();
    for _ in 0..n {
        // As the forwarder campaign draws its inputs (conformance/src/forwarder/fuzz.rs).
        let len = 8 + (rng.next_u64() % 256) as usize;
        let data = rng.bytes(len);
        let aim = if aimed { fwd.aim() } else { None };
        let input = generate_aimed(&data[1..], Mode::from_byte(data[0]), aim.as_ref());
        let (v, res) = run_input_full(&mut fwd, &input);
        if let Some(r) = &res {
            batches += 1;
            guest_cmds += input.batch.len() as u64;
            host_cmds += r.host_commands.len() as u64;
            errors += u64::from(r.error.is_some());
            if r.error.is_none() {
                accepted += 1;
                accepted_host += r.host_commands.len() as u64;
            }
        }
        match v {
            FwdVerdict::Refused => refused += 1,
            FwdVerdict::Clean => clean += 1,
            FwdVerdict::Harness(_) => harness += 1,
            FwdVerdict::Finding(..) => match judge_new(&mut fwd, &input, &known).1 {
                Some(_) => known_hits += 1,
                None => new += 1,
            },
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} inputs in {secs:.1} s ({:.0}/s), seed {seed}, {}",
        n as f64 / secs,
        if aimed { "aimed" } else { "unaimed" }
    );
    println!("refused at setup {refused}, clean {clean}, known {known_hits}, new {new}, harness errors {harness}");
    println!(
        "batches that reached the kernel {batches} (with an error {errors}): {guest_cmds} guest commands, {host_cmds} host commands"
    );
    println!(
        "accepted batches (no error) {accepted}: {accepted_host} host commands; host commands per input {:.2}",
        host_cmds as f64 / n as f64
    );
    println!(
        "guest boots {} ({:.1} s from QEMU start to setup in total)",
        fwd.boots,
        fwd.boot_time.as_secs_f64()
    );
}
