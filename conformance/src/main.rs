//! The `smmu-conform` command line. Parsing arguments and mapping errors to exit statuses is all
//! that happens here: 0 on success, 2 for bad input or usage (clap's own status for usage errors),
//! 1 when output cannot be written. Everything printed is built by the library.

use clap::{Args, Parser, Subcommand, ValueEnum};
use smmu_conform::coverage;
use smmu_conform::forwarder;
use smmu_conform::input::{parse_args, parse_input};
use smmu_conform::open::{available_mutants, open_backend, DEFAULT_BACKEND};
use smmu_conform::report::{self, decode::Format};
use smmu_conform::suite::{self, Expectations, SuiteError};
use smmu_conform::target::{RegOverrides, Target, DEFAULT_PROFILE};
use smmu_conform::Error;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "smmu-conform",
    version,
    about = "Conformance suite and fuzzer for Arm SMMUv3 invalidation semantics",
    long_about = "Conformance suite and fuzzer for Arm SMMUv3 invalidation semantics (Arm IHI 0070).\n\
A golden model answers \"is this observation allowed by the architecture?\" for command queue \
traffic. With no subcommand, runs the suite (`run`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run conformance cases on a backend (the default subcommand: the whole suite on the
    /// default backend)
    #[command(after_help = "\
Examples:
  smmu-conform run                                           the whole suite, default backend
  smmu-conform run --backend qemu --case corpus/conformance/tlbi.case#nh-va-page
  smmu-conform run --format junit --output report.xml
  smmu-conform run --backend forwarder                       the forwarder suite (corpus/forwarder)
  smmu-conform run --backend fwd-mutant:nsnh-all-raw         a forwarder mutant (mutants --list --forwarders)

Exit status: 0 conformant (listed divergences aside), 1 violations found or a listed divergence
no longer fails, 2 the harness could not do its job (bad case, unknown backend, backend error).")]
    Run(RunArgs),
    /// Fuzz a backend on the stable toolchain: generated traces judged by the model; each
    /// failing input is shrunk and written as a case file (docs/fuzzing.md)
    #[command(after_help = "\
Examples:
  smmu-conform fuzz --backend emulator --time 60s
  smmu-conform fuzz --backend mutant:tg0-noop --time 5m --seed 7 --out findings/
  smmu-conform fuzz --backend fwd-mutant:asid-truncated --time 60s   a forwarder (docs/forwarder.md)

Exit status: 1 a divergence was found, 0 none, 2 the harness could not do its job.")]
    Fuzz(FuzzArgs),
    /// Forward one guest batch on a forwarder: print every host command it issued, what it
    /// returned, and the forwarding oracle's verdict
    #[command(after_help = "\
Examples:
  smmu-conform forward --backend kernel --sid 1 'TLBI_NH_VA ASID=1 Address=0x1000' 'TLBI_EL2_ALL'
  smmu-conform forward --backend kernel                 an empty batch (entry_num 0)
  smmu-conform forward --backend forwarder --guest 'qemu-10.0 -s2p -hyp' --sid 1:0x21 TLBI_NSNH_ALL

Commands are written as in case files (docs/case-format.md), one per argument.
Exit status: 0 conformant, 1 the oracle found a violation, 2 the harness could not do its job.")]
    Forward(ForwardArgs),
    /// Print which cases exercise each rule (docs/coverage.md is `coverage --markdown`)
    Coverage {
        /// Exit 1 when some rule has no case
        #[arg(long)]
        require_all: bool,
        /// Markdown, as committed in docs/coverage.md
        #[arg(long)]
        markdown: bool,
        /// Case directory (default: corpus/conformance of this repository)
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
    },
    /// Run the suite on every mutant backend and print which cases kill which mutant; exit 0
    /// only when every mutant is killed (docs/kill-matrix.md is `mutants --markdown`)
    Mutants {
        /// Only list the mutants
        #[arg(long)]
        list: bool,
        /// Only the forwarder mutants (`fwd-mutant:NAME` backends, run on corpus/forwarder)
        #[arg(long)]
        forwarders: bool,
        /// Markdown, as committed in docs/kill-matrix.md
        #[arg(long)]
        markdown: bool,
        /// Case directory (default: corpus/conformance of this repository)
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
    },
    /// Decode and classify commands: fields, legality, RES0 bits, flags, spec sections
    #[command(after_help = "\
