//! The real binary, as a user runs it: every class of bad input exits 2 with exactly one line on
//! stderr (never a panic), and the happy paths exit 0.

use smmu_model::command::RawCommand;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_smmu-conform");

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn smmu-conform");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// A file in this test binary's scratch directory.
fn scratch(name: &str, contents: &[u8]) -> String {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    std::fs::write(&p, contents).unwrap();
    p.display().to_string()
}

/// Exit 2 with a single `smmu-conform: error: ...` line containing every `needle`.
fn assert_bad_input(args: &[&str], stdin: Option<&[u8]>, needles: &[&str]) {
    let out = run(args, stdin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {err}");
    assert!(out.stdout.is_empty(), "{args:?}: printed to stdout");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("smmu-conform: error: "), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' missing from: {err}");
    }
}

#[test]
fn non_hex_digits_on_the_command_line() {
    assert_bad_input(&["decode", "0x12", "0x1g"], None, &["WORD1", "'g'"]);
    assert_bad_input(&["decode", "0x", "0"], None, &["WORD0", "no digits"]);
}

#[test]
fn word_over_64_bits() {
    assert_bad_input(
        &["decode", "0x1_0000_0000_0000_0000", "0"],
        None,
        &["WORD0", "wider than 64 bits"],
    );
    let f = scratch("wide.txt", b"0x46 0\n0x12 12345678901234567\n");
    assert_bad_input(
        &["decode", "--file", &f],
        None,
        &["line 2", "wider than 64 bits"],
    );
}

#[test]
fn wrong_number_of_words() {
    assert_bad_input(&["decode", "0x12"], None, &["two words", "got 1"]);
    assert_bad_input(&["decode", "1", "2", "3"], None, &["got 3"]);
    let f = scratch("count.txt", b"# header\n\n0x46 0\n0x12 0x1000 0x5\n");
    assert_bad_input(&["decode", "-f", &f], None, &["line 4", "found 3"]);
    assert_bad_input(
        &["decode", "-"],
        Some(b"0x46\n"),
        &["<stdin>: line 1", "found 1"],
    );
}

#[test]
fn non_hex_in_a_file_names_the_line() {
    let f = scratch("nonhex.txt", b"0x46 0\n0x46 0\nsync now\n");
    assert_bad_input(&["decode", "--file", &f], None, &["line 3", "'sync'"]);
}

#[test]
fn truncated_binary_input() {
    let mut b = RawCommand::new(0x46, 0).to_bytes().to_vec();
    b.extend_from_slice(&[0u8; 4]);
    let f = scratch("trunc.bin", &b);
    // Detected as binary by its NUL bytes, and forced with --binary.
    assert_bad_input(
        &["decode", "--file", &f],
        None,
        &["20 bytes", "4 bytes left"],
    );
    assert_bad_input(
        &["decode", "--binary", "-"],
        Some(&b),
        &["<stdin>", "20 bytes"],
    );
}

#[test]
fn unknown_profile_queue_register() {
    assert_bad_input(
        &["decode", "--profile", "qemu-9", "0x46", "0"],
        None,
        &["unknown profile 'qemu-9'", "qemu-10.0"],
    );
    assert_bad_input(
        &["decode", "--queue", "el3", "0x46", "0"],
        None,
        &["unknown queue 'el3'"],
    );
    assert_bad_input(
        &["decode", "--idr0", "0x1_0000_0000", "0x46", "0"],
        None,
        &["--idr0", "32 bits"],
    );
    assert_bad_input(
        &["decode", "--aidr", "v3.1", "0x46", "0"],
        None,
        &["--aidr"],
    );
}

#[test]
fn missing_file() {
    assert_bad_input(
        &["decode", "--file", "/nonexistent/cmds.txt"],
        None,
        &["cannot read /nonexistent/cmds.txt"],
    );
}

