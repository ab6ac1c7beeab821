//! The suite runner: loads case files, runs every selected case on one device, and reports every
//! finding of every case, with listed divergences (corpus/expectations/BACKEND.toml) and harness
//! or case errors kept apart from verdicts.
//!
//! Exit status of a run ([`SuiteReport::exit_code`]): 0 conformant (listed divergences aside),
//! 1 violations found or a listed divergence no longer fails, 2 the harness could not do its job
//! (backend error, bad case, an `expect` line that disagrees with the model).

use crate::backend::{Device, HarnessError};
use crate::case::{self, Case, CaseError, Compiled};
use crate::harness::{self, RunOptions, RunStats};
use serde::{Deserialize, Serialize};
use smmu_model::profile::Profile;
use std::path::{Path, PathBuf};

/// Builds (or rebuilds, after a crash) the device under test.
pub type Factory<'a> = &'a dyn Fn() -> Result<Box<dyn Device>, HarnessError>;

/// The repository root, where `corpus/` lives (the crate is one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The suite's cases, `corpus/conformance`.
pub fn default_cases_dir() -> PathBuf {
    repo_root().join("corpus/conformance")
}

/// The expectation file of a backend, `corpus/expectations/BACKEND.toml` (characters other than
/// letters, digits, '-', '_' and '.' in the spec become '_').
pub fn default_expectations(backend: &str) -> PathBuf {
    // Every kernel directory shares the kernel's file (its findings cite the version).
    let backend = if crate::backend::kernel::is_kernel_spec(backend) {
        crate::backend::kernel::SPEC
    } else {
        backend
    };
    let name: String = backend
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    repo_root().join(format!("corpus/expectations/{name}.toml"))
}

/// Errors that stop a run before it starts: exit status 2, one line.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{0}")]
    Case(#[from] CaseError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no case named '{name}' (cases: {known})")]
    NoSuchCase {
        path: String,
        name: String,
        known: String,
    },
    #[error("case '{name}' is defined in both {a} and {b}: case names are the keys of expectation files")]
    DuplicateCase { name: String, a: String, b: String },
    #[error("{path}: {message}")]
    Expectations { path: String, message: String },
    #[error("{0}")]
    Backend(String),
    #[error("no .case files in {0}")]
    Empty(String),
}

/// A path as reports print it: relative to the repository root when under it, so reproducers
/// work from a checkout.
pub fn display_path(p: &Path) -> String {
    let abs = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let root = repo_root().canonicalize().unwrap_or_else(|_| repo_root());
    abs.strip_prefix(&root)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}

/// A case ready to run.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub case: Case,
    pub compiled: Compiled,
}

/// Read, parse and compile the cases of one file; `name` selects one.
pub fn load_file(path: &Path, name: Option<&str>) -> Result<Vec<Loaded>, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let shown = display_path(path);
    let cases = case::parse_cases(&shown, &text)?;
    let selected: Vec<Case> =
        match name {
            None => cases,
            Some(n) => {
                let known = cases
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let c = cases.into_iter().find(|c| c.name == n).ok_or_else(|| {
                    SuiteError::NoSuchCase {
                        path: shown.clone(),
                        name: n.to_string(),
                        known,
                    }
                })?;
                vec![c]
            }
        };
    selected
        .into_iter()
        .map(|c| {
            let compiled = case::compile(&c)?;
            Ok(Loaded { case: c, compiled })
        })
        .collect()
}

/// Every `*.case` file of a directory, in name order.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, SuiteError> {
    let rd = std::fs::read_dir(dir).map_err(|source| SuiteError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(SuiteError::Empty(dir.display().to_string()));
    }
    Ok(v)
}

/// Load `--case FILE[#NAME]` selections, or every file of `dir` when there are none.
pub fn load(selections: &[String], dir: &Path) -> Result<Vec<Loaded>, SuiteError> {
    let mut out: Vec<Loaded> = Vec::new();
    if selections.is_empty() {
        for f in case_files(dir)? {
            out.extend(load_file(&f, None)?);
        }
    } else {
        for s in selections {
            let (p, n) = match s.split_once('#') {
                Some((p, n)) => (p, Some(n)),
                None => (s.as_str(), None),
            };
            out.extend(load_file(Path::new(p), n)?);
        }
    }
    for (i, a) in out.iter().enumerate() {
        if let Some(b) = out[..i].iter().find(|b| b.case.name == a.case.name) {
            if b.case.file != a.case.file {
                return Err(SuiteError::DuplicateCase {
                    name: a.case.name.clone(),
                    a: b.case.file.clone(),
                    b: a.case.file.clone(),
                });
            }
        }
    }
    // `--case f#x --case f#x` runs x once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|l| seen.insert(l.case.id()));
    Ok(out)
}

