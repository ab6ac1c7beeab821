//! The `smmu-conform` command line. Parsing arguments and mapping errors to exit statuses is all
//! that happens here: 0 on success, 2 for bad input or usage (clap's own status for usage errors),
//! 1 when output cannot be written. Everything printed is built by the library.

use clap::{Args, Parser, Subcommand, ValueEnum};
use smmu_conform::input::{parse_args, parse_input};
use smmu_conform::report::{self, decode::Format};
use smmu_conform::target::{RegOverrides, Target, DEFAULT_PROFILE};
use smmu_conform::{Error, RUN_PLACEHOLDER};
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
    /// Run the conformance suite on the embedded default backend (the default subcommand)
    Run,
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

fn run(cli: Cli) -> Result<(), Error> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match cli.command.unwrap_or(Cmd::Run) {
        Cmd::Run => writeln!(out, "{RUN_PLACEHOLDER}")?,
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
    Ok(())
}

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with status 2.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smmu-conform: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
