//! The oracle: which outcomes of a register write the architecture permits (§3.5.1, §4.1.2,
//! §4.1.5, §4.7.3, §6.3.28, §7.1, §7.5), and a checker naming the rule an observation breaks.
//!
//! The only freedoms modelled are the architecture's: a RES0-set command may raise CERROR_ILL or
//! be ignored (§4.1.5) unless the caller pins the policy; a SYNC after an outstanding ATC_INV may
//! raise CERROR_ATC_INV_SYNC (§4.7.3); CONS may lag behind processing until the observation is
//! settled (§6.3.28); wired interrupts and SEV events may coalesce.

use super::{
    effective_classification, err_code_name, interpret, sync_signal, Classifier, CmdError,
    Geometry, GerrornEffect, MsiWrite, QueueState, RaisedError, Res0Policy, SyncSignal,
    CONS_ERR_MASK, CONS_ERR_SHIFT, GERROR_CMDQ_ERR, GERROR_MSI_CMDQ_ABT_ERR, PTR_FIELD_MASK,
};
use crate::classify::{Classification, Verdict};
use crate::command::{Opcode, RawCommand};
use crate::rules::queue as r;
use crate::rules::Rule;
use serde::Serialize;

/// The register write whose outcome is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Trigger {
    /// No write: check the state as it stands (e.g. after a memory rewrite).
    None,
    /// SMMU_CMDQ_PROD write (§6.3.27).
    Prod(u32),
    /// SMMU_GERRORN write (§6.3.20).
    Gerrorn(u32),
    /// SMMU_CR0.CMDQEN write (§6.3.9.3).
    Cmdqen(bool),
}

/// How commands are judged.
#[derive(Clone, Copy)]
pub struct OracleCtx<'a> {
    pub classifier: &'a dyn Classifier,
    /// The implementation's RES0 policy if known; `None` accepts either choice per command
    /// (§4.1.5).
    pub res0_policy: Option<Res0Policy>,
}

/// What was observed after the trigger. Collect signals and MSI writes first and read CONS and
/// GERROR last: seeing a completion signal implies CONS shows the SYNC consumed (§4.7.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// SMMU_CMDQ_CONS as read.
    pub cons: u32,
    /// SMMU_GERROR as read.
    pub gerror: u32,
    /// CMD_SYNC MSI writes seen, in order.
    pub msi_writes: Vec<MsiWrite>,
    /// Wired CMD_SYNC interrupt events seen (may coalesce).
    pub wired_irqs: u32,
    /// SEV wake-up events seen (may coalesce).
    pub sev_events: u32,
    /// RD values of commands the harness knows took effect (e.g. from an emulator trace); empty
    /// when unknown.
    pub executed: Vec<u32>,
    /// The SMMU has had time to finish: CONS must have reached its stop point (§6.3.28).
    pub settled: bool,
}

impl Observation {
    pub fn settled(cons: u32, gerror: u32) -> Observation {
        Observation {
            cons,
            gerror,
            settled: true,
            ..Observation::default()
        }
    }
    pub fn unsettled(cons: u32, gerror: u32) -> Observation {
        Observation {
            cons,
            gerror,
            settled: false,
            ..Observation::default()
        }
    }
}

/// How many entries past PROD the oracle reads to explain a signal from a SYNC never submitted.
pub const DIAG_BEYOND_PROD: u32 = 256;

const E_ILL: u8 = 1 << 0;
const E_ABT: u8 = 1 << 1;
const E_ATC: u8 = 1 << 2;

fn err_bit(e: CmdError) -> u8 {
    match e {
        CmdError::Ill => E_ILL,
        CmdError::Abt => E_ABT,
        CmdError::AtcInvSync => E_ATC,
    }
}

