//! The forwarder suite (corpus/forwarder) under `cargo test`: it passes on the reference
//! forwarder, every forwarder mutant fails the case whose `kills` line names it, seeded random
//! inputs (legal and raw) never make the oracle object to the reference forwarder, and every
//! mutant is found by them.

use smmu_conform::forwarder::fuzz::{run_input, FwdVerdict};
use smmu_conform::forwarder::gen::{generate, generate_aimed};
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

/// Inputs aimed at a forwarder that says what it honours (the kernel's vSMMU, built here from
/// QEMU 10.0's ID registers as IOMMU_GET_HW_INFO reports them): every setup is one it takes,
/// most batches hold only opcodes it forwards, about one in 8 holds one it rejects, raw mode
/// still malforms some, and the reference forwarder judges them all clean.
#[test]
fn aimed_inputs_stay_on_what_the_forwarder_honours() {
    use smmu_conform::backend::kernel::agent::HwInfo;
    use smmu_conform::backend::kernel::{aim, lacking, DEVICES};
    use smmu_model::command::Opcode as O;
    use smmu_model::profile::Profile;
    let q = Profile::named("qemu-10.0").unwrap().regs;
    let h = HwInfo {
        idr: [q.idr0, q.idr1, 0, q.idr3, 0, q.idr5],
        iidr: 0,
        aidr: q.aidr,
    };
    let aim = aim(&h);
    // QEMU 10.0 has no ATS: the opcodes arm_vsmmu_convert_user_cmd() forwards, ATC_INV aside.
    assert_eq!(aim.accepts.len(), 7);
    assert!(!aim.accepts.contains(&O::AtcInv));
    let mut rng = Rng::new(0xa1_0ed);
    let mut fwd = ReferenceForwarder::new(None);
    let (mut rejected_op, mut raw_inputs, mut ranges) = (0, 0, 0);
    for i in 0..RANDOM_INPUTS {
        let len = 8 + (rng.next_u64() % 200) as usize;
        let data = rng.bytes(len);
        let mode = Mode::from_byte(data[0]);
        let input = generate_aimed(&data[1..], mode, Some(&aim));
        assert_eq!(input.vsmmu.guest, aim.guest);
        assert!(lacking(&input.vsmmu.guest, &aim.guest).is_empty());
        assert!((1..=DEVICES).contains(&input.vsmmu.sids.len()), "{input:?}");
        raw_inputs += usize::from(mode == Mode::Raw);
        let op = |c: &smmu_model::command::RawCommand| O::from_u8(c.0[0] as u8);
        if input.batch.iter().any(|c| !aim.accepts.contains(&op(c))) {
            rejected_op += 1;
        }
        ranges += input
            .batch
            .iter()
            .filter(|c| op(c) == O::TlbiNhVa && (c.0[1] >> 10) & 3 != 0)
            .count();
        match run_input(&mut fwd, &input) {
            FwdVerdict::Clean | FwdVerdict::Refused => {}
            v => panic!("input {i} ({:?}): {v:?}\n{input:#?}", mode),
        }
    }
    // One batch in 8 gets a rejected opcode, plus raw mode's rare opcode swaps.
    assert!(
        rejected_op > RANDOM_INPUTS / 20 && rejected_op < RANDOM_INPUTS / 4,
        "{rejected_op} of {RANDOM_INPUTS} batches hold a rejected opcode ({raw_inputs} raw)"
    );
    assert!(ranges > RANDOM_INPUTS / 10, "only {ranges} range NH_VAs");
}
