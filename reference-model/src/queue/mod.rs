//! The Command queue model (§3.5, §4.1.2, §6.3.19-20, §6.3.26-28, §7.1, §7.5).
//!
//! Three parts:
//! - this module: register-level state ([`QueueState`]) and index/wrap arithmetic ([`Geometry`]);
//! - [`process`]: the deterministic processor an emulator runs (one permitted behaviour);
//! - [`oracle`]: the set of permitted outcomes of a register write, and a checker that names the
//!   rule an observed outcome breaks.
//!
//! Command classification is injected through [`Classifier`] so that the queue model can be tested
//! independently of `classify` and so that an emulator can pin its own RES0 choice.

pub mod oracle;
pub mod process;

use crate::classify::{self, Classification, Flags, Verdict};
use crate::command::{layout, Opcode, RawCommand};
use crate::profile::{Profile, Queue};
use crate::rules::{self, Rule};
use serde::Serialize;

pub use oracle::{
    allowed_outcomes, check, Accepted, AllowedOutcomes, Observation, OracleCtx, QueueViolation,
    Step, Trigger,
};
pub use process::{
    CmdAction, CommandMemory, Consumed, FetchAbort, ProcessResult, QueueMemory, RaisedError, Stop,
    SyncCompletion,
};

/// GERROR/GERRORN bit 0: a Command queue error is active when GERROR[0] != GERRORN[0] (§6.3.19).
pub const GERROR_CMDQ_ERR: u32 = 1 << 0;
/// GERROR/GERRORN bit 4: a CMD_SYNC MSI write was aborted (§6.3.19, §4.7.3).
pub const GERROR_MSI_CMDQ_ABT_ERR: u32 = 1 << 4;
/// Architectural maximum of LOG2SIZE / IDR1.CMDQS (§6.3.2): RD/WR are 20 bits.
pub const MAX_LOG2SIZE: u8 = 19;
/// CMDQ_CONS.ERR is bits [30:24] (§6.3.28).
pub const CONS_ERR_SHIFT: u32 = 24;
pub const CONS_ERR_MASK: u32 = 0x7f << CONS_ERR_SHIFT;
/// PROD.WR / CONS.RD are bits [19:0] (§6.3.27, §6.3.28).
pub const PTR_FIELD_MASK: u32 = 0x000f_ffff;

/// A command error code as written to CMDQ_CONS.ERR (§7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum CmdError {
    /// 0x01: illegal command (§7.1, §4.1.3).
    Ill,
    /// 0x02: external abort on command fetch (§7.1).
    Abt,
    /// 0x03: a CMD_SYNC could not complete an earlier CMD_ATC_INV (§4.7.3).
    AtcInvSync,
}

impl CmdError {
    pub const fn code(self) -> u8 {
        match self {
            CmdError::Ill => 0x01,
            CmdError::Abt => 0x02,
            CmdError::AtcInvSync => 0x03,
        }
    }
    pub const fn from_code(c: u8) -> Option<CmdError> {
        match c {
            0x01 => Some(CmdError::Ill),
            0x02 => Some(CmdError::Abt),
            0x03 => Some(CmdError::AtcInvSync),
            _ => None,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            CmdError::Ill => "CERROR_ILL",
            CmdError::Abt => "CERROR_ABT",
            CmdError::AtcInvSync => "CERROR_ATC_INV_SYNC",
        }
    }
}

/// Name of a raw ERR code, for messages.
pub fn err_code_name(c: u8) -> String {
    match CmdError::from_code(c) {
        Some(e) => e.name().to_string(),
        None if c == 0 => "CERROR_NONE".to_string(),
        None => format!("reserved code 0x{c:02x}"),
    }
}

/// What the implementation does with a non-zero RES0 field (§4.1.5): one of two choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Res0Policy {
    /// Reserved fields are ignored in their entirety: behaves as the all-zero encoding.
    Ignore,
    /// The command is malformed: CERROR_ILL.
    Ill,
}

/// Queue index arithmetic for a queue of 2^QS entries (§3.5.1).
///
/// A pointer value (RD or WR) holds the index in bits [QS-1:0] and the wrap flag in bit [QS].
/// Treating the pair as one (QS+1)-bit counter makes every operation modular arithmetic, which
/// handles QS == 0 (one entry, the wrap flag is the whole value) without special cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Geometry {
    qs: u8,
}

