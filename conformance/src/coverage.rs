//! The rule-to-case matrix (`smmu-conform coverage`, docs/coverage.md) and the mutant kill matrix
//! (`smmu-conform mutants`, docs/kill-matrix.md).

use crate::backend::{Device, HarnessError};
use crate::case::Case;
use crate::suite::{self, Expectations, Loaded, Verdict};
use std::fmt::Write;

/// How docs/coverage.md is regenerated (printed when the committed file drifts).
pub const REGENERATE: &str =
    "cargo run -q -p smmu-conform -- coverage --markdown > docs/coverage.md";
pub const REGENERATE_KILLS: &str =
    "cargo run -q -p smmu-conform -- mutants --markdown > docs/kill-matrix.md";

/// For every registered rule, in registry order, the cases that list it.
pub fn matrix(cases: &[Case]) -> Vec<(&'static smmu_model::rules::Rule, Vec<&Case>)> {
    smmu_model::rules::all()
        .map(|r| {
            let cs = cases
                .iter()
                .filter(|c| c.rules.iter().any(|x| x.id == r.id))
                .collect();
            (r, cs)
        })
        .collect()
}

fn needs_of(c: &Case) -> String {
    if c.needs.is_empty() {
        String::new()
    } else {
        format!(
            " (needs {})",
            c.needs
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

pub fn text(cases: &[Case]) -> String {
    let m = matrix(cases);
    let mut o = String::new();
    let missing: Vec<_> = m.iter().filter(|(_, cs)| cs.is_empty()).collect();
    for (r, cs) in &m {
        let names: Vec<_> = cs.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(
            o,
            "{:<34} {:<18} {}",
            r.id,
            r.section,
            if names.is_empty() {
                "(no case)".to_string()
            } else {
                names.join(" ")
            }
        );
    }
    let _ = writeln!(
        o,
        "\n{} rules, {} with at least one case, {} without{}",
        m.len(),
        m.len() - missing.len(),
        missing.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                missing
                    .iter()
                    .map(|(r, _)| r.id)
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    );
    o
}

/// Rules with no case.
pub fn uncovered(cases: &[Case]) -> Vec<&'static str> {
    matrix(cases)
        .into_iter()
        .filter(|(_, cs)| cs.is_empty())
        .map(|(r, _)| r.id)
        .collect()
}

/// docs/coverage.md.
pub fn markdown(cases: &[Case]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!-- Generated from corpus/conformance and the rule registry. Do not edit: run\n     {REGENERATE} -->\n"
    );
    let _ = writeln!(o, "# Rule coverage\n");
    let _ = writeln!(
        o,
        "Every registered rule and the conformance cases that exercise it (their `rules` line). A \
         case's `needs` say which devices can run it; a case whose needs no device meets (Secure or \
         Realm queue) is listed but always skips, saying why.\n"
    );
    for (title, rules) in smmu_model::rules::groups() {
        let _ = writeln!(o, "## {title}\n");
        let _ = writeln!(o, "| Rule | Section | Cases |\n| --- | --- | --- |");
        for r in rules.iter() {
            let cs: Vec<String> = cases
                .iter()
                .filter(|c| c.rules.iter().any(|x| x.id == r.id))
                .map(|c| format!("`{}`{}", c.name, needs_of(c)))
                .collect();
            let _ = writeln!(
                o,
                "| `{}` | {} | {} |",
                r.id,
                r.section,
                if cs.is_empty() {
                    "**none**".to_string()
                } else {
                    cs.join("<br>")
                }
            );
        }
        let _ = writeln!(o);
    }
    o
}

/// A mutant backend: its name and how to open it.
pub struct Mutant<'a> {
    pub name: String,
    pub open: Box<dyn Fn() -> Result<Box<dyn Device>, HarnessError> + 'a>,
}

/// One row of the kill matrix.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KillRow {
    pub mutant: String,
    /// Cases that report a violation on this mutant.
    pub killed_by: Vec<String>,
    /// Cases whose `kills` line names this mutant.
    pub intended: Vec<String>,
    /// Cases that could not run on the mutant (harness or case errors).
    pub errors: Vec<String>,
}

/// Run every case on every mutant. A case kills a mutant when it fails on it (a listed divergence
/// does not count: the matrix is about the suite, not a backend's known bugs).
pub fn kill_matrix(cases: &[Loaded], mutants: &[Mutant<'_>]) -> Vec<KillRow> {
    let none = Expectations::default();
    mutants
        .iter()
        .map(|m| {
            let mut row = KillRow {
                mutant: m.name.clone(),
                killed_by: Vec::new(),
                intended: cases
                    .iter()
                    .filter(|l| l.case.kills.contains(&m.name))
                    .map(|l| l.case.name.clone())
                    .collect(),
                errors: Vec::new(),
            };
            let spec = format!("mutant:{}", m.name);
            match suite::run_suite(cases, &*m.open, &spec, &none, &|_, _| {}) {
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

pub fn kill_text(rows: &[KillRow]) -> String {
    let mut o = String::new();
    for r in rows {
        let _ = writeln!(
            o,
            "{:<28} {}",
            r.mutant,
            if r.killed_by.is_empty() {
                "SURVIVED".to_string()
            } else {
                r.killed_by.join(" ")
            }
        );
        let missed: Vec<_> = r
            .intended
            .iter()
            .filter(|c| !r.killed_by.contains(c))
            .collect();
        if !missed.is_empty() {
            let _ = writeln!(
                o,
                "{:<28} note: meant to be killed by {} but not",
                "",
                missed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if !r.errors.is_empty() {
            let _ = writeln!(o, "{:<28} errors: {}", "", r.errors.join(" "));
        }
    }
    let survived = rows.iter().filter(|r| r.killed_by.is_empty()).count();
    let _ = writeln!(
        o,
        "\n{} mutants, {} killed, {} survived",
        rows.len(),
        rows.len() - survived,
        survived
    );
    o
}

pub fn kill_markdown(rows: &[KillRow]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!-- Generated by running the suite on every mutant. Do not edit: run\n     {REGENERATE_KILLS} -->\n"
    );
    let _ = writeln!(o, "# Mutant kill matrix\n");
    let _ = writeln!(
        o,
        "| Mutant | Killed by | Meant to be killed by |\n| --- | --- | --- |"
    );
    for r in rows {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} |",
            r.mutant,
            if r.killed_by.is_empty() {
                "**survived**".to_string()
            } else {
                r.killed_by
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" ")
            },
            r.intended
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    o
}

/// Exit status of `mutants`: 0 only when every mutant is killed.
pub fn kill_exit(rows: &[KillRow]) -> u8 {
    if rows.iter().any(|r| r.killed_by.is_empty()) {
        1
    } else {
        0
    }
}