/// One entry between CONS and the first point where processing must stop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// RD value (index and wrap).
    pub rd: u32,
    /// The entry, or `None` when its fetch aborts.
    pub raw: Option<RawCommand>,
    pub classification: Option<Classification>,
    /// Processing may consume this command and go on.
    pub may_continue: bool,
    /// Error codes this command may raise (bitset of ILL/ABT/ATC_INV_SYNC).
    errors: u8,
    /// Why it may not be consumed.
    pub must_stop_rule: Option<&'static Rule>,
    /// Why it may not raise an error, when it may not.
    pub no_error_rule: &'static Rule,
    /// For a SYNC that may complete: its completion signal and wired output.
    pub sync: Option<(SyncSignal, bool)>,
}

impl Step {
    pub fn may_raise(&self, e: CmdError) -> bool {
        self.errors & err_bit(e) != 0
    }
    pub fn allowed_errors(&self) -> Vec<CmdError> {
        [CmdError::Ill, CmdError::Abt, CmdError::AtcInvSync]
            .into_iter()
            .filter(|e| self.may_raise(*e))
            .collect()
    }
    fn opcode_name(&self) -> String {
        match self.raw {
            Some(c) => c.opcode().to_string(),
            None => "unfetchable entry".to_string(),
        }
    }
}

/// Every permitted outcome of a trigger, as the path of commands from CONS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllowedOutcomes {
    /// The state after the trigger was applied, before any processing.
    pub armed: QueueState,
    /// CONS.RD where processing starts.
    pub start: u32,
    /// Commands between CONS and PROD.
    pub pending: u32,
    /// Entries from CONS up to and including the first that cannot be consumed.
    pub steps: Vec<Step>,
    /// The SYNCs from CONS onwards with the signal each would send, whether or not they may be
    /// reached, including up to [`DIAG_BEYOND_PROD`] entries past PROD; used only to explain a
    /// signal sent for an unconsumed SYNC.
    pub all_syncs: Vec<(u32, SyncSignal, bool)>,
    /// The entry at CONS.RD (for messages), `None` if its fetch aborts or nothing is pending.
    pub first: Option<RawCommand>,
    /// `None` when processing runs; otherwise the rule that keeps the queue stopped.
    pub stopped_by: Option<&'static Rule>,
    /// The trigger or queue state is CONSTRAINED UNPREDICTABLE: nothing is asserted.
    pub unconstrained: Option<&'static str>,
    /// The trigger was a GERRORN write that acknowledged CMDQ_ERR (§7.1).
    pub restart: bool,
}

/// Apply `trigger` to `before` and list what may happen next.
pub fn allowed_outcomes(
    before: &QueueState,
    trigger: Trigger,
    mem: &impl super::CommandMemory,
    ctx: &OracleCtx<'_>,
) -> AllowedOutcomes {
    let mut armed = before.clone();
    let mut unconstrained = None;
    let mut restart = false;
    match trigger {
        Trigger::None => {}
        Trigger::Prod(v) => armed.write_prod(v),
        Trigger::Cmdqen(en) => armed.write_cr0_cmdqen(en),
        Trigger::Gerrorn(v) => match armed.write_gerrorn(v) {
            GerrornEffect::Acknowledged => restart = true,
            GerrornEffect::Unchanged => {}
            GerrornEffect::Unpredictable => {
                unconstrained = Some(
                    "GERRORN.CMDQ_ERR toggled while the error was inactive is CONSTRAINED \
                     UNPREDICTABLE (§6.3.20)",
                )
            }
        },
    }
    let g = armed.geometry();
    let start = armed.cons_rd();
    let pending = match g.pending(armed.prod_wr(), start) {
        Some(p) => p,
        None => {
            unconstrained.get_or_insert(
                "PROD and CONS are more than 2^QS entries apart, which is CONSTRAINED \
                 UNPREDICTABLE (§3.5.1)",
            );
            0
        }
    };
    let stopped_by = if !armed.cmdqen() {
        Some(&r::STOPPED_WHILE_DISABLED)
    } else if armed.cmdq_err_active() {
        Some(&r::STOPPED_WHILE_ERROR)
    } else {
        None
    };

    let mut steps = Vec::new();
    let mut all_syncs = Vec::new();
    let mut atc_outstanding = armed.atc_inv_outstanding();
    let mut path_open = stopped_by.is_none();
    let mut rd = start;
    let first = mem.read_command(armed.entry_pa(start)).ok();
    // Bounded by the queue size: `pending` <= 2^QS, plus a bounded diagnostic look past PROD.
    let scan = (pending + DIAG_BEYOND_PROD).min(g.entries());
    for i in 0..scan {
        let fetched = mem.read_command(armed.entry_pa(rd)).ok();
        if i >= pending {
            if let Some(raw) = fetched.filter(|c| c.opcode() == Opcode::Sync) {
                all_syncs.push((rd, sync_signal(&armed, raw).0, false));
            }
            rd = g.incr(rd);
            continue;
        }
        let cls = fetched.map(|raw| effective_classification(ctx.classifier, raw));
        if let (Some(raw), Some(c)) = (fetched, cls) {
            if raw.opcode() == Opcode::Sync && !matches!(c.verdict, Verdict::Illegal(_)) {
                let cmd = interpret(&c, raw, Res0Policy::Ignore).unwrap_or(raw);
                let (s, w) = sync_signal(&armed, cmd);
                all_syncs.push((rd, s, w));
            }
        }
        if path_open {
            let step = make_step(&armed, rd, fetched, cls, ctx.res0_policy, atc_outstanding);
            if step.may_continue {
                match fetched.map(|c| c.opcode()) {
                    Some(Opcode::Sync) => atc_outstanding = false,
                    Some(Opcode::AtcInv) => atc_outstanding = true,
                    _ => {}
                }
            } else {
                path_open = false;
            }
            steps.push(step);
        }
        rd = g.incr(rd);
    }
    AllowedOutcomes {
        armed,
        start,
        pending,
        steps,
        all_syncs,
        first,
        stopped_by,
        unconstrained,
        restart,
    }
}

