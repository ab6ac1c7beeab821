//! Digest §9, tricky cases 49-57 and 69: Command queue mechanics, judged by
//! `queue::oracle::check` with the real classifier (`ProfileClassifier`) and realistic queues.
//! Every case checks both directions: the deterministic processor's observation is accepted, and
//! broken observations are rejected with the rule that names the breakage. Where a case says
//! what commands take effect, the consumed commands are also fed to the translation `Model`.

mod common_b;

use common_b::{pa, Rig, NG};
use smmu_model::command::{AddrInval, Command, RangeFields, RawCommand};
use smmu_model::profile::{Profile, Queue};
use smmu_model::queue::{
    check, CmdAction, CmdError, MsiWrite, Observation, OracleCtx, ProcessResult, ProfileClassifier,
    QueueMemory, QueueState, QueueViolation, Res0Policy, Trigger, GERROR_CMDQ_ERR,
    GERROR_MSI_CMDQ_ABT_ERR,
};
use smmu_model::rules::{queue as r, Rule};
use smmu_model::structures::Ste;

const QBASE: u64 = 0x9000_0000;
const MSI_BASE: u64 = 0x9800_0000;
const OLD: u64 = 0x8000_0000;
const NEW: u64 = 0xC000_0000;
const VA: u64 = 0x20_0000;

fn full() -> Profile {
    Profile::named("smmuv3.4-full").unwrap()
}

/// A real TLBI for the stream set up by [`stream`].
fn tlbi() -> RawCommand {
    Command::TlbiNhVa {
        vmid: 0,
        asid: 1,
        inv: AddrInval {
            addr: VA,
            leaf: true,
            range: RangeFields::default(),
        },
    }
    .encode()
}

/// A realistic illegal command: a range TLBI with the Reserved TG!=0, NUM=SCALE=TTL=0 shape.
fn bad_tlbi() -> RawCommand {
    Command::TlbiNhVa {
        vmid: 0,
        asid: 1,
        inv: AddrInval {
            addr: VA,
            leaf: true,
            range: RangeFields {
                tg: 1,
                ..Default::default()
            },
        },
    }
    .encode()
}

fn sync_msi(data: u32) -> RawCommand {
    Command::Sync {
        cs: 1,
        msh: 3,
        msi_attr: 0xf,
        msi_data: data,
        msi_addr: MSI_BASE + 4 * data as u64,
    }
    .encode()
}

fn msi(data: u32) -> MsiWrite {
    MsiWrite {
        addr: MSI_BASE + 4 * data as u64,
        data,
        attr: 0xf,
        msh: 3,
    }
}

fn atc_inv() -> RawCommand {
    Command::AtcInv {
        global: false,
        ssv: false,
        ssid: 0,
        sid: 1,
        size: 52,
        addr: 0,
    }
    .encode()
}

fn cons(rd: u32, e: CmdError) -> u32 {
    rd | (e.code() as u32) << 24
}

/// SID 1 stage 1 (ASID 1) with VA mapped to OLD, enabled, then remapped to NEW: OLD is stale.
fn stream() -> Rig {
    let mut r = Rig::new("smmuv3.4-full");
    let st = r.linear_st(2);
    let mut sp = r.s1_space();
    let cd = r.new_cd(1, &sp);
    r.put_struct(st + 64, Ste::stage1(cd).encode());
    let leaf = r.map(&mut sp, VA, OLD, 3, &NG);
    r.m.set_smmuen(true);
    r.fresh(1, None, VA, pa(OLD));
    r.remap_s1(&sp, leaf, 3, NEW, &NG);
    r.stale_ok(1, None, VA, pa(OLD));
    r
}

/// A Command queue driven by the deterministic processor, judged by the oracle, with the
/// translation model fed every executed command.
struct Q {
    q: QueueState,
    mem: QueueMemory,
    pc: ProfileClassifier,
    /// RD values of SYNCs whose ATC_INV completion fails.
    atc_fail: Vec<u32>,
    model: Option<Rig>,
}

