//! The out-of-process protocol end to end (docs/protocol.md): the same verdicts in-process and
//! over the protocol for the reference emulator and every mutant; every way a peer can break
//! the protocol ends in a harness error (exit status 2) within the timeout, with no process
//! left behind; the Python examples as backends.

use smmu_conform::backend::exec::lockstep::Lockstep;
use smmu_conform::backend::exec::{ExecDevice, ExecForwarder, ExecSpec};
use smmu_conform::backend::{Device, HarnessError, VirtualSmmu};
use smmu_conform::open::{available_mutants, open_backend};
use smmu_conform::suite::{self, CaseReport, Expectations, Loaded};
use smmu_model::command::RawCommand;
use std::path::PathBuf;
use std::process::Command;

const SERVE: &str = env!("CARGO_BIN_EXE_smmu-conform-serve");
const CONFORM: &str = env!("CARGO_BIN_EXE_smmu-conform");

fn root() -> PathBuf {
    suite::repo_root()
}

fn cases() -> Vec<Loaded> {
    suite::load(&[], &suite::default_cases_dir()).expect("the suite loads")
}

/// `exec:` spec serving `backend` through smmu-conform-serve.
fn served(backend: &str, extra: &str) -> String {
    format!("exec:{SERVE} --backend {backend} {extra}")
}

/// What must be identical in-process and over the protocol: per case, the verdict, the steps
/// at which findings were made, the notes and the counters. Not the findings' rules and
/// messages: when one observation breaks several rules, which one the model names (and which
/// stale entry its message describes) follows hash-set order, and so differs between two runs
/// in one process. The lockstep runs below show that the observations behind the verdicts are
/// identical call by call.
fn verdicts(r: &[CaseReport]) -> Vec<String> {
    r.iter()
        .map(|c| {
            let steps: Vec<_> = c.findings.iter().map(|f| f.step).collect();
            format!(
                "{} {:?} {:?} {:?} {}",
                c.case,
                c.verdict,
                steps,
                c.notes,
                serde_json::to_string(&c.stats).unwrap()
            )
        })
        .collect()
}

/// The lines that differ, for a readable failure.
fn differences(a: &[String], b: &[String]) -> Vec<String> {
    let mut d: Vec<String> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("in-process: {x}\n  protocol: {y}"))
        .collect();
    if a.len() != b.len() {
        d.push(format!("{} cases against {}", a.len(), b.len()));
    }
    d
}

fn run(cases: &[Loaded], spec: &str) -> suite::SuiteReport {
    let s = spec.to_string();
    let factory = move || open_backend(&s);
    suite::run_suite(cases, &factory, spec, &Expectations::default(), &|_, _| {})
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// Whether any case's notes report a lockstep difference.
fn lockstep_errors(r: &suite::SuiteReport) -> Vec<String> {
    r.cases
        .iter()
        .flat_map(|c| c.notes.clone())
        .filter(|n| n.contains("lockstep"))
        .collect()
}

/// The whole suite, every case of corpus/conformance/, on the emulator and on each of the 36
/// mutants: in process, served with the `steps` capability (runs of steps in one request) and
/// served without it (one request per step), and with the in-process and the served (`steps`)
/// backends driven in lockstep (every answer compared). All verdicts equal.
#[test]
fn emulator_and_every_mutant_judge_the_same_over_the_protocol() {
    let cases = cases();
    let mut backends = vec!["emulator".to_string()];
    backends.extend(
        available_mutants()
            .into_iter()
            .map(|m| format!("mutant:{}", m.name)),
    );
    assert_eq!(backends.len(), 37, "the emulator and 36 mutants");
    let (mut compared, mut run_cases) = (0, 0);
    for b in &backends {
        let local = run(&cases, b);
        let want = verdicts(&local.cases);
        for extra in ["", "--no-steps"] {
            let remote = run(&cases, &served(b, extra));
            assert_eq!(
                remote.summary.harness_error, 0,
                "{b} over the protocol {extra}"
            );
            let d = differences(&want, &verdicts(&remote.cases));
            assert!(
                d.is_empty(),
                "{b} {extra}: in-process and over the protocol differ:\n{}",
                d.join("\n")
            );
            assert_eq!(remote.exit_code(), local.exit_code(), "{b} {extra}");
            compared += want.len();
        }
        // Call by call: every answer of the served backend equals the in-process one.
        let spec = served(b, "");
        let name = b.clone();
        let factory = move || -> Result<Box<dyn Device>, HarnessError> {
            Ok(Box::new(Lockstep::new(
                open_backend(&name)?,
                open_backend(&spec)?,
            )))
        };
        let both =
            suite::run_suite(&cases, &factory, b, &Expectations::default(), &|_, _| {}).unwrap();
        let errors = lockstep_errors(&both);
        assert!(errors.is_empty(), "{b}: answers differ: {errors:?}");
        let d = differences(&want, &verdicts(&both.cases));
        assert!(
            d.is_empty(),
            "{b}: lockstep verdicts differ:\n{}",
            d.join("\n")
        );
        compared += want.len();
        run_cases += local.cases.len() - local.summary.skip;
    }
    // docs/performance.md quotes this line (cargo test ... -- --nocapture).
    eprintln!(
        "{} backends, {} cases each ({run_cases} run in all, the rest skipped by the profile): \
         {compared} verdicts compared in process against over the protocol (steps, \
         one request per step, lockstep), all equal",
        backends.len(),
        cases.len()
    );
}

// ---- misbehaving peers ---------------------------------------------------------------------

/// Whether a process with this pid exists (zombies aside: they are reaped by then).
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
        let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        if f.get(2).and_then(|p| p.parse::<u32>().ok()) == Some(pgid) && f.first() != Some(&"Z") {
            v.push(pid);
        }
    }
    v
}