fn make_step(
    q: &QueueState,
    rd: u32,
    raw: Option<RawCommand>,
    cls: Option<Classification>,
    policy: Option<Res0Policy>,
    atc_outstanding: bool,
) -> Step {
    let mut step = Step {
        rd,
        raw,
        classification: cls,
        may_continue: true,
        errors: 0,
        must_stop_rule: None,
        no_error_rule: &r::NO_SPURIOUS_ERROR,
        sync: None,
    };
    let (Some(raw), Some(cls)) = (raw, cls) else {
        step.may_continue = false;
        step.errors = E_ABT;
        step.must_stop_rule = Some(&r::ABT_CONS_NOT_ADVANCED);
        return step;
    };
    match cls.verdict {
        Verdict::Legal => {}
        Verdict::Illegal(_) => {
            step.may_continue = false;
            step.errors = E_ILL;
            step.must_stop_rule = Some(&r::CONS_STOPS_AT_ILL);
        }
        Verdict::ReservedFieldSet => match policy {
            Some(Res0Policy::Ill) => {
                step.may_continue = false;
                step.errors = E_ILL;
                step.must_stop_rule = Some(&r::RES0_ILL_OR_IGNORE);
            }
            Some(Res0Policy::Ignore) => step.no_error_rule = &r::RES0_ILL_OR_IGNORE,
            None => step.errors = E_ILL,
        },
    }
    // Outcomes the architecture leaves open: ATC_INV with Size > 52 may raise CERROR_ILL
    // (§4.5.1); an IMPLEMENTATION DEFINED opcode may do anything, including being consumed
    // (§4.1.1).
    if cls.flags.has(crate::classify::Flags::UNKNOWN_SPAN) {
        step.errors |= E_ILL;
    }
    if cls.flags.has(crate::classify::Flags::IMPDEF) {
        step.may_continue = true;
        step.errors |= E_ILL;
        step.must_stop_rule = None;
    }
    if step.may_continue && raw.opcode() == Opcode::Sync {
        if atc_outstanding {
            step.errors |= E_ATC;
        }
        let cmd = interpret(&cls, raw, Res0Policy::Ignore).unwrap_or(raw);
        step.sync = Some(sync_signal(q, cmd));
    }
    step
}

