//! docs/rules.md is generated from the rule registry; this fails when the two drift apart.

use smmu_conform::report::rules::{markdown, REGENERATE};

#[test]
fn rules_md_matches_the_registry() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = markdown();
    assert!(
        committed == generated,
        "docs/rules.md is out of date with the rule registry. Regenerate it from the workspace \
         root with:\n\n    {REGENERATE}\n\nand commit the result."
    );
}

/// Every relative link in README.md and in every Markdown file under docs/ names a file that
/// exists, and a `#fragment` into a Markdown file names one of its headings (GitHub's anchors:
/// lower case, spaces to dashes, punctuation dropped). A newcomer follows these links.
#[test]
fn readme_and_docs_links_resolve() {
    use std::path::{Path, PathBuf};
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    let anchor = |heading: &str| -> String {
        heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect()
    };
    let anchors = |p: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let mut in_code = false;
        let mut out = Vec::new();
        for l in text.lines() {
            if l.starts_with("```") {
                in_code = !in_code;
            } else if !in_code && l.starts_with('#') {
                out.push(anchor(l.trim_start_matches('#')));
            }
        }
        out
    };
    let mut broken = Vec::new();
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut in_code = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if in_code {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("](") {
                rest = &rest[i + 2..];
                let Some(end) = rest.find(')') else { break };
                let target = &rest[..end];
                rest = &rest[end..];
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                checked += 1;
                let (path, frag) = target.split_once('#').unwrap_or((target, ""));
                let dest = if path.is_empty() {
                    f.clone()
                } else {
                    f.parent().unwrap().join(path)
                };
                let here = format!("{}:{}: {target}", f.display(), n + 1);
                if !dest.exists() {
                    broken.push(format!("{here}: no such file"));
                } else if !frag.is_empty()
                    && dest.extension().is_some_and(|x| x == "md")
                    && !anchors(&dest).iter().any(|a| a == frag)
                {
                    broken.push(format!("{here}: no heading with that anchor"));
                }
            }
        }
    }
    assert!(checked > 0, "no links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