/// A known divergence of a backend (rustls-style expectation file: every entry has a reason).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Divergence {
    pub case: String,
    pub rule: String,
    pub reason: String,
    /// For fuzzing (`fuzz::known`): text a finding's message must contain to be this
    /// divergence, when the case's other rules do not identify it (e.g. "fault 0x12").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuzz_match: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default)]
    pub divergence: Vec<Divergence>,
}

impl Expectations {
    pub fn parse(path: &str, text: &str) -> Result<Expectations, SuiteError> {
        let e: Expectations = toml::from_str(text).map_err(|err| SuiteError::Expectations {
            path: path.to_string(),
            message: err.message().replace('\n', " "),
        })?;
        for d in &e.divergence {
            if smmu_model::rules::by_id(&d.rule).is_none() {
                return Err(SuiteError::Expectations {
                    path: path.to_string(),
                    message: format!("case '{}': unknown rule id '{}'", d.case, d.rule),
                });
            }
            if d.reason.trim().is_empty() {
                return Err(SuiteError::Expectations {
                    path: path.to_string(),
                    message: format!("case '{}' rule {}: give a reason", d.case, d.rule),
                });
            }
        }
        Ok(e)
    }

    pub fn load(path: &Path) -> Result<Expectations, SuiteError> {
        let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Expectations::parse(&display_path(path), &text)
    }

    fn find(&self, case: &str, rule: &str) -> Option<&Divergence> {
        self.divergence
            .iter()
            .find(|d| d.case == case && d.rule == rule)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// Every finding is a listed divergence.
    Expected,
    Fail,
    Skip,
    /// The case is wrong (an `expect` line disagrees with the model).
    CaseError,
    /// The backend could not run the case.
    HarnessError,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Expected => "expected",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
            Verdict::CaseError => "CASE-ERROR",
            Verdict::HarnessError => "HARNESS-ERROR",
        }
    }
}