impl Geometry {
    /// QS is capped at [`MAX_LOG2SIZE`] so every shift below is in range.
    pub const fn new(qs: u8) -> Geometry {
        Geometry {
            qs: if qs > MAX_LOG2SIZE { MAX_LOG2SIZE } else { qs },
        }
    }
    pub const fn qs(self) -> u8 {
        self.qs
    }
    pub const fn entries(self) -> u32 {
        1 << self.qs
    }
    /// Mask of the index and wrap bits [QS:0].
    pub const fn ptr_mask(self) -> u32 {
        (1 << (self.qs + 1)) - 1
    }
    pub const fn index(self, p: u32) -> u32 {
        p & (self.entries() - 1)
    }
    pub const fn wrap(self, p: u32) -> bool {
        (p >> self.qs) & 1 != 0
    }
    /// The pointer after `p`: the index advances and the wrap flag toggles on wrapping (§3.5.1).
    pub const fn incr(self, p: u32) -> u32 {
        p.wrapping_add(1) & self.ptr_mask()
    }
    /// Steps from `from` to `to`, in [0, 2^(QS+1)).
    pub const fn distance(self, from: u32, to: u32) -> u32 {
        to.wrapping_sub(from) & self.ptr_mask()
    }
    /// Indices equal and wraps equal (§3.5.1).
    pub const fn is_empty(self, prod: u32, cons: u32) -> bool {
        (prod ^ cons) & self.ptr_mask() == 0
    }
    /// Indices equal and wraps different: all 2^QS entries are valid (§3.5.1).
    pub const fn is_full(self, prod: u32, cons: u32) -> bool {
        (prod ^ cons) & self.ptr_mask() == self.entries()
    }
    /// There is space for software to add a command (§3.5.1).
    pub const fn has_space(self, prod: u32, cons: u32) -> bool {
        !self.is_full(prod, cons)
    }
    /// Commands between CONS and PROD, or `None` when the pair is inconsistent (more than 2^QS
    /// apart, CONSTRAINED UNPREDICTABLE per §3.5.1).
    pub const fn pending(self, prod: u32, cons: u32) -> Option<u32> {
        let d = self.distance(cons, prod);
        if d <= self.entries() {
            Some(d)
        } else {
            None
        }
    }
    /// "entry 3 (wrap 1)", for messages.
    pub fn describe(self, p: u32) -> String {
        format!("entry {} (wrap {})", self.index(p), self.wrap(p) as u8)
    }
}

/// Why a register write was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{register} write ignored: {reason}")]
pub struct RegWriteIgnored {
    pub register: &'static str,
    pub reason: &'static str,
}

/// What a GERRORN write did to CMDQ_ERR (§6.3.20).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum GerrornEffect {
    /// CMDQ_ERR was active and the write made GERRORN[0] equal GERROR[0]: processing may restart.
    Acknowledged,
    /// Bit 0 unchanged.
    Unchanged,
    /// Bit 0 toggled while CMDQ_ERR was inactive: CONSTRAINED UNPREDICTABLE (§6.3.20). The model
    /// stores the value, so the error reads as active, which is one of the permitted behaviours.
    Unpredictable,
}

/// Register-level state of one Command queue plus the bit of model state the architecture makes
/// observable through errors (whether a consumed ATC_INV is not yet completed by a SYNC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueueState {
    /// IDR1.CMDQS: the cap on LOG2SIZE (§6.3.26).
    pub cmdqs: u8,
    /// IDR5.OAS in bits: truncates the queue base and SYNC MSI addresses (§3.4.3, §4.7.3).
    pub oas_bits: u8,
    /// AIDR minor revision: from v3.2 a BASE write while enabled is IGNORED (§6.3.26).
    pub arch_minor: u8,
    /// IDR0.MSI (§4.7.3).
    pub msi: bool,
    /// IDR0.SEV (§4.7.3).
    pub sev: bool,
    /// Whether a wired CMD_SYNC interrupt output exists: IMPLEMENTATION DEFINED, not in any ID
    /// register, so the harness states it.
    pub wired_irq: bool,
    base: u64,
    prod: u32,
    cons_rd: u32,
    cons_err: u8,
    cmdqen: bool,
    gerror: u32,
    gerrorn: u32,
    atc_inv_outstanding: bool,
}