/// Run one case's trace on a misbehaving served emulator; return the harness error.
fn misbehaving(mode: &str, timeout_ms: u64) -> (HarnessError, u32) {
    // A fault at one op needs a server that sends that op on its own: without `steps`, except
    // for faults in a `steps` answer.
    let steps = if mode.ends_with("@steps") {
        ""
    } else {
        " --no-steps"
    };
    let spec = ExecSpec::parse(&format!(
        "exec,timeout={timeout_ms}ms,hello-timeout={timeout_ms}ms:{SERVE}{steps} --backend emulator --misbehave {mode}"
    ))
    .unwrap()
    .unwrap();
    let trace = cases()
        .into_iter()
        .find(|l| l.case.name == "nh-va-page")
        .expect("case nh-va-page")
        .compiled
        .trace;
    let mut pid = 0;
    let r = ExecDevice::open(&spec).and_then(|mut d| {
        pid = d.pid();
        smmu_conform::harness::run(&mut d, &trace, Default::default())
    });
    let e = r
        .err()
        .unwrap_or_else(|| panic!("{mode}: no harness error"));
    (e, pid)
}

#[test]
fn every_protocol_breach_is_a_harness_error() {
    for (mode, want) in [
        ("malformed-json", "not a response line"),
        ("malformed-json@0", "not a response line"),
        ("wrong-field@probe", "bad probe result"),
        ("wrong-field@submit", "bad submit result"),
        ("wrong-field@reset", "bad reset result"),
        ("wrong-field@0", "bad hello result"),
        ("missing-field@probe", "bad probe result"),
        ("missing-field@id_regs", "bad id_regs result"),
        ("missing-field@write", "exactly one of"),
        ("wrong-id@probe", "response id"),
        ("unknown-message@submit", "not a response line"),
        ("unknown-message@0", "not a response line"),
        ("malformed-json@steps", "not a response line"),
        ("wrong-field@steps", "bad steps result"),
        ("missing-field@steps", "bad steps result"),
        ("wrong-id@steps", "response id"),
    ] {
        let (e, pid) = misbehaving(mode, 5000);
        assert!(matches!(e, HarnessError::Protocol { .. }), "{mode}: {e:?}");
        assert!(e.to_string().contains(want), "{mode}: {e}");
        assert!(!e.to_string().contains('\n'), "{mode}: one line: {e}");
        if pid != 0 {
            assert!(!alive(pid), "{mode}: peer {pid} left behind");
        }
    }
}

