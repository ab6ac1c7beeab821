//! QEMU's SMMUv3 through the qtest backend, end to end. Needs qemu-system-aarch64 (10.0 from
//! bookworm-backports) and the unpacked 7.2 at /opt/smmu-conform/qemu-7.2: run
//! scripts/install-qemu.sh. Without them the tests skip with a printed reason, except under CI
//! (CI=true), where a missing binary fails loudly.

use smmu_conform::backend::qemu::QemuDevice;
use smmu_conform::backend::{Device, HarnessError, StepOutcome};
use smmu_conform::build::TraceBuilder;
use smmu_conform::harness::{run, RunOptions};
use smmu_conform::trace::Step;
use smmu_model::command::RawCommand;
use smmu_model::granule::Granule;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::tables::LeafSpec;
use smmu_model::walk::Stage;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const QEMU_10: &str = "/usr/bin/qemu-system-aarch64";
const QEMU_72: &str = "/opt/smmu-conform/qemu-7.2/usr/bin/qemu-system-aarch64";
const TIMEOUT: Duration = Duration::from_secs(5);
const SID: u32 = 0x10;

fn binary(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Some(p);
    }
    let msg = format!("{path} is missing: run scripts/install-qemu.sh (as root) to install QEMU");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

fn tlbi_nh_va(asid: u16, vmid: u16, va: u64) -> RawCommand {
    RawCommand::new(
        0x12 | (u64::from(vmid) << 32) | (u64::from(asid) << 48),
        (va & !0xfff) | 1,
    )
}
const SYNC: RawCommand = RawCommand::new(0x46, 0);

/// The trace of the brief: map one page for SID 0x10, probe, remap, TLBI + SYNC, probe.
fn map_remap_trace() -> (smmu_conform::trace::Trace, u64, u64) {
    let mut b = TraceBuilder::new();
    let mut s = b.s1_stream(SID, 1, 0, Granule::K4).unwrap();
    let (a, c) = (b.data(0x1000).unwrap(), b.data(0x1000).unwrap());
    let va = 0x10_0000;
    b.map(&mut s, Stage::S1, va, a, 3, &LeafSpec::S1).unwrap();
    b.submit(&[RawCommand::new(0x04, 31), SYNC]);
    b.enable();
    b.probe(SID, va + 0x18);
    b.map(&mut s, Stage::S1, va, c, 3, &LeafSpec::S1).unwrap();
    b.submit(&[tlbi_nh_va(1, 0, va), SYNC]);
    b.probe(SID, va + 0x18);
    (b.finish(), a, c)
}

fn idr0_stages(d: &mut QemuDevice) -> (bool, bool) {
    let r = d.id_regs().unwrap();
    (r.idr0 & 2 != 0, r.idr0 & 1 != 0)
}

fn end_to_end(bin: &Path, machine: &str, expect_s2p: bool) {
    let mut d = QemuDevice::spawn(bin, machine, TIMEOUT).unwrap();
    let (s1p, s2p) = idr0_stages(&mut d);
    assert!(s1p, "{machine}: S1P");
    assert_eq!(s2p, expect_s2p, "{machine}: S2P");
    let (trace, a, c) = map_remap_trace();
    let r = run(&mut d, &trace, RunOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.stats.probes, 2);
    assert_eq!(r.stats.probes_fresh, 2, "{:?}", r.stats);
    // And observed directly: the two probes reached the two pages.
    let mut b = map_remap_trace().0;
    b.steps.retain(|s| !matches!(s, Step::Probe { .. }));
    let probe = Probe {
        sid: SID,
        ssid: None,
        addr: 0x10_0018,
        write: false,
    };
    // The same device runs a second case after a reset: no state leaks.
    let r = run(&mut d, &trace, RunOptions::default()).unwrap();
    assert!(r.findings.is_empty());
    assert_eq!(
        d.probe(&probe).unwrap(),
        Observation::Translated { pa: c + 0x18 }
    );
    assert_ne!(a, c);
}