Examples:
  smmu-conform decode 0x12 0x1000                 CMD_TLBI_NH_VA, DW0=0x12 DW1=0x1000
  smmu-conform decode --file cmds.txt             one command per line: DW0 DW1 (# comments)
  smmu-conform decode --binary - < cmdq.bin       a raw queue dump, 16-byte little-endian entries
  smmu-conform decode --profile smmuv3.4-full --queue secure --format json 0x50 0")]
    Decode(Box<DecodeArgs>),
    /// List the named feature profiles with their ID registers and parsed features
    Profiles {
        #[arg(long, value_enum, default_value_t = OutFormat::Text)]
        format: OutFormat,
    },
    /// Print the rule registry (docs/rules.md is `rules --markdown`)
    Rules {
        /// Markdown, as committed in docs/rules.md
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(Args, Default)]
struct RunArgs {
    /// The backend to run on
    #[arg(long, value_name = "SPEC", default_value = DEFAULT_BACKEND)]
    backend: String,
    /// A case file, or one case of it as FILE#NAME (repeatable); default: every case
    #[arg(long = "case", value_name = "FILE[#NAME]")]
    case: Vec<String>,
    /// Case directory (default: corpus/conformance of this repository)
    #[arg(long, value_name = "DIR")]
    cases: Option<PathBuf>,
    /// Expectation file of known divergences (default: corpus/expectations/BACKEND.toml when
    /// it exists)
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    format: RunFormat,
    /// Write the report to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Run cases on N backend instances at once (one QEMU process each); default: the number
    /// of cores. The report order does not depend on it
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

#[derive(Args)]
struct ForwardArgs {
    /// The forwarder: forwarder, fwd-mutant:NAME, kernel[:DIR], exec-forwarder:COMMAND
    #[arg(long, value_name = "SPEC", default_value = "kernel")]
    backend: String,
    /// The guest's profile, as a case's `guest` line (a forwarder that chooses its own, as the
    /// kernel does, says what it used)
    #[arg(long, value_name = "PROFILE", default_value = "qemu-10.0-virt-9.1")]
    guest: String,
    /// The host's profile, as a case's `host` line
    #[arg(long, value_name = "PROFILE", default_value = "qemu-10.0")]
    host: String,
    /// The host VMID
    #[arg(long, value_name = "N", default_value = "1")]
    vmid: String,
    /// A device: VSID or VSID:PSID (hex or decimal; PSID defaults to 0x20 + VSID), repeatable
    #[arg(long = "sid", value_name = "VSID[:PSID]")]
    sids: Vec<String>,
    /// The guest commands, one per argument, as in case files; none is an empty batch
    #[arg(value_name = "COMMAND")]
    commands: Vec<String>,
    /// Kernel only: instead of a batch, one malformed IOMMU_HWPT_INVALIDATE (interface-contract
    /// checks): entry_len, entry_num and the array's bytes in hex, e.g. 24:1:<48 hex digits>
    #[arg(long, value_name = "LEN:NUM:HEX")]
    raw: Option<String>,
}

#[derive(Args)]
struct FuzzArgs {
    /// The backend to fuzz
    #[arg(long, value_name = "SPEC", default_value = DEFAULT_BACKEND)]
    backend: String,
    /// How long to run: 60s, 5m, 1h
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    time: String,
    /// PRNG seed (default: from the clock, printed so the run can be repeated)
    #[arg(long)]
    seed: Option<u64>,
    /// Where shrunk failing cases are written
    #[arg(long, value_name = "DIR", default_value = "fuzz-findings")]
    out: PathBuf,
    /// Generator mode: legal (only legal commands), raw (malformed and illegal too), mixed
    #[arg(long, value_name = "MODE", default_value = "mixed")]
    mode: String,
    /// Stop at the first divergence (after shrinking it): for time-to-find measurements
    #[arg(long)]
    stop_at_first: bool,
    /// Known divergences of the backend (default: corpus/expectations/BACKEND.toml when it
    /// exists): findings matching one are counted apart, not reported as new (docs/fuzzing.md);
    /// `--expect /dev/null` reports them all
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
}

#[derive(Clone, Copy, Default, ValueEnum)]
enum RunFormat {
    /// A table for people, then every failure with its trace and reproducer
    #[default]
    Text,
    /// One JSON document
    Json,
    /// JUnit XML, one testcase per case
    Junit,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    /// For people
    Text,
    /// decode: JSON Lines, one object per command; profiles: one JSON array
    Json,
}

#[derive(Args)]
struct DecodeArgs {
    /// WORD0 WORD1: DW0 (bits [63:0]) and DW1 (bits [127:64]) in hex, 0x optional; a lone `-`
    /// reads commands from standard input
    #[arg(value_name = "WORD", conflicts_with = "file")]
    words: Vec<String>,
    /// Read many commands from FILE (`-` = standard input): hex text, one command per line as
    /// DW0 DW1, blank lines and # comments allowed; or, if not text, a raw queue dump of 16-byte
    /// little-endian entries
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Treat the input as a raw queue dump even if it looks like text
    #[arg(long)]
    binary: bool,
    /// Feature profile (see `smmu-conform profiles`)
    #[arg(short, long, value_name = "NAME", default_value = DEFAULT_PROFILE)]
    profile: String,
    /// SMMU_IDR0 in hex, replacing the profile's value
    #[arg(long, value_name = "HEX")]
    idr0: Option<String>,
    /// SMMU_IDR1 in hex, replacing the profile's value
    #[arg(long, value_name = "HEX")]
    idr1: Option<String>,
    /// SMMU_IDR3 in hex, replacing the profile's value
    #[arg(long, value_name = "HEX")]
    idr3: Option<String>,
    /// SMMU_IDR5 in hex, replacing the profile's value
    #[arg(long, value_name = "HEX")]
    idr5: Option<String>,
    /// SMMU_AIDR in hex, replacing the profile's value
    #[arg(long, value_name = "HEX")]
    aidr: Option<String>,
    /// The command queue the commands were submitted to: non-secure, secure or realm
    #[arg(short, long, value_name = "QUEUE", default_value = "non-secure")]
    queue: String,
    /// Output: text, or JSON Lines (one object per command)
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    format: OutFormat,
}

fn read_source(path: &std::path::Path) -> Result<(String, Vec<u8>), Error> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                name: "<stdin>".into(),
                source,
            })?;
        Ok(("<stdin>".into(), bytes))
    } else {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            name: name.clone(),
            source,
        })?;
        Ok((name, bytes))
    }
}

