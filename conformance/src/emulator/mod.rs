//! The reference emulator: a concrete SMMUv3 implementing [`Device`], with finite caches that
//! behave as an implementation may (§16.2): a FIFO TLB of tagged leaf entries ([`tlb`]), an
//! optional walk cache of table descriptors ([`walk_cache`]), configuration caches for STEs,
//! CDs and L1STDs ([`config_cache`]), and its own invalidation logic ([`invalidate`]), written
//! independently of the model's scope computation so that each checks the other. The model
//! judges it like any other backend; [`mutant`] injects one realistic bug at a time.
//!
//! Choices (each one the architecture permits):
//! - Invalidations take effect when consumed, so every CMD_SYNC finds them complete (§4.1.4).
//! - Entries are inserted only on a probe (no prefetch) and only while SMMUEN == 1 (§3.21.1).
//!   Only valid structures are inserted into the configuration caches, and only successful
//!   walks into the TLB and walk cache.
//! - While SMMUEN == 0, probes walk memory without touching the caches. The architecture says
//!   such transactions follow SMMU_GBPA (bypass or abort); the model does not model GBPA and
//!   judges them as translations, so the emulator answers what the model can judge.
//! - A CMD_SYNC MSI is recorded in the observation but not written to memory: the model does
//!   not see such a write, and a case that points an MSI at its own structures would diverge.
//! - Queue processing is `smmu_model::queue::QueueState::process` with the configured RES0
//!   policy (§4.1.5) and the model's classifier deciding CERROR_ILL (§4.1.3, §7.1).

pub mod config_cache;
pub mod invalidate;
pub mod mutant;
pub mod tlb;
mod translate;
pub mod walk_cache;

use crate::backend::{Capabilities, Device, HarnessError, QueueObservation};
use crate::layout::{CMDQ_BASE, CMDQ_LOG2SIZE};
use config_cache::ConfigCache;
use invalidate::{Caches, InvCtx};
pub use mutant::{Mutant, MutantClass};
use smmu_model::classify::{Classification, Classifier, Verdict};
use smmu_model::command::layout as l;
use smmu_model::command::{Opcode, RawCommand};
use smmu_model::memory::{MemRead, Memory};
use smmu_model::oracle::context::smmu_profile;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::profile::{IdRegs, Profile, Queue, NAMED_PROFILES};
use smmu_model::queue::{
    legal, CmdAction, CommandMemory, FetchAbort, QueueState, Res0Policy, SyncSignal,
};
use smmu_model::structures::{SmmuProfile, StreamTableConfig};
use tlb::Tlb;
use walk_cache::WalkCache;

/// The name of the emulator's default ID-register profile in `NAMED_PROFILES`.
pub const DEFAULT_PROFILE: &str = "emulator-default";

/// How an emulator instance is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmulatorConfig {
    /// TLB entries (and walk-cache entries); 0 caches no translations at all.
    pub tlb_capacity: usize,
    /// Whether table descriptors are cached.
    pub walk_cache: bool,
    /// What a non-zero RES0 command field does (§4.1.5).
    pub res0: Res0Policy,
    /// The ID registers the emulator reports and behaves by.
    pub regs: IdRegs,
    /// One injected bug, or none for the conformant emulator.
    pub mutant: Option<Mutant>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            tlb_capacity: 64,
            walk_cache: true,
            res0: Res0Policy::Ignore,
            regs: default_regs(),
            mutant: None,
        }
    }
}

/// The ID registers of [`DEFAULT_PROFILE`].
pub fn default_regs() -> IdRegs {
    NAMED_PROFILES
        .iter()
        .find(|p| p.name == DEFAULT_PROFILE)
        .map(|p| p.regs)
        .unwrap_or_default()
}

impl EmulatorConfig {
    /// The conformant emulator with `mutant` injected.
    pub fn mutant(m: Mutant) -> EmulatorConfig {
        EmulatorConfig {
            mutant: Some(m),
            ..EmulatorConfig::default()
        }
    }

    /// "tlb=64,walk-cache=on,res0=ignore,profile=emulator-default".
    pub fn describe(&self) -> String {
        let profile = NAMED_PROFILES
            .iter()
            .find(|p| p.regs == self.regs)
            .map(|p| p.name.to_string())
            .unwrap_or_else(|| format!("idr0={:#x}", self.regs.idr0));
        format!(
            "tlb={},walk-cache={},res0={},profile={}",
            self.tlb_capacity,
            if self.walk_cache { "on" } else { "off" },
            match self.res0 {
                Res0Policy::Ignore => "ignore",
                Res0Policy::Ill => "ill",
            },
            profile
        )
    }
}

/// Command fetches read the emulator's own memory (two little-endian words per entry).
struct CmdMem<'a>(&'a Memory, Option<Mutant>);

