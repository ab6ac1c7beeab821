//! The harness: runs a trace on a device and on the model side by side, and turns every
//! observation the architecture forbids into a [`Finding`] that names the rule it breaks.
//!
//! Data flow: a case or a fuzz input becomes a [`Trace`]; each step goes to the device under
//! test and to the [`Model`]; queue observations are judged by the model's queue oracle
//! (`smmu_model::queue::oracle`), probes by the model's translation oracle
//! (`smmu_model::oracle`). The device is only ever asked to do what the trace says.

use crate::backend::{Capabilities, Device, HarnessError, StepOutcome};
use crate::layout::{CMDQ_BASE, CMDQ_LOG2SIZE};
use crate::trace::{Step, Trace};
use serde::Serialize;
use smmu_model::classify::Classifier as CommandClassifier;
use smmu_model::command::{Opcode, RawCommand};
use smmu_model::oracle::{Accepted, Model, Observation, Probe};
use smmu_model::profile::{Profile, Queue};
use smmu_model::queue::oracle::{check, Observation as QueueObs, OracleCtx, Trigger};
use smmu_model::queue::{MsiWrite, QueueMemory, QueueState, Res0Policy};
use smmu_model::rules::Rule;
use smmu_model::structures::StreamTableConfig;
use std::collections::VecDeque;

/// Steps handed to [`Device::run_steps`] at once at most.
const BATCH_STEPS: usize = 512;

/// Whether the device is asked to make this probe at all.
fn asks_device(caps: &Capabilities, write: bool) -> bool {
    caps.translation && (!write || caps.write_probes)
}

/// The device's outcome of step `i`, any step but an acknowledgement (the harness judges the
/// queue before it acknowledges). Such steps go to the device in runs ([`Device::run_steps`]):
/// when nothing is `ahead`, the run of them starting at `i` (probes the device is not asked to
/// make left out) runs now, and its outcomes wait in `ahead`, `None` for a probe not asked.
fn next_outcome(
    device: &mut dyn Device,
    steps: &[Step],
    i: usize,
    caps: &Capabilities,
    ahead: &mut VecDeque<Option<StepOutcome>>,
) -> Result<Option<StepOutcome>, HarnessError> {
    if ahead.is_empty() {
        let run: Vec<&Step> = steps[i..]
            .iter()
            .take(BATCH_STEPS)
            .take_while(|s| !matches!(s, Step::Acknowledge { .. }))
            .collect();
        let asked = |s: &Step| match s {
            Step::Probe { write, .. } => asks_device(caps, *write),
            _ => true,
        };
        let batch: Vec<Step> = run
            .iter()
            .filter(|s| asked(s))
            .map(|&s| s.clone())
            .collect();
        let mut outcomes = device.run_steps(&batch)?.into_iter();
        for s in run {
            ahead.push_back(if asked(s) { outcomes.next() } else { None });
        }
    }
    Ok(ahead.pop_front().flatten())
}

/// Something the device did that the architecture forbids.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Index of the trace step at which it was observed.
    pub step: usize,
    pub rule: &'static Rule,
    pub message: String,
}

/// Counters a report shows: how often the device kept what it could have dropped, and the
/// reverse (over-invalidation or eviction, always legal).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RunStats {
    pub steps: usize,
    pub probes: usize,
    pub probes_fresh: usize,
    /// Probes that observed a stale translation the architecture still allowed.
    pub probes_stale: usize,
    /// Probes where a stale result was allowed but the device showed the fresh one
    /// (over-invalidation or eviction: legal, counted).
    pub fresh_where_stale_allowed: usize,
    pub not_observed: usize,
    pub undecided: usize,
    pub commands: usize,
    pub syncs_completed: usize,
}

/// The outcome of one trace on one device.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub findings: Vec<Finding>,
    pub stats: RunStats,
    /// The profile derived from the device's ID registers.
    pub profile: Profile,
    /// Steps executed (a queue violation stops the trace: later judgments would be guesses).
    pub executed: usize,
}

