//! A digest of every judgement the `device` target body makes over a fixed set of seeded
//! inputs: `cargo run --release -p smmu-conform-fuzz --example device_digest [N] [BACKEND...]`.
//! An optimisation of the model, the harness or the generator that must not change semantics
//! is checked by comparing the digest before and after it (docs/performance.md).

use smmu_conform::gen::{generate_trace, GenConfig, Mode};
use smmu_conform::harness::{run, RunOptions};
use smmu_model::profile::Profile;
use std::hash::{Hash, Hasher};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(300);
    let mut backends: Vec<String> = args.collect();
    if backends.is_empty() {
        backends.push(smmu_conform::open::DEFAULT_BACKEND.to_string());
    }
    for backend in &backends {
        let mut dev = match smmu_conform::open::open_backend(backend) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("device_digest: backend {backend} cannot be opened ({e})");
                return std::process::ExitCode::from(2);
            }
        };
        let profile = match dev.id_regs() {
            Ok(r) => Profile::from_regs(r),
            Err(e) => {
                eprintln!("device_digest: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        let mut rng = smmu_conform::fuzz::Rng::new(7);
        // DefaultHasher::new() uses fixed keys: the digest is stable across runs and builds.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        let (mut findings, mut probes) = (0usize, 0usize);
        for _ in 0..n {
            let len = 1 + (rng.next_u64() % 1024) as usize;
            let data = rng.bytes(len);
            let Some((prog, trace)) = generate_trace(
                &data[1..],
                &profile,
                Mode::from_byte(data[0]),
                &GenConfig::default(),
            ) else {
                0u8.hash(&mut h);
                continue;
            };
            prog.lines.hash(&mut h);
            match run(dev.as_mut(), &trace, RunOptions::default()) {
                Ok(r) => {
                    format!("{:?}", r.stats).hash(&mut h);
                    r.executed.hash(&mut h);
                    probes += r.stats.probes;
                    for f in &r.findings {
                        findings += 1;
                        // Only where: which of several equally valid explanations (and so which
                        // rule) a finding quotes followed hash-set order before the model's sets
                        // were deterministic, so older builds differ from run to run there.
                        f.step.hash(&mut h);
                    }
                }
                Err(e) => e.to_string().hash(&mut h),
            }
        }
        println!(
            "{backend}: {n} inputs, {probes} probes, {findings} findings, digest {:016x}",
            h.finish()
        );
    }
    std::process::ExitCode::SUCCESS
}