#[test]
fn a_peer_that_exits_early_is_a_crash_with_its_stderr() {
    for mode in ["exit@0", "exit@1", "exit@probe", "exit@steps"] {
        let (e, _) = misbehaving(mode, 5000);
        assert!(matches!(e, HarnessError::Crashed { .. }), "{mode}: {e:?}");
        let s = e.to_string();
        assert!(s.contains("exiting early on purpose"), "{mode}: {s}");
        assert!(s.contains("exit status: 3"), "{mode}: {s}");
    }
}

/// A `steps` answer whose list has the wrong length, or a result of the wrong shape for its
/// step, is a protocol error naming the result, and the peer is killed.
#[test]
fn a_bad_steps_result_is_a_protocol_error() {
    let hello = r#"{"id":0,"ok":{"protocol":1,"role":"device","name":"canned","capabilities":["translation","steps"]}}"#;
    for (results, want) in [
        (r#"[{}]"#, "1 results for 2 steps"),
        (
            r#"[{},{"kind":"translated"}]"#,
            "result 1: missing field `pa`",
        ),
        (
            r#"[{"cons":0,"gerror":0},{"kind":"abort"}]"#,
            "result 0: unknown field `cons`",
        ),
        (
            r#"[{},{"kind":"fault","event":300}]"#,
            "result 1: event number 0x12c",
        ),
    ] {
        // A canned peer: hello, then the one answer under test (then silence until killed).
        let dir = std::env::temp_dir().join(format!("smmu-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("peer{}.sh", results.len()));
        let answer = format!(r#"{{"id":1,"ok":{{"results":{results}}}}}"#);
        std::fs::write(
            &path,
            format!(
                "read l\ncat <<'EOF'\n{hello}\nEOF\nread l\ncat <<'EOF'\n{answer}\nEOF\nsleep 5\n"
            ),
        )
        .unwrap();
        let spec = ExecSpec::parse(&format!("exec:sh {}", path.display()))
            .unwrap()
            .unwrap();
        let mut d = ExecDevice::open(&spec).unwrap();
        let pid = d.pid();
        let steps = [
            smmu_conform::trace::Step::write(0x4000_0000, 1),
            smmu_conform::trace::Step::probe(1, 0x1000),
        ];
        let e = d.run_steps(&steps).unwrap_err();
        assert!(
            matches!(e, HarnessError::Protocol { .. }),
            "{results}: {e:?}"
        );
        assert!(e.to_string().contains(want), "{results}: {e}");
        assert!(!alive(pid), "{results}: peer {pid} left behind");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&dir);
    }
}

#[test]
fn a_silent_peer_times_out_and_its_whole_group_is_killed() {
    for mode in ["stall@0", "stall@probe", "stall@submit"] {
        let (e, pid) = misbehaving(mode, 300);
        match &e {
            HarnessError::Timeout { ms, during, .. } => {
                assert_eq!(*ms, 300, "{mode}");
                assert!(during.contains("stalling on purpose"), "{mode}: {during}");
            }
            e => panic!("{mode}: {e:?}"),
        }
        // The peer started a `sleep 3600` in its group before stalling: both are gone. SIGKILL
        // is delivered asynchronously, so a loaded machine may show a dying member for a moment:
        // poll (a bound on "never left behind", not a speed check).
        let t = std::time::Instant::now();
        while pid != 0
            && !group_members(pid).is_empty()
            && t.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            pid == 0 || group_members(pid).is_empty(),
            "{mode}: group {pid} left"
        );
    }
}

#[test]
fn dropping_a_device_leaves_no_process() {
    let spec = ExecSpec::parse(&served("emulator", "")).unwrap().unwrap();
    let mut d = ExecDevice::open(&spec).unwrap();
    let pid = d.pid();
    d.reset().unwrap();
    assert!(alive(pid));
    drop(d);
    assert!(!alive(pid), "peer {pid} outlived its device");
}

#[test]
fn bad_specs_and_missing_programs_are_setup_errors() {
    for spec in [
        "exec:",
        "exec:'unclosed",
        "exec,colour=red:x",
        "exec:/no/such/peer",
    ] {
        match open_backend(spec) {
            Err(HarnessError::Setup(m)) => assert!(!m.contains('\n'), "{m}"),
            Err(e) => panic!("{spec}: {e:?}"),
            Ok(_) => panic!("{spec}: opened"),
        }
    }
    // A peer that serves the wrong role.
    let spec = ExecSpec::parse(&format!("exec-forwarder:{SERVE} --backend emulator"))
        .unwrap()
        .unwrap();
    let e = ExecForwarder::open(&spec).err().expect("role mismatch");
    assert!(e.to_string().contains("serves a device"), "{e}");
}

/// The command line: exit status 2 and one line on stderr, within the timeout.
#[test]
fn the_cli_exits_2_on_a_broken_peer() {
    for (mode, needle) in [
        ("stall@0", "timed out after 300 ms during hello"),
        ("malformed-json@0", "broke the protocol during hello"),
        ("exit@0", "crashed during hello"),
    ] {
        let backend = format!("exec,timeout=300ms,hello-timeout=300ms:{SERVE} --misbehave {mode}");
        let out = Command::new(CONFORM)
            .args(["run", "--backend", &backend])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{mode}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{mode}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{mode}: {err}");
    }
    // Breaking mid-run: every case is a harness error (the peer is restarted for each case and
    // breaks again), the report says so, exit 2.
    let backend = format!("exec,timeout=300ms:{SERVE} --misbehave stall@steps");
    let out = Command::new(CONFORM)
        .args(["run", "--backend", &backend, "--case"])
        .arg(root().join("corpus/conformance/scope.case#nh-va-page"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("HARNESS-ERROR"), "{text}");
    assert!(
        text.contains("timed out after 300 ms during steps"),
        "{text}"
    );
}

// ---- the Python examples -------------------------------------------------------------------

fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("python3");
    }
    assert!(
        std::env::var("CI").is_err(),
        "python3 is required in CI for the Python example backends"
    );
    eprintln!("skipped: python3 is not installed");
    None
}

#[test]
fn the_python_tiny_smmu_gives_the_documented_verdicts() {
    let Some(py) = python() else { return };
    let script = root().join("examples/python/tiny_smmu.py");
    let spec = format!("exec:{py} {}", script.display());
    let expect = Expectations::load(&root().join("corpus/expectations/python-example.toml"))
        .expect("the example's expectation file");
    let cases = cases();
    let s = spec.clone();
    let factory = move || open_backend(&s);
    let r = suite::run_suite(&cases, &factory, &spec, &expect, &|_, _| {}).unwrap();
    // docs/writing-a-backend.md states these numbers.
    let s = &r.summary;
    assert_eq!(
        (s.pass, s.fail, s.harness_error, s.case_error, s.fixed),
        (42, 0, 0, 0, 0),
        "{}",
        smmu_conform::report::suite::text(&r)
    );
    assert_eq!(s.skip, cases.len() - 42 - s.expected);
    assert_eq!(r.exit_code(), 0);
    // Skips say why (the profile it declares, or what the harness cannot drive).
    for c in r.cases.iter().filter(|c| c.verdict == suite::Verdict::Skip) {
        assert!(c.notes.iter().any(|n| n.starts_with("needs ")), "{c:?}");
    }
}

#[test]
fn the_python_tiny_forwarder_over_the_protocol() {
    let Some(py) = python() else { return };
    let script = root().join("examples/python/tiny_forwarder.py");
    let direct = format!("exec-forwarder:{py} {}", script.display());
    // Directly, and proxied through smmu-conform-serve's forwarder role: the same answers.
    let proxied = format!("exec-forwarder:{SERVE} --role forwarder --backend \"{direct}\"");
    let regs = |name: &str| smmu_model::profile::Profile::named(name).unwrap().regs;
    let vsmmu = VirtualSmmu {
        guest: regs("qemu-10.0-virt-9.1"),
        host: regs("qemu-10.0"),
        host_vmid: 7,
        sids: vec![(1, 0x21), (2, 0x22)],
    };
    let guest = [
        RawCommand([0x12 | (5 << 48), 0x1000]), // TLBI_NH_VA ASID 5
        RawCommand([0x0000_0001_0000_0003, 0]), // CFGI_STE SID 1
        RawCommand([0x46, 0]),                  // CMD_SYNC
        RawCommand([0x0000_0009_0000_0003, 0]), // CFGI_STE SID 9: unmapped
    ];
    let mut results = Vec::new();
    for spec in [&direct, &proxied] {
        let mut f = smmu_conform::open::open_forwarder(spec).unwrap();
        f.setup(&vsmmu).unwrap();
        let r = f.forward(&guest).unwrap();
        results.push(r);
    }
    assert_eq!(results[0], results[1]);
    let r = &results[0];
    assert_eq!(r.handled, 3);
    assert_eq!(r.error.as_ref().map(|e| e.0), Some(3));
    // The CFGI_STE went to the physical StreamID, the TLBI carries the host VMID.
    assert!(r
        .host_commands
        .contains(&RawCommand([0x0000_0021_0000_0003, 0])));
    assert!(r
        .host_commands
        .iter()
        .any(|c| c.0[0] & 0xff == 0x12 && (c.0[0] >> 32) & 0xffff == 7));
    // A forwarder that breaks the protocol mid-forward is a harness error too.
    let broken = format!(
        "exec-forwarder,timeout=2s:{SERVE} --role forwarder --backend \"{direct}\" --misbehave wrong-field@forward"
    );
    let mut f = smmu_conform::open::open_forwarder(&broken).unwrap();
    f.setup(&vsmmu).unwrap();
    let e = f.forward(&guest).unwrap_err();
    assert!(matches!(e, HarnessError::Protocol { .. }), "{e:?}");
    let stall = format!(
        "exec-forwarder,timeout=300ms:{SERVE} --role forwarder --backend \"{direct}\" --misbehave stall@setup"
    );
    let mut f = smmu_conform::open::open_forwarder(&stall).unwrap();
    let e = f.setup(&vsmmu).unwrap_err();
    assert!(matches!(e, HarnessError::Timeout { ms: 300, .. }), "{e:?}");
}

// ---- forwarders ----------------------------------------------------------------------------

fn run_forwarders(spec: &str) -> suite::SuiteReport {
    use smmu_conform::forwarder::suite as fsuite;
    let cases = fsuite::load(&[], &fsuite::default_cases_dir()).expect("forwarder cases");
    let s = spec.to_string();
    let factory = move || smmu_conform::open::open_forwarder(&s);
    fsuite::run_suite(&cases, &factory, spec, &Expectations::default(), &|_, _| {})
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

#[test]
fn reference_forwarder_and_every_forwarder_mutant_judge_the_same_over_the_protocol() {
    let mut backends = vec![smmu_conform::forwarder::REFERENCE.to_string()];
    backends.extend(
        smmu_conform::forwarder::list_mutants()
            .into_iter()
            .map(|(n, _)| format!("{}{n}", smmu_conform::forwarder::MUTANT_PREFIX)),
    );
    assert!(
        backends.len() > 1,
        "the reference forwarder and its mutants"
    );
    let (mut compared, mut cases) = (0, 0);
    for b in &backends {
        let local = run_forwarders(b);
        let remote = run_forwarders(&format!(
            "exec-forwarder:{SERVE} --role forwarder --backend {b}"
        ));
        compared += local.cases.len();
        cases = local.cases.len();
        assert_eq!(remote.summary.harness_error, 0, "{b} over the protocol");
        let d = differences(&verdicts(&local.cases), &verdicts(&remote.cases));
        assert!(
            d.is_empty(),
            "{b}: in-process and over the protocol differ:\n{}",
            d.join("\n")
        );
        assert_eq!(remote.exit_code(), local.exit_code(), "{b}");
    }
    // docs/performance.md quotes this line (cargo test ... -- --nocapture).
    eprintln!(
        "{} forwarders, {cases} forwarder cases each: {compared} verdicts compared in process \
         against over the protocol, all equal",
        backends.len()
    );
}

#[test]
fn the_python_tiny_forwarder_passes_the_forwarder_suite() {
    let Some(py) = python() else { return };
    let script = root().join("examples/python/tiny_forwarder.py");
    let r = run_forwarders(&format!("exec-forwarder:{py} {}", script.display()));
    // docs/writing-a-backend.md states these numbers.
    let s = &r.summary;
    assert_eq!(
        (s.fail, s.harness_error, s.case_error, s.skip),
        (0, 0, 0, 0),
        "{}",
        smmu_conform::report::suite::text(&r)
    );
    assert_eq!(s.pass, r.cases.len());
}
