//! In-process against over-the-protocol, on fuzz inputs (docs/protocol.md, "Equivalence"):
//! scripts/exec-equivalence.sh runs it.
//!
//! `exec_equivalence --serve PATH [--inputs N] [--verdicts M] [--seed S] [--log FILE]
//!  [--no-steps] [--forwarders] [BACKEND...]`
//!
//! For every backend (default: the emulator and every mutant) and each of N seeded inputs of the
//! `device` fuzz target, the generated trace is replayed on the in-process backend and on the
//! same backend served by `smmu-conform-serve` over the protocol, in lockstep: every answer (ID
//! registers, queue observations, probe outcomes) must be equal. Then, for the first M inputs
//! (default: all of them), the harness judges the trace on each path, model included, and the
//! verdicts must be equal: finding or not, the steps of the findings, the counters and how far
//! the trace ran (not the rule a finding names: when one observation breaks several rules, the
//! model's choice follows hash-set order, docs/protocol.md). The runs of steps between
//! acknowledgements go to each side as the harness sends them, `Device::run_steps`: over the
//! protocol one `steps` request each, or one request per step with `--no-steps` (the server
//! then does not offer the capability).
//!
//! `--log FILE` appends each backend's result line to FILE as soon as it is done, so that a long
//! run that is stopped still records what it finished.
//!
//! `--forwarders` does the same for forwarders (default: the reference forwarder and every
//! forwarder mutant, served with `--role forwarder`): each input of the forwarder campaign's
//! generator is set up and forwarded on both, the results compared, and the forwarding oracle's
//! verdict compared on every input (it is cheap).

use smmu_conform::backend::exec::lockstep::Lockstep;
use smmu_conform::backend::{Device, HarnessError};
use smmu_conform::gen::{generate_trace, GenConfig, Mode};
use smmu_conform::harness::{run, RunOptions, RunResult};
use smmu_conform::open::{available_mutants, open_backend};
use smmu_conform::trace::{Step, Trace};
use smmu_model::profile::Profile;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// The trace of `data` for a device with `d`'s ID registers, `None` when the input makes none.
fn trace_of(d: &mut Lockstep, data: &[u8]) -> Result<Option<Trace>, HarnessError> {
    let Some((&m, rest)) = data.split_first() else {
        return Ok(None);
    };
    d.reset()?;
    let profile = Profile::from_regs(d.id_regs()?);
    Ok(generate_trace(rest, &profile, Mode::from_byte(m), &GenConfig::default()).map(|(_, t)| t))
}

/// Replay every step of `trace` on both sides of `d` (no model), in the runs between
/// acknowledgements the harness hands to `Device::run_steps`: the first differing answer is an
/// error.
fn replay(d: &mut Lockstep, trace: &Trace) -> Result<(), HarnessError> {
    d.reset()?;
    let mut rest: &[Step] = &trace.steps;
    while !rest.is_empty() {
        let n = rest
            .iter()
            .position(|s| matches!(s, Step::Acknowledge { .. }))
            .unwrap_or(rest.len());
        if n == 0 {
            d.run_steps(&rest[..1])?;
            rest = &rest[1..];
        } else {
            d.run_steps(&rest[..n])?;
            rest = &rest[n..];
        }
    }
    Ok(())
}

/// What must be equal between the two paths' verdicts.
fn verdict(r: &Result<RunResult, HarnessError>) -> String {
    match r {
        Ok(r) => format!(
            "findings at steps {:?}, {} steps run, {:?}",
            r.findings.iter().map(|f| f.step).collect::<Vec<_>>(),
            r.executed,
            r.stats
        ),
        Err(e) => format!("harness error: {e}"),
    }
}

