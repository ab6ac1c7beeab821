//! Run the conformance suite on QEMU through the qtest backend (until `open.rs` can name it).
//!
//! `cargo run --release -p smmu-conform --example qemu_suite -- [BINARY] [MACHINE]`

use smmu_conform::backend::qemu::QemuDevice;
use smmu_conform::backend::Device;
use smmu_conform::suite::{self, Expectations};
use std::path::PathBuf;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(args.get(1).map_or("/usr/bin/qemu-system-aarch64", |s| s));
    let machine = args.get(2).cloned().unwrap_or_else(|| "virt".into());
    let cases = suite::load(&[], &suite::default_cases_dir())?;
    let factory = || {
        QemuDevice::spawn(&bin, &machine, Duration::from_secs(5))
            .map(|d| Box::new(d) as Box<dyn Device>)
    };
    let report = suite::run_suite(
        &cases,
        &factory,
        "qemu",
        &Expectations::default(),
        &|_, _| {},
    )?;
    for c in &report.cases {
        let s = c.stats.as_ref();
        println!(
            "{:<44} {:<14} probes {} fresh {} stale {} unobserved {}",
            c.case,
            format!("{:?}", c.verdict),
            s.map_or(0, |s| s.probes),
            s.map_or(0, |s| s.probes_fresh),
            s.map_or(0, |s| s.probes_stale),
            s.map_or(0, |s| s.not_observed)
        );
        for f in &c.findings {
            println!(
                "    {} ({}) step {}: {}",
                f.rule, f.section, f.step, f.message
            );
        }
        for n in &c.notes {
            println!("    note: {n}");
        }
    }
    println!("{:?}", report.summary);
    Ok(())
}