impl QueueState {
    /// The queue of an SMMU with `profile`, after reset with every register zero and CMDQEN == 0.
    pub fn new(profile: &Profile) -> QueueState {
        QueueState {
            cmdqs: profile.cmdqs.min(MAX_LOG2SIZE),
            oas_bits: profile.oas_bits,
            arch_minor: profile.arch_minor,
            msi: profile.msi,
            sev: profile.sev,
            wired_irq: true,
            base: 0,
            prod: 0,
            cons_rd: 0,
            cons_err: 0,
            cmdqen: false,
            gerror: 0,
            gerrorn: 0,
            atc_inv_outstanding: false,
        }
    }

    /// Convenience: write BASE (queue disabled), CONS and PROD, then enable, in the order §6.3.26
    /// requires. Returns the state ready for a PROD write.
    pub fn configured(profile: &Profile, base_pa: u64, log2size: u8) -> QueueState {
        let mut q = QueueState::new(profile);
        // Cannot fail: the queue is disabled.
        let _ = q.write_base((base_pa & (0xff_ffff_ffff_ffe0)) | (log2size as u64 & 0x1f));
        q.write_cr0_cmdqen(true);
        q
    }

    /// Effective QS: LOG2SIZE capped at IDR1.CMDQS (§6.3.26).
    pub fn geometry(&self) -> Geometry {
        Geometry::new(((self.base & 0x1f) as u8).min(self.cmdqs))
    }

    /// The effective queue base: ADDR[55:5], bits above OAS treated as zero, aligned down to the
    /// larger of the queue size and 32 bytes (§6.3.26).
    pub fn base_pa(&self) -> u64 {
        let addr = self.base & 0x00ff_ffff_ffff_ffe0;
        let oas = oas_mask(self.oas_bits);
        let bytes = (self.geometry().entries() as u64 * 16).max(32);
        addr & oas & !(bytes - 1)
    }

    /// PA of the entry `p` (RD/WR value) points at: 16 bytes per entry (§3.5.1).
    pub fn entry_pa(&self, p: u32) -> u64 {
        self.base_pa() + self.geometry().index(p) as u64 * 16
    }

    pub fn read_base(&self) -> u64 {
        self.base
    }

    /// CMDQ_BASE write (§6.3.26). Only while CMDQEN == 0; from v3.2 a write while enabled is
    /// IGNORED, and before v3.2 it is CONSTRAINED UNPREDICTABLE with "ignored" one permitted
    /// behaviour, so the model always ignores it.
    pub fn write_base(&mut self, v: u64) -> Result<(), RegWriteIgnored> {
        if self.cmdqen {
            return Err(RegWriteIgnored {
                register: "SMMU_CMDQ_BASE",
                reason: "CR0.CMDQEN == 1 (§6.3.26)",
            });
        }
        // Bits 63 and [61:56] are RES0; store RA, ADDR and LOG2SIZE.
        self.base = v & 0x40ff_ffff_ffff_ffff;
        Ok(())
    }

    /// CMDQ_PROD write (§6.3.27). WR[19:0] is stored whole: bits above QS+1 are RES0 and have no
    /// effect, because every use masks with the geometry.
    pub fn write_prod(&mut self, v: u32) {
        self.prod = v & PTR_FIELD_MASK;
    }
    pub fn read_prod(&self) -> u32 {
        self.prod
    }
    /// PROD.WR as used: index and wrap only.
    pub fn prod_wr(&self) -> u32 {
        self.prod & self.geometry().ptr_mask()
    }

    /// CMDQ_CONS write (§6.3.28): only while CMDQEN == 0. The model takes ERR from the value
    /// ("may or may not update ERR" permits this).
    pub fn write_cons(&mut self, v: u32) -> Result<(), RegWriteIgnored> {
        if self.cmdqen {
            return Err(RegWriteIgnored {
                register: "SMMU_CMDQ_CONS",
                reason: "CR0.CMDQEN == 1 (§6.3.28)",
            });
        }
        self.cons_rd = v & PTR_FIELD_MASK;
        self.cons_err = ((v & CONS_ERR_MASK) >> CONS_ERR_SHIFT) as u8;
        Ok(())
    }
    /// CMDQ_CONS as read: RD bits above the wrap flag are RAZ (§6.3.28), ERR at [30:24].
    pub fn read_cons(&self) -> u32 {
        (self.cons_rd & self.geometry().ptr_mask()) | ((self.cons_err as u32) << CONS_ERR_SHIFT)
    }
    /// CONS.RD (index and wrap).
    pub fn cons_rd(&self) -> u32 {
        self.cons_rd & self.geometry().ptr_mask()
    }
    pub fn cons_err(&self) -> u8 {
        self.cons_err
    }

