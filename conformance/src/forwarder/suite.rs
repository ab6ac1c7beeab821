//! The forwarder suite: every case of `corpus/forwarder/` on one forwarder, judged by the
//! forwarding oracle, reported through the device suite's report types (text, JSON, JUnit, the
//! same exit statuses and expectation files), and the forwarder rows of the kill matrix.

use super::case::{parse_cases, FwdCase};
use super::{mapping, open_forwarder, FwdMutant, MUTANT_PREFIX};
use crate::backend::{Forwarder, HarnessError};
use crate::coverage::KillRow;
use crate::suite::{
    display_path, repo_root, summarize, CaseReport, Divergence, Expectations, FindingReport,
    SuiteError, SuiteReport, Verdict,
};
use smmu_model::forward::{judge, Forwarded};
use smmu_model::oracle::describe_cmd;
use std::path::{Path, PathBuf};

/// Builds (or rebuilds, after a harness error) the forwarder under test.
pub type FwdFactory<'a> = &'a dyn Fn() -> Result<Box<dyn Forwarder>, HarnessError>;

/// The forwarder cases, `corpus/forwarder`.
pub fn default_cases_dir() -> PathBuf {
    repo_root().join("corpus/forwarder")
}

/// Read and parse the cases of one file; `name` selects one.
pub fn load_file(path: &Path, name: Option<&str>) -> Result<Vec<FwdCase>, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let shown = display_path(path);
    let cases = parse_cases(&shown, &text)?;
    match name {
        None => Ok(cases),
        Some(n) => {
            let known = cases
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let c =
                cases
                    .into_iter()
                    .find(|c| c.name == n)
                    .ok_or_else(|| SuiteError::NoSuchCase {
                        path: shown.clone(),
                        name: n.to_string(),
                        known,
                    })?;
            Ok(vec![c])
        }
    }
}

