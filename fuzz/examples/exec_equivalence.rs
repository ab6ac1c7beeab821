//! In-process against over-the-protocol, on fuzz inputs (docs/protocol.md, "Equivalence"):
//! scripts/exec-equivalence.sh runs it.
//!
//! `exec_equivalence --serve PATH [--inputs N] [--verdicts M] [--seed S] [--forwarders] [BACKEND...]`
//!
//! For every backend (default: the emulator and every mutant) and each of N seeded inputs of the
//! `device` fuzz target, the generated trace is replayed on the in-process backend and on the
//! same backend served by `smmu-conform-serve` over the protocol, in lockstep: every answer (ID
//! registers, queue observations, probe outcomes) must be equal. The harness and the model are
//! deterministic functions of the trace and those answers, so equal answers mean equal verdicts.
//! For the first M inputs the verdicts themselves are also compared, through the `device` target
//! body (`device_run`) on each path, model included (that costs a model run per input per path).
//!
//! `--forwarders` does the same for forwarders (default: the reference forwarder and every
//! forwarder mutant, served with `--role forwarder`): each input of the forwarder campaign's
//! generator is set up and forwarded on both, the results compared, and the forwarding oracle's
//! verdict compared on every input (it is cheap).

use smmu_conform::backend::exec::lockstep::Lockstep;
use smmu_conform::backend::{Device, HarnessError};
use smmu_conform::gen::{generate_trace, GenConfig, Mode};
use smmu_conform::open::{available_mutants, open_backend};
use smmu_conform::trace::Step;
use smmu_conform_fuzz::{device_run, DeviceOutcome};
use smmu_model::oracle::Probe;
use smmu_model::profile::Profile;
use std::process::ExitCode;
use std::time::Instant;

/// Replay every step of `data`'s trace on `d` (no model): the first differing answer is an
/// error. Returns the number of steps, or 0 when the input makes no trace.
fn replay(d: &mut Lockstep, data: &[u8]) -> Result<usize, HarnessError> {
    let Some((&m, rest)) = data.split_first() else {
        return Ok(0);
    };
    d.reset()?;
    let profile = Profile::from_regs(d.id_regs()?);
    let Some((_, trace)) =
        generate_trace(rest, &profile, Mode::from_byte(m), &GenConfig::default())
    else {
        return Ok(0);
    };
    d.reset()?;
    for s in &trace.steps {
        match s {
            Step::Write { pa, value } => d.write(*pa, *value)?,
            Step::StreamTable { base, cfg } => d.stream_table(*base, *cfg)?,
            Step::Enable { on } => d.enable(*on)?,
            Step::Submit { commands } => {
                d.submit(commands)?;
            }
            Step::Acknowledge { replace, drop } => {
                d.acknowledge(*replace, *drop)?;
            }
            Step::Probe {
                sid,
                ssid,
                addr,
                write,
            } => {
                d.probe(&Probe {
                    sid: *sid,
                    ssid: *ssid,
                    addr: *addr,
                    write: *write,
                })?;
            }
        }
    }
    Ok(trace.steps.len())
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

fn kind(o: &DeviceOutcome) -> String {
    match o {
        DeviceOutcome::Clean => "clean".into(),
        // The rule a finding names can differ between two runs of the model on the same
        // observations (hash-set order when several rules are broken); finding or not cannot.
        DeviceOutcome::Finding(..) => "finding".into(),
        DeviceOutcome::Harness(e) => format!("harness error: {e}"),
        DeviceOutcome::Unavailable(e) => format!("unavailable: {e}"),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut serve, mut inputs, mut verdicts, mut seed) = (None, 10_000u64, 0u64, 1u64);
    let mut backends = Vec::new();
    let mut fwd = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--serve" => serve = Some(val()),
            "--inputs" => inputs = val().parse().unwrap_or(inputs),
            "--verdicts" => verdicts = val().parse().unwrap_or(verdicts),
            "--seed" => seed = val().parse().unwrap_or(seed),
            "--forwarders" => fwd = true,
            b => backends.push(b.to_string()),
        }
    }
    let Some(serve) = serve else {
        eprintln!("exec_equivalence: give --serve PATH-TO-smmu-conform-serve");
        return ExitCode::from(2);
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
            println!(
                "{b}: {inputs} inputs, {a} answers compared, {v} verdicts compared, {d} differ ({:.1} s)",
                t.elapsed().as_secs_f64()
            );
            (ta, tv, td) = (ta + a, tv + v, td + d);
        }
        println!(
            "total: {} forwarders, {} inputs, {ta} answers and {tv} verdicts compared, {} ({:.1} s)",
            backends.len(),
            inputs * backends.len() as u64,
            if td == 0 { "all equal" } else { "DIFFERENCES FOUND" },
            start.elapsed().as_secs_f64()
        );
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
    for b in &backends {
        let spec = format!("exec:{serve} --backend {b}");
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
        let (mut steps, mut differ, mut vsame) = (0usize, 0u64, 0u64);
        for i in 0..inputs {
            let len = 1 + (rng.next_u64() % 1500) as usize;
            let data = rng.bytes(len);
            match replay(&mut d, &data) {
                Ok(n) => steps += n,
                Err(e) => {
                    differ += 1;
                    failed = true;
                    eprintln!("{b}: input {i}: {e}");
                    d = open().expect("reopen");
                }
            }
            if i < verdicts {
                let here = kind(&device_run(&data, b));
                let there = kind(&device_run(&data, &spec));
                if here == there {
                    vsame += 1;
                } else {
                    failed = true;
                    eprintln!(
                        "{b}: input {i}: verdict {here} in-process, {there} over the protocol"
                    );
                }
            }
        }
        total_inputs += inputs;
        total_calls += d.calls;
        total_verdicts += verdicts.min(inputs);
        println!(
            "{b}: {inputs} inputs, {steps} trace steps, {} answers compared, {differ} differ; \
             verdicts compared on {}, {vsame} equal ({:.1} s)",
            d.calls,
            verdicts.min(inputs),
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "total: {} backends, {total_inputs} inputs, {total_calls} answers compared in lockstep, \
         {total_verdicts} verdicts compared, {} ({:.1} s)",
        backends.len(),
        if failed {
            "DIFFERENCES FOUND"
        } else {
            "all equal"
        },
        start.elapsed().as_secs_f64()
    );
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