fn decode(a: DecodeArgs, out: &mut dyn Write) -> Result<(), Error> {
    let overrides = RegOverrides {
        idr0: a.idr0,
        idr1: a.idr1,
        idr3: a.idr3,
        idr5: a.idr5,
        aidr: a.aidr,
    };
    // Options are checked before any input is read, so a typo in --profile is reported even when
    // the input is also bad.
    let target = Target::from_options(&a.profile, &overrides, &a.queue)?;
    let source = match (&a.file, a.words.as_slice()) {
        (Some(f), []) => Some(f.clone()),
        (Some(_), _) => return Err(Error::ArgsAndFile),
        (None, [dash]) if dash == "-" => Some(PathBuf::from("-")),
        (None, []) if io::stdin().is_terminal() => return Err(Error::NoInput),
        (None, []) => Some(PathBuf::from("-")),
        (None, _) => None,
    };
    let entries = match source {
        Some(path) => {
            let (name, bytes) = read_source(&path)?;
            parse_input(&name, &bytes, a.binary)?
        }
        None => vec![parse_args(&a.words)?],
    };
    let format = match a.format {
        OutFormat::Text => Format::Text,
        OutFormat::Json => Format::Json,
    };
    report::decode::write_reports(out, &target, &entries, format)?;
    Ok(())
}