#[test]
fn qemu_10_default_virt_is_nested_and_translates() {
    if let Some(b) = binary(QEMU_10) {
        end_to_end(&b, "virt", true);
    }
}

#[test]
fn qemu_10_virt_9_1_is_stage1_only_and_translates() {
    if let Some(b) = binary(QEMU_10) {
        end_to_end(&b, "virt-9.1", false);
    }
}

#[test]
fn qemu_7_2_translates() {
    if let Some(b) = binary(QEMU_72) {
        end_to_end(&b, "virt", false);
    }
}

#[test]
fn unmapped_probe_faults_with_an_event() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    let mut b = TraceBuilder::new();
    let mut s = b.s1_stream(SID, 1, 0, Granule::K4).unwrap();
    let a = b.data(0x1000).unwrap();
    b.map(&mut s, Stage::S1, 0x10_0000, a, 3, &LeafSpec::S1)
        .unwrap();
    b.enable();
    b.probe(SID, 0x20_0000);
    b.probe(0x11, 0x10_0000);
    let r = run(&mut d, &b.finish(), RunOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.stats.probes_fresh, 1, "{:?}", r.stats);
    assert_eq!(r.stats.not_observed, 1, "{:?}", r.stats);
    // The fault is reported with its event number: F_TRANSLATION (0x10, §7.3.12).
    let p = Probe {
        sid: SID,
        ssid: None,
        addr: 0x20_0000,
        write: false,
    };
    assert_eq!(
        d.probe(&p).unwrap(),
        Observation::Fault { event: Some(0x10) }
    );
    // Many faulting probes: the event queue wraps and keeps reporting (128 entries).
    for _ in 0..300 {
        assert_eq!(
            d.probe(&p).unwrap(),
            Observation::Fault { event: Some(0x10) }
        );
    }
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose; a reaped process has no /proc entry.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')),
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn killed_qemu_is_a_crash_error() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    let pid = d.pid();
    let (trace, _, _) = map_remap_trace();
    // Mid-case: the structures are written, then QEMU dies.
    for s in &trace.steps[..4] {
        if let Step::Write { pa, value } = s {
            d.write(*pa, *value).unwrap();
        }
    }
    signal(pid, "-KILL");
    let t = Instant::now();
    let e = d.submit(&[SYNC]).unwrap_err();
    assert!(t.elapsed() <= TIMEOUT + Duration::from_secs(5));
    assert!(matches!(e, HarnessError::Crashed { .. }), "{e}");
    eprintln!("{e}");
    // Later calls fail fast too.
    assert!(d.id_regs().is_err());
    drop(d);
    assert!(!alive(pid));
}

#[test]
fn stopped_qemu_is_a_timeout_error_and_is_killed() {
    let Some(bin) = binary(QEMU_10) else { return };
    let timeout = Duration::from_millis(500);
    let mut d = QemuDevice::spawn(&bin, "virt", timeout).unwrap();
    let pid = d.pid();
    d.write(0x4800_0000, 1).unwrap();
    signal(pid, "-STOP");
    let t = Instant::now();
    let e = d.submit(&[SYNC]).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, HarnessError::Timeout { .. }), "{e}");
    assert!(
        took >= timeout && took <= timeout + Duration::from_secs(5),
        "{took:?}"
    );
    // The error path already killed it, before the device is dropped.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!alive(pid), "QEMU {pid} survived a timeout");
    drop(d);
    assert!(!alive(pid));
}

#[test]
fn dropped_device_leaves_no_qemu() {
    let Some(bin) = binary(QEMU_10) else { return };
    let d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    let pid = d.pid();
    assert!(alive(pid));
    drop(d);
    assert!(!alive(pid));
}

#[test]
fn missing_binary_is_a_setup_error() {
    let e = QemuDevice::spawn(Path::new("/nonexistent/qemu"), "virt", TIMEOUT)
        .err()
        .unwrap();
    assert!(matches!(e, HarnessError::Setup(_)), "{e}");
}