/// An observation the architecture forbids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct QueueViolation {
    pub rule: &'static Rule,
    /// One sentence: which command, what was seen, what was required, and the rule.
    pub message: String,
    /// RD value of the command concerned, if one is.
    pub index: Option<u32>,
}

/// A permitted observation, interpreted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// RD values of the consumed commands, in order.
    pub consumed: Vec<u32>,
    /// RD values of the SYNCs that completed (consumed SYNCs).
    pub completed_syncs: Vec<u32>,
    /// The error reported, if any.
    pub error: Option<RaisedError>,
    /// The state matching the observation: the next trigger's `before`.
    pub after: QueueState,
    /// Set when nothing was asserted because the situation is CONSTRAINED UNPREDICTABLE.
    pub unconstrained: Option<&'static str>,
}

struct Cx<'a> {
    g: Geometry,
    a: &'a AllowedOutcomes,
}

impl Cx<'_> {
    fn at(&self, rd: u32) -> String {
        self.g.describe(rd)
    }
    fn step_desc(&self, s: &Step) -> String {
        format!("{} ({})", self.at(s.rd), s.opcode_name())
    }
    fn violation(&self, rule: &'static Rule, index: Option<u32>, msg: String) -> QueueViolation {
        QueueViolation {
            rule,
            message: format!("{msg} ({}, {})", rule.id, rule.section),
            index,
        }
    }
}

/// Check `observed` against every outcome `trigger` permits from `before`.
pub fn check(
    before: &QueueState,
    trigger: Trigger,
    mem: &impl super::CommandMemory,
    ctx: &OracleCtx<'_>,
    observed: &Observation,
) -> Result<Accepted, QueueViolation> {
    let a = allowed_outcomes(before, trigger, mem, ctx);
    check_allowed(&a, observed)
}

