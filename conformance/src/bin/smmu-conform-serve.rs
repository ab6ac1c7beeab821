//! `smmu-conform-serve`: serves an in-process backend over the out-of-process protocol
//! (docs/protocol.md) on stdin and stdout, so that
//! `smmu-conform run --backend exec:'smmu-conform-serve --backend mutant:sync-no-msi'` judges
//! exactly what `--backend mutant:sync-no-msi` judges, through the protocol.

use clap::{Parser, ValueEnum};
use smmu_conform::backend::exec::serve::{serve, Misbehave, Served};
use smmu_conform::open::{open_backend, open_forwarder};
use std::io::{self, BufReader};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "smmu-conform-serve",
    version,
    about = "Serve a backend (emulator, mutant, QEMU, forwarder) over the smmu-conform protocol on stdin/stdout",
    after_help = "\
Examples:
  smmu-conform run --backend exec:'smmu-conform-serve --backend emulator'
  smmu-conform run --backend exec:'smmu-conform-serve --backend mutant:sync-no-msi'
  smmu-conform-serve --role forwarder --backend exec:'python3 examples/python/tiny_forwarder.py'

Exit status: 0 after bye or end of input, 2 when the backend cannot be opened or the output
breaks, 3 on --misbehave exit."
)]
struct Args {
    /// The backend to serve (any spec `smmu-conform run --backend` takes)
    #[arg(long, value_name = "SPEC", default_value = "emulator")]
    backend: String,
    /// Serve it as a device or as a forwarder
    #[arg(long, value_enum, default_value_t = RoleArg::Device)]
    role: RoleArg,
    /// Break the protocol on purpose once, for testing clients: MODE[@N|@OP] with MODE one of
    /// malformed-json, wrong-field, missing-field, wrong-id, unknown-message, exit, stall; at
    /// request id N (0 is hello; default 1) or at the first request with op OP
    #[arg(long, value_name = "MODE[@WHEN]")]
    misbehave: Option<String>,
    /// Do not offer the `steps` capability: every trace step is then a request of its own
    /// (the path a peer without `steps` takes; tests and measurements of the protocol use it)
    #[arg(long)]
    no_steps: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Device,
    Forwarder,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let misbehave = match args.misbehave.as_deref().map(Misbehave::parse) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            eprintln!("smmu-conform-serve: error: {e}");
            return ExitCode::from(2);
        }
    };
    let served = match args.role {
        RoleArg::Device => open_backend(&args.backend).map(Served::Device),
        RoleArg::Forwarder => open_forwarder(&args.backend).map(Served::Forwarder),
    };
    let served = match served {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smmu-conform-serve: error: {e}");
            return ExitCode::from(2);
        }
    };
    let stdin = io::stdin();
    let input = BufReader::new(stdin.lock());
    let output = io::LineWriter::new(io::stdout().lock());
    ExitCode::from(serve(served, input, output, misbehave.as_ref(), !args.no_steps) as u8)
}
