//! Stable-toolchain fuzzing of the `device` target: the committed corpus (corpus/device/), a
//! fixed set of seeded random inputs, and every regression case (corpus/regressions/), through
//! exactly the body libFuzzer runs. The backend is `SMMU_FUZZ_BACKEND` or the reference emulator;
//! when it cannot be opened (the emulator is on another branch until it merges) each test says so
//! and returns: the lead turns the skip into a failure at merge by setting
//! SMMU_FUZZ_REQUIRE_BACKEND=1 in CI.

use smmu_conform::harness::{run, RunOptions};
use smmu_conform::open::open_backend;
use smmu_conform_fuzz::{device_backend, device_run, DeviceOutcome};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `Some(reason)` when the backend cannot be opened and the test should skip.
fn unavailable(backend: &str) -> Option<String> {
    match open_backend(backend) {
        Ok(_) => None,
        Err(e) => {
            let required = std::env::var_os("SMMU_FUZZ_REQUIRE_BACKEND").is_some_and(|v| v == "1");
            assert!(!required, "backend {backend} is required but: {e}");
            Some(format!("skipped: backend {backend} cannot be opened ({e})"))
        }
    }
}

fn check(data: &[u8], backend: &str, what: &str) {
    match device_run(data, backend) {
        DeviceOutcome::Clean => {}
        DeviceOutcome::Unavailable(e) => panic!("{what}: backend went away: {e}"),
        DeviceOutcome::Finding(rule, msg, case) => {
            panic!("{what}: {rule} on {backend}: {msg}\n{case}")
        }
        DeviceOutcome::Harness(e) => panic!("{what}: harness error on {backend}: {e}"),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

#[test]
fn device_corpus_replays_clean() {
    let corpus = files(&root().join("corpus/device"));
    assert!(
        corpus.len() >= 8,
        "corpus/device has {} files",
        corpus.len()
    );
    let backend = device_backend();
    if let Some(why) = unavailable(&backend) {
        eprintln!("{why}");
        return;
    }
    for p in corpus {
        let data = std::fs::read(&p).unwrap();
        check(&data, &backend, &p.display().to_string());
    }
}

const RANDOM_INPUTS: u64 = 200;

#[test]
fn device_seeded_random_inputs() {
    let backend = device_backend();
    if let Some(why) = unavailable(&backend) {
        eprintln!("{why}");
        return;
    }
    let mut rng = smmu_conform::fuzz::Rng::new(0x5eed_de71_ce00_0001);
    for i in 0..RANDOM_INPUTS {
        let len = 1 + (rng.next_u64() % 1500) as usize;
        let data = rng.bytes(len);
        check(&data, &backend, &format!("random input {i}"));
    }
}

/// `found-on: BACKEND` from a regression case's comments.
fn found_on(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# found-on: "))
        .map(|s| s.trim().to_string())
        .next()
}

#[test]
fn regressions_replay() {
    let cases: Vec<PathBuf> = files(&root().join("corpus/regressions"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    let backend = device_backend();
    if cases.is_empty() {
        eprintln!("no regression cases yet");
        return;
    }
    if let Some(why) = unavailable(&backend) {
        eprintln!("{why}");
        return;
    }
    for p in cases {
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.display().to_string();
        let parsed = smmu_conform::case::parse_cases(&name, &text).unwrap();
        for case in parsed {
            let trace = smmu_conform::case::compile(&case).unwrap().trace;
            let mut dev = open_backend(&backend).unwrap();
            let r = run(dev.as_mut(), &trace, RunOptions::default()).unwrap();
            assert!(
                r.findings.is_empty(),
                "{name}: fails on {backend}: {:?}",
                r.findings
            );
            if let Some(m) = found_on(&text).filter(|m| m.starts_with("mutant:")) {
                let mut dev =
                    open_backend(&m).unwrap_or_else(|e| panic!("{name}: cannot open {m}: {e}"));
                let r = run(dev.as_mut(), &trace, RunOptions::default()).unwrap();
                let want = case.rules[0].id;
                assert!(
                    r.findings.iter().any(|f| f.rule.id == want),
                    "{name}: no longer finds {want} on {m}"
                );
            }
        }
    }
}

/// The regression cases through the suite, on the conformant emulator: every case passes and
/// every `expect` line (the whole allowed set at a probe, docs/case-format.md) agrees with the
/// model. The cases of a model widening pin both directions: the set it must accept and, in a
/// twin case beside it, the set without what it must reject (docs/model.md, "Review of the
/// session-2 widenings").
#[test]
fn regressions_pin_their_allowed_sets_on_the_emulator() {
    use smmu_conform::suite;
    let cases = suite::load(&[], &root().join("corpus/regressions")).expect("regressions load");
    let factory = || open_backend("emulator");
    let r = suite::run_suite(
        &cases,
        &factory,
        "emulator",
        &suite::Expectations::default(),
        &|_, _| {},
    )
    .unwrap();
    let s = &r.summary;
    assert_eq!(
        (s.fail, s.case_error, s.harness_error, s.skip),
        (0, 0, 0, 0),
        "{}",
        smmu_conform::report::suite::text(&r)
    );
}
