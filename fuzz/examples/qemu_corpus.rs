//! Writes the `qemu` target's committed corpus (corpus/qemu/): seeded random inputs in the
//! `device` format, kept when QEMU observes many of their probes (a translation or a fault
//! with its event, rather than "cannot observe"), so the stable replay
//! (fuzz/tests/qemu_replay.rs) exercises translation, invalidation and faults at several
//! StreamIDs, not only the command queue. Deterministic: same seed, same QEMU, same files.
//!
//! `cargo run --release -p smmu-conform-fuzz --example qemu_corpus -- [BACKEND] [CANDIDATES] [KEEP]`
//! (defaults: qemu, 400, 12; the committed corpus keeps 8).

use smmu_conform::gen::{generate_trace, GenConfig, Mode};
use smmu_conform::harness::{run, RunOptions};
use smmu_conform::open::open_backend;
use smmu_model::profile::Profile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("qemu", |s| s);
    let candidates: u64 = args.get(2).map_or(Ok(400), |s| s.parse())?;
    let keep: usize = args.get(3).map_or(Ok(12), |s| s.parse())?;
    let mut dev = open_backend(backend)?;
    let profile = Profile::from_regs(dev.id_regs()?);
    let mut rng = smmu_conform::fuzz::Rng::new(0x9e40_c0de);
    // (observed probes, streams, input)
    let mut scored: Vec<(usize, u64, Vec<u8>)> = Vec::new();
    for i in 0..candidates {
        let len = 64 + (rng.next_u64() % 960) as usize;
        let data = rng.bytes(len);
        let Some((_, trace)) = generate_trace(
            &data[1..],
            &profile,
            Mode::from_byte(data[0]),
            &GenConfig::default(),
        ) else {
            continue;
        };
        let r = run(dev.as_mut(), &trace, RunOptions::default())?;
        let s = r.stats;
        let observed = s.probes - s.not_observed - s.undecided;
        if observed > 0 {
            scored.push((observed, i, data));
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let dir = smmu_conform::suite::repo_root().join("corpus/qemu");
    std::fs::create_dir_all(&dir)?;
    for (k, (observed, i, data)) in scored.iter().take(keep).enumerate() {
        let name = format!("observed-{k:02}");
        std::fs::write(dir.join(&name), data)?;
        println!(
            "{name}: candidate {i}, {} bytes, {observed} probes observed",
            data.len()
        );
    }
    // The edge cases every corpus keeps: nothing, and a mode byte alone.
    std::fs::write(dir.join("empty"), [])?;
    std::fs::write(dir.join("mode-only"), [0u8])?;
    Ok(())
}