impl Q {
    fn new(log2: u8) -> Q {
        let p = full();
        Q {
            q: QueueState::configured(&p, QBASE, log2),
            mem: QueueMemory::new(),
            pc: ProfileClassifier {
                profile: p,
                queue: Queue::NonSecure,
            },
            atc_fail: Vec::new(),
            model: None,
        }
    }
    fn submit(&mut self, cmds: &[RawCommand]) -> u32 {
        self.mem.submit(&self.q, cmds)
    }
    fn rewrite(&mut self, rd: u32, c: RawCommand) {
        let pa = self.q.entry_pa(rd);
        self.mem.write(pa, c);
    }
    /// Apply the trigger, process, feed the model; returns the state before and the observation.
    fn run(&mut self, t: Trigger) -> (QueueState, Observation, ProcessResult) {
        let before = self.q.clone();
        match t {
            Trigger::None => {}
            Trigger::Prod(v) => self.q.write_prod(v),
            Trigger::Gerrorn(v) => {
                self.q.write_gerrorn(v);
            }
            Trigger::Cmdqen(e) => self.q.write_cr0_cmdqen(e),
        }
        let fail = self.atc_fail.clone();
        let res = self
            .q
            .process(&self.mem, Res0Policy::Ill, &self.pc, &mut |rd, _, _| {
                if fail.contains(&rd) {
                    CmdAction::AtcInvSyncError
                } else {
                    CmdAction::Continue
                }
            });
        if let Some(m) = self.model.as_mut() {
            for c in &res.consumed {
                m.raw(c.executed);
            }
        }
        let obs = res.observation(&self.q);
        (before, obs, res)
    }
    fn oracle(
        &self,
        before: &QueueState,
        t: Trigger,
        obs: &Observation,
    ) -> Result<smmu_model::queue::Accepted, QueueViolation> {
        check(
            before,
            t,
            &self.mem,
            &OracleCtx {
                classifier: &self.pc,
                res0_policy: None,
            },
            obs,
        )
    }
    #[track_caller]
    fn accepted(&self, before: &QueueState, t: Trigger, obs: &Observation) -> Vec<u32> {
        match self.oracle(before, t, obs) {
            Ok(a) => a.consumed,
            Err(v) => panic!("{obs:?} rejected: {v}"),
        }
    }
    #[track_caller]
    fn rejected(&self, before: &QueueState, t: Trigger, obs: &Observation, rule: &Rule) -> String {
        match self.oracle(before, t, obs) {
            Ok(a) => panic!("{obs:?} accepted ({a:?}), expected {}", rule.id),
            Err(v) => {
                assert_eq!(v.rule.id, rule.id, "wrong rule: {}", v.message);
                assert!(v.message.contains(rule.section), "{}", v.message);
                v.message
            }
        }
    }
    fn ack(&self) -> Trigger {
        Trigger::Gerrorn(self.q.read_gerror())
    }
}

