//! The rule registry as text (`smmu-conform rules`) and as the Markdown of docs/rules.md
//! (`smmu-conform rules --markdown`), which is generated, never edited by hand.

use smmu_model::rules;
use std::fmt::Write as _;

/// The command that regenerates docs/rules.md, quoted in the file and in the test that checks it.
pub const REGENERATE: &str = "cargo run -q -p smmu-conform -- rules --markdown > docs/rules.md";

/// One line per rule, grouped: `ID  §section  summary`.
pub fn text() -> String {
    let width = rules::all().map(|r| r.id.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (i, (group, rs)) in rules::groups().into_iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = writeln!(s, "{group}");
        for r in rs {
            let _ = writeln!(s, "  {:width$}  {:10} {}", r.id, r.section, r.summary);
        }
    }
    s
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// docs/rules.md.
pub fn markdown() -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<!-- Generated from the rule registry (reference-model/src/rules/). Do not edit: run\n     {REGENERATE} -->\n"
    );
    let _ = writeln!(s, "# Rules\n");
    let _ = writeln!(
        s,
        "Every requirement the model checks has a stable id, the section of Arm IHI 0070 that \
         states it, and a one-line summary. Verdicts and `smmu-conform decode` name rules by id.\n"
    );
    for (group, rs) in rules::groups() {
        let _ = writeln!(s, "## {}\n", cell(group));
        let _ = writeln!(s, "| Id | Section | Summary |");
        let _ = writeln!(s, "| --- | --- | --- |");
        for r in rs {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} |",
                r.id,
                cell(r.section),
                cell(r.summary)
            );
        }
        s.push('\n');
    }
    // One trailing newline, as editors and `git diff` expect.
    while s.ends_with("\n\n") {
        s.pop();
    }
    s
}