/// The forwarder half: returns (answers compared, verdicts compared, differences).
fn forwarders(serve: &str, b: &str, inputs: u64, seed: u64) -> (u64, u64, u64) {
    use smmu_conform::forwarder::fuzz::run_input;
    use smmu_conform::forwarder::gen::generate;
    use smmu_conform::forwarder::open_forwarder;
    let spec = format!("exec-forwarder:{serve} --role forwarder --backend {b}");
    let open = |s: &str| open_forwarder(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    let (mut here, mut there) = (open(b), open(&spec));
    let mut rng = smmu_conform::fuzz::Rng::new(seed);
    let (mut answers, mut verdicts, mut differ) = (0u64, 0u64, 0u64);
    for i in 0..inputs {
        // As the forwarder campaign draws its inputs (conformance/src/forwarder/fuzz.rs).
        let len = 8 + (rng.next_u64() % 256) as usize;
        let data = rng.bytes(len);
        let input = generate(&data[1..], Mode::from_byte(data[0]));
        let a = (here.setup(&input.vsmmu), there.setup(&input.vsmmu));
        answers += 1;
        let same_setup = match &a {
            (Ok(x), Ok(y)) => x == y,
            (Err(x), Err(y)) => std::mem::discriminant(x) == std::mem::discriminant(y),
            _ => false,
        };
        if !same_setup {
            differ += 1;
            eprintln!(
                "{b}: input {i}: setup {:?} in-process, {:?} over the protocol",
                a.0, a.1
            );
        }
        if a.0.is_ok() && a.1.is_ok() {
            let f = (here.forward(&input.batch), there.forward(&input.batch));
            answers += 1;
            if f.0 != f.1 {
                differ += 1;
                eprintln!(
                    "{b}: input {i}: forward {:?} in-process, {:?} over the protocol",
                    f.0, f.1
                );
            }
        }
        let v = (
            run_input(here.as_mut(), &input),
            run_input(there.as_mut(), &input),
        );
        verdicts += 1;
        if v.0 != v.1 {
            differ += 1;
            eprintln!(
                "{b}: input {i}: verdict {:?} in-process, {:?} over the protocol",
                v.0, v.1
            );
        }
    }
    (answers, verdicts, differ)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut serve, mut inputs, mut verdicts, mut seed) = (None, 10_000u64, None, 1u64);
    let mut backends = Vec::new();
    let (mut fwd, mut no_steps, mut log) = (false, false, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--serve" => serve = Some(val()),
            "--inputs" => inputs = val().parse().unwrap_or(inputs),
            "--verdicts" => verdicts = val().parse().ok(),
            "--log" => log = Some(val()),
            "--no-steps" => no_steps = true,
            "--seed" => seed = val().parse().unwrap_or(seed),
            "--forwarders" => fwd = true,
            b => backends.push(b.to_string()),
        }
    }
    let Some(serve) = serve else {
        eprintln!("exec_equivalence: give --serve PATH-TO-smmu-conform-serve");
        return ExitCode::from(2);
    };
    let verdicts = verdicts.unwrap_or(inputs);
    let mut log = match log.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| format!("{p}: {e}"))
    }) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            eprintln!("exec_equivalence: cannot open the log {e}");
            return ExitCode::from(2);
        }
    };
    let mut say = |line: String| {
        println!("{line}");
        if let Some(f) = log.as_mut() {
            let _ = writeln!(f, "{line}").and_then(|_| f.flush());
        }
    };
    if fwd {
        if backends.is_empty() {
            backends.push(smmu_conform::forwarder::REFERENCE.into());
            backends.extend(
                smmu_conform::forwarder::list_mutants()
                    .into_iter()
                    .map(|(n, _)| format!("{}{n}", smmu_conform::forwarder::MUTANT_PREFIX)),
            );
        }
        let start = Instant::now();
        let (mut ta, mut tv, mut td) = (0, 0, 0);
        for b in &backends {
            let t = Instant::now();
            let (a, v, d) = forwarders(&serve, b, inputs, seed);
            say(format!(
                "{b}: {inputs} inputs, {a} answers compared, {v} verdicts compared, {d} differ ({:.1} s)",
                t.elapsed().as_secs_f64()
            ));
            (ta, tv, td) = (ta + a, tv + v, td + d);
        }
        say(format!(
            "total: {} forwarders, {} inputs, {ta} answers and {tv} verdicts compared, {} ({:.1} s)",
            backends.len(),
            inputs * backends.len() as u64,
            if td == 0 { "all equal" } else { "DIFFERENCES FOUND" },
            start.elapsed().as_secs_f64()
        ));
        return if td == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    if backends.is_empty() {
        backends.push("emulator".into());
        backends.extend(
            available_mutants()
                .into_iter()
                .map(|m| format!("mutant:{}", m.name)),
        );
    }
    let mut failed = false;
    let (mut total_inputs, mut total_calls, mut total_verdicts) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let extra = if no_steps { " --no-steps" } else { "" };
    for b in &backends {
        let spec = format!("exec:{serve}{extra} --backend {b}");
        let open = || -> Result<Lockstep, HarnessError> {
            Ok(Lockstep::new(open_backend(b)?, open_backend(&spec)?))
        };
        let mut d = match open() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{b}: cannot open: {e}");
                return ExitCode::from(2);
            }
        };
        let t = Instant::now();
        let mut rng = smmu_conform::fuzz::Rng::new(seed);
        let (mut steps, mut differ, mut vsame, mut findings) = (0usize, 0u64, 0u64, 0u64);
        let mut calls = 0;
        for i in 0..inputs {
            let len = 1 + (rng.next_u64() % 1500) as usize;
            let data = rng.bytes(len);
            let trace = match trace_of(&mut d, &data) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    differ += 1;
                    eprintln!("{b}: input {i}: {e}");
                    calls += d.calls;
                    d = open().expect("reopen");
                    continue;
                }
            };
            steps += trace.steps.len();
            if let Err(e) = replay(&mut d, &trace) {
                differ += 1;
                eprintln!("{b}: input {i}: {e}");
                calls += d.calls;
                d = open().expect("reopen");
            }
            if i < verdicts {
                // Each side on its own, judged by the model: the verdicts of both paths.
                let here = run(d.a.as_mut(), &trace, RunOptions::default());
                let there = run(d.b.as_mut(), &trace, RunOptions::default());
                let (vh, vt) = (verdict(&here), verdict(&there));
                if vh == vt {
                    vsame += 1;
                } else {
                    differ += 1;
                    eprintln!("{b}: input {i}: in-process {vh}; over the protocol {vt}");
                }
                findings += here.is_ok_and(|r| !r.findings.is_empty()) as u64;
                if there.is_err() {
                    calls += d.calls;
                    d = open().expect("reopen");
                }
            }
        }
        calls += d.calls;
        failed |= differ > 0;
        total_inputs += inputs;
        total_calls += calls;
        total_verdicts += verdicts.min(inputs);
        say(format!(
            "{b}: {inputs} inputs (seed {seed}), {steps} trace steps, {calls} answers compared; \
             verdicts compared on {}, {vsame} equal ({findings} with a finding); {differ} differ \
             ({:.1} s)",
            verdicts.min(inputs),
            t.elapsed().as_secs_f64()
        ));
    }
    say(format!(
        "total: {} backends, {total_inputs} inputs, {total_calls} answers compared in lockstep, \
         {total_verdicts} verdicts compared, {} ({:.1} s)",
        backends.len(),
        if failed {
            "DIFFERENCES FOUND"
        } else {
            "all equal"
        },
        start.elapsed().as_secs_f64()
    ));
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