    /// CR0.CMDQEN write (§6.3.9.3). Changing it neither acknowledges nor clears CMDQ_ERR
    /// (§6.3.28); the model processes synchronously, so nothing is in flight at 1 -> 0.
    pub fn write_cr0_cmdqen(&mut self, en: bool) {
        self.cmdqen = en;
    }
    pub fn cmdqen(&self) -> bool {
        self.cmdqen
    }

    pub fn read_gerror(&self) -> u32 {
        self.gerror
    }
    pub fn read_gerrorn(&self) -> u32 {
        self.gerrorn
    }
    /// GERRORN write (§6.3.20): software acknowledges an active error by making its GERRORN bit
    /// equal the GERROR bit. The SMMU never writes GERRORN.
    pub fn write_gerrorn(&mut self, v: u32) -> GerrornEffect {
        let was_active = self.cmdq_err_active();
        let toggled = (self.gerrorn ^ v) & GERROR_CMDQ_ERR != 0;
        self.gerrorn = v;
        match (toggled, was_active) {
            (false, _) => GerrornEffect::Unchanged,
            (true, true) => GerrornEffect::Acknowledged,
            (true, false) => GerrornEffect::Unpredictable,
        }
    }
    /// CMDQ_ERR is active when GERROR[0] != GERRORN[0] (§6.3.19).
    pub fn cmdq_err_active(&self) -> bool {
        (self.gerror ^ self.gerrorn) & GERROR_CMDQ_ERR != 0
    }
    pub fn msi_cmdq_abt_err_active(&self) -> bool {
        (self.gerror ^ self.gerrorn) & GERROR_MSI_CMDQ_ABT_ERR != 0
    }
    /// Commands are fetched only while CMDQEN == 1 and CMDQ_ERR is inactive (§6.3.27, §7.5).
    pub fn can_process(&self) -> bool {
        self.cmdqen && !self.cmdq_err_active()
    }

    /// Raise a command error: ERR first, then toggle GERROR.CMDQ_ERR (§7.1). Only activates an
    /// inactive error (§7.5); returns whether it did.
    pub fn raise_cmdq_err(&mut self, e: CmdError) -> bool {
        if self.cmdq_err_active() {
            return false;
        }
        self.cons_err = e.code();
        self.gerror ^= GERROR_CMDQ_ERR;
        true
    }
    /// Record an aborted CMD_SYNC MSI write (§4.7.3): the emulator calls this when the write of a
    /// [`SyncSignal::Msi`] aborts. Only activates an inactive error (§7.5).
    pub fn raise_msi_cmdq_abt(&mut self) -> bool {
        if self.msi_cmdq_abt_err_active() {
            return false;
        }
        self.gerror ^= GERROR_MSI_CMDQ_ABT_ERR;
        true
    }

    /// Whether an ATC_INV was consumed and no SYNC has completed since: only then may a SYNC raise
    /// CERROR_ATC_INV_SYNC (§4.7.3, §3.9.1.4).
    pub fn atc_inv_outstanding(&self) -> bool {
        self.atc_inv_outstanding
    }

    pub(crate) fn set_cons_rd(&mut self, rd: u32) {
        self.cons_rd = rd & PTR_FIELD_MASK;
    }
    pub(crate) fn set_atc_inv_outstanding(&mut self, v: bool) {
        self.atc_inv_outstanding = v;
    }
    pub(crate) fn set_observed(&mut self, cons: u32, gerror: u32) {
        self.cons_rd = cons & PTR_FIELD_MASK & self.geometry().ptr_mask();
        self.cons_err = ((cons & CONS_ERR_MASK) >> CONS_ERR_SHIFT) as u8;
        self.gerror = gerror;
    }
}

pub(crate) const fn oas_mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Classifies commands for the queue. Implemented by closures, so tests can inject verdicts, and
/// by [`ProfileClassifier`], which calls [`classify::classify`].
pub trait Classifier {
    fn classify(&self, raw: RawCommand) -> Classification;
}

impl<F: Fn(RawCommand) -> Classification> Classifier for F {
    fn classify(&self, raw: RawCommand) -> Classification {
        self(raw)
    }
}

/// The default classifier: [`classify::classify`] for a profile and queue.
#[derive(Clone, Copy, Debug)]
pub struct ProfileClassifier {
    pub profile: Profile,
    pub queue: Queue,
}

impl Classifier for ProfileClassifier {
    fn classify(&self, raw: RawCommand) -> Classification {
        classify::classify(&self.profile, self.queue, raw)
    }
}