/// Case 49 (§7.1, §4.1.4): TLBI, ILL, SYNC: CONS stops at the illegal command, the SYNC does not
/// run and sends no MSI; the TLBI was consumed but is not known complete until a later SYNC. After
/// fixing the command and acknowledging via GERRORN, processing resumes at CONS and the SYNC
/// covers the TLBI.
#[test]
fn case_49_ill_stops_cons_and_sync_does_not_run() {
    let mut q = Q::new(4);
    q.model = Some(stream());
    let prod = q.submit(&[tlbi(), bad_tlbi(), sync_msi(7)]);
    let t = Trigger::Prod(prod);
    let (before, obs, res) = q.run(t);
    assert_eq!(res.error.map(|e| (e.rd, e.error)), Some((1, CmdError::Ill)));
    assert_eq!(obs.cons, cons(1, CmdError::Ill));
    assert!(obs.msi_writes.is_empty());
    assert_eq!(q.accepted(&before, t, &obs), vec![0]);
    // The model agrees the command is illegal.
    let m = q.model.as_mut().unwrap();
    assert!(m.m.consume(bad_tlbi()).is_err());
    // The TLBI was consumed but no SYNC completed: the stale translation may still be seen.
    m.stale_ok(1, None, VA, pa(OLD));

    // Broken: consumed past the ILL; the SYNC's MSI sent; error not raised; the SYNC executed.
    let m = q.rejected(
        &before,
        t,
        &Observation::settled(3, 0),
        &r::CONS_STOPS_AT_ILL,
    );
    assert!(m.contains("ILL-TLBI-RANGE-RESERVED"), "{m}");
    let mut bad = obs.clone();
    bad.msi_writes.push(msi(7));
    q.rejected(&before, t, &bad, &r::SYNC_SIGNAL_ONLY_CONSUMED);
    q.rejected(
        &before,
        t,
        &Observation::settled(obs.cons, 0),
        &r::GERROR_TOGGLE,
    );
    let mut bad = obs.clone();
    bad.executed.push(2);
    q.rejected(&before, t, &bad, &r::NO_EXECUTION_PAST_STOP);

    // Fix and acknowledge: the fixed command and the SYNC run, the MSI arrives.
    q.rewrite(1, tlbi());
    let ack = q.ack();
    let (before, obs, _) = q.run(ack);
    assert_eq!(obs.msi_writes, vec![msi(7)]);
    assert_eq!(q.accepted(&before, ack, &obs), vec![1, 2]);
    q.model.as_ref().unwrap().rejected(1, None, VA, pa(OLD));
    q.model.as_ref().unwrap().fresh(1, None, VA, pa(NEW));
    // Broken: no restart after the acknowledgement.
    q.rejected(
        &before,
        ack,
        &Observation::settled(before.read_cons(), before.read_gerror()),
        &r::RESTART_ON_ACK,
    );
}

/// Case 50 (§7.1, §3.21.2): the bad command replaced while the error is active, then
/// acknowledged: the new contents are used (command caches are discarded on error).
#[test]
fn case_50_replaced_command_is_refetched_after_ack() {
    let mut q = Q::new(4);
    let prod = q.submit(&[bad_tlbi(), sync_msi(1)]);
    q.run(Trigger::Prod(prod));
    assert!(q.q.cmdq_err_active());
    q.rewrite(0, sync_msi(2));
    let ack = q.ack();
    let (before, obs, _) = q.run(ack);
    assert_eq!(obs.msi_writes, vec![msi(2), msi(1)]);
    q.accepted(&before, ack, &obs);
    // Broken: the stale cached bad command raised CERROR_ILL again.
    q.rejected(
        &before,
        ack,
        &Observation::settled(cons(0, CmdError::Ill), before.read_gerror() ^ 1),
        &r::NO_SPURIOUS_ERROR,
    );
    // Broken: the old SYNC contents (data 1) used for entry 0.
    let mut bad = obs.clone();
    bad.msi_writes = vec![msi(1), msi(1)];
    q.rejected(&before, ack, &bad, &r::SYNC_MSI_WRITE);
}

/// Case 51 (§7.1): PROD moved back to CONS while the error is active, then acknowledged: the
/// dropped commands never run.
#[test]
fn case_51_prod_moved_back_drops_commands() {
    let mut q = Q::new(4);
    let prod = q.submit(&[tlbi(), bad_tlbi(), tlbi(), sync_msi(3)]);
    q.run(Trigger::Prod(prod));
    let back = Trigger::Prod(q.q.cons_rd());
    let (before, obs, res) = q.run(back);
    assert!(res.consumed.is_empty());
    q.accepted(&before, back, &obs);
    let ack = q.ack();
    let (before, obs, res) = q.run(ack);
    assert!(res.consumed.is_empty() && obs.msi_writes.is_empty());
    assert!(q.accepted(&before, ack, &obs).is_empty());
    q.rejected(
        &before,
        ack,
        &Observation::settled(4, before.read_gerror()),
        &r::NO_PAST_PROD,
    );
    let mut bad = obs.clone();
    bad.msi_writes.push(msi(3));
    q.rejected(&before, ack, &bad, &r::NO_PAST_PROD);
    let mut bad = obs.clone();
    bad.executed.push(2);
    q.rejected(&before, ack, &bad, &r::NO_PAST_PROD);
}