#[test]
fn an_error_left_active_does_not_leak_into_the_next_case() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    // A reserved opcode raises CERROR_ILL (§4.1.1) and the case ends with it active.
    let mut b = TraceBuilder::new();
    b.submit(&[RawCommand::new(0x0b, 0), SYNC]);
    let r = run(&mut d, &b.finish(), RunOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    for _ in 0..2 {
        let mut b = TraceBuilder::new();
        b.submit(&[SYNC]);
        let r = run(&mut d, &b.finish(), RunOptions::default()).unwrap();
        assert!(r.findings.is_empty(), "{:#?}", r.findings);
        let o = d.submit(&[SYNC]).unwrap();
        assert_eq!((o.cons, o.gerror), (2, 0));
    }
}

#[test]
fn sync_with_sig_irq_raises_the_wired_interrupt() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    d.reset().unwrap();
    // CS = SIG_IRQ (0b01, DW0[13:12]) with MSIAddress == 0: the wired interrupt (§4.7.3).
    let o = d.submit(&[RawCommand::new(0x46 | (1 << 12), 0)]).unwrap();
    assert_eq!(o.cons, 1);
    assert_eq!(o.wired_irqs, 1);
    let o = d.submit(&[SYNC]).unwrap();
    assert_eq!(o.wired_irqs, 0);
}

#[test]
fn stage2_and_nested_streams_translate() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    for nested in [false, true] {
        let mut b = TraceBuilder::new();
        let (mut s, stage) = if nested {
            (b.nested_stream(SID, 1, 3, Granule::K4).unwrap(), Stage::S1)
        } else {
            (b.s2_stream(SID, 3).unwrap(), Stage::S2)
        };
        let a = b.data(0x1000).unwrap();
        let spec = LeafSpec::for_stage(stage);
        b.map(&mut s, stage, 0x30_0000, a, 3, &spec).unwrap();
        b.enable();
        b.probe(SID, 0x30_0008);
        let r = run(&mut d, &b.finish(), RunOptions::default()).unwrap();
        assert!(r.findings.is_empty(), "{:#?}", r.findings);
        assert_eq!(r.stats.probes_fresh, 1, "nested {nested}: {:?}", r.stats);
    }
}

#[test]
fn bad_machine_is_a_crash_error_with_qemu_stderr() {
    let Some(bin) = binary(QEMU_10) else { return };
    let t = Instant::now();
    let e = QemuDevice::spawn(&bin, "no-such-machine", TIMEOUT)
        .err()
        .unwrap();
    assert!(t.elapsed() < TIMEOUT);
    let HarnessError::Crashed { detail, .. } = &e else {
        panic!("{e}")
    };
    assert!(detail.contains("no-such-machine"), "{detail}");
}

#[test]
fn remap_without_invalidation_is_judged() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    let mut b = TraceBuilder::new();
    let mut s = b.s1_stream(SID, 1, 0, Granule::K4).unwrap();
    let (a, c) = (b.data(0x1000).unwrap(), b.data(0x1000).unwrap());
    b.map(&mut s, Stage::S1, 0x10_0000, a, 3, &LeafSpec::S1)
        .unwrap();
    b.enable();
    b.probe(SID, 0x10_0000);
    b.map(&mut s, Stage::S1, 0x10_0000, c, 3, &LeafSpec::S1)
        .unwrap();
    // No TLBI: the old translation may still be used (§3.21), the new one may be too.
    b.probe(SID, 0x10_0000);
    b.submit(&[tlbi_nh_va(1, 0, 0x10_0000), SYNC]);
    b.probe(SID, 0x10_0000);
    let r = run(&mut d, &b.finish(), RunOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.stats.probes, 3);
    assert_eq!(r.stats.not_observed, 0, "{:?}", r.stats);
    eprintln!("QEMU without TLBI: {:?}", r.stats);
}