/// The classification the queue acts on. CMD_SYNC CS == 0b11 is CERROR_ILL whatever the injected
/// classifier says (§4.7.3): the queue model owns SYNC completion and must never compute a
/// completion signal for the Reserved encoding.
pub fn effective_classification(c: &dyn Classifier, raw: RawCommand) -> Classification {
    let cls = c.classify(raw);
    if raw.opcode() == Opcode::Sync
        && raw.get(layout::CS) == 0b11
        && !matches!(cls.verdict, Verdict::Illegal(_))
    {
        return Classification {
            verdict: Verdict::Illegal(&rules::legality::SYNC_CS_RESERVED),
            ..cls
        };
    }
    cls
}

/// The command the implementation acts on, or `None` when it must raise CERROR_ILL, under a RES0
/// policy (§4.1.5): ignoring means acting exactly as the all-zero encoding of the RES0 bits.
pub fn interpret(cls: &Classification, raw: RawCommand, policy: Res0Policy) -> Option<RawCommand> {
    match cls.verdict {
        Verdict::Legal => Some(raw),
        Verdict::Illegal(_) => None,
        Verdict::ReservedFieldSet => match policy {
            Res0Policy::Ill => None,
            Res0Policy::Ignore => Some(RawCommand::from_u128(raw.as_u128() & !cls.res0_set)),
        },
    }
}

/// A Legal classification, for injected classifiers.
pub const fn legal() -> Classification {
    Classification {
        verdict: Verdict::Legal,
        res0_set: 0,
        flags: Flags(0),
    }
}

/// An Illegal classification citing `rule`, for injected classifiers.
pub const fn illegal(rule: &'static Rule) -> Classification {
    Classification {
        verdict: Verdict::Illegal(rule),
        res0_set: 0,
        flags: Flags(0),
    }
}

/// An MSI write (§4.7.3). The oracle compares address and data; attributes are recorded for
/// emulators, since a memory observer cannot see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MsiWrite {
    pub addr: u64,
    pub data: u32,
    pub attr: u8,
    pub msh: u8,
}

/// The completion signal of one CMD_SYNC (§4.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SyncSignal {
    /// SIG_NONE, SIG_SEV without IDR0.SEV, or SIG_IRQ with neither an MSI nor a wired output.
    None,
    /// SIG_IRQ with IDR0.MSI == 1 and MSIAddress != 0. A wired output, if implemented, is also
    /// asserted ([`SyncCompletion::wired_irq`]).
    Msi(MsiWrite),
    /// SIG_IRQ delivered only on the wired output.
    Irq,
    /// SIG_SEV with IDR0.SEV == 1.
    Sev,
}

/// The signal a completing CMD_SYNC sends (§4.7.3), and whether the wired output is asserted.
/// `cmd` is the command as interpreted (RES0 bits already dropped under the Ignore policy).
pub fn sync_signal(q: &QueueState, cmd: RawCommand) -> (SyncSignal, bool) {
    match cmd.get(layout::CS) {
        0b01 => {
            // The zero check covers the whole MSIAddress[55:2] field, not just OAS bits; a
            // non-zero address is then truncated to OAS (§4.7.3, §3.4.3).
            let field = cmd.get(layout::MSIADDR);
            let wired = q.wired_irq;
            if q.msi && field != 0 {
                let attr = cmd.get(layout::MSIATTR) as u8;
                let msh = match cmd.get(layout::MSH) as u8 {
                    // 0b01 is Reserved, treated as Non-shareable (§4.7.3).
                    0b01 => 0b00,
                    m => m,
                };
                // MSH is IGNORED for Device and Normal iNC-oNC (effectively Outer Shareable).
                let msh = if attr <= 0b0011 || attr == 0b0101 {
                    0b10
                } else {
                    msh
                };
                let w = MsiWrite {
                    addr: cmd.address(layout::MSIADDR) & oas_mask(q.oas_bits),
                    data: cmd.get(layout::MSIDATA) as u32,
                    attr,
                    msh,
                };
                (SyncSignal::Msi(w), wired)
            } else if wired {
                (SyncSignal::Irq, true)
            } else {
                (SyncSignal::None, false)
            }
        }
        // SIG_SEV acts as SIG_NONE without IDR0.SEV (§4.7.3).
        0b10 if q.sev => (SyncSignal::Sev, false),
        _ => (SyncSignal::None, false),
    }
}