/// Options for a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Pin the device's RES0 policy (§4.1.5) when it is known; `None` accepts either per command.
    pub res0_policy: Option<Res0Policy>,
}

/// Run `trace` on `device`, judged by a model built from the device's own ID registers.
pub fn run(
    device: &mut dyn Device,
    trace: &Trace,
    opts: RunOptions,
) -> Result<RunResult, HarnessError> {
    run_observed(device, trace, opts, &mut |_, _, _| {})
}

/// [`run`], calling `observer` with the step index, the model and the probe just before each
/// probe is judged. The suite uses it to cross-check a case's hand-written expectations against
/// the model's allowed set at exactly that point (the model state depends on what the device's
/// queue consumed, so it can only be seen from inside the run).
pub fn run_observed(
    device: &mut dyn Device,
    trace: &Trace,
    opts: RunOptions,
    observer: &mut dyn FnMut(usize, &Model, &Probe),
) -> Result<RunResult, HarnessError> {
    device.reset()?;
    let profile = Profile::from_regs(device.id_regs()?);
    let caps = device.capabilities();
    let mut model = Model::new(profile);
    let classifier = CommandClassifier::shared(&profile, Queue::NonSecure);
    let classify = |raw: RawCommand| classifier.classify(raw);
    let ctx = OracleCtx {
        classifier: &classify,
        res0_policy: opts.res0_policy,
    };
    let mut q = QueueState::configured(&profile, CMDQ_BASE, CMDQ_LOG2SIZE);
    q.write_cr0_cmdqen(true);
    let mut qmem = QueueMemory::new();
    let mut findings = Vec::new();
    let mut stats = RunStats::default();
    let mut executed = 0;
    let mut ahead = VecDeque::new();

    for (i, step) in trace.steps.iter().enumerate() {
        executed = i + 1;
        stats.steps += 1;
        match step {
            Step::Write { pa, value } => {
                next_outcome(device, &trace.steps, i, &caps, &mut ahead)?;
                model.write_u64(*pa, *value);
            }
            Step::StreamTable { base, cfg } => {
                next_outcome(device, &trace.steps, i, &caps, &mut ahead)?;
                model.set_stream_table(StreamTableConfig::from_regs(*base, *cfg));
            }
            Step::Enable { on } => {
                next_outcome(device, &trace.steps, i, &caps, &mut ahead)?;
                model.set_smmuen(*on);
            }
            Step::Submit { commands } => {
                stats.commands += commands.len();
                let before = q.clone();
                let prod = qmem.submit(&q, commands);
                q.write_prod(prod);
                let obs = match next_outcome(device, &trace.steps, i, &caps, &mut ahead)? {
                    Some(StepOutcome::Queue(o)) => o,
                    other => return Err(wrong_outcome(device, "a submission", other)),
                };
                let judged = judge_queue(&before, Trigger::Prod(prod), &qmem, &ctx, &obs);
                match apply_queue(judged, &before, &qmem, &mut model, &mut stats) {
                    Ok(after) => q = after,
                    Err((rule, message)) => {
                        findings.push(Finding {
                            step: i,
                            rule,
                            message,
                        });
                        break;
                    }
                }
            }
            Step::Acknowledge { replace, drop } => {
                let mut before = q.clone();
                if let Some(c) = replace {
                    qmem.write_entry(&before, before.cons_rd(), *c);
                }
                if *drop {
                    before.write_prod(before.cons_rd());
                }
                // Acknowledge: make GERRORN.CMDQ_ERR equal GERROR.CMDQ_ERR (§7.1, §6.3.20).
                let gerrorn = (before.read_gerrorn() & !1) | (before.read_gerror() & 1);
                let obs = device.acknowledge(*replace, *drop)?;
                let judged = judge_queue(&before, Trigger::Gerrorn(gerrorn), &qmem, &ctx, &obs);
                match apply_queue(judged, &before, &qmem, &mut model, &mut stats) {
                    Ok(after) => q = after,
                    Err((rule, message)) => {
                        findings.push(Finding {
                            step: i,
                            rule,
                            message,
                        });
                        break;
                    }
                }
            }
            Step::Probe {
                sid,
                ssid,
                addr,
                write,
            } => {
                stats.probes += 1;
                let probe = Probe {
                    sid: *sid,
                    ssid: *ssid,
                    addr: *addr,
                    write: *write,
                };
                observer(i, &model, &probe);
                let obs = match next_outcome(device, &trace.steps, i, &caps, &mut ahead)? {
                    None => Observation::CannotObserve,
                    Some(StepOutcome::Probe(Observation::Fault { .. })) if !caps.fault_events => {
                        Observation::Fault { event: None }
                    }
                    Some(StepOutcome::Probe(o)) => o,
                    other => return Err(wrong_outcome(device, "a probe", other)),
                };
                match model.judge(&probe, &obs) {
                    Ok((Accepted::Fresh, allowed)) => {
                        stats.probes_fresh += 1;
                        if allowed > 1 {
                            stats.fresh_where_stale_allowed += 1;
                        }
                    }
                    Ok((Accepted::Stale, _)) => stats.probes_stale += 1,
                    Ok((Accepted::NotObserved, _)) => stats.not_observed += 1,
                    Ok((Accepted::Undecided, _)) => stats.undecided += 1,
                    Err(v) => findings.push(Finding {
                        step: i,
                        rule: v.rule,
                        message: v.message,
                    }),
                }
            }
        }
    }
    Ok(RunResult {
        findings,
        stats,
        profile,
        executed,
    })
}

