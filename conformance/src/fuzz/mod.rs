//! The stable-toolchain fuzzing campaign behind `smmu-conform fuzz` (no libFuzzer): a seeded
//! PRNG feeds the generators ([`crate::gen`]), the harness judges each trace on the device, and
//! every input whose trace the model rejects is shrunk and written out as a case file.
//!
//! Kept apart from the generators (what to try) and the oracle (the harness and model: what is
//! correct); this module only decides what to run next, what to keep and how to report it.

pub mod known;

use crate::backend::{Device, HarnessError};
use crate::gen::{generate_trace, GenConfig, Mode, Program};
use crate::harness::{self, RunOptions};
use known::Known;
use smmu_model::profile::Profile;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic from the seed, no dependency; good enough to spread bits.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is a fixed point of xorshift.
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 24) as u8).collect()
    }
}

/// Which generator modes a campaign uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeSel {
    Fixed(Mode),
    /// Byte 0 of each input picks ([`Mode::from_byte`]).
    Mixed,
}

/// Campaign options.
#[derive(Clone, Debug)]
pub struct Options {
    pub backend: String,
    pub time: Duration,
    pub seed: u64,
    pub out: PathBuf,
    pub modes: ModeSel,
    /// Time allowed to shrink one failing input.
    pub shrink_time: Duration,
    /// Stop after this many executions (0: no limit; for tests).
    pub max_execs: u64,
    /// Stop at the first divergence.
    pub stop_at_first: bool,
    /// The backend's known divergences ([`known`]): findings that match one are counted, not
    /// reported as new.
    pub known: Known,
}

/// Live numbers for the progress line.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub execs: u64,
    pub findings: usize,
    /// Distinct rules that findings have broken.
    pub rules: usize,
    pub harness_errors: usize,
    /// Findings that matched a known divergence of the backend.
    pub known: u64,
}

impl Progress {
    pub fn line(&self) -> String {
        let s = self.elapsed.as_secs_f64();
        let rate = if s > 0.0 { self.execs as f64 / s } else { 0.0 };
        format!(
            "[{:>5.0}s] execs {} ({:.0}/s)  rules {}  findings {}  known {}  harness errors {}",
            s, self.execs, rate, self.rules, self.findings, self.known, self.harness_errors
        )
    }
}

/// One saved finding.
#[derive(Clone, Debug)]
pub struct Saved {
    pub rule: &'static str,
    pub message: String,
    pub path: PathBuf,
    pub reproducer: String,
    pub exec: u64,
    /// Time from the start of the campaign to the input that first broke the rule (before
    /// shrinking): the time-to-find.
    pub found_after: Duration,
    pub lines_before: usize,
    pub lines_after: usize,
}

/// What a campaign found.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub execs: u64,
    pub elapsed: Duration,
    pub findings: Vec<Saved>,
    /// Harness errors, with the case file written for each (when it could be).
    pub harness_errors: Vec<(String, Option<PathBuf>)>,
    /// How many executions hit each known divergence (by its expectation-file case), apart
    /// from new findings.
    pub known: BTreeMap<String, u64>,
}

impl Outcome {
    /// 1 when a divergence was found, otherwise 2 when the harness failed, otherwise 0.
    pub fn exit_code(&self) -> u8 {
        if !self.findings.is_empty() {
            1
        } else if !self.harness_errors.is_empty() {
            2
        } else {
            0
        }
    }
}

/// Opens a fresh device (after a harness error the old one may be wedged).
pub type Factory<'a> = dyn Fn() -> Result<Box<dyn Device>, HarnessError> + 'a;