/// Case 52 (§7.1, §6.3.20): acknowledging by toggling GERRORN.CMDQ_ERR, with no PROD write,
/// restarts processing. Toggling an inactive GERRORN bit is CONSTRAINED UNPREDICTABLE: nothing
/// is asserted.
#[test]
fn case_52_gerrorn_ack_restarts_without_prod_write() {
    let mut q = Q::new(4);
    let prod = q.submit(&[bad_tlbi(), tlbi(), sync_msi(4)]);
    q.run(Trigger::Prod(prod));
    q.rewrite(0, tlbi());
    let ack = q.ack();
    let (before, obs, res) = q.run(ack);
    assert_eq!(res.consumed.len(), 3);
    assert_eq!(q.accepted(&before, ack, &obs), vec![0, 1, 2]);
    q.rejected(
        &before,
        ack,
        &Observation::settled(before.read_cons(), before.read_gerror()),
        &r::RESTART_ON_ACK,
    );
    // Inactive toggle: anything goes.
    let t = Trigger::Gerrorn(q.q.read_gerrorn() ^ GERROR_CMDQ_ERR);
    let a = q
        .oracle(&q.q.clone(), t, &Observation::settled(0x7f00_0005, 1))
        .unwrap();
    assert!(a.unconstrained.is_some());
}

/// Case 53 (§6.3.28): CMDQEN 1 -> 0 -> 1 with CMDQ_ERR active does not acknowledge the error:
/// processing stays stopped until GERRORN is written.
#[test]
fn case_53_cmdqen_cycle_is_not_an_ack() {
    let mut q = Q::new(4);
    let prod = q.submit(&[bad_tlbi(), tlbi()]);
    q.run(Trigger::Prod(prod));
    q.rewrite(0, tlbi());
    let (b0, o0, _) = q.run(Trigger::Cmdqen(false));
    q.accepted(&b0, Trigger::Cmdqen(false), &o0);
    let on = Trigger::Cmdqen(true);
    let (before, obs, res) = q.run(on);
    assert!(res.consumed.is_empty() && q.q.cmdq_err_active());
    q.accepted(&before, on, &obs);
    q.rejected(
        &before,
        on,
        &Observation::settled(2, before.read_gerror()),
        &r::STOPPED_WHILE_ERROR,
    );
    // Only the GERRORN write restarts.
    let ack = q.ack();
    let (before, obs, _) = q.run(ack);
    assert_eq!(q.accepted(&before, ack, &obs), vec![0, 1]);
}

/// Case 54 (§7.1): an external abort on command fetch is CERROR_ABT with CONS not advanced.
#[test]
fn case_54_fetch_abort_is_abt_without_advance() {
    let mut q = Q::new(4);
    let prod = q.submit(&[tlbi(), tlbi(), sync_msi(1)]);
    let qs = q.q.clone();
    q.mem.abort_entry(&qs, 1);
    let t = Trigger::Prod(prod);
    let (before, obs, res) = q.run(t);
    assert_eq!(res.error.map(|e| (e.rd, e.error)), Some((1, CmdError::Abt)));
    assert_eq!(q.accepted(&before, t, &obs), vec![0]);
    q.rejected(
        &before,
        t,
        &Observation::settled(cons(2, CmdError::Abt), 1),
        &r::ABT_CONS_NOT_ADVANCED,
    );
    q.rejected(
        &before,
        t,
        &Observation::settled(cons(1, CmdError::Ill), 1),
        &r::ERR_CODE,
    );
}

