//! Stable-toolchain replay of the `qemu` target: the committed corpus (corpus/qemu/, written by
//! `cargo run --release -p smmu-conform-fuzz --example qemu_corpus`) through exactly the body
//! libFuzzer runs, on QEMU 10.0 (machines virt and virt-9.1) and 7.2 as scripts/install-qemu.sh
//! installs them. A known divergence of a version (its expectation file) is not a failure; a
//! new one is. Without QEMU each test says so and returns, except under CI (CI=true or
//! SMMU_FUZZ_REQUIRE_BACKEND=1), where a missing QEMU fails.

use smmu_conform::open::open_backend;
use smmu_conform_fuzz::{qemu_run, DeviceOutcome};
use std::path::PathBuf;

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/qemu"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

fn required() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
        || std::env::var_os("SMMU_FUZZ_REQUIRE_BACKEND").is_some_and(|v| v == "1")
}

fn replay(backend: &str) {
    if let Err(e) = open_backend(backend) {
        assert!(!required(), "backend {backend} is required in CI but: {e}");
        eprintln!("skipped: backend {backend} cannot be opened ({e}); run scripts/install-qemu.sh");
        return;
    }
    let files = corpus();
    assert!(files.len() >= 8, "corpus/qemu has {} files", files.len());
    for p in files {
        let data = std::fs::read(&p).unwrap();
        match qemu_run(&data, backend) {
            DeviceOutcome::Clean => {}
            DeviceOutcome::Unavailable(e) => panic!("{}: backend went away: {e}", p.display()),
            DeviceOutcome::Finding(rule, msg, case) => {
                panic!(
                    "{}: new divergence {rule} on {backend}: {msg}\n{case}",
                    p.display()
                )
            }
            DeviceOutcome::Harness(e) => {
                panic!("{}: harness error on {backend}: {e}", p.display())
            }
        }
    }
}

#[test]
fn qemu_corpus_replays_on_qemu_10() {
    replay("qemu");
}

#[test]
fn qemu_corpus_replays_on_qemu_10_virt_9_1() {
    replay("qemu:virt-9.1");
}

#[test]
fn qemu_corpus_replays_on_qemu_7_2() {
    replay("qemu-7.2");
}

/// Regression cases a campaign found on a QEMU backend (`# found-on: qemu...`) still fail there
/// with their rule, and every such finding is a known divergence of that backend: triaged into
/// its expectation file and docs/findings/qemu.md.
#[test]
fn qemu_regressions_still_fail_and_are_known() {
    use smmu_conform::fuzz::known::Known;
    use smmu_conform::harness::{run, RunOptions};
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpus/regressions"
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "case"));
    files.sort();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        let Some(backend) = text
            .lines()
            .filter_map(|l| l.strip_prefix("# found-on: "))
            .map(str::trim)
            .find(|b| b.starts_with("qemu"))
        else {
            continue;
        };
        let mut dev = match open_backend(backend) {
            Ok(d) => d,
            Err(e) => {
                assert!(!required(), "backend {backend} is required in CI but: {e}");
                eprintln!("skipped {}: {backend} cannot be opened ({e})", p.display());
                continue;
            }
        };
        let known = Known::for_backend(backend).unwrap();
        let name = p.display().to_string();
        for case in smmu_conform::case::parse_cases(&name, &text).unwrap() {
            let trace = smmu_conform::case::compile(&case).unwrap().trace;
            let r = run(dev.as_mut(), &trace, RunOptions::default()).unwrap();
            let want = case.rules[0].id;
            let f = r
                .findings
                .iter()
                .find(|f| f.rule.id == want)
                .unwrap_or_else(|| panic!("{name}: no longer finds {want} on {backend}"));
            assert!(
                known.matches(f.rule.id, &f.message).is_some(),
                "{name}: {want} on {backend} is not a known divergence of it: {}",
                f.message
            );
        }
    }
}
