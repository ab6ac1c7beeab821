//! Deterministic Command queue processing: the behaviour of one implementation, used by the
//! reference emulator (§4.1.2, §7.1, §4.7.3). Every choice the architecture leaves open is made
//! explicitly and documented; the oracle accepts every such choice.

use super::{
    effective_classification, interpret, sync_signal, Classifier, CmdError, QueueState, Res0Policy,
    SyncSignal,
};
use crate::classify::Classification;
use crate::command::{Opcode, RawCommand};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// An external abort on a command fetch (§7.1: reported as CERROR_ABT; a GPC fault on the queue
/// is reported the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchAbort;

/// Where commands are fetched from: 16 bytes at a PA.
pub trait CommandMemory {
    fn read_command(&self, pa: u64) -> Result<RawCommand, FetchAbort>;
}

/// A sparse memory of queue entries. Unwritten entries read as zero (opcode 0x00 is Reserved,
/// so an unwritten entry is CERROR_ILL rather than silently executed); PAs in `aborts` fail.
#[derive(Clone, Debug, Default)]
pub struct QueueMemory {
    pub entries: BTreeMap<u64, RawCommand>,
    pub aborts: BTreeSet<u64>,
}

impl QueueMemory {
    pub fn new() -> QueueMemory {
        QueueMemory::default()
    }
    pub fn write(&mut self, pa: u64, c: RawCommand) {
        self.entries.insert(pa, c);
    }
    /// Write the entry `p` (an RD/WR value) of `q`.
    pub fn write_entry(&mut self, q: &QueueState, p: u32, c: RawCommand) {
        self.write(q.entry_pa(p), c);
    }
    pub fn abort_entry(&mut self, q: &QueueState, p: u32) {
        self.aborts.insert(q.entry_pa(p));
    }
    /// Write `cmds` at PROD onwards and return the PROD value that submits them.
    pub fn submit(&mut self, q: &QueueState, cmds: &[RawCommand]) -> u32 {
        let g = q.geometry();
        let mut p = q.prod_wr();
        for c in cmds {
            self.write_entry(q, p, *c);
            p = g.incr(p);
        }
        p
    }
}

impl CommandMemory for QueueMemory {
    fn read_command(&self, pa: u64) -> Result<RawCommand, FetchAbort> {
        if self.aborts.contains(&pa) {
            return Err(FetchAbort);
        }
        Ok(self.entries.get(&pa).copied().unwrap_or_default())
    }
}

/// What the emulator reports after executing a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CmdAction {
    Continue,
    /// For a CMD_SYNC: an earlier ATC_INV could not be completed (§4.7.3). Ignored for other
    /// commands, and for a SYNC with no ATC_INV outstanding (there is nothing to report, and the
    /// oracle would reject the error).
    AtcInvSyncError,
}

/// A consumed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Consumed {
    /// RD value (index and wrap) of the entry.
    pub rd: u32,
    /// The entry as fetched.
    pub raw: RawCommand,
    /// The command as executed (RES0 bits dropped under [`Res0Policy::Ignore`]).
    pub executed: RawCommand,
    pub classification: Classification,
}

/// A completed CMD_SYNC and its completion signal (§4.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SyncCompletion {
    pub rd: u32,
    pub signal: SyncSignal,
    /// The wired interrupt output is asserted (SIG_IRQ on an implementation with one).
    pub wired_irq: bool,
}

/// The error that stopped processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RaisedError {
    pub rd: u32,
    pub error: CmdError,
}

/// Why processing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Stop {
    /// CONS reached PROD.
    Drained,
    /// A command error was raised.
    Error(CmdError),
    /// CMDQEN == 0 (§6.3.9.3).
    Disabled,
    /// CMDQ_ERR was already active (§7.5).
    ErrorActive,
    /// PROD and CONS are more than 2^QS apart: CONSTRAINED UNPREDICTABLE (§3.5.1); this model
    /// takes the permitted "consumption stops" behaviour.
    Inconsistent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessResult {
    pub consumed: Vec<Consumed>,
    pub syncs: Vec<SyncCompletion>,
    pub error: Option<RaisedError>,
    pub stop: Stop,
}