impl CommandMemory for CmdMem<'_> {
    fn read_command(&self, pa: u64) -> Result<RawCommand, FetchAbort> {
        let c = RawCommand::new(self.0.read_u64(pa), self.0.read_u64(pa.wrapping_add(8)));
        if self.1 == Some(Mutant::Cs3Accepted) && c.opcode() == Opcode::Sync && c.get(l::CS) == 0b11
        {
            // MUTANT: the CS decoder looks at CS[0] only, so the Reserved CS=0b11 is fetched as
            // SIG_IRQ (0b01) and the SYNC completes instead of raising CERROR_ILL.
            return Ok(c.with(l::CS, 0b01));
        }
        Ok(c)
    }
}

/// The reference emulator.
pub struct Emulator {
    cfg: EmulatorConfig,
    profile: Profile,
    sp: SmmuProfile,
    mem: Memory,
    st: StreamTableConfig,
    smmuen: bool,
    queue: QueueState,
    tlb: Tlb,
    walk: WalkCache,
    config: ConfigCache,
    /// Built once: the profile never changes for an instance.
    classifier: Classifier,
    /// For [`Mutant::SyncEarly`]: invalidations consumed since the last SYNC, and those the
    /// last SYNC should have completed but did not.
    deferred: (Vec<RawCommand>, Vec<RawCommand>),
}

impl Emulator {
    pub fn new(cfg: EmulatorConfig) -> Emulator {
        let profile = Profile::from_regs(cfg.regs);
        let mut e = Emulator {
            cfg,
            profile,
            sp: smmu_profile(&profile, false),
            mem: Memory::new(),
            st: StreamTableConfig::linear(0, 0),
            smmuen: false,
            queue: QueueState::configured(&profile, CMDQ_BASE, CMDQ_LOG2SIZE),
            tlb: Tlb::new(cfg.tlb_capacity),
            walk: WalkCache::new(if cfg.walk_cache { cfg.tlb_capacity } else { 0 }),
            config: ConfigCache::default(),
            classifier: Classifier::new(&profile, Queue::NonSecure),
            deferred: (Vec::new(), Vec::new()),
        };
        e.reset_state();
        e
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.cfg
    }
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    /// Entries cached now: (TLB, walk cache, configuration).
    pub fn cached(&self) -> (usize, usize, usize) {
        (self.tlb.len(), self.walk.len(), self.config.len())
    }

    fn reset_state(&mut self) {
        self.mem.clear();
        self.st = StreamTableConfig::linear(0, 0);
        self.smmuen = false;
        self.queue = QueueState::configured(&self.profile, CMDQ_BASE, CMDQ_LOG2SIZE);
        self.tlb.clear();
        self.walk.clear();
        self.config.clear();
        self.deferred = (Vec::new(), Vec::new());
    }

    /// Consume what the queue holds (§3.5) and report it settled.
    fn run_queue(&mut self) -> QueueObservation {
        let mutant = self.cfg.mutant;
        let ctx = InvCtx::new(&self.profile, mutant);
        let classifier = &self.classifier;
        let classify = |raw: RawCommand| -> Classification {
            let c = classifier.classify(raw);
            if mutant == Some(Mutant::IllegalConsumed) {
                // MUTANT: the legality check is skipped; ILLEGAL commands run as no-ops.
                return legal();
            }
            if !matches!(c.verdict, Verdict::Illegal(_)) {
                return c;
            }
            match mutant {
                // MUTANT (ConsPastIll): an ILLEGAL command passes the check so that CONS moves
                // past it; `on_cmd` below then skips it.
                Some(Mutant::ConsPastIll) => legal(),
                // MUTANT (ReservedRangeAccepted): the Reserved range encoding TG != 0,
                // NUM == SCALE == TTL == 0 is not checked; it runs as one granule.
                Some(Mutant::ReservedRangeAccepted) if is_reserved_range(raw) => legal(),
                _ => c,
            }
        };
        let Emulator {
            mem,
            queue,
            tlb,
            walk,
            config,
            deferred,
            ..
        } = self;
        let mut caches = Caches { tlb, walk, config };
        let mut on_cmd = |_rd: u32, cmd: RawCommand, _cls: &Classification| -> CmdAction {
            let op = cmd.opcode();
            if mutant == Some(Mutant::ConsPastIll)
                && matches!(classifier.classify(cmd).verdict, Verdict::Illegal(_))
            {
                // MUTANT (ConsPastIll): the ILLEGAL command is skipped, not executed.
                return CmdAction::Continue;
            }
            if mutant == Some(Mutant::SyncEarly) {
                // MUTANT: invalidations are queued and applied one CMD_SYNC late, so a SYNC
                // completes before the invalidations ahead of it.
                if op == Opcode::Sync {
                    for c in std::mem::take(&mut deferred.1) {
                        invalidate::apply(c, &ctx, &mut caches);
                    }
                    deferred.1 = std::mem::take(&mut deferred.0);
                } else if invalidate::is_invalidation(op) {
                    deferred.0.push(cmd);
                }
                return CmdAction::Continue;
            }
            invalidate::apply(cmd, &ctx, &mut caches);
            CmdAction::Continue
        };
        let res = queue.process(&CmdMem(mem, mutant), self.cfg.res0, &classify, &mut on_cmd);
        let mut obs = QueueObservation {
            cons: queue.read_cons(),
            gerror: queue.read_gerror(),
            msi_writes: Vec::new(),
            wired_irqs: 0,
            sev_events: 0,
        };
        for s in &res.syncs {
            if let SyncSignal::Msi(w) = s.signal {
                if mutant != Some(Mutant::SyncNoMsi) {
                    obs.msi_writes.push((w.addr, w.data));
                }
                // MUTANT (SyncNoMsi): the MSI write is dropped.
            }
            if s.wired_irq {
                obs.wired_irqs += 1;
            }
            if s.signal == SyncSignal::Sev {
                obs.sev_events += 1;
            }
        }
        if mutant == Some(Mutant::GerrorNotToggled) {
            // MUTANT: GERROR.CMDQ_ERR is reported as it was before the error (equal to
            // GERRORN.CMDQ_ERR), although CONS.ERR is written and consumption stopped.
            obs.gerror = (obs.gerror & !1) | (queue.read_gerrorn() & 1);
        }
        if mutant == Some(Mutant::ConsWrapLost) {
            // MUTANT: the wrap flag (bit QS of CONS.RD) is not reported.
            obs.cons &= !(1u32 << queue.geometry().qs());
        }
        obs
    }
}

