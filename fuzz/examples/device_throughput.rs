//! Executions per second of the `device` target body on the in-process path (no libFuzzer):
//! `cargo run --release -p smmu-conform-fuzz --example device_throughput [SECONDS]`.
//! The backend is `SMMU_FUZZ_BACKEND` or the reference emulator. Until the emulator merges the
//! backend cannot be opened, and this says so and exits 2 rather than print a number for nothing.

use smmu_conform_fuzz::{device_backend, device_run, DeviceOutcome};
use std::time::{Duration, Instant};

fn main() -> std::process::ExitCode {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let backend = device_backend();
    if let Err(e) = smmu_conform::open::open_backend(&backend) {
        eprintln!(
            "device_throughput: cannot run: backend {backend} cannot be opened ({e}); the \
             reference emulator and mutant backends land with backend/select.rs"
        );
        return std::process::ExitCode::from(2);
    }
    let mut rng = smmu_conform::fuzz::Rng::new(1);
    // Inputs are made up front so the loop times the target body only.
    let inputs: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let n = 1 + (rng.next_u64() % 1024) as usize;
            rng.bytes(n)
        })
        .collect();
    let (mut execs, mut findings, mut errors) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        match device_run(&inputs[(execs % 4096) as usize], &backend) {
            DeviceOutcome::Clean => {}
            DeviceOutcome::Finding(..) => findings += 1,
            DeviceOutcome::Harness(_) | DeviceOutcome::Unavailable(_) => errors += 1,
        }
        execs += 1;
    }
    let t = start.elapsed().as_secs_f64();
    println!(
        "device target on {backend}: {execs} execs in {t:.1}s = {:.0} exec/s ({findings} findings, {errors} harness errors)",
        execs as f64 / t
    );
    std::process::ExitCode::SUCCESS
}
