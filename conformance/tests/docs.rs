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

/// docs/ci/*.yml, the CI examples of docs/ci-gating.md, are well-formed YAML of the shape their
/// CI system reads (GitHub Actions: `on`, and jobs with `runs-on` and steps that `run` or `uses`;
/// GitLab CI: jobs with a `script`), and every smmu-conform command in them exists: its
/// subcommand, each `--option` it passes, the package it builds and the files it names.
#[test]
fn ci_examples_parse_and_name_commands_that_exist() {
    use serde_yaml::Value;
    let root = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let read = |name: &str| -> Value {
        let p = root.join("docs/ci").join(name);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let key = |v: &Value, k: &str| v.get(k).cloned();
    let mut shell = Vec::new();
    // Every example: github-*.yml are GitHub Actions workflows, gitlab-*.yml GitLab CI jobs
    // (a QEMU tree's and a Linux tree's of each).
    let mut names: Vec<String> = std::fs::read_dir(root.join("docs/ci"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    let (mut github, mut gitlab) = (0, 0);
    for file in &names {
        if file.starts_with("github-") {
            github += 1;
        } else if file.starts_with("gitlab-") {
            gitlab += 1;
        } else {
            panic!("docs/ci/{file}: name it github-*.yml or gitlab-*.yml");
        }
    }
    assert!(
        github >= 2 && gitlab >= 2,
        "a QEMU and a kernel example for each CI system"
    );
    // GitHub Actions.
    for file in names.iter().filter(|n| n.starts_with("github-")) {
        let gh = read(file);
        assert!(key(&gh, "on").is_some(), "{file}: no `on`");
        let jobs = key(&gh, "jobs")
            .and_then(|j| j.as_mapping().cloned())
            .unwrap_or_else(|| panic!("{file}: no jobs"));
        assert!(!jobs.is_empty());
        for (name, job) in &jobs {
            assert!(key(job, "runs-on").is_some(), "job {name:?}: no runs-on");
            let steps = key(job, "steps")
                .and_then(|s| s.as_sequence().cloned())
                .unwrap_or_else(|| panic!("job {name:?}: no steps"));
            for s in &steps {
                match (key(s, "run"), key(s, "uses")) {
                    (Some(Value::String(r)), None) => shell.push(r),
                    (None, Some(Value::String(_))) => {}
                    _ => panic!("job {name:?}: a step needs exactly one of run and uses: {s:?}"),
                }
            }
        }
    }
    // GitLab CI: every top-level mapping with a script is a job.
    for file in names.iter().filter(|n| n.starts_with("gitlab-")) {
        let gl = read(file);
        let mut gl_jobs = 0;
        for (_, job) in gl
            .as_mapping()
            .unwrap_or_else(|| panic!("{file}: a mapping"))
        {
            if let Some(script) = key(job, "script") {
                gl_jobs += 1;
                for line in script.as_sequence().expect("script: a list") {
                    shell.push(line.as_str().expect("script lines are strings").to_string());
                }
            }
        }
        assert!(gl_jobs > 0, "{file}: no job with a script");
    }
    // The smmu-conform commands in the shell text.
    let conform = env!("CARGO_BIN_EXE_smmu-conform");
    let text = shell.join("\n").replace("\\\n", " ");
    let mut commands = 0;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words
            .iter()
            .position(|w| *w == "target/release/smmu-conform")
        {
            commands += 1;
            let sub = words[i + 1];
            let help = std::process::Command::new(conform)
                .args([sub, "--help"])
                .output()
                .unwrap();
            assert!(help.status.success(), "smmu-conform {sub}: no such command");
            let help = String::from_utf8_lossy(&help.stdout);
            for w in words[i + 2..].iter().take_while(|w| !w.starts_with("||")) {
                if w.starts_with("--") {
                    assert!(help.contains(w), "smmu-conform {sub} has no option {w}");
                }
            }
            for (j, w) in words.iter().enumerate() {
                if *w == "--expect" {
                    let f = words[j + 1];
                    assert!(root.join(f).exists(), "{f} does not exist");
                }
            }
        }
        // Scripts of this repository the job calls (e.g. scripts/kernel/build.sh).
        for w in &words {
            if let Some(at) = w.find("scripts/") {
                let f = w[at..].trim_matches(|c| c == '"' || c == '\'');
                assert!(root.join(f).is_file(), "{f} does not exist");
            }
        }
        if line.starts_with("cargo build") {
            commands += 1;
            let p = line.split_whitespace().skip_while(|w| *w != "-p").nth(1);
            assert_eq!(p, Some("smmu-conform"), "{line}");
        }
    }
    assert!(
        commands >= 6,
        "found only {commands} commands in the CI examples"
    );
}