/// `run`: cases are loaded and compiled before the backend is opened, so a bad case file is
/// reported as such whatever the backend.
fn run_suite(a: RunArgs) -> Result<u8, Error> {
    if forwarder::is_forwarder_spec(&a.backend) {
        return run_forwarder_suite(a);
    }
    let dir = a.cases.clone().unwrap_or_else(suite::default_cases_dir);
    let cases = suite::load(&a.case, &dir)?;
    let expectations = match &a.expect {
        Some(p) => Expectations::load(p)?,
        None => {
            let p = suite::default_expectations(&a.backend);
            if p.exists() {
                Expectations::load(&p)?
            } else {
                Expectations::default()
            }
        }
    };
    // A progress bar only where someone watches it, and only when the run takes a while.
    let bar = if io::stderr().is_terminal() && cases.len() >= 20 {
        let b = indicatif::ProgressBar::new(cases.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        Some(b)
    } else {
        None
    };
    let spec = a.backend.clone();
    let factory = move || open_backend(&spec);
    let progress = |_: usize, r: &suite::CaseReport| {
        if let Some(b) = &bar {
            b.set_message(r.case.clone());
            b.inc(1);
        }
    };
    let jobs = a.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let report =
        suite::run_suite_jobs(&cases, &factory, jobs, &a.backend, &expectations, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    let text = match a.format {
        RunFormat::Text => report::suite::text(&report),
        RunFormat::Json => report::suite::json(&report) + "\n",
        RunFormat::Junit => report::suite::junit(&report),
    };
    match &a.output {
        Some(p) => std::fs::write(p, text)?,
        None => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(report.exit_code())
}

/// The expectation file `--expect` names, else the backend's own when it exists.
fn expectations_for(a: &RunArgs) -> Result<Expectations, Error> {
    Ok(match &a.expect {
        Some(p) => Expectations::load(p)?,
        None => {
            let p = suite::default_expectations(&a.backend);
            if p.exists() {
                Expectations::load(&p)?
            } else {
                Expectations::default()
            }
        }
    })
}

fn write_report(a: &RunArgs, report: &suite::SuiteReport) -> Result<(), Error> {
    let text = match a.format {
        RunFormat::Text => report::suite::text(report),
        RunFormat::Json => report::suite::json(report) + "\n",
        RunFormat::Junit => report::suite::junit(report),
    };
    match &a.output {
        Some(p) => std::fs::write(p, text)?,
        None => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `run --backend forwarder|fwd-mutant:NAME`: the forwarder suite (corpus/forwarder), same
/// reports and exit statuses as the device suite.
fn run_forwarder_suite(a: RunArgs) -> Result<u8, Error> {
    let dir = a
        .cases
        .clone()
        .unwrap_or_else(forwarder::suite::default_cases_dir);
    let cases = forwarder::suite::load(&a.case, &dir)?;
    let expectations = expectations_for(&a)?;
    let spec = a.backend.clone();
    let factory = move || forwarder::open_forwarder(&spec);
    let report =
        forwarder::suite::run_suite(&cases, &factory, &a.backend, &expectations, &|_, _| {})?;
    write_report(&a, &report)?;
    Ok(report.exit_code())
}

/// `forward`: one batch on one forwarder, printed with the oracle's verdict.
fn forward(a: ForwardArgs) -> Result<u8, Error> {
    use smmu_conform::case::parse::{num, parse_cmd};
    use smmu_conform::forwarder::case::parse_profile;
    let bad = |m: String| Error::Suite(SuiteError::Backend(m));
    let profile = |what: &str, s: &str| {
        let w: Vec<&str> = s.split_whitespace().collect();
        parse_profile(&w).map_err(|e| bad(format!("--{what} {s}: {e}")))
    };
    let mut vs = smmu_conform::backend::VirtualSmmu {
        guest: profile("guest", &a.guest)?,
        host: profile("host", &a.host)?,
        host_vmid: num(&a.vmid)
            .ok()
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| bad(format!("--vmid {}: not a 16-bit number", a.vmid)))?,
        sids: Vec::new(),
    };
    for s in &a.sids {
        let (v, p) = match s.split_once(':') {
            Some((v, p)) => (num(v), Some(num(p))),
            None => (num(s), None),
        };
        let v = v.map_err(|e| bad(format!("--sid {s}: {e}")))?;
        let p = match p {
            Some(p) => p.map_err(|e| bad(format!("--sid {s}: {e}")))?,
            None => 0x20 + v,
        };
        let (Ok(v), Ok(p)) = (u32::try_from(v), u32::try_from(p)) else {
            return Err(bad(format!("--sid {s}: StreamIDs are 32-bit")));
        };
        vs.sids.push((v, p));
    }
    let mut batch = Vec::new();
    for c in &a.commands {
        let w: Vec<&str> = c.split_whitespace().collect();
        batch.push(parse_cmd(&w).map_err(|e| bad(format!("command '{c}': {e}")))?);
    }
    if let Some(raw) = &a.raw {
        let parts: Vec<&str> = raw.splitn(3, ':').collect();
        let [len, n, hex] = parts.as_slice() else {
            return Err(bad(format!(
                "--raw {raw}: expected ENTRY_LEN:ENTRY_NUM:HEX"
            )));
        };
        let (Ok(len), Ok(n)) = (len.parse::<u32>(), n.parse::<u32>()) else {
            return Err(bad(format!(
                "--raw {raw}: entry_len and entry_num are decimal"
            )));
        };
        if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "--raw {raw}: the bytes must be an even number of hex digits"
            )));
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
            .collect();
        if !smmu_conform::backend::kernel::is_kernel_spec(&a.backend) {
            return Err(bad("--raw needs the kernel backend".into()));
        }
        let mut k = smmu_conform::backend::kernel::KernelForwarder::open(&a.backend)
            .map_err(|e| bad(e.to_string()))?;
        use smmu_conform::backend::Forwarder;
        k.setup(&vs).map_err(|e| bad(e.to_string()))?;
        let (r, host) = k.raw(len, n, &bytes).map_err(|e| bad(e.to_string()))?;
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "raw entry_len {len} entry_num {n}: rc={} errno={} ({}) entry_num={}",
            r.rc,
            r.errno,
            smmu_conform::backend::kernel::agent::errno_name(r.errno),
            r.entry_num
        )?;
        for (i, c) in host.iter().enumerate() {
            writeln!(
                out,
                "  host {i}: {:#018x} {:#018x}  {}",
                c.0[0],
                c.0[1],
                smmu_model::oracle::describe_cmd(*c)
            )?;
        }
        return Ok(0);
    }
    let mut fwd = forwarder::open_forwarder(&a.backend).map_err(|e| bad(e.to_string()))?;
    let o =
        forwarder::one::forward_once(fwd.as_mut(), &vs, &batch).map_err(|e| bad(e.to_string()))?;
    let mut out = io::stdout().lock();
    out.write_all(forwarder::one::text(&fwd.name(), &batch, &o).as_bytes())?;
    out.flush()?;
    Ok(u8::from(!o.judgement.findings.is_empty()))
}