/// Case 55 (§3.5.1, §6.3.27): wrap-bit handling with a completely full queue (all 2^QS entries,
/// wrap flags differ), and a one-entry queue (LOG2SIZE=0: the wrap flag is the whole index).
#[test]
fn case_55_full_queue_and_one_entry_queue() {
    let mut q = Q::new(2);
    let p = q.submit(&[tlbi(), tlbi(), tlbi()]);
    q.run(Trigger::Prod(p));
    assert_eq!(q.q.cons_rd(), 3);
    // Four commands from entry 3 wrap 0: PROD = entry 3 wrap 1.
    let p = q.submit(&[tlbi(), sync_msi(1), tlbi(), sync_msi(2)]);
    assert_eq!(p, 0b111);
    assert!(q.q.geometry().is_full(p, q.q.cons_rd()));
    let t = Trigger::Prod(p);
    let (before, obs, res) = q.run(t);
    assert_eq!(res.consumed.len(), 4);
    assert_eq!(obs.msi_writes, vec![msi(1), msi(2)]);
    assert_eq!(q.accepted(&before, t, &obs), vec![3, 4, 5, 6]);
    let m = q.rejected(&before, t, &Observation::settled(3, 0), &r::WRAP_FLAG);
    assert!(m.contains("full"), "{m}");
    // CONS with the wrap flag lost after wrapping (index right, wrap wrong).
    q.rejected(&before, t, &Observation::settled(0b011, 0), &r::WRAP_FLAG);

    let mut q = Q::new(0);
    assert_eq!(q.q.geometry().entries(), 1);
    for round in 0..4u32 {
        let p = q.submit(&[sync_msi(round)]);
        assert_eq!(p, (round + 1) & 1);
        let t = Trigger::Prod(p);
        let (before, obs, _) = q.run(t);
        assert_eq!(obs.msi_writes, vec![msi(round)]);
        q.accepted(&before, t, &obs);
        let mut bad = Observation::settled(before.cons_rd(), 0);
        q.rejected(&before, t, &bad, &r::WRAP_FLAG);
        bad.cons = 0b10 | p;
        q.rejected(&before, t, &bad, &r::CONS_RD_RAZ);
    }
}

/// Case 56 (§7.1, §6.3.28): CONS.ERR is meaningful whenever GERROR shows CMDQ_ERR and UNKNOWN
/// otherwise: never assert on ERR without an active error.
#[test]
fn case_56_err_only_meaningful_with_active_error() {
    let mut q = Q::new(4);
    let prod = q.submit(&[tlbi(), sync_msi(9)]);
    let t = Trigger::Prod(prod);
    let (before, obs, _) = q.run(t);
    // Any ERR value without an error.
    for err in [0u32, 1, 2, 3, 0x7f] {
        let mut o = obs.clone();
        o.cons |= err << 24;
        q.accepted(&before, t, &o);
    }
    // With the error active, ERR must be the right code.
    let mut q = Q::new(4);
    let prod = q.submit(&[tlbi(), bad_tlbi()]);
    let t = Trigger::Prod(prod);
    let (before, obs, _) = q.run(t);
    assert_eq!(obs.gerror & GERROR_CMDQ_ERR, 1);
    q.accepted(&before, t, &obs);
    q.rejected(
        &before,
        t,
        &Observation::settled(cons(1, CmdError::Abt), 1),
        &r::ERR_CODE,
    );
    // CERROR_ATC_INV_SYNC at a TLBI is named by its own, more specific rule.
    q.rejected(
        &before,
        t,
        &Observation::settled(cons(1, CmdError::AtcInvSync), 1),
        &r::ATC_INV_SYNC_AT_SYNC,
    );
    // ERR written, GERROR not yet toggled: fine while unsettled, not once settled.
    q.accepted(
        &before,
        t,
        &Observation::unsettled(cons(1, CmdError::Ill), 0),
    );
    q.rejected(
        &before,
        t,
        &Observation::settled(cons(1, CmdError::Ill), 0),
        &r::GERROR_TOGGLE,
    );
}