impl Device for Emulator {
    fn name(&self) -> String {
        match self.cfg.mutant {
            Some(m) => format!("mutant:{}", m.name()),
            None => format!("emulator({})", self.cfg.describe()),
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
    fn id_regs(&mut self) -> Result<IdRegs, HarnessError> {
        Ok(self.cfg.regs)
    }
    fn reset(&mut self) -> Result<(), HarnessError> {
        self.reset_state();
        Ok(())
    }
    fn write(&mut self, pa: u64, value: u64) -> Result<(), HarnessError> {
        self.mem.write_u64(pa, value);
        Ok(())
    }
    fn stream_table(&mut self, base: u64, cfg: u32) -> Result<(), HarnessError> {
        // Structures cached through the old table may stay cached (§3.21.3 note).
        self.st = StreamTableConfig::from_regs(base, cfg);
        Ok(())
    }
    fn enable(&mut self, on: bool) -> Result<(), HarnessError> {
        self.smmuen = on;
        Ok(())
    }
    fn submit(&mut self, commands: &[RawCommand]) -> Result<QueueObservation, HarnessError> {
        // Software writes entries at PROD.WR onwards, then PROD once (§3.5).
        let g = self.queue.geometry();
        let mut p = self.queue.prod_wr();
        for c in commands {
            let pa = self.queue.entry_pa(p);
            self.mem.write_u64(pa, c.0[0]);
            self.mem.write_u64(pa.wrapping_add(8), c.0[1]);
            p = g.incr(p);
        }
        self.queue.write_prod(p);
        Ok(self.run_queue())
    }
    fn acknowledge(
        &mut self,
        replace: Option<RawCommand>,
        drop: bool,
    ) -> Result<QueueObservation, HarnessError> {
        let rd = self.queue.cons_rd();
        if let Some(c) = replace {
            let pa = self.queue.entry_pa(rd);
            self.mem.write_u64(pa, c.0[0]);
            self.mem.write_u64(pa.wrapping_add(8), c.0[1]);
        }
        if drop {
            self.queue.write_prod(rd);
        }
        // Make GERRORN.CMDQ_ERR equal GERROR.CMDQ_ERR (§7.1, §6.3.20).
        let v = (self.queue.read_gerrorn() & !1) | (self.queue.read_gerror() & 1);
        self.queue.write_gerrorn(v);
        if self.cfg.mutant == Some(Mutant::AckNoResume) {
            // MUTANT: consumption does not restart until the next PROD write.
            return Ok(QueueObservation {
                cons: self.queue.read_cons(),
                gerror: self.queue.read_gerror(),
                msi_writes: Vec::new(),
                wired_irqs: 0,
                sev_events: 0,
            });
        }
        Ok(self.run_queue())
    }
    fn probe(&mut self, probe: &Probe) -> Result<Observation, HarnessError> {
        Ok(self.translate(probe))
    }
}

/// TG != 0 with NUM == SCALE == TTL == 0 on an address TLBI: the Reserved range encoding
/// (§4.4.1.1), for [`Mutant::ReservedRangeAccepted`].
fn is_reserved_range(raw: RawCommand) -> bool {
    matches!(
        raw.opcode(),
        Opcode::TlbiNhVa
            | Opcode::TlbiNhVaa
            | Opcode::TlbiEl2Va
            | Opcode::TlbiEl2Vaa
            | Opcode::TlbiS2Ipa
    ) && raw.get(l::TG) != 0
        && raw.get(l::NUM) == 0
        && raw.get(l::SCALE) == 0
        && raw.get(l::TTL) == 0
}