/// `fuzz`: the campaign is in the library ([`smmu_conform::fuzz`]); this prints its progress
/// line and reproducers.
fn fuzz(a: FuzzArgs) -> Result<u8, Error> {
    use smmu_conform::fuzz::known::Known;
    use smmu_conform::fuzz::{campaign, parse_duration, ModeSel, Options};
    use smmu_conform::gen::Mode;
    let usage = Error::Fuzz;
    let time = parse_duration(&a.time).map_err(usage)?;
    let modes = match a.mode.as_str() {
        "legal" => ModeSel::Fixed(Mode::Legal),
        "raw" => ModeSel::Fixed(Mode::Raw),
        "mixed" => ModeSel::Mixed,
        m => return Err(usage(format!("unknown --mode {m} (legal, raw or mixed)"))),
    };
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let known = match &a.expect {
        Some(p) => Known::load(p, &suite::default_cases_dir())?,
        None if forwarder::is_forwarder_spec(&a.backend) => Known::for_forwarder(&a.backend)?,
        None => Known::for_backend(&a.backend)?,
    };
    let opts = Options {
        known,
        backend: a.backend.clone(),
        time,
        seed,
        out: a.out,
        modes,
        shrink_time: std::time::Duration::from_secs(30),
        max_execs: 0,
        stop_at_first: a.stop_at_first,
    };
    let tty = io::stderr().is_terminal();
    eprintln!(
        "fuzzing {} for {:?} (seed {seed}, {} mode), cases to {}",
        opts.backend,
        time,
        a.mode,
        opts.out.display()
    );
    if let Some(src) = &opts.known.source {
        eprintln!(
            "{} known divergences from {src} are counted apart, not reported as new",
            opts.known.entries.len()
        );
    }
    let spec = a.backend.clone();
    let factory = move || open_backend(&spec);
    let mut last_line = std::time::Instant::now();
    let mut progress = |p: &smmu_conform::fuzz::Progress| {
        // A live line on a terminal; otherwise (CI logs) one line every 10 s.
        if tty {
            eprint!("\r{}\x1b[K", p.line());
        } else if last_line.elapsed().as_secs() >= 10 {
            last_line = std::time::Instant::now();
            eprintln!("{}", p.line());
        }
    };
    let mut report = |s: &smmu_conform::fuzz::Saved| {
        if tty {
            eprintln!();
        }
        eprintln!(
            "FOUND {} at execution {} after {:.1} s: {}\n  case ({} lines, shrunk from {}): {}\n  reproduce: {}",
            s.rule,
            s.exec,
            s.found_after.as_secs_f64(),
            s.message,
            s.lines_after,
            s.lines_before,
            s.path.display(),
            s.reproducer
        );
    };
    let outcome = if forwarder::is_forwarder_spec(&opts.backend) {
        forwarder::fuzz::campaign(&opts, &mut progress, &mut report)
    } else {
        campaign(&opts, &factory, &mut progress, &mut report)
    }
    .map_err(|e| Error::Fuzz(e.to_string()))?;
    if tty {
        eprintln!();
    }
    for (e, path) in &outcome.harness_errors {
        match path {
            Some(p) => eprintln!("HARNESS ERROR: {e}\n  input: {}", p.display()),
            None => eprintln!("HARNESS ERROR: {e}"),
        }
    }
    if !outcome.known.is_empty() {
        let hits: Vec<String> = outcome
            .known
            .iter()
            .map(|(case, n)| format!("{case} x{n}"))
            .collect();
        eprintln!(
            "known divergences (not new; {}): {}",
            opts.known.source.as_deref().unwrap_or("expectations"),
            hits.join(", ")
        );
    }
    eprintln!(
        "{} executions in {:.1}s, {} new divergence(s), {} known, {} harness error(s)",
        outcome.execs,
        outcome.elapsed.as_secs_f64(),
        outcome.findings.len(),
        outcome.known.values().sum::<u64>(),
        outcome.harness_errors.len()
    );
    Ok(outcome.exit_code())
}