#[test]
fn a_changed_ste_without_cfgi_never_wedges_the_engine() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    let mut b = TraceBuilder::new();
    let mut s = b.s1_stream(SID, 1, 0, Granule::K4).unwrap();
    let a = b.data(0x1000).unwrap();
    b.map(&mut s, Stage::S1, 0x10_0000, a, 3, &LeafSpec::S1)
        .unwrap();
    b.enable();
    b.probe(SID, 0x10_0000);
    // STE.Config = bypass in memory, no CFGI: QEMU keeps the cached stage-1 configuration, so
    // a SCRIPT fetched at its PA is translated by stage 1 and faults.
    let ste = s.ste_pa;
    let w0 = b.mem.read_words(ste, 1)[0];
    b.write(ste, (w0 & !0xe) | (0b100 << 1));
    b.probe(SID, 0x10_0000);
    b.submit(&[RawCommand::new(0x04, 31), SYNC]);
    b.probe(SID, 0x10_0000);
    let r = run(&mut d, &b.finish(), RunOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    eprintln!("{:?}", r.stats);
    // After CFGI + SYNC the bypass is in force and observable again.
    assert_eq!(
        d.probe(&Probe {
            sid: SID,
            ssid: None,
            addr: a + 8,
            write: false
        })
        .unwrap(),
        Observation::Translated { pa: a + 8 },
        "bypass: IOVA == PA, and the page was tagged by the first probe"
    );
}

#[test]
fn streams_at_other_stream_ids_are_observed() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    let mut b = TraceBuilder::new();
    let sids = [0x08, 0x11, 0x2a, 0x3f];
    for (i, &sid) in sids.iter().enumerate() {
        let mut s = b.s1_stream(sid, 1 + i as u16, 0, Granule::K4).unwrap();
        let page = b.data(0x1000).unwrap();
        b.map(&mut s, Stage::S1, 0x10_0000, page, 3, &LeafSpec::S1)
            .unwrap();
    }
    // SID 2 has a stream too, but no engine can make its requests (see backend::qemu::dma).
    let mut s = b.s1_stream(2, 9, 0, Granule::K4).unwrap();
    let page = b.data(0x1000).unwrap();
    b.map(&mut s, Stage::S1, 0x10_0000, page, 3, &LeafSpec::S1)
        .unwrap();
    b.enable();
    for sid in sids.iter().chain(&[2]) {
        b.probe(*sid, 0x10_0010);
    }
    let r = run(&mut d, &b.finish(), RunOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.stats.probes_fresh, sids.len(), "{:?}", r.stats);
    assert_eq!(r.stats.not_observed, 1, "{:?}", r.stats);
}