/// `--case FILE[#NAME]` selections, or every `*.case` of `dir` and of its subdirectories
/// (`corpus/forwarder/kernel/`: the reproducers of docs/findings/linux-iommufd.md, which every
/// forwarder runs too).
pub fn load(selections: &[String], dir: &Path) -> Result<Vec<FwdCase>, SuiteError> {
    let mut out: Vec<FwdCase> = Vec::new();
    if selections.is_empty() {
        let mut files = crate::suite::case_files(dir)?;
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| SuiteError::Read {
                path: dir.display().to_string(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        for d in subdirs {
            // A subdirectory without cases is not an error (fuzz output may land there).
            files.extend(crate::suite::case_files(&d).unwrap_or_default());
        }
        for f in files {
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
        if let Some(b) = out[..i].iter().find(|b| b.name == a.name) {
            if b.file != a.file {
                return Err(SuiteError::DuplicateCase {
                    name: a.name.clone(),
                    a: b.file.clone(),
                    b: a.file.clone(),
                });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.id()));
    Ok(out)
}

/// The forwarder cases of the repository as coverage sees them (none when the directory is
/// missing, so a checkout without them still reports the device cases).
pub fn coverage_cases() -> Result<Vec<crate::case::Case>, SuiteError> {
    let dir = default_cases_dir();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(load(&[], &dir)?.iter().map(FwdCase::as_case).collect())
}

pub fn reproducer(backend: &str, case: &FwdCase) -> String {
    format!("smmu-conform run --backend {backend} --case {}", case.id())
}

fn new_report(backend: &str, case: &FwdCase) -> CaseReport {
    CaseReport {
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
    }
}

/// Run one case: set up the virtual SMMU, forward each batch, judge each result.
pub fn run_case(
    fwd: &mut dyn Forwarder,
    backend: &str,
    case: &FwdCase,
    expectations: &Expectations,
) -> CaseReport {
    let mut r = new_report(backend, case);
    let effective = match fwd.setup(&case.vsmmu) {
        Ok(v) => v,
        // The forwarder refuses a mapping it cannot honour: nothing to judge.
        Err(HarnessError::Unsupported { what, .. }) => {
            r.verdict = Verdict::Skip;
            r.notes.push(format!("the forwarder cannot {what}"));
            return r;
        }
        Err(e) => {
            r.verdict = Verdict::HarnessError;
            r.notes.push(e.to_string());
            return r;
        }
    };
    // Judged with the mapping the forwarder ended up with (a kernel chooses its VMID, its
    // devices' StreamIDs and its vSMMU's profile); shown when it is not the case's.
    let m = mapping(&effective);
    let setup_lines: Vec<String> = case
        .lines
        .iter()
        .filter(|(_, t)| {
            ["guest ", "host ", "vmid ", "sid "]
                .iter()
                .any(|k| t.starts_with(k))
        })
        .map(|(l, t)| format!("{l:>4}: {t}"))
        .chain(effective_lines(&case.vsmmu, &effective))
        .collect();
    let mut rejected = 0;
    let mut over = 0;
    for (b, batch) in case.batches.iter().enumerate() {
        let guest = batch.commands();
        let res = match fwd.forward(&guest) {
            Ok(res) => res,
            Err(e) => {
                r.verdict = Verdict::HarnessError;
                r.notes.push(e.to_string());
                return r;
            }
        };
        let j = judge(
            &m,
            &guest,
            &Forwarded {
                host: &res.host_commands,
                error: res.error.as_ref().map(|(i, _)| *i),
                handled: res.handled,
            },
        );
        rejected += j.stats.rejected_legal;
        over += j.stats.over_invalidating;
        let mut trace = setup_lines.clone();
        trace.extend(
            batch
                .cmds
                .iter()
                .map(|(l, _)| *l)
                .chain([batch.line])
                .filter_map(|l| case.lines.iter().find(|(x, _)| *x == l))
                .map(|(l, t)| format!("{l:>4}: {t}"))
                .collect::<std::collections::BTreeSet<_>>(),
        );
        for (k, h) in res.host_commands.iter().enumerate() {
            trace.push(format!("      -> host {k}: {}", describe_cmd(*h)));
        }
        trace.push(format!(
            "      -> handled {} of {}{}",
            res.handled,
            guest.len(),
            match &res.error {
                Some((i, why)) => format!(", error at {i}: {why}"),
                None => String::new(),
            }
        ));
        for f in j.findings {
            let expected = expectations
                .divergence
                .iter()
                .find(|d| d.case == case.name && d.rule == f.rule.id)
                .map(|d| d.reason.clone());
            r.findings.push(FindingReport {
                rule: f.rule.id,
                section: f.rule.section,
                message: f.message,
                step: b,
                line: Some(
                    f.guest
                        .and_then(|i| batch.cmds.get(i))
                        .map(|(l, _)| *l)
                        .unwrap_or(batch.line),
                ),
                expected,
                trace: trace.clone(),
            });
        }
    }
    if rejected > 0 {
        r.notes.push(format!(
            "{rejected} legal guest command(s) rejected (allowed: the VMM must handle them)"
        ));
    }
    if over > 0 {
        r.notes
            .push(format!("{over} over-invalidating host command(s) (legal)"));
    }
    for d in expectations
        .divergence
        .iter()
        .filter(|d| d.case == case.name)
    {
        if !r.findings.iter().any(|f| f.rule == d.rule) {
            r.fixed.push(Divergence::clone(d));
            r.notes.push(format!(
                "fixed: listed divergence {} no longer fails; remove it from the expectation file",
                d.rule
            ));
        }
    }
    r.verdict = if r.findings.is_empty() {
        Verdict::Pass
    } else if r.findings.iter().all(|f| f.expected.is_some()) {
        Verdict::Expected
    } else {
        Verdict::Fail
    };
    r
}

/// The effective mapping as trace lines, when it differs from the case's.
fn effective_lines(
    case: &crate::backend::VirtualSmmu,
    eff: &crate::backend::VirtualSmmu,
) -> Vec<String> {
    use super::case::profile_line;
    if case == eff {
        return Vec::new();
    }
    let mut v = vec![
        "      judged with the forwarder's own mapping:".to_string(),
        format!("      guest {}", profile_line(&eff.guest)),
        format!("      host {}", profile_line(&eff.host)),
        format!("      vmid {:#x}", eff.host_vmid),
    ];
    for (a, b) in &eff.sids {
        v.push(format!("      sid {a:#x} -> {b:#x}"));
    }
    v
}

/// Run every case on forwarders from `factory`: one forwarder serves every case (setup is per
/// case) until a harness error, after which a fresh one is built.
pub fn run_suite(
    cases: &[FwdCase],
    factory: FwdFactory<'_>,
    backend: &str,
    expectations: &Expectations,
    progress: &dyn Fn(usize, &CaseReport),
) -> Result<SuiteReport, SuiteError> {
    let first = factory().map_err(|e| SuiteError::Backend(e.to_string()))?;
    let mut report = SuiteReport {
        backend: backend.to_string(),
        device: Some(first.name()),
        cases: Vec::new(),
        summary: Default::default(),
    };
    let mut fwd = Some(first);
    for (i, c) in cases.iter().enumerate() {
        let mut f = match fwd.take() {
            Some(f) => f,
            None => match factory() {
                Ok(f) => f,
                Err(e) => {
                    let mut r = new_report(backend, c);
                    r.verdict = Verdict::HarnessError;
                    r.notes.push(e.to_string());
                    progress(i, &r);
                    report.cases.push(r);
                    continue;
                }
            },
        };
        let r = run_case(f.as_mut(), backend, c, expectations);
        if r.verdict != Verdict::HarnessError {
            fwd = Some(f);
        }
        progress(i, &r);
        report.cases.push(r);
    }
    report.summary = summarize(&report.cases);
    Ok(report)
}

/// The kill matrix rows of the forwarder mutants (labelled `fwd-mutant:NAME`).
pub fn kill_matrix(cases: &[FwdCase]) -> Vec<KillRow> {
    let none = Expectations::default();
    FwdMutant::ALL
        .iter()
        .map(|m| {
            let spec = format!("{MUTANT_PREFIX}{}", m.name());
            let mut row = KillRow {
                mutant: spec.clone(),
                killed_by: Vec::new(),
                intended: cases
                    .iter()
                    .filter(|c| c.kills.iter().any(|k| k == m.name()))
                    .map(|c| c.name.clone())
                    .collect(),
                errors: Vec::new(),
            };
            let open = || open_forwarder(&spec);
            match run_suite(cases, &open, &spec, &none, &|_, _| {}) {
                Ok(rep) => {
                    for c in rep.cases {
                        match c.verdict {
                            Verdict::Fail => row.killed_by.push(c.case),
                            Verdict::CaseError | Verdict::HarnessError => row.errors.push(c.case),
                            _ => {}
                        }
                    }
                }
                Err(e) => row.errors.push(e.to_string()),
            }
            row
        })
        .collect()
}
