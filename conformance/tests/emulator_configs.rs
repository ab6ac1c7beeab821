//! The reference emulator passes the whole suite in every configuration the CI runs
//! (`smmu-conform run --backend SPEC` for each SPEC below exits 0), in-process through the
//! library; and docs/kill-matrix.md is what `smmu-conform mutants --markdown` prints, with every
//! mutant killed.

use smmu_conform::coverage;
use smmu_conform::open::{available_mutants, open_backend};
use smmu_conform::suite::{self, Expectations};

const CONFIGS: &[&str] = &[
    "emulator",
    "emulator:tlb=1",
    "emulator:walk-cache=off",
    "emulator:res0=ill",
    "emulator:tlb=1,walk-cache=off,res0=ill",
    "emulator:profile=qemu-10.0",
    "emulator:profile=qemu-7.2",
];

fn all_cases() -> Vec<suite::Loaded> {
    suite::load(&[], &suite::default_cases_dir()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn suite_passes_on_every_emulator_configuration() {
    let cases = all_cases();
    let mut failures = Vec::new();
    for spec in CONFIGS {
        let exp_path = suite::default_expectations(spec);
        let exp = if exp_path.exists() {
            Expectations::load(&exp_path).unwrap()
        } else {
            Expectations::default()
        };
        let f = || open_backend(spec);
        let r = suite::run_suite(&cases, &f, spec, &exp, &|_, _| {}).unwrap();
        if r.exit_code() != 0 {
            failures.push(format!(
                "--backend {spec}: exit {}\n{}",
                r.exit_code(),
                smmu_conform::report::suite::text(&r)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_mutant_is_killed_and_kill_matrix_md_matches() {
    let cases = all_cases();
    let mutants = available_mutants();
    assert!(!mutants.is_empty());
    let mut rows = coverage::kill_matrix(&cases, &mutants);
    // The forwarder mutants, on the forwarder cases, as `smmu-conform mutants` adds them.
    let fwd = smmu_conform::forwarder::suite::load(
        &[],
        &smmu_conform::forwarder::suite::default_cases_dir(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    rows.extend(smmu_conform::forwarder::suite::kill_matrix(&fwd));
    assert_eq!(
        coverage::kill_exit(&rows),
        0,
        "{}",
        coverage::kill_text(&rows)
    );
    let committed =
        std::fs::read_to_string(suite::repo_root().join("docs/kill-matrix.md")).unwrap_or_default();
    assert!(
        committed == coverage::kill_markdown(&rows),
        "docs/kill-matrix.md is out of date; regenerate it with\n\n    {}\n",
        coverage::REGENERATE_KILLS
    );
}