/// One finding, ready to print.
#[derive(Clone, Debug, Serialize)]
pub struct FindingReport {
    pub rule: &'static str,
    pub section: &'static str,
    pub message: String,
    /// Trace step index of the observation.
    pub step: usize,
    /// Source line of the case step that made the observation.
    pub line: Option<usize>,
    /// The listed divergence's reason, when this finding is expected.
    pub expected: Option<String>,
    /// The case's executed steps up to the finding, as `LINE: text`.
    pub trace: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub case: String,
    pub file: String,
    pub line: usize,
    pub rules: Vec<&'static str>,
    pub doc: String,
    pub verdict: Verdict,
    pub notes: Vec<String>,
    pub findings: Vec<FindingReport>,
    /// Listed divergences this case no longer shows.
    pub fixed: Vec<Divergence>,
    pub reproducer: String,
    pub stats: Option<RunStats>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub expected: usize,
    pub fail: usize,
    pub skip: usize,
    pub case_error: usize,
    pub harness_error: usize,
    pub fixed: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct SuiteReport {
    pub backend: String,
    /// The device's own name, when it could be opened.
    pub device: Option<String>,
    pub cases: Vec<CaseReport>,
    pub summary: Summary,
}

impl SuiteReport {
    pub fn exit_code(&self) -> u8 {
        let s = &self.summary;
        if s.case_error > 0 || s.harness_error > 0 {
            2
        } else if s.fail > 0 || s.fixed > 0 {
            1
        } else {
            0
        }
    }
}

/// The one command that re-runs a case.
pub fn reproducer(backend: &str, case: &Case) -> String {
    format!("smmu-conform run --backend {backend} --case {}", case.id())
}

fn trace_lines(case: &Case, compiled: &Compiled, upto_step: usize) -> Vec<String> {
    let last = compiled
        .origin
        .get(upto_step)
        .copied()
        .flatten()
        .unwrap_or(0);
    case.steps[..=last.min(case.steps.len() - 1)]
        .iter()
        .map(|l| format!("{:>4}: {}", l.line, l.text))
        .collect()
}

/// Run one case on `device`.
pub fn run_case(
    device: &mut dyn Device,
    backend: &str,
    loaded: &Loaded,
    expectations: &Expectations,
) -> CaseReport {
    let case = &loaded.case;
    let mut r = CaseReport {
        case: case.name.clone(),
        file: case.file.clone(),
        line: case.line,
        rules: case.rules.iter().map(|r| r.id).collect(),
        doc: case.doc.clone(),
        verdict: Verdict::Pass,
        notes: Vec::new(),
        findings: Vec::new(),
        fixed: Vec::new(),
        reproducer: reproducer(backend, case),
        stats: None,
    };
    // Needs are judged on the device's own ID registers, read after a reset, as the harness does.
    let profile = match device.reset().and_then(|()| device.id_regs()) {
        Ok(regs) => Profile::from_regs(regs),
        Err(e) => {
            r.verdict = Verdict::HarnessError;
            r.notes.push(e.to_string());
            return r;
        }
    };
    let unmet = case::unmet_needs(case, &profile, &device.capabilities());
    if !unmet.is_empty() {
        r.verdict = Verdict::Skip;
        r.notes = unmet;
        return r;
    }
    let compiled = &loaded.compiled;
    let mut case_errors = Vec::new();
    let mut observer =
        |i: usize, model: &smmu_model::oracle::Model, p: &smmu_model::oracle::Probe| {
            if let Some(x) = compiled.expects.get(&i) {
                if let Some(d) = x.disagreement(&model.allowed(p)) {
                    case_errors.push(format!("{}:{}: {d}", case.file, x.line));
                }
            }
        };
    let res = harness::run_observed(
        device,
        &compiled.trace,
        RunOptions::default(),
        &mut observer,
    );
    let res = match res {
        Ok(res) => res,
        Err(e) => {
            r.verdict = Verdict::HarnessError;
            r.notes.push(e.to_string());
            return r;
        }
    };
    r.stats = Some(res.stats);
    for f in &res.findings {
        let expected = expectations
            .find(&case.name, f.rule.id)
            .map(|d| d.reason.clone());
        r.findings.push(FindingReport {
            rule: f.rule.id,
            section: f.rule.section,
            message: f.message.clone(),
            step: f.step,
            line: compiled
                .origin
                .get(f.step)
                .copied()
                .flatten()
                .map(|i| case.steps[i].line),
            expected,
            trace: trace_lines(case, compiled, f.step),
        });
    }
    for d in expectations
        .divergence
        .iter()
        .filter(|d| d.case == case.name)
    {
        if !r.findings.iter().any(|f| f.rule == d.rule) {
            r.fixed.push(d.clone());
            r.notes.push(format!(
                "fixed: listed divergence {} no longer fails; remove it from the expectation file",
                d.rule
            ));
        }
    }
    if res.executed < compiled.trace.steps.len() {
        r.notes.push(format!(
            "stopped after step {} of {}: a queue violation makes later judgments guesses",
            res.executed,
            compiled.trace.steps.len()
        ));
    }
    r.verdict = if !case_errors.is_empty() {
        r.notes.extend(case_errors);
        Verdict::CaseError
    } else if r.findings.is_empty() {
        Verdict::Pass
    } else if r.findings.iter().all(|f| f.expected.is_some()) {
        Verdict::Expected
    } else {
        Verdict::Fail
    };
    r
}

/// Run every case on one device from `factory`. The device is reset before each case (by the
/// harness) and rebuilt after a harness error, so one crash does not hide later results.
pub fn run_suite(
    cases: &[Loaded],
    factory: Factory<'_>,
    backend: &str,
    expectations: &Expectations,
    progress: &dyn Fn(usize, &CaseReport),
) -> Result<SuiteReport, SuiteError> {
    let mut device = factory().map_err(|e| SuiteError::Backend(e.to_string()))?;
    let mut report = SuiteReport {
        backend: backend.to_string(),
        device: Some(device.name()),
        cases: Vec::new(),
        summary: Summary::default(),
    };
    for (i, l) in cases.iter().enumerate() {
        let r = run_case(device.as_mut(), backend, l, expectations);
        if r.verdict == Verdict::HarnessError {
            match factory() {
                Ok(d) => device = d,
                Err(e) => {
                    // Nothing more can run: report the rest as harness errors, not as passes.
                    progress(i, &r);
                    report.cases.push(r);
                    for l in &cases[i + 1..] {
                        let mut r = run_case_unavailable(backend, &l.case, &e);
                        r.notes
                            .push("not run: the backend could not be reopened".into());
                        report.cases.push(r);
                    }
                    break;
                }
            }
        }
        progress(i, &r);
        report.cases.push(r);
    }
    report.summary = summarize(&report.cases);
    Ok(report)
}

/// A factory that several threads may call: each builds its own device.
pub type SharedFactory<'a> = &'a (dyn Fn() -> Result<Box<dyn Device>, HarnessError> + Sync);

/// [`run_suite`] on `jobs` devices at once, each from `factory` and used by one thread (a
/// QEMU process per core), taking the next case as it finishes one. Every case still starts
/// from [`Device::reset`], so which device runs it does not change its result; the report
/// lists cases in the order given, whatever order they finish in. A device that had a harness
/// error is rebuilt before its thread's next case; when rebuilding fails, every case not yet
/// started is reported as not run (as [`run_suite`] does).
pub fn run_suite_jobs(
    cases: &[Loaded],
    factory: SharedFactory<'_>,
    jobs: usize,
    backend: &str,
    expectations: &Expectations,
    progress: &(dyn Fn(usize, &CaseReport) + Sync),
) -> Result<SuiteReport, SuiteError> {
    let jobs = jobs.clamp(1, cases.len().max(1));
    if jobs == 1 {
        return run_suite(cases, factory, backend, expectations, progress);
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    // The first device is opened here, so a backend that cannot start at all is one error.
    let first = factory().map_err(|e| SuiteError::Backend(e.to_string()))?;
    let device = Some(first.name());
    let next = AtomicUsize::new(0);
    let broken: Mutex<Option<HarnessError>> = Mutex::new(None);
    let results: Mutex<Vec<Option<CaseReport>>> = Mutex::new(vec![None; cases.len()]);
    let worker = |mut dev: Option<Box<dyn Device>>| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(l) = cases.get(i) else { break };
        let gone = broken.lock().map(|b| b.clone()).unwrap_or(None);
        let r = match (gone, dev.as_mut()) {
            (Some(e), _) => {
                let mut r = run_case_unavailable(backend, &l.case, &e);
                r.notes
                    .push("not run: the backend could not be reopened".into());
                r
            }
            (None, Some(d)) => run_case(d.as_mut(), backend, l, expectations),
            (None, None) => match factory() {
                Ok(mut d) => {
                    let r = run_case(d.as_mut(), backend, l, expectations);
                    dev = Some(d);
                    r
                }
                Err(e) => {
                    let r = run_case_unavailable(backend, &l.case, &e);
                    if let Ok(mut b) = broken.lock() {
                        *b = Some(e);
                    }
                    r
                }
            },
        };
        if r.verdict == Verdict::HarnessError {
            // Possibly wedged: the next case on this thread gets a fresh device.
            dev = None;
        }
        progress(i, &r);
        if let Ok(mut v) = results.lock() {
            v[i] = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..jobs {
            s.spawn(|| worker(None));
        }
        worker(Some(first));
    });
    let cases: Vec<CaseReport> = results
        .into_inner()
        .map_err(|_| SuiteError::Backend("a worker thread panicked".into()))?
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| SuiteError::Backend("a worker thread panicked".into()))?;
    let summary = summarize(&cases);
    Ok(SuiteReport {
        backend: backend.to_string(),
        device,
        cases,
        summary,
    })
}

fn run_case_unavailable(backend: &str, case: &Case, e: &HarnessError) -> CaseReport {
    CaseReport {
        case: case.name.clone(),
        file: case.file.clone(),
        line: case.line,
        rules: case.rules.iter().map(|r| r.id).collect(),
        doc: case.doc.clone(),
        verdict: Verdict::HarnessError,
        notes: vec![e.to_string()],
        findings: Vec::new(),
        fixed: Vec::new(),
        reproducer: reproducer(backend, case),
        stats: None,
    }
}

pub fn summarize(cases: &[CaseReport]) -> Summary {
    let mut s = Summary::default();
    for c in cases {
        match c.verdict {
            Verdict::Pass => s.pass += 1,
            Verdict::Expected => s.expected += 1,
            Verdict::Fail => s.fail += 1,
            Verdict::Skip => s.skip += 1,
            Verdict::CaseError => s.case_error += 1,
            Verdict::HarnessError => s.harness_error += 1,
        }
        s.fixed += c.fixed.len();
    }
    s
}