/// A backend's `run_steps` reported the wrong kind of outcome for a step.
fn wrong_outcome(device: &dyn Device, what: &str, got: Option<StepOutcome>) -> HarnessError {
    HarnessError::Protocol {
        backend: device.name(),
        during: "run_steps".into(),
        detail: format!("{what} reported {got:?}"),
    }
}

fn judge_queue(
    before: &QueueState,
    trigger: Trigger,
    qmem: &QueueMemory,
    ctx: &OracleCtx<'_>,
    obs: &crate::backend::QueueObservation,
) -> Result<smmu_model::queue::oracle::Accepted, smmu_model::queue::oracle::QueueViolation> {
    let qobs = QueueObs {
        cons: obs.cons,
        gerror: obs.gerror,
        msi_writes: obs
            .msi_writes
            .iter()
            .map(|&(addr, data)| MsiWrite {
                addr,
                data,
                attr: 0,
                msh: 0,
            })
            .collect(),
        wired_irqs: obs.wired_irqs,
        sev_events: obs.sev_events,
        executed: Vec::new(),
        settled: true,
    };
    check(before, trigger, qmem, ctx, &qobs)
}

/// Feed what the queue oracle says was consumed to the model, in order: invalidations take
/// effect at consumption (pending) and complete at the next completed SYNC (§4.7.3).
fn apply_queue(
    judged: Result<smmu_model::queue::oracle::Accepted, smmu_model::queue::oracle::QueueViolation>,
    before: &QueueState,
    qmem: &QueueMemory,
    model: &mut Model,
    stats: &mut RunStats,
) -> Result<QueueState, (&'static Rule, String)> {
    let acc = judged.map_err(|v| (v.rule, v.message))?;
    for rd in &acc.consumed {
        let Some(raw) = qmem.entries.get(&before.entry_pa(*rd)).copied() else {
            continue;
        };
        if raw.opcode() == Opcode::Sync {
            if acc.completed_syncs.contains(rd) {
                model.complete_sync();
                stats.syncs_completed += 1;
            }
        } else {
            // The queue oracle already rejected consumption of a command that must be ILLEGAL.
            let _ = model.consume(raw);
        }
    }
    Ok(acc.after)
}