/// The result of one program on one device.
pub enum Verdict {
    Clean,
    /// The first finding's rule id and message.
    Finding(&'static str, String),
    Harness(HarnessError),
    /// The program did not compile (only during shrinking).
    Invalid,
}

/// Run `prog` on `device`.
pub fn judge(device: &mut dyn Device, prog: &Program) -> Verdict {
    judge_new(device, prog, &Known::none()).0
}

/// Run `prog` on `device`; its first finding decides, unless it matches a known divergence:
/// then the input counts for that divergence and is otherwise clean. Later findings of the same
/// run are not looked at: once the device did something the model forbids, the model's view of
/// what it may have cached no longer holds, so later verdicts are guesses (QEMU 7.2 caches the
/// translation of an AF == 0 leaf, finding 11, and later shows it as if stale). Also returns the
/// known divergence (its expectation-file case) the run matched.
pub fn judge_new(device: &mut dyn Device, prog: &Program, known: &Known) -> (Verdict, Vec<String>) {
    let Ok(trace) = prog.compile() else {
        return (Verdict::Invalid, Vec::new());
    };
    match harness::run(device, &trace, RunOptions::default()) {
        Ok(r) => match r.findings.first() {
            None => (Verdict::Clean, Vec::new()),
            Some(f) => match known.matches(f.rule.id, &f.message) {
                Some(k) => (Verdict::Clean, vec![k.case.clone()]),
                None => (Verdict::Finding(f.rule.id, f.message.clone()), Vec::new()),
            },
        },
        Err(e) => (Verdict::Harness(e), Vec::new()),
    }
}

/// Shrink `prog` while `rule` still fires: drop chunks of lines (halving chunk sizes, as ddmin
/// does), then single lines, then lower `*N` repeat counts. Bounded by `budget`; always returns
/// a program on which the rule fired (the input itself at worst).
pub fn shrink(device: &mut dyn Device, prog: &Program, rule: &str, budget: Duration) -> Program {
    shrink_new(device, prog, rule, budget, &Known::none())
}

/// [`shrink`], with findings that match a known divergence not counting as `rule` firing.
pub fn shrink_new(
    device: &mut dyn Device,
    prog: &Program,
    rule: &str,
    budget: Duration,
    known: &Known,
) -> Program {
    let start = Instant::now();
    let mut best = prog.clone();
    let fires = |d: &mut dyn Device, p: &Program| matches!(judge_new(d, p, known).0, Verdict::Finding(r, _) if r == rule);
    let mut chunk = best.lines.len().div_ceil(2).max(1);
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < best.lines.len() {
            if start.elapsed() > budget {
                return best;
            }
            let end = (i + chunk).min(best.lines.len());
            let mut cand = best.clone();
            cand.lines.drain(i..end);
            cand.fix_batches();
            if cand.lines.len() < best.lines.len() && fires(device, &cand) {
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
    // Fewer repeats of `cmd ... *N`.
    for i in 0..best.lines.len() {
        while let Some((head, n)) = best.lines[i]
            .rsplit_once(" *")
            .and_then(|(h, n)| Some((h.to_string(), n.parse::<usize>().ok()?)))
        {
            if start.elapsed() > budget || n <= 1 {
                break;
            }
            let m = n / 2;
            let mut cand = best.clone();
            cand.lines[i] = if m > 1 { format!("{head} *{m}") } else { head };
            if fires(device, &cand) {
                best = cand;
            } else {
                break;
            }
        }
    }
    best.needs.retain(|n| {
        // `hyp` is needed by an `el2` stream; the others are the stream kinds.
        let word = if *n == "hyp" { "el2" } else { n };
        best.lines
            .iter()
            .any(|l| l.starts_with("stream ") && l.split_whitespace().skip(1).any(|w| w == word))
    });
    best
}

/// Write `text` to `dir/name` atomically: a temporary file in the same directory, flushed, then
/// renamed over the target, so a reader (or a killed campaign) never sees half a case.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A stable short hash of a program's lines, for file names (FNV-1a).
fn fnv(lines: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in lines {
        for b in l.bytes().chain([b'\n']) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// The case file for a finding: a note of what it found and how, then the case.
pub fn finding_case(
    prog: &Program,
    backend: &str,
    rule: &str,
    message: &str,
    seed: u64,
    exec: u64,
    mode: Mode,
) -> (String, String) {
    let name = format!(
        "fuzz-{}-{:08x}",
        rule.to_ascii_lowercase(),
        fnv(&prog.lines) as u32
    );
    let section = smmu_model::rules::by_id(rule)
        .map(|r| r.section)
        .unwrap_or("");
    let file = format!("{name}.case");
    let notes = vec![
        format!("Found by `smmu-conform fuzz --backend {backend} --seed {seed}` (execution {exec}, {} mode), then shrunk.", mode.name()),
        format!("found-on: {backend}"),
        format!("rule: {rule} {section}"),
        format!("finding: {message}"),
    ];
    let doc = format!("{section}: fuzzing found {rule} on {backend}");
    (file, prog.case_text(&name, rule, &doc, &notes))
}

/// The case file for an input that made the harness fail (not shrunk: the device may be
/// wedged, and a harness error is rarely about one line).
fn harness_case(
    prog: &Program,
    backend: &str,
    err: &HarnessError,
    seed: u64,
    exec: u64,
) -> (String, String) {
    let name = format!("harness-error-{:08x}", fnv(&prog.lines) as u32);
    let notes = vec![
        format!("Harness error in `smmu-conform fuzz --backend {backend} --seed {seed}` (execution {exec})."),
        format!("error: {err}"),
    ];
    let rule = smmu_model::rules::all().next().map(|r| r.id).unwrap_or("");
    (
        format!("{name}.case"),
        prog.case_text(&name, rule, "the harness could not run this input", &notes),
    )
}

/// Run a campaign. `progress` is called about four times a second and once at the end;
/// `report` once per saved finding (to print the reproducer as soon as there is one).
pub fn campaign(
    opts: &Options,
    factory: &Factory<'_>,
    progress: &mut dyn FnMut(&Progress),
    report: &mut dyn FnMut(&Saved),
) -> Result<Outcome, HarnessError> {
    let start = Instant::now();
    let mut device = factory()?;
    let mut profile = Profile::from_regs(device.id_regs()?);
    let mut rng = Rng::new(opts.seed);
    let cfg = GenConfig::default();
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
        // Sizes spread from tiny (quick to judge, quick to shrink) to a few KiB of choices.
        // Mostly short inputs: the model's cost grows with the trace, and short ones shrink fast.
        let cap = if rng.next_u64() & 3 == 0 { 4096 } else { 768 };
        let len = 16 + (rng.next_u64() % cap) as usize;
        let data = rng.bytes(len);
        let mode = match opts.modes {
            ModeSel::Fixed(m) => m,
            ModeSel::Mixed => Mode::from_byte(data[0]),
        };
        out.execs += 1;
        let Some((prog, _)) = generate_trace(&data[1..], &profile, mode, &cfg) else {
            continue;
        };
        let (verdict, hits) = judge_new(device.as_mut(), &prog, &opts.known);
        for case in hits {
            *out.known.entry(case).or_insert(0) += 1;
        }
        match verdict {
            Verdict::Clean | Verdict::Invalid => {}
            Verdict::Finding(rule, message) => {
                // One case per rule: the first (shrunk) input is the clearest witness, and a
                // broken rule keeps firing for the rest of the campaign.
                let count = by_rule.entry(rule).or_insert(0);
                *count += 1;
                if *count == 1 {
                    let found_after = start.elapsed();
                    let small =
                        shrink_new(device.as_mut(), &prog, rule, opts.shrink_time, &opts.known);
                    let message = match judge_new(device.as_mut(), &small, &opts.known).0 {
                        Verdict::Finding(_, m) => m,
                        _ => message,
                    };
                    let (file, text) = finding_case(
                        &small,
                        &opts.backend,
                        rule,
                        &message,
                        opts.seed,
                        out.execs,
                        mode,
                    );
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
                        lines_before: prog.lines.len(),
                        lines_after: small.lines.len(),
                    };
                    report(&saved);
                    out.findings.push(saved);
                    if opts.stop_at_first {
                        break;
                    }
                }
            }
            Verdict::Harness(e) => {
                let (file, text) = harness_case(&prog, &opts.backend, &e, opts.seed, out.execs);
                let path = write_atomic(&opts.out, &file, &text).ok();
                out.harness_errors.push((e.to_string(), path));
                // The device may be wedged: start from a fresh one.
                device = factory()?;
                profile = Profile::from_regs(device.id_regs()?);
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

/// Parse a duration such as `60s`, `5m`, `1h`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration '{s}' (e.g. 60s, 5m, 1h)"))?;
    let secs = |k: u64| {
        n.checked_mul(k)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration '{s}' is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        _ => Err(format!("bad duration unit in '{s}' (ms, s, m or h)")),
    }
}

#[cfg(test)]
mod tests;
