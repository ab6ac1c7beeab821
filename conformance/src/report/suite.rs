//! Rendering a [`SuiteReport`]: a table for people, JSON for scripts, JUnit XML for CI.

use crate::suite::{SuiteReport, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write;

/// The table (case, verdict, rules, notes), then every failure with its rule, section, message,
/// minimal trace and reproducer, then a summary line.
pub fn text(r: &SuiteReport) -> String {
    let mut o = String::new();
    let dev = r.device.as_deref().unwrap_or("?");
    let _ = writeln!(
        o,
        "backend {} ({dev}), {} cases\n",
        r.backend,
        r.cases.len()
    );
    let w = r
        .cases
        .iter()
        .map(|c| c.case.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        o,
        "{:<w$}  {:<13}  {:<40}  notes",
        "case", "verdict", "rules"
    );
    for c in &r.cases {
        let rules = c.rules.join(" ");
        let mut notes = c.notes.join("; ");
        if c.verdict == Verdict::Fail || c.verdict == Verdict::Expected {
            let n = c.findings.len();
            let fnote = format!("{n} finding{}", if n == 1 { "" } else { "s" });
            notes = if notes.is_empty() {
                fnote
            } else {
                format!("{fnote}; {notes}")
            };
        }
        let _ = writeln!(
            o,
            "{:<w$}  {:<13}  {:<40}  {}",
            c.case,
            c.verdict.label(),
            rules,
            notes
        );
    }
    for c in r.cases.iter().filter(|c| !c.findings.is_empty()) {
        for f in &c.findings {
            let _ = writeln!(
                o,
                "\n{} {}: {} ({}) at {}:{}",
                if f.expected.is_some() {
                    "expected"
                } else {
                    "FAIL"
                },
                c.case,
                f.rule,
                f.section,
                c.file,
                f.line.unwrap_or(c.line)
            );
            let _ = writeln!(o, "  {}", f.message);
            if let Some(why) = &f.expected {
                let _ = writeln!(o, "  listed divergence: {why}");
            }
            let _ = writeln!(o, "  trace:");
            for t in &f.trace {
                let _ = writeln!(o, "  {t}");
            }
            let _ = writeln!(o, "  reproduce: {}", c.reproducer);
        }
    }
    for c in &r.cases {
        for d in &c.fixed {
            let _ = writeln!(
                o,
                "\nfixed: {} no longer violates {}: remove it from the expectation file (reason was: {})",
                c.case, d.rule, d.reason
            );
        }
        if matches!(c.verdict, Verdict::CaseError | Verdict::HarnessError) {
            let _ = writeln!(
                o,
                "\n{} {}: {}",
                c.verdict.label(),
                c.case,
                c.notes.join("; ")
            );
            let _ = writeln!(o, "  reproduce: {}", c.reproducer);
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        o,
        "\n{} passed, {} failed, {} expected (listed divergences), {} skipped, {} fixed divergences, {} case errors, {} harness errors",
        s.pass, s.fail, s.expected, s.skip, s.fixed, s.case_error, s.harness_error
    );
    o
}

pub fn json(r: &SuiteReport) -> String {
    serde_json::to_string_pretty(r).expect("the report serializes")
}

/// JUnit XML: one testsuite per backend, one testcase per case (named by case, classname the
/// file); failures carry rule, message and reproducer.
pub fn junit(r: &SuiteReport) -> String {
    let mut report = Report::new("smmu-conform");
    let mut suite = TestSuite::new(format!("smmu-conform {}", r.backend));
    for c in &r.cases {
        let status = match c.verdict {
            Verdict::Pass | Verdict::Expected => {
                if c.fixed.is_empty() {
                    TestCaseStatus::success()
                } else {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message("listed divergence fixed: remove it from the expectation file");
                    s.set_description(c.notes.join("\n"));
                    s
                }
            }
            Verdict::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(c.notes.join("; "));
                s
            }
            Verdict::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let bad: Vec<_> = c.findings.iter().filter(|f| f.expected.is_none()).collect();
                s.set_message(
                    bad.iter()
                        .map(|f| format!("{} ({}): {}", f.rule, f.section, f.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                s.set_type(bad.first().map(|f| f.rule).unwrap_or("violation"));
                let mut d = String::new();
                for f in &bad {
                    let _ = writeln!(d, "{} ({}): {}", f.rule, f.section, f.message);
                    for t in &f.trace {
                        let _ = writeln!(d, "{t}");
                    }
                }
                let _ = writeln!(d, "reproduce: {}", c.reproducer);
                s.set_description(d);
                s
            }
            Verdict::CaseError | Verdict::HarnessError => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(c.notes.join("; "));
                s.set_type(c.verdict.label());
                s.set_description(format!("reproduce: {}", c.reproducer));
                s
            }
        };
        let mut t = TestCase::new(c.case.clone(), status);
        t.set_classname(c.file.clone());
        suite.add_test_case(t);
    }
    report.add_test_suite(suite);
    report.to_string().expect("the JUnit report serializes")
}