/// [`check`] against outcomes already computed.
pub fn check_allowed(a: &AllowedOutcomes, obs: &Observation) -> Result<Accepted, QueueViolation> {
    let g = a.armed.geometry();
    let cx = Cx { g, a };
    let mut after = a.armed.clone();
    if let Some(why) = a.unconstrained {
        after.set_observed(obs.cons, obs.gerror);
        return Ok(Accepted {
            consumed: Vec::new(),
            completed_syncs: Vec::new(),
            error: None,
            after,
            unconstrained: Some(why),
        });
    }

    // CONS.RD bits above the wrap flag are RAZ (§6.3.28).
    let raw_rd = obs.cons & PTR_FIELD_MASK;
    if raw_rd & !g.ptr_mask() != 0 {
        return Err(cx.violation(
            &r::CONS_RD_RAZ,
            None,
            format!(
                "CMDQ_CONS.RD read 0x{raw_rd:05x}, but with LOG2SIZE {} bits [19:{}] must read \
                 as zero",
                g.qs(),
                g.qs() + 1
            ),
        ));
    }
    let obs_rd = raw_rd;
    let err_code = ((obs.cons & CONS_ERR_MASK) >> CONS_ERR_SHIFT) as u8;
    let gchange = obs.gerror ^ a.armed.read_gerror();
    let toggled = gchange & GERROR_CMDQ_ERR != 0;
    let abt_toggled = gchange & GERROR_MSI_CMDQ_ABT_ERR != 0;
    let d = g.distance(a.start, obs_rd);

    // Stopped queue: nothing may move (§7.5, §6.3.9.3).
    if let Some(rule) = a.stopped_by {
        let first = match a.first {
            Some(c) if a.pending > 0 => format!("{} ({})", cx.at(a.start), c.opcode()),
            _ => cx.at(a.start),
        };
        let why = if rule == &r::STOPPED_WHILE_ERROR {
            "GERROR.CMDQ_ERR is active"
        } else {
            "CR0.CMDQEN == 0"
        };
        if d != 0 {
            return Err(cx.violation(
                rule,
                Some(a.start),
                format!(
                    "CONS.RD moved from {} to {} while {why}, so commands were consumed from {first} \
                     although the queue is stopped",
                    cx.at(a.start),
                    cx.at(obs_rd)
                ),
            ));
        }
        if toggled {
            let rule = if a.armed.cmdq_err_active() {
                &r::GERROR_ONLY_WHEN_INACTIVE
            } else {
                rule
            };
            return Err(cx.violation(
                rule,
                Some(a.start),
                format!(
                    "GERROR.CMDQ_ERR toggled while {why}, but a stopped queue fetches nothing \
                     and only software (via GERRORN) may end an active error"
                ),
            ));
        }
        if !obs.msi_writes.is_empty() || obs.wired_irqs > 0 || obs.sev_events > 0 {
            return Err(cx.violation(
                rule,
                Some(a.start),
                format!("a CMD_SYNC completion signal was seen while {why}, so no SYNC can have completed"),
            ));
        }
        if let Some(e) = obs.executed.first() {
            return Err(cx.violation(
                rule,
                Some(*e),
                format!("the command at {} took effect while {why}", cx.at(*e)),
            ));
        }
        after.set_observed(obs.cons, obs.gerror);
        return Ok(Accepted {
            consumed: Vec::new(),
            completed_syncs: Vec::new(),
            error: None,
            after,
            unconstrained: None,
        });
    }

    // Where processing would stop if every command that may be consumed is.
    let reach = a.steps.iter().take_while(|s| s.may_continue).count() as u32;
    let natural_stop = (0..reach).fold(a.start, |p, _| g.incr(p));

    // CONS beyond PROD or beyond the first command that must stop processing.
    if d > a.pending {
        let (rule, msg) = if g.index(obs_rd) == g.index(natural_stop) {
            (
                &r::WRAP_FLAG,
                format!(
                    "CONS.RD reads {} but processing stops at {}: the index is right and the wrap \
                     flag (bit {}) is wrong",
                    cx.at(obs_rd),
                    cx.at(natural_stop),
                    g.qs()
                ),
            )
        } else {
            (
                &r::NO_PAST_PROD,
                format!(
                    "CONS.RD reads {}, beyond PROD.WR {} ({} commands were submitted from {})",
                    cx.at(obs_rd),
                    cx.at(a.armed.prod_wr()),
                    a.pending,
                    cx.at(a.start)
                ),
            )
        };
        return Err(cx.violation(rule, None, msg));
    }
    for s in a.steps.iter().take(d as usize) {
        if !s.may_continue {
            let rule = s.must_stop_rule.unwrap_or(&r::CONS_STOPS_AT_ILL);
            let why = match (s.raw, s.classification.map(|c| c.verdict)) {
                (None, _) => "its fetch aborts and must raise CERROR_ABT".to_string(),
                (Some(_), Some(Verdict::Illegal(cause))) => format!(
                    "it must raise CERROR_ILL ({}, {}: {})",
                    cause.id, cause.section, cause.summary
                ),
                _ => {
                    "it has RES0 bits set and the implementation's policy is CERROR_ILL".to_string()
                }
            };
            return Err(cx.violation(
                rule,
                Some(s.rd),
                format!(
                    "CONS.RD moved past {} to {}, but {why}",
                    cx.step_desc(s),
                    cx.at(obs_rd)
                ),
            ));
        }
    }
    let stop_step = a.steps.get(d as usize).filter(|_| d < a.pending);

    let mut error = None;
    if toggled {
        // An error is reported: CONS.RD points at the command that raised it (§7.1).
        let Some(s) = stop_step else {
            return Err(cx.violation(
                &r::NO_SPURIOUS_ERROR,
                None,
                format!(
                    "GERROR.CMDQ_ERR was toggled with CONS.RD at {}, which is PROD.WR, so there is \
                     no command that could have raised {}",
                    cx.at(obs_rd),
                    err_code_name(err_code)
                ),
            ));
        };
        let Some(e) = CmdError::from_code(err_code).filter(|e| s.may_raise(*e)) else {
            let allowed = s.allowed_errors();
            if allowed.is_empty() {
                let rule = if s.raw.map(|c| c.opcode()) == Some(Opcode::Sync)
                    && err_code == CmdError::AtcInvSync.code()
                {
                    &r::ATC_INV_SYNC_AT_SYNC
                } else {
                    s.no_error_rule
                };
                return Err(cx.violation(
                    rule,
                    Some(s.rd),
                    format!(
                        "an error ({}) was reported with CONS.RD at {}, but that command is legal, \
                         its fetch succeeds and it cannot raise CERROR_ATC_INV_SYNC, so it must be \
                         consumed",
                        err_code_name(err_code),
                        cx.step_desc(s)
                    ),
                ));
            }
            let rule = if err_code == CmdError::AtcInvSync.code() {
                &r::ATC_INV_SYNC_AT_SYNC
            } else {
                &r::ERR_CODE
            };
            let names: Vec<&str> = allowed.iter().map(|e| e.name()).collect();
            return Err(cx.violation(
                rule,
                Some(s.rd),
                format!(
                    "CONS.ERR reads {} for {}, but that command can only raise {}",
                    err_code_name(err_code),
                    cx.step_desc(s),
                    names.join(" or ")
                ),
            ));
        };
        error = Some(RaisedError { rd: s.rd, error: e });
    } else if obs.settled {
        // Settled without an error: CONS must have reached PROD (§6.3.28), and a command that
        // must stop processing must have raised its error (§7.1).
        if let Some(s) = stop_step {
            let (rule, msg) = if !s.may_continue {
                let code = s.allowed_errors().first().map(|e| e.name()).unwrap_or("");
                let seen = if err_code != 0 {
                    format!(" (CONS.ERR reads {})", err_code_name(err_code))
                } else {
                    String::new()
                };
                (
                    &r::GERROR_TOGGLE,
                    format!(
                        "CONS.RD stopped at {} which must raise {code}, but GERROR.CMDQ_ERR was not \
                         toggled{seen}; the error must be activated once ERR is written",
                        cx.step_desc(s)
                    ),
                )
            } else if g.is_full(a.armed.prod_wr(), a.start) && d == 0 {
                (
                    &r::WRAP_FLAG,
                    format!(
                        "the queue was full (PROD.WR {} and CONS.RD {} differ only in the wrap flag) \
                         but nothing was consumed, as if the wrap flag were ignored and the queue \
                         seen empty",
                        cx.at(a.armed.prod_wr()),
                        cx.at(a.start)
                    ),
                )
            } else if a.restart && d == 0 {
                (
                    &r::RESTART_ON_ACK,
                    format!(
                        "CMDQ_ERR was acknowledged through GERRORN but processing did not restart: \
                         CONS.RD is still at {}, which must be re-fetched and consumed",
                        cx.step_desc(s)
                    ),
                )
            } else {
                (
                    &r::CONS_REACHES_STOP,
                    format!(
                        "the settled CONS.RD is {} ({}), which is consumable, with no error reported; \
                         CONS must reach {}",
                        cx.at(s.rd),
                        s.opcode_name(),
                        cx.at(natural_stop)
                    ),
                )
            };
            return Err(cx.violation(rule, Some(s.rd), msg));
        }
    }

    // Consumed SYNCs and their signals.
    let consumed_steps = &a.steps[..d as usize];
    let consumed: Vec<u32> = consumed_steps.iter().map(|s| s.rd).collect();
    let syncs: Vec<(u32, SyncSignal, bool)> = consumed_steps
        .iter()
        .filter_map(|s| s.sync.map(|(sig, w)| (s.rd, sig, w)))
        .collect();
    check_signals(&cx, obs, &syncs, error, abt_toggled)?;

    // Commands known to have taken effect.
    for e in &obs.executed {
        let ok = consumed.contains(e)
            || matches!(error, Some(RaisedError { rd, error: CmdError::AtcInvSync }) if rd == *e)
            || (!obs.settled
                && error.is_none()
                && a.steps.iter().take(reach as usize).any(|s| s.rd == *e));
        if !ok {
            let (rule, why) = match error {
                Some(err) => (
                    &r::NO_EXECUTION_PAST_STOP,
                    format!(
                        "processing stopped with {} at {}",
                        err.error.name(),
                        cx.at(err.rd)
                    ),
                ),
                None if g.distance(a.start, *e) >= a.pending => (
                    &r::NO_PAST_PROD,
                    format!(
                        "it is not between CONS.RD and PROD.WR {}",
                        cx.at(a.armed.prod_wr())
                    ),
                ),
                None => (
                    &r::NO_EXECUTION_PAST_STOP,
                    format!("it was not consumed (CONS.RD is {})", cx.at(obs_rd)),
                ),
            };
            return Err(cx.violation(
                rule,
                Some(*e),
                format!("the command at {} took effect, but {why}", cx.at(*e)),
            ));
        }
    }

    // The state the observation leaves.
    after.set_observed(obs.cons, obs.gerror);
    let mut atc = a.armed.atc_inv_outstanding();
    for s in consumed_steps {
        match s.raw.map(|c| c.opcode()) {
            Some(Opcode::Sync) => atc = false,
            Some(Opcode::AtcInv) => atc = true,
            _ => {}
        }
    }
    after.set_atc_inv_outstanding(atc);
    Ok(Accepted {
        consumed,
        completed_syncs: syncs.iter().map(|s| s.0).collect(),
        error,
        after,
        unconstrained: None,
    })
}