#[test]
fn no_input_at_all() {
    // Standard input that is not a terminal is read; an empty one is zero commands.
    let out = run(&["decode"], Some(b""));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn usage_errors_exit_2_from_clap() {
    for args in [
        &["decode", "--bogus"][..],
        &["frobnicate"],
        &["decode", "--format", "xml", "0", "0"],
        &["decode", "--file", "x", "0x46", "0"],
    ] {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn run_is_the_default_and_unknown_backends_are_bad_input() {
    // `run` with no arguments runs the suite on the reference emulator and passes.
    for args in [&[][..], &["run"]] {
        let out = run(args, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(" passed, 0 failed"));
    }
    assert_bad_input(&["run", "--backend", "nope"], None, &["nope"]);
    assert_bad_input(
        &["run", "--backend", "mutant:nope"],
        None,
        &["mutants --list"],
    );
}

#[test]
fn run_bad_cases_exit_2_with_file_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "malformed",
            "case x\nrules SPURIOUS-FAULT\ndoc d\nfrobnicate\n",
            ":4: unknown directive",
        ),
        (
            "rule",
            "case x\nrules NOT-A-RULE\n",
            ":2: unknown rule id 'NOT-A-RULE'",
        ),
        (
            "opcode",
            "case x\nrules SPURIOUS-FAULT\ndoc d\ncmd TLBI_NOPE\nsubmit\n",
            ":4: unknown opcode 'TLBI_NOPE'",
        ),
        (
            "field",
            "case x\nrules SPURIOUS-FAULT\ndoc d\ncmd SYNC Bogus=1\nsubmit\n",
            ":4: CMD_SYNC has no field 'Bogus'",
        ),
        (
            "width",
            "case x\nrules SPURIOUS-FAULT\ndoc d\ncmd SYNC CS=4\nsubmit\n",
            ":4: CS=0x4 does not fit",
        ),
        (
            "stream",
            "case x\nrules SPURIOUS-FAULT\ndoc d\nprobe nope va=0\n",
            ":4: no stream named 'nope'",
        ),
    ];
    for (name, text, needle) in cases {
        let f = scratch(&format!("{name}.case"), text.as_bytes());
        assert_bad_input(&["run", "--case", &f], None, &[needle]);
    }
    assert_bad_input(
        &["run", "--case", "/nonexistent/x.case"],
        None,
        &["cannot read /nonexistent/x.case"],
    );
    let f = scratch(
        "one.case",
        b"case x\nrules SPURIOUS-FAULT\ndoc d\ncmd SYNC\nsubmit\n",
    );
    assert_bad_input(
        &["run", "--case", &format!("{f}#y")],
        None,
        &["no case named 'y'"],
    );
}

#[test]
fn coverage_and_mutants() {
    let out = run(&["coverage", "--require-all"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 without"));
    let out = run(&["mutants", "--list"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("illegal-consumed"));
}

#[test]
fn decode_words_text_and_binary() {
    let out = run(&["decode", "12", "0x1000"], None);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("CMD_TLBI_NH_VA (opcode 0x12, §4.4.2.4)"), "{s}");

    let f = scratch(
        "ok.txt",
        b"# two commands\n0x46 0   # sync\n\n0x12,0x1000\n",
    );
    let out = run(&["decode", "--format", "json", "-f", &f], None);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = s.lines().collect();
    assert_eq!(lines.len(), 2, "JSON Lines: one object per command");
    let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["opcode"]["name"], "CMD_TLBI_NH_VA");
    assert_eq!(v["origin"]["line"], 4);

    let mut b = RawCommand::new(0x46, 0).to_bytes().to_vec();
    b.extend_from_slice(&RawCommand::new(0x03, 1).to_bytes());
    let out = run(&["decode", "-"], Some(&b));
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("command 1 (offset 0x10)"), "{s}");
    assert!(s.contains("CMD_CFGI_STE"), "{s}");
}

#[test]
fn profiles_and_rules() {
    let out = run(&["profiles"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("qemu-10.0  (default)"));
    let out = run(&["profiles", "--format", "json"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.as_array().unwrap().len() >= 2);
    let out = run(&["rules", "--markdown"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        smmu_conform::report::rules::markdown()
    );
}

#[test]
fn forwarder_backends() {
    let out = run(&["run", "--backend", "forwarder"], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" passed, 0 failed"));
    let out = run(
        &[
            "run",
            "--backend",
            "fwd-mutant:no-host-sync",
            "--format",
            "junit",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FWD-SYNC"));
    assert_bad_input(
        &["run", "--backend", "fwd-mutant:nope"],
        None,
        &["--forwarders"],
    );
    let out = run(&["mutants", "--list", "--forwarders"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nsnh-all-raw"));
}

#[test]
fn run_jobs_gives_the_same_report_in_the_same_order() {
    let one = run(&["run", "--jobs", "1", "--format", "json"], None);
    assert_eq!(one.status.code(), Some(0));
    for jobs in ["2", "5"] {
        let many = run(&["run", "--jobs", jobs, "--format", "json"], None);
        assert_eq!(many.status.code(), Some(0), "--jobs {jobs}");
        assert_eq!(
            String::from_utf8_lossy(&many.stdout),
            String::from_utf8_lossy(&one.stdout),
            "--jobs {jobs} changed the report"
        );
    }
    assert_bad_input_clap(&["run", "--jobs", "0"]);
}

/// A usage error clap reports (exit 2, its own message), never a panic.
fn assert_bad_input_clap(args: &[&str]) {
    let out = run(args, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}