fn load_cases(dir: Option<PathBuf>) -> Result<Vec<suite::Loaded>, SuiteError> {
    suite::load(&[], &dir.unwrap_or_else(suite::default_cases_dir))
}

/// The device cases and the forwarder cases, as the coverage matrix sees them.
fn coverage_cases(dir: Option<PathBuf>) -> Result<Vec<smmu_conform::case::Case>, SuiteError> {
    let mut cases: Vec<_> = load_cases(dir)?.into_iter().map(|l| l.case).collect();
    cases.extend(forwarder::suite::coverage_cases()?);
    Ok(cases)
}

fn run(cli: Cli) -> Result<u8, Error> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match cli.command.unwrap_or(Cmd::Run(RunArgs {
        backend: DEFAULT_BACKEND.into(),
        ..RunArgs::default()
    })) {
        Cmd::Run(a) => {
            drop(out);
            return run_suite(a);
        }
        Cmd::Fuzz(a) => {
            drop(out);
            return fuzz(a);
        }
        Cmd::Forward(a) => {
            drop(out);
            return forward(a);
        }
        Cmd::Coverage {
            require_all,
            markdown,
            cases,
        } => {
            let cases = coverage_cases(cases)?;
            if markdown {
                write!(out, "{}", coverage::markdown(&cases))?;
            } else {
                write!(out, "{}", coverage::text(&cases))?;
            }
            out.flush()?;
            if require_all && !coverage::uncovered(&cases).is_empty() {
                return Ok(1);
            }
        }
        Cmd::Mutants {
            list,
            forwarders,
            markdown,
            cases,
        } => {
            let mutants = available_mutants();
            if mutants.is_empty() {
                return Err(Error::NoMutants);
            }
            if list && forwarders {
                for (name, _) in forwarder::list_mutants() {
                    writeln!(out, "{name}")?;
                }
            } else if list {
                for m in &mutants {
                    writeln!(out, "{}", m.name)?;
                }
            } else {
                // Device mutants on corpus/conformance, then forwarder mutants on
                // corpus/forwarder (rows `fwd-mutant:NAME`).
                let mut rows = if forwarders {
                    Vec::new()
                } else {
                    coverage::kill_matrix(&load_cases(cases)?, &mutants)
                };
                let fcases = forwarder::suite::load(&[], &forwarder::suite::default_cases_dir())?;
                rows.extend(forwarder::suite::kill_matrix(&fcases));
                if markdown {
                    write!(out, "{}", coverage::kill_markdown(&rows))?;
                } else {
                    write!(out, "{}", coverage::kill_text(&rows))?;
                }
                out.flush()?;
                return Ok(coverage::kill_exit(&rows));
            }
        }
        Cmd::Decode(a) => decode(*a, &mut out)?,
        Cmd::Profiles { format } => match format {
            OutFormat::Text => write!(out, "{}", report::profiles::text())?,
            OutFormat::Json => writeln!(out, "{}", report::profiles::json())?,
        },
        Cmd::Rules { markdown } => {
            if markdown {
                write!(out, "{}", report::rules::markdown())?
            } else {
                write!(out, "{}", report::rules::text())?
            }
        }
    }
    out.flush()?;
    Ok(0)
}

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with status 2.
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smmu-conform: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
