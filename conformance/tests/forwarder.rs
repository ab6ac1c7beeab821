//! The forwarder suite (corpus/forwarder) under `cargo test`: it passes on the reference
//! forwarder, every forwarder mutant fails the case whose `kills` line names it, seeded random
//! inputs (legal and raw) never make the oracle object to the reference forwarder, and every
//! mutant is found by them.

use smmu_conform::forwarder::fuzz::{run_input, FwdVerdict};
use smmu_conform::forwarder::gen::generate;
use smmu_conform::forwarder::suite::{default_cases_dir, kill_matrix, load, run_suite};
use smmu_conform::forwarder::{open_forwarder, FwdMutant, ReferenceForwarder, REFERENCE};
use smmu_conform::fuzz::Rng;
use smmu_conform::gen::Mode;
use smmu_conform::suite::{Expectations, Verdict};

fn cases() -> Vec<smmu_conform::forwarder::case::FwdCase> {
    load(&[], &default_cases_dir()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn suite_passes_on_the_reference_forwarder() {
    let cs = cases();
    assert!(cs.len() >= 20, "{} cases", cs.len());
    let open = || open_forwarder(REFERENCE);
    let r = run_suite(&cs, &open, REFERENCE, &Expectations::default(), &|_, _| {}).unwrap();
    assert_eq!(
        r.exit_code(),
        0,
        "{}",
        smmu_conform::report::suite::text(&r)
    );
    assert_eq!(r.summary.pass, cs.len());
}

#[test]
fn every_forwarder_mutant_is_killed_by_its_named_case() {
    let cs = cases();
    let rows = kill_matrix(&cs);
    assert!(rows.len() >= 12);
    for row in &rows {
        assert!(!row.intended.is_empty(), "{}: no case names it", row.mutant);
        for c in &row.intended {
            assert!(
                row.killed_by.contains(c),
                "{} is not killed by {c}, which names it (killed by {:?})",
                row.mutant,
                row.killed_by
            );
        }
        assert!(row.errors.is_empty(), "{}: {:?}", row.mutant, row.errors);
    }
}

#[test]
fn reports_render_and_name_the_rule() {
    let cs = load(
        &[format!(
            "{}/tlbi.case#nsnh-all-becomes-nh-all",
            default_cases_dir().display()
        )],
        &default_cases_dir(),
    )
    .unwrap();
    let spec = "fwd-mutant:nsnh-all-raw";
    let open = || open_forwarder(spec);
    let r = run_suite(&cs, &open, spec, &Expectations::default(), &|_, _| {}).unwrap();
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.cases[0].verdict, Verdict::Fail);
    let text = smmu_conform::report::suite::text(&r);
    assert!(text.contains("FWD-CONFINE-VMID"), "{text}");
    assert!(text.contains("-> host 0: CMD_TLBI_NSNH_ALL()"), "{text}");
    assert!(
        text.contains("reproduce: smmu-conform run --backend fwd-mutant:nsnh-all-raw --case"),
        "{text}"
    );
    assert!(smmu_conform::report::suite::junit(&r).contains("FWD-CONFINE-VMID"));
    assert!(smmu_conform::report::suite::json(&r).contains("\"rule\": \"FWD-CONFINE-VMID\""));
    // A listed divergence is expected (exit 0).
    let exp = Expectations::parse(
        "x.toml",
        "[[divergence]]\ncase = \"nsnh-all-becomes-nh-all\"\nrule = \"FWD-CONFINE-VMID\"\nreason = \"test\"\n",
    )
    .unwrap();
    let r = run_suite(&cs, &open, spec, &exp, &|_, _| {}).unwrap();
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.cases[0].verdict, Verdict::Expected);
}

#[test]
fn unknown_forwarder_specs_are_setup_errors() {
    assert!(open_forwarder("fwd-mutant:nope").is_err());
    assert!(open_forwarder("nope").is_err());
    for m in FwdMutant::ALL {
        assert!(open_forwarder(&format!("fwd-mutant:{}", m.name())).is_ok());
    }
}

const RANDOM_INPUTS: usize = 3000;

/// Seeded random inputs in both modes: the reference forwarder is never judged wrong.
#[test]
fn seeded_random_inputs_are_clean_on_the_reference() {
    let mut rng = Rng::new(0x5eed_f0d0);
    let mut fwd = ReferenceForwarder::new(None);
    let mut judged = 0;
    for i in 0..RANDOM_INPUTS {
        let len = 8 + (rng.next_u64() % 200) as usize;
        let data = rng.bytes(len);
        let mode = Mode::from_byte(data[0]);
        let input = generate(&data[1..], mode);
        match run_input(&mut fwd, &input) {
            FwdVerdict::Clean => judged += 1,
            FwdVerdict::Refused => {}
            v => panic!("input {i} ({:?}): {v:?}\n{input:#?}", mode),
        }
    }
    assert!(judged > RANDOM_INPUTS / 2, "only {judged} inputs judged");
}