fn check_signals(
    cx: &Cx<'_>,
    obs: &Observation,
    syncs: &[(u32, SyncSignal, bool)],
    error: Option<RaisedError>,
    abt_toggled: bool,
) -> Result<(), QueueViolation> {
    let a = cx.a;
    let expected: Vec<(u32, MsiWrite)> = syncs
        .iter()
        .filter_map(|(rd, s, _)| match s {
            SyncSignal::Msi(w) => Some((*rd, *w)),
            _ => None,
        })
        .collect();
    let same = |x: &MsiWrite, y: &MsiWrite| x.addr == y.addr && x.data == y.data;
    let consumed_rds: Vec<u32> = syncs.iter().map(|s| s.0).collect();
    let stopped_note = match error {
        Some(e) => format!(
            "processing stopped with {} at {}",
            e.error.name(),
            cx.at(e.rd)
        ),
        None => format!(
            "CONS.RD shows only the commands before {} consumed",
            cx.at(cx.g.incr(consumed_rds.last().copied().unwrap_or(a.start)))
        ),
    };

    if abt_toggled {
        if a.armed.msi_cmdq_abt_err_active() {
            return Err(cx.violation(
                &r::GERROR_ONLY_WHEN_INACTIVE,
                None,
                "GERROR.MSI_CMDQ_ABT_ERR toggled while already active, which deactivates it; only \
                 software may do that through GERRORN"
                    .to_string(),
            ));
        }
        if expected.is_empty() {
            return Err(cx.violation(
                &r::MSI_CMDQ_ABT_ERR,
                None,
                "GERROR.MSI_CMDQ_ABT_ERR was activated but no consumed CMD_SYNC sends an MSI"
                    .to_string(),
            ));
        }
    }

    let mut j = 0usize;
    for w in &obs.msi_writes {
        let matched = if abt_toggled {
            // Aborted writes are missing; the rest arrive in SYNC order (§4.7.3).
            match expected[j..].iter().position(|(_, e)| same(e, w)) {
                Some(k) => {
                    j += k + 1;
                    true
                }
                None => false,
            }
        } else if expected.get(j).is_some_and(|(_, e)| same(e, w)) {
            j += 1;
            true
        } else {
            false
        };
        if matched {
            continue;
        }
        // Explain the unexpected write.
        let later = a.all_syncs.iter().find(|(rd, s, _)| {
            !consumed_rds.contains(rd) && matches!(s, SyncSignal::Msi(e) if same(e, w))
        });
        if let Some((rd, _, _)) = later {
            if cx.g.distance(a.start, *rd) >= a.pending {
                return Err(cx.violation(
                    &r::NO_PAST_PROD,
                    Some(*rd),
                    format!(
                        "an MSI (data 0x{:08x} to 0x{:x}) for the CMD_SYNC at {} was seen, but that \
                         entry is at or beyond PROD.WR {}",
                        w.data,
                        w.addr,
                        cx.at(*rd),
                        cx.at(a.armed.prod_wr())
                    ),
                ));
            }
            return Err(cx.violation(
                &r::SYNC_SIGNAL_ONLY_CONSUMED,
                Some(*rd),
                format!(
                    "an MSI (data 0x{:08x} to 0x{:x}) for the CMD_SYNC at {} was seen, but that SYNC \
                     was not consumed: {stopped_note}",
                    w.data,
                    w.addr,
                    cx.at(*rd)
                ),
            ));
        }
        if let Some((rd, e)) = expected.get(j) {
            return Err(cx.violation(
                &r::SYNC_MSI_WRITE,
                Some(*rd),
                format!(
                    "the CMD_SYNC at {} must write data 0x{:08x} to 0x{:x} (MSIAddress truncated to \
                     {} bits), but the MSI seen wrote 0x{:08x} to 0x{:x}",
                    cx.at(*rd),
                    e.data,
                    e.addr,
                    a.armed.oas_bits,
                    w.data,
                    w.addr
                ),
            ));
        }
        let irq_sync = syncs
            .iter()
            .find(|(_, s, _)| !matches!(s, SyncSignal::Msi(_)));
        let why = if !a.armed.msi {
            "IDR0.MSI == 0, so MSIAddress and MSIData are IGNORED"
        } else {
            "no consumed CMD_SYNC has CS == SIG_IRQ with a non-zero MSIAddress"
        };
        return Err(cx.violation(
            &r::SYNC_NO_UNREQUESTED_SIGNAL,
            irq_sync.map(|s| s.0),
            format!(
                "an MSI (data 0x{:08x} to 0x{:x}) was seen, but {why}",
                w.data, w.addr
            ),
        ));
    }
    if obs.settled && !abt_toggled {
        if let Some((rd, e)) = expected.get(j) {
            return Err(cx.violation(
                &r::SYNC_SIGNAL_SENT,
                Some(*rd),
                format!(
                    "the CMD_SYNC at {} was consumed with CS == SIG_IRQ and MSIAddress != 0, but its \
                     MSI (data 0x{:08x} to 0x{:x}) was not seen",
                    cx.at(*rd),
                    e.data,
                    e.addr
                ),
            ));
        }
    }

    // Wired interrupts and SEV events may coalesce: at most one per SYNC, at least one if any.
    for (kind, seen, want, any_later) in [
        (
            "wired CMD_SYNC interrupt",
            obs.wired_irqs,
            syncs.iter().filter(|s| s.2).count() as u32,
            a.all_syncs
                .iter()
                .any(|s| s.2 && !consumed_rds.contains(&s.0)),
        ),
        (
            "SEV event",
            obs.sev_events,
            syncs.iter().filter(|s| s.1 == SyncSignal::Sev).count() as u32,
            a.all_syncs
                .iter()
                .any(|s| s.1 == SyncSignal::Sev && !consumed_rds.contains(&s.0)),
        ),
    ] {
        if seen > want {
            let (rule, why) = if any_later {
                (
                    &r::SYNC_SIGNAL_ONLY_CONSUMED,
                    format!("the SYNCs requesting it were not consumed: {stopped_note}"),
                )
            } else if kind == "SEV event" && !a.armed.sev {
                (
                    &r::SYNC_NO_UNREQUESTED_SIGNAL,
                    "IDR0.SEV == 0 makes SIG_SEV act as SIG_NONE".to_string(),
                )
            } else {
                (
                    &r::SYNC_NO_UNREQUESTED_SIGNAL,
                    "no consumed CMD_SYNC requests it".to_string(),
                )
            };
            return Err(cx.violation(
                rule,
                None,
                format!("{seen} {kind}(s) were seen but only {want} may be sent, since {why}"),
            ));
        }
        if obs.settled && want > 0 && seen == 0 {
            return Err(cx.violation(
                &r::SYNC_SIGNAL_SENT,
                syncs.first().map(|s| s.0),
                format!("{want} consumed CMD_SYNC(s) request a {kind} but none was seen"),
            ));
        }
    }
    Ok(())
}