/// Case 57 (§7.5): no second command error while CMDQ_ERR is active (consumption has stopped);
/// other GERROR bits are independent of it.
#[test]
fn case_57_no_second_error_other_bits_independent() {
    let mut q = Q::new(4);
    let prod = q.submit(&[bad_tlbi()]);
    q.run(Trigger::Prod(prod));
    let p2 = q.submit(&[bad_tlbi()]);
    let t = Trigger::Prod(p2);
    let (before, obs, _) = q.run(t);
    assert!(q.accepted(&before, t, &obs).is_empty());
    q.rejected(
        &before,
        t,
        &Observation::settled(obs.cons, obs.gerror ^ GERROR_CMDQ_ERR),
        &r::GERROR_ONLY_WHEN_INACTIVE,
    );
    // A SYNC whose MSI aborts, then an illegal command: MSI_CMDQ_ABT_ERR and CMDQ_ERR both
    // activate, independently.
    let mut q = Q::new(4);
    let prod = q.submit(&[sync_msi(1), bad_tlbi()]);
    let t = Trigger::Prod(prod);
    let (before, mut obs, _) = q.run(t);
    assert_eq!(obs.msi_writes, vec![msi(1)]);
    obs.msi_writes.clear();
    obs.gerror |= GERROR_MSI_CMDQ_ABT_ERR;
    assert_eq!(q.accepted(&before, t, &obs), vec![0]);
    // Broken: MSI_CMDQ_ABT_ERR with no consumed SYNC that sends an MSI.
    let mut q = Q::new(4);
    let prod = q.submit(&[tlbi(), bad_tlbi()]);
    let t = Trigger::Prod(prod);
    let (before, mut obs, _) = q.run(t);
    obs.gerror |= GERROR_MSI_CMDQ_ABT_ERR;
    q.rejected(&before, t, &obs, &r::MSI_CMDQ_ABT_ERR);
}

/// Case 69 (§4.7.3): CERROR_ATC_INV_SYNC: CONS stays at the SYNC with no completion signal; the
/// preceding TLBI still takes effect, and the re-fetched SYNC completes later.
#[test]
fn case_69_atc_inv_sync_error() {
    let mut q = Q::new(4);
    q.model = Some(stream());
    let prod = q.submit(&[tlbi(), atc_inv(), sync_msi(4)]);
    q.atc_fail = vec![2];
    let t = Trigger::Prod(prod);
    let (before, obs, res) = q.run(t);
    assert_eq!(
        res.error.map(|e| (e.rd, e.error)),
        Some((2, CmdError::AtcInvSync))
    );
    assert!(obs.msi_writes.is_empty());
    assert_eq!(obs.cons, cons(2, CmdError::AtcInvSync));
    assert_eq!(q.accepted(&before, t, &obs), vec![0, 1]);
    // The SYNC did not complete: the TLBI's effect is not yet guaranteed.
    q.model.as_ref().unwrap().stale_ok(1, None, VA, pa(OLD));
    // Completing normally is also permitted.
    let mut q2 = Q::new(4);
    let p2 = q2.submit(&[tlbi(), atc_inv(), sync_msi(4)]);
    let (b2, o2, _) = q2.run(Trigger::Prod(p2));
    q2.accepted(&b2, Trigger::Prod(p2), &o2);
    // Broken: the failed SYNC signalled; CONS moved past it.
    let mut bad = obs.clone();
    bad.msi_writes.push(msi(4));
    q.rejected(&before, t, &bad, &r::SYNC_SIGNAL_ONLY_CONSUMED);
    q.rejected(
        &before,
        t,
        &Observation::settled(cons(3, CmdError::AtcInvSync), 1),
        &r::NO_SPURIOUS_ERROR,
    );
    // Re-fetched after the acknowledgement, the SYNC completes and covers the TLBI.
    q.atc_fail.clear();
    let ack = q.ack();
    let (before, obs, _) = q.run(ack);
    assert_eq!(obs.msi_writes, vec![msi(4)]);
    assert_eq!(q.accepted(&before, ack, &obs), vec![2]);
    q.model.as_ref().unwrap().rejected(1, None, VA, pa(OLD));
    // CERROR_ATC_INV_SYNC with no ATC_INV outstanding is not permitted.
    let mut q = Q::new(4);
    let prod = q.submit(&[tlbi(), sync_msi(5)]);
    let t = Trigger::Prod(prod);
    let (before, _, _) = q.run(t);
    q.rejected(
        &before,
        t,
        &Observation::settled(cons(1, CmdError::AtcInvSync), 1),
        &r::ATC_INV_SYNC_AT_SYNC,
    );
}