#[test]
fn probe_many_and_run_steps_agree_with_one_at_a_time() {
    let Some(bin) = binary(QEMU_10) else { return };
    let mut d = QemuDevice::spawn(&bin, "virt", TIMEOUT).unwrap();
    let (trace, _, _) = map_remap_trace();
    // Everything up to the first probe, then probes of a mapped page, an unmapped one (fault
    // with an event), a page beyond 4 GiB (not observable) and a StreamID with no engine.
    let first_probe = trace
        .steps
        .iter()
        .position(|s| matches!(s, Step::Probe { .. }))
        .unwrap();
    d.reset().unwrap();
    d.run_steps(&trace.steps[..first_probe]).unwrap();
    let p = |sid: u32, addr: u64| Probe {
        sid,
        ssid: None,
        addr,
        write: false,
    };
    let probes = [
        p(SID, 0x10_0018),
        p(SID, 0x50_0000),
        p(SID, 0x10_0020),
        p(SID, 0x1_0000_0000),
        p(3, 0x10_0018),
        p(SID, 0x60_0000),
    ];
    let one: Vec<Observation> = probes.iter().map(|q| d.probe(q).unwrap()).collect();
    let many = d.probe_many(&probes).unwrap();
    assert_eq!(one, many);
    let steps: Vec<Step> = probes.iter().map(|q| Step::probe(q.sid, q.addr)).collect();
    let via_steps: Vec<Observation> = d
        .run_steps(&steps)
        .unwrap()
        .into_iter()
        .map(|o| match o {
            StepOutcome::Probe(o) => o,
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(one, via_steps);
    assert!(matches!(one[0], Observation::Translated { .. }), "{one:?}");
    assert!(
        matches!(one[1], Observation::Fault { event: Some(0x10) }),
        "{one:?}"
    );
    assert_eq!(one[3], Observation::CannotObserve);
    assert_eq!(one[4], Observation::CannotObserve);
    assert!(
        matches!(one[5], Observation::Fault { event: Some(0x10) }),
        "{one:?}"
    );
}

/// A QEMU device that sends `signal` to its own QEMU once `after` trace steps have been handed
/// to it: the middle of a case, from the harness's point of view.
struct SignalMidCase {
    inner: QemuDevice,
    after: usize,
    seen: usize,
    signal: &'static str,
}

impl SignalMidCase {
    fn tick(&mut self, n: usize) {
        if self.seen < self.after && self.seen + n >= self.after {
            signal(self.inner.pid(), self.signal);
        }
        self.seen += n;
    }
}

impl Device for SignalMidCase {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn capabilities(&self) -> smmu_conform::backend::Capabilities {
        self.inner.capabilities()
    }
    fn id_regs(&mut self) -> Result<smmu_model::profile::IdRegs, HarnessError> {
        self.inner.id_regs()
    }
    fn reset(&mut self) -> Result<(), HarnessError> {
        self.inner.reset()
    }
    fn write(&mut self, pa: u64, value: u64) -> Result<(), HarnessError> {
        self.tick(1);
        self.inner.write(pa, value)
    }
    fn stream_table(&mut self, base: u64, cfg: u32) -> Result<(), HarnessError> {
        self.tick(1);
        self.inner.stream_table(base, cfg)
    }
    fn enable(&mut self, on: bool) -> Result<(), HarnessError> {
        self.tick(1);
        self.inner.enable(on)
    }
    fn submit(
        &mut self,
        commands: &[RawCommand],
    ) -> Result<smmu_conform::backend::QueueObservation, HarnessError> {
        self.tick(1);
        self.inner.submit(commands)
    }
    fn acknowledge(
        &mut self,
        replace: Option<RawCommand>,
        drop: bool,
    ) -> Result<smmu_conform::backend::QueueObservation, HarnessError> {
        self.tick(1);
        self.inner.acknowledge(replace, drop)
    }
    fn probe(&mut self, probe: &Probe) -> Result<Observation, HarnessError> {
        self.tick(1);
        self.inner.probe(probe)
    }
    fn run_steps(&mut self, steps: &[Step]) -> Result<Vec<StepOutcome>, HarnessError> {
        self.tick(steps.len());
        self.inner.run_steps(steps)
    }
}

/// The suite's nh-va-page case on a device that gets `sig` in its middle: a harness error
/// (never a verdict) within the timeout, QEMU gone, and the next case runs on a fresh QEMU.
fn signal_mid_case(sig: &'static str, timeout: Duration) -> Vec<smmu_conform::suite::CaseReport> {
    use smmu_conform::suite::{self, Expectations};
    let bin = binary(QEMU_10).unwrap();
    let case = format!(
        "{}/corpus/conformance/scope.case#nh-va-page",
        suite::repo_root().display()
    );
    let cases = suite::load(&[case.clone(), case], &suite::default_cases_dir()).unwrap();
    // `load` keeps one of two equal selections: run it twice on purpose.
    let cases = vec![cases[0].clone(), cases[0].clone()];
    let steps = cases[0].compiled.trace.steps.len();
    let pids = std::sync::Mutex::new(Vec::new());
    let made = std::sync::atomic::AtomicUsize::new(0);
    let factory = || {
        let inner = QemuDevice::spawn(&bin, "virt", timeout)?;
        pids.lock().unwrap().push(inner.pid());
        // Only the first device is signalled, half way through the case's steps.
        let first = made.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        Ok(Box::new(SignalMidCase {
            inner,
            after: if first { steps / 2 } else { usize::MAX },
            seen: 0,
            signal: sig,
        }) as Box<dyn Device>)
    };
    let t = Instant::now();
    let report = suite::run_suite(
        &cases,
        &factory,
        "qemu",
        &Expectations::default(),
        &|_, _| {},
    )
    .unwrap();
    let took = t.elapsed();
    // Two QEMU starts (slow on a loaded machine) and at most one timeout.
    assert!(took <= timeout + Duration::from_secs(20), "{took:?}");
    for pid in pids.into_inner().unwrap() {
        assert!(!alive(pid), "QEMU {pid} survived the run");
    }
    report.cases
}

#[test]
fn qemu_killed_in_the_middle_of_a_case_is_a_harness_error() {
    if binary(QEMU_10).is_none() {
        return;
    }
    let cases = signal_mid_case("-KILL", TIMEOUT);
    let c = &cases[0];
    assert_eq!(
        c.verdict,
        smmu_conform::suite::Verdict::HarnessError,
        "{c:?}"
    );
    assert!(c.notes[0].contains("crashed"), "{:?}", c.notes);
    eprintln!("{}", c.notes[0]);
    assert_eq!(cases[1].verdict, smmu_conform::suite::Verdict::Pass);
}

#[test]
fn qemu_stopped_in_the_middle_of_a_case_is_a_timeout_error() {
    if binary(QEMU_10).is_none() {
        return;
    }
    let timeout = Duration::from_millis(700);
    let cases = signal_mid_case("-STOP", timeout);
    let c = &cases[0];
    assert_eq!(
        c.verdict,
        smmu_conform::suite::Verdict::HarnessError,
        "{c:?}"
    );
    assert!(
        c.notes[0].contains("timed out after 700 ms"),
        "{:?}",
        c.notes
    );
    eprintln!("{}", c.notes[0]);
    assert_eq!(cases[1].verdict, smmu_conform::suite::Verdict::Pass);
}

#[test]
fn suite_on_two_qemus_matches_one() {
    use smmu_conform::suite::{self, Expectations};
    let Some(bin) = binary(QEMU_10) else { return };
    let cases = suite::load(&[], &suite::default_cases_dir()).unwrap();
    let exp = Expectations::load(&suite::default_expectations("qemu")).unwrap();
    let factory =
        || QemuDevice::spawn(&bin, "virt", TIMEOUT).map(|d| Box::new(d) as Box<dyn Device>);
    let one = suite::run_suite_jobs(&cases, &factory, 1, "qemu", &exp, &|_, _| {}).unwrap();
    let two = suite::run_suite_jobs(&cases, &factory, 2, "qemu", &exp, &|_, _| {}).unwrap();
    assert_eq!(
        smmu_conform::report::suite::json(&one),
        smmu_conform::report::suite::json(&two)
    );
    assert_eq!(one.exit_code(), 0, "{:?}", one.summary);
}

/// The QEMU children of `pid` (from /proc: parent pid and command name).
fn qemu_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) && head.contains("qemu-system") {
            out.push(child);
        }
    }
    out
}

/// The harness itself killed (SIGKILL: no destructor runs; SIGTERM: the default action) while
/// QEMU runs under it: its QEMU goes too.
#[test]
fn killing_the_harness_kills_its_qemu() {
    if binary(QEMU_10).is_none() {
        return;
    }
    for sig in ["-KILL", "-TERM"] {
        let out = std::env::temp_dir().join(format!("smmu-kill-harness-{}", std::process::id()));
        let mut h = std::process::Command::new(env!("CARGO_BIN_EXE_smmu-conform"))
            .args([
                "fuzz",
                "--backend",
                "qemu",
                "--time",
                "120s",
                "--seed",
                "1",
                "--out",
            ])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        let kids = loop {
            let k = qemu_children(h.id());
            if !k.is_empty() || t.elapsed() > Duration::from_secs(30) {
                break k;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!kids.is_empty(), "no QEMU started under the harness");
        // Into the campaign, not only QEMU's start-up.
        std::thread::sleep(Duration::from_millis(1500));
        signal(h.id(), sig);
        h.wait().unwrap();
        let t = Instant::now();
        while kids.iter().any(|&k| alive(k)) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for k in kids {
            assert!(!alive(k), "QEMU {k} outlived the harness killed with {sig}");
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}
