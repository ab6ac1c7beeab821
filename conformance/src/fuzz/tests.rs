//! The campaign driver against a deliberately broken fake device (the reference emulator lives
//! on another branch): one that consumes every command, ILLEGAL ones included, and never raises
//! CMDQ_ERR. Legal-mode traces are conformant on it; raw-mode traces are not.

use super::*;
use crate::backend::{Capabilities, QueueObservation};
use smmu_model::command::RawCommand;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::profile::{IdRegs, NAMED_PROFILES};

struct SkipsIllegal {
    prod: u32,
}

impl Device for SkipsIllegal {
    fn name(&self) -> String {
        "skips-illegal".into()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            translation: false,
            write_probes: false,
            fault_events: false,
            cons: true,
            gerror: true,
            msi: false,
        }
    }
    fn id_regs(&mut self) -> Result<IdRegs, HarnessError> {
        let mut r = NAMED_PROFILES[0].regs;
        // No MSI: this fake writes none.
        r.idr0 &= !(1 << 13);
        Ok(r)
    }
    fn reset(&mut self) -> Result<(), HarnessError> {
        self.prod = 0;
        Ok(())
    }
    fn write(&mut self, _: u64, _: u64) -> Result<(), HarnessError> {
        Ok(())
    }
    fn stream_table(&mut self, _: u64, _: u32) -> Result<(), HarnessError> {
        Ok(())
    }
    fn enable(&mut self, _: bool) -> Result<(), HarnessError> {
        Ok(())
    }
    fn submit(&mut self, c: &[RawCommand]) -> Result<QueueObservation, HarnessError> {
        // Index and wrap flag of a 256-entry queue: 9 bits.
        self.prod = (self.prod + c.len() as u32) % 512;
        Ok(QueueObservation {
            cons: self.prod,
            ..Default::default()
        })
    }
    fn acknowledge(
        &mut self,
        _: Option<RawCommand>,
        _: bool,
    ) -> Result<QueueObservation, HarnessError> {
        Ok(QueueObservation {
            cons: self.prod,
            ..Default::default()
        })
    }
    fn probe(&mut self, _: &Probe) -> Result<Observation, HarnessError> {
        Ok(Observation::CannotObserve)
    }
}

fn factory() -> Result<Box<dyn Device>, HarnessError> {
    Ok(Box::new(SkipsIllegal { prod: 0 }))
}

fn opts(dir: &Path, modes: ModeSel, max_execs: u64) -> Options {
    Options {
        backend: "fake".into(),
        // Work is bounded by `max_execs`, never by the clock: a loaded machine must not change
        // what a test checks (a day is "no time limit" for these few executions).
        time: Duration::from_secs(86_400),
        seed: 42,
        out: dir.to_path_buf(),
        modes,
        shrink_time: Duration::from_secs(5),
        max_execs,
        stop_at_first: false,
        known: super::known::Known::none(),
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smmu-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn legal_mode_is_clean_on_a_device_that_only_mishandles_errors() {
    let d = tmp("legal");
    let o = campaign(
        &opts(&d, ModeSel::Fixed(Mode::Legal), 25),
        &factory,
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(o.execs, 25);
    assert!(o.findings.is_empty(), "{:?}", o.findings);
    assert_eq!(o.exit_code(), 0);
}

#[test]
fn raw_mode_finds_shrinks_and_writes_a_replayable_case() {
    let d = tmp("raw");
    let mut reported = Vec::new();
    let o = campaign(
        &opts(&d, ModeSel::Fixed(Mode::Raw), 40),
        &factory,
        &mut |_| {},
        &mut |s| reported.push(s.reproducer.clone()),
    )
    .unwrap();
    assert_eq!(o.exit_code(), 1);
    assert!(!o.findings.is_empty());
    assert_eq!(reported.len(), o.findings.len());
    for f in &o.findings {
        assert!(f.lines_after <= f.lines_before);
        let text = std::fs::read_to_string(&f.path).unwrap();
        // The written case parses, names the rule, and still fails on the device.
        let cases = crate::case::parse_cases("x", &text).unwrap();
        assert_eq!(cases[0].rules[0].id, f.rule);
        assert!(text.contains("found-on: fake"));
        let compiled = crate::case::compile(&cases[0]).unwrap();
        let mut dev = factory().unwrap();
        let r = harness::run(dev.as_mut(), &compiled.trace, RunOptions::default()).unwrap();
        assert_eq!(r.findings[0].rule.id, f.rule);
        assert!(f
            .reproducer
            .starts_with("smmu-conform run --backend fake --case "));
    }
    // No temporary files left behind.
    for e in std::fs::read_dir(&d).unwrap() {
        let n = e.unwrap().file_name();
        assert!(!n.to_string_lossy().starts_with('.'), "{n:?}");
    }
}

#[test]
fn shrinking_reaches_a_small_case() {
    let d = tmp("small");
    let o = campaign(
        &opts(&d, ModeSel::Fixed(Mode::Raw), 40),
        &factory,
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap();
    // An illegal command consumed needs the command and its submit, little else.
    let best = o.findings.iter().map(|f| f.lines_after).min().unwrap();
    assert!(best <= 6, "smallest shrunk case has {best} lines");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert!(parse_duration("5x").is_err());
    assert!(parse_duration("").is_err());
    assert!(parse_duration("99999999999999999h").is_err());
}

#[test]
fn harness_errors_exit_2() {
    let o = Outcome {
        harness_errors: vec![("x".into(), None)],
        ..Default::default()
    };
    assert_eq!(o.exit_code(), 2);
}

#[test]
#[ignore]
fn timing() {
    let mut rng = Rng::new(1);
    let p = Profile::from_regs(NAMED_PROFILES[0].regs);
    let (mut tg, mut tc, mut tr) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut dev = factory().unwrap();
    for _ in 0..50 {
        let data = rng.bytes(2000);
        let t = Instant::now();
        let mut prog = crate::gen::generate(&data, &p, Mode::Legal, &GenConfig::default());
        tg += t.elapsed();
        let t = Instant::now();
        let trace = prog.repair().unwrap();
        tc += t.elapsed();
        let t = Instant::now();
        let _ = harness::run(dev.as_mut(), &trace, RunOptions::default());
        tr += t.elapsed();
    }
    eprintln!("gen {tg:?} compile {tc:?} run {tr:?}");
}

#[test]
fn known_divergences_are_counted_not_reported() {
    let d = tmp("known");
    // Every consumed illegal command is known (a rule-only signature).
    let mut o = opts(&d, ModeSel::Fixed(Mode::Raw), 40);
    o.known = known::Known {
        entries: vec![known::KnownEntry {
            case: "consumes-illegal".into(),
            rule: "QUEUE-CONS-STOPS-AT-ILL".into(),
            names: Vec::new(),
            contains: None,
            reason: "the fake skips every check".into(),
        }],
        source: None,
    };
    let out = campaign(&o, &factory, &mut |_| {}, &mut |_| {}).unwrap();
    assert!(
        out.findings
            .iter()
            .all(|f| f.rule != "QUEUE-CONS-STOPS-AT-ILL"),
        "{:?}",
        out.findings
    );
    assert!(out.known.get("consumes-illegal").copied().unwrap_or(0) > 0);
}
