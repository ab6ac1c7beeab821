//! Fuzzing forwarders: `smmu-conform fuzz --backend forwarder|fwd-mutant:NAME` and the body of
//! the `forwarder` cargo-fuzz target. Inputs come from [`super::gen`], verdicts from the
//! forwarding oracle; the first input breaking each rule is shrunk (guest commands, then
//! devices) and written as a forwarder case with its reproducer. Options, progress and the
//! outcome are the device campaign's ([`crate::fuzz`]).

use super::case::case_text;
use super::gen::{generate_aimed, FwdInput};
use super::{mapping, open_forwarder};
use crate::backend::{Forwarder, HarnessError};
use crate::fuzz::{write_atomic, ModeSel, Options, Outcome, Progress, Rng, Saved};
use crate::gen::Mode;
use smmu_model::forward::{judge, Forwarded};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What one input did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FwdVerdict {
    Clean,
    /// The forwarder refused the mapping: nothing to judge.
    Refused,
    /// The first finding's rule id and message.
    Finding(&'static str, String),
    Harness(String),
}

/// Set up, forward, judge.
pub fn run_input(fwd: &mut dyn Forwarder, input: &FwdInput) -> FwdVerdict {
    run_input_full(fwd, input).0
}

/// [`run_input`], with what the forwarder returned (when it got that far).
pub fn run_input_full(
    fwd: &mut dyn Forwarder,
    input: &FwdInput,
) -> (FwdVerdict, Option<crate::backend::ForwardResult>) {
    // The oracle judges with the mapping the forwarder ended up with.
    let vsmmu = match fwd.setup(&input.vsmmu) {
        Ok(v) => v,
        Err(HarnessError::Unsupported { .. }) => return (FwdVerdict::Refused, None),
        Err(e) => return (FwdVerdict::Harness(e.to_string()), None),
    };
    let res = match fwd.forward(&input.batch) {
        Ok(r) => r,
        Err(e) => return (FwdVerdict::Harness(e.to_string()), None),
    };
    let j = judge(
        &mapping(&vsmmu),
        &input.batch,
        &Forwarded {
            host: &res.host_commands,
            error: res.error.as_ref().map(|(i, _)| *i),
            handled: res.handled,
        },
    );
    let v = match j.findings.into_iter().next() {
        None => FwdVerdict::Clean,
        Some(f) => FwdVerdict::Finding(f.rule.id, f.message),
    };
    (v, Some(res))
}

/// Run `input`; a finding that is a known divergence of the backend ([`known_case`]) is
/// reported as clean, with the expectation-file case it matched.
pub fn judge_new(
    fwd: &mut dyn Forwarder,
    input: &FwdInput,
    known: &crate::fuzz::known::Known,
) -> (FwdVerdict, Option<String>) {
    let (verdict, res) = run_input_full(fwd, input);
    if let FwdVerdict::Finding(rule, message) = &verdict {
        if !known.entries.is_empty() {
            if let Some(case) = known_case(fwd, known, input, res.as_ref(), rule, message) {
                return (FwdVerdict::Clean, Some(case));
            }
        }
    }
    (verdict, None)
}

/// The pseudo-text of an expectation entry's `fuzz_match` that matches a finding by its cause,
/// not its message: the forwarder reported an error at index i and i entries handled, and the
/// same guest commands cut before index i, forwarded alone, are judged clean. So the finding is
/// about entries counted handled but not carried out because a later one failed (the kernel's
/// docs/findings/linux-iommufd.md #1), whatever the commands.
pub const PREFIX_CLEAN: &str = "@prefix-clean";

/// The known divergence a finding is, if any: by message ([`Known::matches`]) or, for
/// [`PREFIX_CLEAN`] entries, by re-running the batch cut at the error index.
fn known_case(
    fwd: &mut dyn Forwarder,
    known: &crate::fuzz::known::Known,
    input: &FwdInput,
    res: Option<&crate::backend::ForwardResult>,
    rule: &str,
    message: &str,
) -> Option<String> {
    for e in &known.entries {
        if e.rule != rule {
            continue;
        }
        if e.contains.as_deref() == Some(PREFIX_CLEAN) {
            let Some(r) = res else { continue };
            let Some((i, _)) = &r.error else { continue };
            if *i == 0 || *i != r.handled || *i >= input.batch.len() {
                continue;
            }
            let mut cut = input.clone();
            cut.batch.truncate(*i);
            if run_input(fwd, &cut) == FwdVerdict::Clean {
                return Some(e.case.clone());
            }
            continue;
        }
        if known
            .matches(rule, message)
            .is_some_and(|k| k.case == e.case)
        {
            return Some(e.case.clone());
        }
    }
    None
}

/// Shrink while `rule` still fires: drop guest commands (halving chunks, then one by one), then
/// devices. Bounded by `budget`.
pub fn shrink(fwd: &mut dyn Forwarder, input: &FwdInput, rule: &str, budget: Duration) -> FwdInput {
    let start = Instant::now();
    let mut best = input.clone();
    let fires = |f: &mut dyn Forwarder, x: &FwdInput| matches!(run_input(f, x), FwdVerdict::Finding(r, _) if r == rule);
    let mut chunk = best.batch.len().div_ceil(2).max(1);
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < best.batch.len() && best.batch.len() > 1 {
            if start.elapsed() > budget {
                return best;
            }
            let end = (i + chunk).min(best.batch.len());
            let mut cand = best.clone();
            cand.batch.drain(i..end);
            if !cand.batch.is_empty() && fires(fwd, &cand) {
                best = cand;
                changed = true;
            } else {
                i += chunk;
            }
        }
        if !changed {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    let mut i = 0;
    while i < best.vsmmu.sids.len() && start.elapsed() <= budget {
        let mut cand = best.clone();
        cand.vsmmu.sids.remove(i);
        if fires(fwd, &cand) {
            best = cand;
        } else {
            i += 1;
        }
    }
    best
}

fn fnv(input: &FwdInput) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{:?}{:?}", input.vsmmu, input.batch);
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h as u32
}

/// The case file for a finding: (file name, text).
pub fn finding_case(
    input: &FwdInput,
    backend: &str,
    rule: &str,
    message: &str,
    seed: u64,
    exec: u64,
) -> (String, String) {
    let name = format!("fuzz-{}-{:08x}", rule.to_ascii_lowercase(), fnv(input));
    let section = smmu_model::rules::by_id(rule)
        .map(|r| r.section)
        .unwrap_or("");
    let notes = vec![
        format!(
            "Found by `smmu-conform fuzz --backend {backend} --seed {seed}` (execution {exec}, {} mode), then shrunk.",
            input.mode.name()
        ),
        format!("found-on: {backend}"),
        format!("rule: {rule} {section}"),
        format!("finding: {message}"),
    ];
    let doc = format!("{section}: fuzzing found {rule} on {backend}");
    let text = case_text(&name, rule, &doc, &notes, &input.vsmmu, &input.batch);
    (format!("{name}.case"), text)
}

/// A forwarder campaign (`opts.backend` is a forwarder spec).
pub fn campaign(
    opts: &Options,
    progress: &mut dyn FnMut(&Progress),
    report: &mut dyn FnMut(&Saved),
) -> Result<Outcome, HarnessError> {
    let start = Instant::now();
    let mut fwd = open_forwarder(&opts.backend)?;
    let mut rng = Rng::new(opts.seed);
    let mut out = Outcome::default();
    let mut by_rule: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut last_tick = Instant::now();
    let tick = |out: &Outcome, by_rule: &BTreeMap<&'static str, usize>| Progress {
        elapsed: start.elapsed(),
        execs: out.execs,
        findings: out.findings.len(),
        rules: by_rule.len(),
        harness_errors: out.harness_errors.len(),
        known: out.known.values().sum(),
    };
    while start.elapsed() < opts.time && (opts.max_execs == 0 || out.execs < opts.max_execs) {
        let len = 8 + (rng.next_u64() % 256) as usize;
        let data = rng.bytes(len);
        let mode = match opts.modes {
            ModeSel::Fixed(m) => m,
            ModeSel::Mixed => Mode::from_byte(data[0]),
        };
        out.execs += 1;
        // Aimed at what the forwarder can honour once it says (the kernel, after its first
        // guest): otherwise most executions are refused at setup or rejected at -EIO.
        let input = generate_aimed(&data[1..], mode, fwd.aim().as_ref());
        let (verdict, hit) = judge_new(fwd.as_mut(), &input, &opts.known);
        if let Some(case) = hit {
            *out.known.entry(case).or_insert(0) += 1;
        }
        match verdict {
            FwdVerdict::Clean | FwdVerdict::Refused => {}
            FwdVerdict::Finding(rule, message) => {
                let count = by_rule.entry(rule).or_insert(0);
                *count += 1;
                if *count == 1 {
                    let found_after = start.elapsed();
                    let small = shrink(fwd.as_mut(), &input, rule, opts.shrink_time);
                    let message = match run_input(fwd.as_mut(), &small) {
                        FwdVerdict::Finding(_, m) => m,
                        _ => message,
                    };
                    let (file, text) =
                        finding_case(&small, &opts.backend, rule, &message, opts.seed, out.execs);
                    let path = write_atomic(&opts.out, &file, &text).map_err(|e| {
                        HarnessError::Setup(format!("cannot write {}: {e}", opts.out.display()))
                    })?;
                    let saved = Saved {
                        rule,
                        message,
                        reproducer: format!(
                            "smmu-conform run --backend {} --case {}",
                            opts.backend,
                            path.display()
                        ),
                        path,
                        exec: out.execs,
                        found_after,
                        lines_before: input.batch.len(),
                        lines_after: small.batch.len(),
                    };
                    report(&saved);
                    out.findings.push(saved);
                    if opts.stop_at_first {
                        break;
                    }
                }
            }
            FwdVerdict::Harness(e) => {
                out.harness_errors.push((e, None));
                fwd = open_forwarder(&opts.backend)?;
            }
        }
        if last_tick.elapsed() >= Duration::from_millis(250) {
            last_tick = Instant::now();
            progress(&tick(&out, &by_rule));
        }
    }
    out.elapsed = start.elapsed();
    progress(&tick(&out, &by_rule));
    Ok(out)
}
