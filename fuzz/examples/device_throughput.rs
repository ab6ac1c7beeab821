//! Executions per second of the `device` target body on the in-process path (no libFuzzer):
//! `cargo run --release -p smmu-conform-fuzz --example device_throughput [SECONDS]`.
//! The backend is `SMMU_FUZZ_BACKEND` or the reference emulator. Until the emulator merges the
//! backend cannot be opened, and this says so and exits 2 rather than print a number for nothing.
//!
//! Besides wall-clock exec/s it prints the process's CPU time per exec (so a busy neighbour on
//! a shared machine shows up as the gap between the two) and a split of one pass over the
//! inputs into generation (bytes to program to trace, repair included) and the harness run.

use smmu_conform::gen::{generate_trace, GenConfig, Mode};
use smmu_conform::harness::{run, RunOptions};
use smmu_conform_fuzz::{device_backend, device_run, DeviceOutcome};
use smmu_model::profile::Profile;
use std::time::{Duration, Instant};

/// CPU time of this process (user + system), from /proc/self/stat; `None` where unavailable.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

fn main() -> std::process::ExitCode {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let backend = device_backend();
    let mut dev = match smmu_conform::open::open_backend(&backend) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("device_throughput: cannot run: backend {backend} cannot be opened ({e})");
            return std::process::ExitCode::from(2);
        }
    };
    let mut rng = smmu_conform::fuzz::Rng::new(1);
    // Inputs are made up front so the loop times the target body only.
    let inputs: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let n = 1 + (rng.next_u64() % 1024) as usize;
            rng.bytes(n)
        })
        .collect();
    let (mut execs, mut findings, mut errors) = (0u64, 0u64, 0u64);
    let cpu0 = cpu_time();
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
    let cpu = cpu_time()
        .zip(cpu0)
        .map(|(b, a)| (b - a).as_secs_f64())
        .unwrap_or(f64::NAN);
    println!(
        "device target on {backend}: {execs} execs in {t:.1}s = {:.0} exec/s wall, {:.0} exec/s per CPU-second ({findings} findings, {errors} harness errors)",
        execs as f64 / t,
        execs as f64 / cpu
    );

    // Where an exec goes: one pass over (at most) the first 512 inputs, phase by phase.
    let n = (execs as usize).clamp(1, 512);
    let profile = match dev.id_regs() {
        Ok(r) => Profile::from_regs(r),
        Err(e) => {
            eprintln!("device_throughput: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let t0 = Instant::now();
    let traces: Vec<_> = inputs[..n]
        .iter()
        .filter_map(|d| {
            let (&m, rest) = d.split_first()?;
            generate_trace(rest, &profile, Mode::from_byte(m), &GenConfig::default())
        })
        .collect();
    let gen = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut steps = 0usize;
    for (_, trace) in &traces {
        steps += trace.steps.len();
        let _ = run(dev.as_mut(), trace, RunOptions::default());
    }
    let exec = t1.elapsed().as_secs_f64();
    println!(
        "per exec over {n} inputs: generate + compile {:.1} us, harness run {:.1} us ({:.0} trace steps on average)",
        gen * 1e6 / n as f64,
        exec * 1e6 / n as f64,
        steps as f64 / traces.len().max(1) as f64
    );
    std::process::ExitCode::SUCCESS
}
