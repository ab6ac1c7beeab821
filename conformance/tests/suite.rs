//! The conformance suite under `cargo test`: every case file parses and compiles; the suite runs
//! on the backend named by SMMU_CONFORM_BACKEND (default: the reference emulator) when it can be
//! opened; and the runner's verdicts, expectations and reports work, on a test-only device.

mod common;

use common::ModelDevice;
use smmu_conform::backend::{Device, HarnessError};
use smmu_conform::open::{open_backend, DEFAULT_BACKEND};
use smmu_conform::suite::{self, Expectations, Verdict};

fn all_cases() -> Vec<suite::Loaded> {
    suite::load(&[], &suite::default_cases_dir()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_case_file_parses_and_compiles() {
    let cases = all_cases();
    assert!(cases.len() > 50, "{} cases", cases.len());
}

#[test]
fn suite_on_the_configured_backend() {
    let spec = std::env::var("SMMU_CONFORM_BACKEND").unwrap_or_else(|_| DEFAULT_BACKEND.into());
    if let Err(e) = open_backend(&spec) {
        println!("skipped: {e}");
        return;
    }
    let cases = all_cases();
    let exp_path = suite::default_expectations(&spec);
    let exp = if exp_path.exists() {
        Expectations::load(&exp_path).unwrap()
    } else {
        Expectations::default()
    };
    let f = || open_backend(&spec);
    let r = suite::run_suite(&cases, &f, &spec, &exp, &|_, _| {}).unwrap();
    assert_eq!(
        r.exit_code(),
        0,
        "{}",
        smmu_conform::report::suite::text(&r)
    );
}

/// Every case passes (or skips) on a conformant device, for each profile: no case is wrong and
/// no `expect` line disagrees with the model.
#[test]
fn every_case_passes_on_the_model_device() {
    let cases = all_cases();
    for profile in [
        "smmuv3.4-full",
        "qemu-10.0",
        "qemu-7.2",
        "smmuv3.0-s1-norange",
    ] {
        let f =
            || -> Result<Box<dyn Device>, HarnessError> { Ok(Box::new(ModelDevice::new(profile))) };
        let r =
            suite::run_suite(&cases, &f, "model", &Expectations::default(), &|_, _| {}).unwrap();
        let text = smmu_conform::report::suite::text(&r);
        assert_eq!(r.exit_code(), 0, "{profile}:\n{text}");
        assert!(r.summary.pass > 10, "{profile}:\n{text}");
    }
}

#[test]
fn failures_expected_divergences_and_fixed_ones() {
    let cases = suite::load(
        &[format!(
            "{}#nh-va-page",
            suite::default_cases_dir().join("scope.case").display()
        )],
        &suite::default_cases_dir(),
    )
    .unwrap();
    let bad = || -> Result<Box<dyn Device>, HarnessError> {
        let mut d = ModelDevice::new("smmuv3.4-full");
        d.wrong_pa = Some(0x4abc_d000);
        Ok(Box::new(d))
    };
    let none = Expectations::default();
    let r = suite::run_suite(&cases, &bad, "bad", &none, &|_, _| {}).unwrap();
    assert_eq!(r.exit_code(), 1);
    let c = &r.cases[0];
    assert_eq!(c.verdict, Verdict::Fail);
    // Every probe of the case fails, and each is reported, not only the first.
    assert!(c.findings.len() >= 2, "{:?}", c.findings);
    assert!(c.findings[0].trace.iter().any(|l| l.contains("probe")));
    assert_eq!(
        c.reproducer,
        "smmu-conform run --backend bad --case corpus/conformance/scope.case#nh-va-page"
    );
    let text = smmu_conform::report::suite::text(&r);
    assert!(text.contains("NO-SUCH-TRANSLATION"), "{text}");
    let junit = smmu_conform::report::suite::junit(&r);
    assert!(
        junit.contains("nh-va-page") && junit.contains("<failure"),
        "{junit}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&smmu_conform::report::suite::json(&r)).unwrap();
    assert_eq!(json["cases"][0]["verdict"], "fail");

    let exp = Expectations::parse(
        "x.toml",
        "[[divergence]]\ncase = \"nh-va-page\"\nrule = \"NO-SUCH-TRANSLATION\"\nreason = \"known\"\n",
    )
    .unwrap();
    let r = suite::run_suite(&cases, &bad, "bad", &exp, &|_, _| {}).unwrap();
    assert_eq!(r.cases[0].verdict, Verdict::Expected);
    assert_eq!(r.exit_code(), 0);

    let good = || -> Result<Box<dyn Device>, HarnessError> {
        Ok(Box::new(ModelDevice::new("smmuv3.4-full")))
    };
    let r = suite::run_suite(&cases, &good, "good", &exp, &|_, _| {}).unwrap();
    assert_eq!(r.summary.fixed, 1);
    assert_eq!(r.exit_code(), 1);
    assert!(smmu_conform::report::suite::text(&r).contains("remove it from the expectation file"));
}

#[test]
fn harness_errors_exit_2() {
    let cases = all_cases();
    let f = || -> Result<Box<dyn Device>, HarnessError> { Err(HarnessError::Setup("gone".into())) };
    assert!(suite::run_suite(&cases, &f, "x", &Expectations::default(), &|_, _| {}).is_err());
}

#[test]
fn expectation_files_are_checked() {
    assert!(Expectations::parse(
        "e.toml",
        "[[divergence]]\ncase=\"a\"\nrule=\"NOPE\"\nreason=\"r\"\n"
    )
    .is_err());
    assert!(Expectations::parse(
        "e.toml",
        "[[divergence]]\ncase=\"a\"\nrule=\"SPURIOUS-FAULT\"\n"
    )
    .is_err());
    let dir = suite::repo_root().join("corpus/expectations");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        Expectations::load(&p).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn coverage_md_matches_the_cases() {
    let mut cases: Vec<_> = all_cases().into_iter().map(|l| l.case).collect();
    // The forwarder cases (corpus/forwarder) cover the FWD-* rules.
    cases
        .extend(smmu_conform::forwarder::suite::coverage_cases().unwrap_or_else(|e| panic!("{e}")));
    let committed =
        std::fs::read_to_string(suite::repo_root().join("docs/coverage.md")).unwrap_or_default();
    assert!(
        committed == smmu_conform::coverage::markdown(&cases),
        "docs/coverage.md is out of date; regenerate it with\n\n    {}\n",
        smmu_conform::coverage::REGENERATE
    );
    assert!(
        smmu_conform::coverage::uncovered(&cases).is_empty(),
        "rules without a case: {:?}",
        smmu_conform::coverage::uncovered(&cases)
    );
}