impl QueueState {
    /// Consume commands from CONS to PROD in order while CMDQEN == 1 and CMDQ_ERR is inactive.
    ///
    /// `on_cmd` is called for every command that executes, with its RD value and the command as
    /// interpreted; for a SYNC it is called before the SYNC completes, so the emulator performs
    /// the completion there. Entries are re-read on every call: the model keeps no command cache,
    /// which is how §3.21.2 requires a cache to behave after an error (discarded).
    ///
    /// Bounded: at most 2^QS commands, the most a consistent queue can hold.
    pub fn process(
        &mut self,
        mem: &impl CommandMemory,
        policy: Res0Policy,
        classifier: &dyn Classifier,
        on_cmd: &mut dyn FnMut(u32, RawCommand, &Classification) -> CmdAction,
    ) -> ProcessResult {
        let mut out = ProcessResult {
            consumed: Vec::new(),
            syncs: Vec::new(),
            error: None,
            stop: Stop::Drained,
        };
        if !self.cmdqen() {
            out.stop = Stop::Disabled;
            return out;
        }
        if self.cmdq_err_active() {
            out.stop = Stop::ErrorActive;
            return out;
        }
        let g = self.geometry();
        let Some(pending) = g.pending(self.prod_wr(), self.cons_rd()) else {
            out.stop = Stop::Inconsistent;
            return out;
        };
        for _ in 0..pending {
            let rd = self.cons_rd();
            let raw = match mem.read_command(self.entry_pa(rd)) {
                Ok(r) => r,
                Err(FetchAbort) => {
                    // Synchronous: CONS is not advanced (§7.1).
                    self.stop_with(&mut out, rd, CmdError::Abt);
                    return out;
                }
            };
            let cls = effective_classification(classifier, raw);
            let Some(cmd) = interpret(&cls, raw, policy) else {
                // CONS stays at the illegal command (§7.1).
                self.stop_with(&mut out, rd, CmdError::Ill);
                return out;
            };
            let action = on_cmd(rd, cmd, &cls);
            match raw.opcode() {
                Opcode::Sync => {
                    if action == CmdAction::AtcInvSyncError && self.atc_inv_outstanding() {
                        // The SYNC is neither complete nor consumed and sends no signal (§4.7.3).
                        self.stop_with(&mut out, rd, CmdError::AtcInvSync);
                        return out;
                    }
                    let (signal, wired_irq) = sync_signal(self, cmd);
                    out.syncs.push(SyncCompletion {
                        rd,
                        signal,
                        wired_irq,
                    });
                    self.set_atc_inv_outstanding(false);
                }
                Opcode::AtcInv => self.set_atc_inv_outstanding(true),
                _ => {}
            }
            out.consumed.push(Consumed {
                rd,
                raw,
                executed: cmd,
                classification: cls,
            });
            self.set_cons_rd(g.incr(rd));
        }
        out
    }

    fn stop_with(&mut self, out: &mut ProcessResult, rd: u32, e: CmdError) {
        self.raise_cmdq_err(e);
        out.error = Some(RaisedError { rd, error: e });
        out.stop = Stop::Error(e);
    }
}

impl ProcessResult {
    /// What an observer of this processing sees, settled: CONS, GERROR and every signal. `after`
    /// is the queue state after [`QueueState::process`].
    pub fn observation(&self, after: &QueueState) -> super::Observation {
        let mut obs = super::Observation::settled(after.read_cons(), after.read_gerror());
        for s in &self.syncs {
            match s.signal {
                SyncSignal::Msi(w) => obs.msi_writes.push(w),
                SyncSignal::Sev => obs.sev_events += 1,
                SyncSignal::Irq | SyncSignal::None => {}
            }
            if s.wired_irq {
                obs.wired_irqs += 1;
            }
        }
        obs.executed = self.consumed.iter().map(|c| c.rd).collect();
        if let Some(RaisedError {
            rd,
            error: CmdError::AtcInvSync,
        }) = self.error
        {
            obs.executed.push(rd);
        }
        obs
    }
}
