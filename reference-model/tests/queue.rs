//! Command queue model: digest §9 cases 44, 45, 49-57 and 69, wrap handling, and the consistency
//! of the deterministic processor with the oracle.

use proptest::prelude::*;
use smmu_model::classify::{Classification, Flags, Verdict};
use smmu_model::command::{Command, Opcode, RawCommand};
use smmu_model::profile::{Profile, Queue};
use smmu_model::queue::{
    allowed_outcomes, check, illegal, legal, oracle::check_allowed, CmdAction, CmdError, MsiWrite,
    Observation, OracleCtx, ProcessResult, ProfileClassifier, QueueMemory, QueueState,
    QueueViolation, Res0Policy, Trigger, GERROR_CMDQ_ERR, GERROR_MSI_CMDQ_ABT_ERR,
};
use smmu_model::rules::{self, queue as r, Rule};

const BASE: u64 = 0x8000_0000;
/// Bit 127 is RES0 for CMD_TLBI_NH_ALL: the injected classifier reports it as RES0-set.
const RES0_BIT: u128 = 1 << 127;

/// Injected classification, independent of `classify`'s body: Reserved opcodes are Illegal and
/// TLBI_NH_ALL with bit 127 set is ReservedFieldSet.
fn cls(raw: RawCommand) -> Classification {
    match raw.opcode() {
        Opcode::Reserved(_) => illegal(&rules::legality::RESERVED_OPCODE),
        Opcode::TlbiNhAll if raw.as_u128() & RES0_BIT != 0 => Classification {
            verdict: Verdict::ReservedFieldSet,
            res0_set: RES0_BIT,
            flags: Flags(0),
        },
        _ => legal(),
    }
}

fn full() -> Profile {
    Profile::named("smmuv3.4-full").unwrap()
}
fn tlbi() -> RawCommand {
    Command::TlbiNhAll { vmid: 1 }.encode()
}
fn ill() -> RawCommand {
    RawCommand::new(0x08, 0)
}
fn res0_tlbi() -> RawCommand {
    RawCommand::from_u128(tlbi().as_u128() | RES0_BIT)
}
fn atc_inv() -> RawCommand {
    Command::AtcInv {
        global: false,
        ssv: false,
        ssid: 0,
        sid: 3,
        size: 52,
        addr: 0,
    }
    .encode()
}
fn sync_cs(cs: u8, addr: u64, data: u32) -> RawCommand {
    Command::Sync {
        cs,
        msh: 3,
        msi_attr: 0xf,
        msi_data: data,
        msi_addr: addr,
    }
    .encode()
}
fn sync_msi(data: u32) -> RawCommand {
    sync_cs(1, 0x9000_0000 + 4 * data as u64, data)
}
fn msi(data: u32) -> MsiWrite {
    MsiWrite {
        addr: 0x9000_0000 + 4 * data as u64,
        data,
        attr: 0xf,
        msh: 3,
    }
}

/// A queue, its memory and the deterministic implementation's RES0 policy.
struct Rig {
    q: QueueState,
    mem: QueueMemory,
    policy: Res0Policy,
    /// RD values of SYNCs for which the emulator reports an ATC_INV failure.
    atc_fail: Vec<u32>,
}

impl Rig {
    fn new(p: &Profile, log2: u8) -> Rig {
        Rig {
            q: QueueState::configured(p, BASE, log2),
            mem: QueueMemory::new(),
            policy: Res0Policy::Ill,
            atc_fail: Vec::new(),
        }
    }
    fn submit(&mut self, cmds: &[RawCommand]) -> u32 {
        self.mem.submit(&self.q, cmds)
    }
    /// Apply `t` to the implementation and process; returns the state before and the settled
    /// observation.
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
            .process(&self.mem, self.policy, &cls, &mut |rd, _, _| {
                if fail.contains(&rd) {
                    CmdAction::AtcInvSyncError
                } else {
                    CmdAction::Continue
                }
            });
        let obs = res.observation(&self.q);
        (before, obs, res)
    }
    fn ack(&self) -> u32 {
        self.q.read_gerror()
    }
}

fn oracle(
    before: &QueueState,
    t: Trigger,
    mem: &QueueMemory,
    policy: Option<Res0Policy>,
    obs: &Observation,
) -> Result<smmu_model::queue::Accepted, QueueViolation> {
    check(
        before,
        t,
        mem,
        &OracleCtx {
            classifier: &cls,
            res0_policy: policy,
        },
        obs,
    )
}

#[track_caller]
fn rejected(res: Result<smmu_model::queue::Accepted, QueueViolation>, rule: &Rule) -> String {
    match res {
        Ok(a) => panic!("expected {} but accepted: {a:?}", rule.id),
        Err(v) => {
            assert_eq!(v.rule.id, rule.id, "wrong rule: {}", v.message);
            assert!(v.message.contains(rule.id) && v.message.contains(rule.section));
            v.message
        }
    }
}

fn cons_with(rd: u32, e: CmdError) -> u32 {
    rd | ((e.code() as u32) << 24)
}

#[test]
fn case44_sync_cs_reserved_is_ill() {
    // Uses the real classifier: the queue model makes CS == 0b11 illegal itself (§4.7.3).
    let p = full();
    let mut q = QueueState::configured(&p, BASE, 4);
    let mut mem = QueueMemory::new();
    let prod = mem.submit(&q, &[tlbi(), sync_cs(3, 0x1000, 1), tlbi()]);
    let before = q.clone();
    q.write_prod(prod);
    let pc = ProfileClassifier {
        profile: p,
        queue: Queue::NonSecure,
    };
    let res = q.process(&mem, Res0Policy::Ill, &pc, &mut |_, _, _| {
        CmdAction::Continue
    });
    assert_eq!(res.error.map(|e| (e.rd, e.error)), Some((1, CmdError::Ill)));
    assert!(res.syncs.is_empty());
    let ctx = OracleCtx {
        classifier: &pc,
        res0_policy: None,
    };
    let obs = res.observation(&q);
    let ok = check(&before, Trigger::Prod(prod), &mem, &ctx, &obs).unwrap();
    assert_eq!(ok.consumed, vec![0]);
    // Broken: CS=0b11 accepted (consumed, no error).
    let bad = Observation::settled(3, 0);
    let m = rejected(
        check(&before, Trigger::Prod(prod), &mem, &ctx, &bad),
        &r::CONS_STOPS_AT_ILL,
    );
    assert!(
        m.contains("CMD_SYNC") && m.contains("entry 1") && m.contains("ILL-SYNC-CS"),
        "{m}"
    );
}

#[test]
fn case45_sync_signals() {
    // SIG_SEV without IDR0.SEV is SIG_NONE: no event, no error.
    let qemu = Profile::default();
    let mut rig = Rig::new(&qemu, 3);
    let prod = rig.submit(&[sync_cs(2, 0, 0)]);
    let (before, obs, res) = rig.run(Trigger::Prod(prod));
    assert!(res.error.is_none() && obs.sev_events == 0);
    oracle(&before, Trigger::Prod(prod), &rig.mem, None, &obs).unwrap();
    let mut bad = obs.clone();
    bad.sev_events = 1;
    let m = rejected(
        oracle(&before, Trigger::Prod(prod), &rig.mem, None, &bad),
        &r::SYNC_NO_UNREQUESTED_SIGNAL,
    );
    assert!(m.contains("IDR0.SEV == 0"), "{m}");

    // SIG_IRQ with MSIAddress == 0: no MSI write.
    let mut rig = Rig::new(&full(), 3);
    let prod = rig.submit(&[sync_cs(1, 0, 7)]);
    let (before, obs, _) = rig.run(Trigger::Prod(prod));
    assert!(obs.msi_writes.is_empty());
    oracle(&before, Trigger::Prod(prod), &rig.mem, None, &obs).unwrap();
    let mut bad = obs.clone();
    bad.msi_writes.push(MsiWrite {
        addr: 0,
        data: 7,
        attr: 0,
        msh: 0,
    });
    rejected(
        oracle(&before, Trigger::Prod(prod), &rig.mem, None, &bad),
        &r::SYNC_NO_UNREQUESTED_SIGNAL,
    );

    // MSIAddress non-zero only above OAS (52 bits): counts as non-zero, then truncated.
    let mut rig = Rig::new(&full(), 3);
    let prod = rig.submit(&[sync_cs(1, (1 << 54) | 0x40, 9)]);
    let (before, obs, _) = rig.run(Trigger::Prod(prod));
    assert_eq!(obs.msi_writes.len(), 1);
    assert_eq!((obs.msi_writes[0].addr, obs.msi_writes[0].data), (0x40, 9));
    oracle(&before, Trigger::Prod(prod), &rig.mem, None, &obs).unwrap();
    let mut bad = obs.clone();
    bad.msi_writes[0].addr = (1 << 54) | 0x40;
    rejected(
        oracle(&before, Trigger::Prod(prod), &rig.mem, None, &bad),
        &r::SYNC_MSI_WRITE,
    );
    // And missing entirely when settled.
    let mut bad = obs.clone();
    bad.msi_writes.clear();
    rejected(
        oracle(&before, Trigger::Prod(prod), &rig.mem, None, &bad),
        &r::SYNC_SIGNAL_SENT,
    );
}

#[test]
fn case49_ill_stops_before_sync_and_resume_covers_tlbi() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi(), ill(), sync_msi(5)]);
    let t = Trigger::Prod(prod);
    let (before, obs, res) = rig.run(t);
    assert_eq!(res.consumed.len(), 1);
    assert!(res.syncs.is_empty() && obs.msi_writes.is_empty());
    assert_eq!(obs.cons, cons_with(1, CmdError::Ill));
    assert_eq!(obs.gerror & GERROR_CMDQ_ERR, 1);
    let ok = oracle(&before, t, &rig.mem, None, &obs).unwrap();
    assert_eq!(ok.consumed, vec![0]);
    assert_eq!(ok.error.map(|e| e.rd), Some(1));

    // Broken: CONS advanced past the illegal command.
    let m = rejected(
        oracle(&before, t, &rig.mem, None, &Observation::settled(3, 0)),
        &r::CONS_STOPS_AT_ILL,
    );
    assert!(m.contains("entry 1") && m.contains("Reserved"), "{m}");
    // Broken: GERROR not toggled though ERR is written.
    let m = rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(obs.cons, 0),
        ),
        &r::GERROR_TOGGLE,
    );
    assert!(m.contains("CERROR_ILL"), "{m}");
    // Broken: wrong ERR code.
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(cons_with(1, CmdError::Abt), 1),
        ),
        &r::ERR_CODE,
    );
    // Broken: the SYNC after the error signalled completion.
    let mut bad = obs.clone();
    bad.msi_writes.push(msi(5));
    let m = rejected(
        oracle(&before, t, &rig.mem, None, &bad),
        &r::SYNC_SIGNAL_ONLY_CONSUMED,
    );
    assert!(m.contains("entry 2") && m.contains("CERROR_ILL"), "{m}");
    // Broken: the SYNC executed while the error stops the queue.
    let mut bad = obs.clone();
    bad.executed.push(2);
    rejected(
        oracle(&before, t, &rig.mem, None, &bad),
        &r::NO_EXECUTION_PAST_STOP,
    );

    // Fix the command and acknowledge: processing resumes at CONS, the SYNC completes.
    let fixed_at = rig.q.entry_pa(1);
    rig.mem.write(fixed_at, tlbi());
    let ack = Trigger::Gerrorn(rig.ack());
    let (before, obs, res) = rig.run(ack);
    assert_eq!(res.consumed.len(), 2);
    assert_eq!(obs.msi_writes, vec![msi(5)]);
    let ok = oracle(&before, ack, &rig.mem, None, &obs).unwrap();
    assert_eq!(ok.completed_syncs, vec![2]);
    // Broken: no restart after acknowledgement.
    let m = rejected(
        oracle(
            &before,
            ack,
            &rig.mem,
            None,
            &Observation::settled(before.read_cons(), before.read_gerror()),
        ),
        &r::RESTART_ON_ACK,
    );
    assert!(m.contains("GERRORN"), "{m}");
}

#[test]
fn case50_rewritten_command_is_refetched() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[ill(), sync_msi(1)]);
    rig.run(Trigger::Prod(prod));
    assert!(rig.q.cmdq_err_active());
    // Replace the bad command with a SYNC sending a different MSI.
    let pa = rig.q.entry_pa(0);
    rig.mem.write(pa, sync_msi(2));
    let ack = Trigger::Gerrorn(rig.ack());
    let (before, obs, _) = rig.run(ack);
    assert_eq!(obs.msi_writes, vec![msi(2), msi(1)]);
    oracle(&before, ack, &rig.mem, None, &obs).unwrap();
    // Broken: a stale cached copy of the bad command raised ILL again.
    rejected(
        oracle(
            &before,
            ack,
            &rig.mem,
            None,
            &Observation::settled(cons_with(0, CmdError::Ill), before.read_gerror() ^ 1),
        ),
        &r::NO_SPURIOUS_ERROR,
    );
}

#[test]
fn case51_prod_moved_back_drops_commands() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi(), ill(), sync_msi(3)]);
    rig.run(Trigger::Prod(prod));
    // PROD back to CONS while the error is active (§7.1).
    let back = Trigger::Prod(rig.q.cons_rd());
    let (before, obs, res) = rig.run(back);
    assert!(res.consumed.is_empty());
    oracle(&before, back, &rig.mem, None, &obs).unwrap();
    let ack = Trigger::Gerrorn(rig.ack());
    let (before, obs, res) = rig.run(ack);
    assert!(res.consumed.is_empty() && obs.msi_writes.is_empty());
    assert_eq!(rig.q.cons_rd(), 1);
    oracle(&before, ack, &rig.mem, None, &obs).unwrap();
    // Broken: the dropped commands ran.
    rejected(
        oracle(
            &before,
            ack,
            &rig.mem,
            None,
            &Observation::settled(3, before.read_gerror()),
        ),
        &r::NO_PAST_PROD,
    );
    let mut bad = obs.clone();
    bad.executed.push(2);
    rejected(oracle(&before, ack, &rig.mem, None, &bad), &r::NO_PAST_PROD);
    let mut bad = obs.clone();
    bad.msi_writes.push(msi(3));
    let m = rejected(oracle(&before, ack, &rig.mem, None, &bad), &r::NO_PAST_PROD);
    assert!(m.contains("entry 2"), "{m}");
}

#[test]
fn case52_gerrorn_ack_restarts_without_prod_write() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[ill(), tlbi()]);
    rig.run(Trigger::Prod(prod));
    let pa = rig.q.entry_pa(0);
    rig.mem.write(pa, tlbi());
    let ack = Trigger::Gerrorn(rig.ack());
    let (before, obs, res) = rig.run(ack);
    assert_eq!(res.consumed.len(), 2);
    assert_eq!(
        oracle(&before, ack, &rig.mem, None, &obs).unwrap().consumed,
        vec![0, 1]
    );
    // Toggling GERRORN while the error is inactive is CONSTRAINED UNPREDICTABLE: no assertion.
    let t = Trigger::Gerrorn(rig.q.read_gerrorn() ^ 1);
    let ok = oracle(
        &rig.q.clone(),
        t,
        &rig.mem,
        None,
        &Observation::settled(0x7f00_0000, 0x1),
    )
    .unwrap();
    assert!(ok.unconstrained.is_some());
}

#[test]
fn case53_cmdqen_cycle_does_not_acknowledge() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[ill(), tlbi()]);
    rig.run(Trigger::Prod(prod));
    let pa = rig.q.entry_pa(0);
    rig.mem.write(pa, tlbi());
    rig.run(Trigger::Cmdqen(false));
    let t = Trigger::Cmdqen(true);
    let (before, obs, res) = rig.run(t);
    assert!(res.consumed.is_empty() && rig.q.cmdq_err_active());
    oracle(&before, t, &rig.mem, None, &obs).unwrap();
    // Broken: re-enabling restarted processing.
    let m = rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(2, before.read_gerror()),
        ),
        &r::STOPPED_WHILE_ERROR,
    );
    assert!(m.contains("CMD_TLBI_NH_ALL"), "{m}");
    // Broken: processing while disabled.
    let mut off = before.clone();
    off.write_cr0_cmdqen(false);
    off.write_gerrorn(off.read_gerror());
    rejected(
        oracle(
            &off,
            Trigger::None,
            &rig.mem,
            None,
            &Observation::settled(1, off.read_gerror()),
        ),
        &r::STOPPED_WHILE_DISABLED,
    );
}

#[test]
fn case54_fetch_abort_is_abt_without_advance() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi(), tlbi(), sync_msi(1)]);
    let q = rig.q.clone();
    rig.mem.abort_entry(&q, 1);
    let t = Trigger::Prod(prod);
    let (before, obs, res) = rig.run(t);
    assert_eq!(res.error.map(|e| (e.rd, e.error)), Some((1, CmdError::Abt)));
    assert_eq!(obs.cons, cons_with(1, CmdError::Abt));
    oracle(&before, t, &rig.mem, None, &obs).unwrap();
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(cons_with(2, CmdError::Abt), 1),
        ),
        &r::ABT_CONS_NOT_ADVANCED,
    );
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(cons_with(1, CmdError::Ill), 1),
        ),
        &r::ERR_CODE,
    );
}

#[test]
fn case55_wrap_with_full_queue() {
    let mut rig = Rig::new(&full(), 2);
    // Move CONS/PROD to entry 2 wrap 0.
    let p = rig.submit(&[tlbi(), tlbi()]);
    rig.run(Trigger::Prod(p));
    assert_eq!(rig.q.cons_rd(), 2);
    // Four commands: PROD = entry 2 wrap 1, the queue is full.
    let p = rig.submit(&[tlbi(), sync_msi(1), tlbi(), sync_msi(2)]);
    let g = rig.q.geometry();
    assert_eq!(p, 0b110);
    assert!(g.is_full(p, rig.q.cons_rd()) && !g.has_space(p, rig.q.cons_rd()));
    let t = Trigger::Prod(p);
    let (before, obs, res) = rig.run(t);
    assert_eq!(res.consumed.len(), 4);
    assert_eq!(rig.q.cons_rd(), p);
    assert!(g.is_empty(p, rig.q.cons_rd()));
    oracle(&before, t, &rig.mem, None, &obs).unwrap();
    // Broken: the full queue seen as empty (wrap flag ignored).
    let m = rejected(
        oracle(&before, t, &rig.mem, None, &Observation::settled(2, 0)),
        &r::WRAP_FLAG,
    );
    assert!(m.contains("full"), "{m}");
    // Broken: CONS with the wrap flag lost after wrapping.
    let p2 = rig.submit(&[tlbi(), tlbi(), tlbi()]);
    assert_eq!(p2, 0b001);
    let t = Trigger::Prod(p2);
    let (before, obs, _) = rig.run(t);
    oracle(&before, t, &rig.mem, None, &obs).unwrap();
    rejected(
        oracle(&before, t, &rig.mem, None, &Observation::settled(0b101, 0)),
        &r::WRAP_FLAG,
    );
}

#[test]
fn case55_one_entry_queue() {
    let mut rig = Rig::new(&full(), 0);
    let g = rig.q.geometry();
    assert_eq!((g.entries(), g.ptr_mask()), (1, 1));
    for round in 0..4u32 {
        let p = rig.submit(&[sync_msi(round)]);
        assert_eq!(p, (round + 1) & 1, "the wrap flag is the whole index");
        assert!(g.is_full(p, rig.q.cons_rd()));
        let t = Trigger::Prod(p);
        let (before, obs, _) = rig.run(t);
        assert_eq!(obs.msi_writes, vec![msi(round)]);
        oracle(&before, t, &rig.mem, None, &obs).unwrap();
        let mut bad = Observation::settled(before.cons_rd(), 0);
        rejected(oracle(&before, t, &rig.mem, None, &bad), &r::WRAP_FLAG);
        bad.cons = 0b10 | p;
        rejected(oracle(&before, t, &rig.mem, None, &bad), &r::CONS_RD_RAZ);
    }
    // LOG2SIZE above IDR1.CMDQS is capped.
    let mut q = QueueState::new(&full());
    q.write_base(BASE | 31).unwrap();
    assert_eq!(q.geometry().qs(), 19);
    q.write_cr0_cmdqen(true);
    assert!(q.write_base(BASE).is_err() && q.write_cons(0).is_err());
}

#[test]
fn case56_err_visible_before_gerror() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi(), ill()]);
    let t = Trigger::Prod(prod);
    let (before, _, _) = rig.run(t);
    let mid = Observation::unsettled(cons_with(1, CmdError::Ill), 0);
    let ok = oracle(&before, t, &rig.mem, None, &mid).unwrap();
    assert!(ok.error.is_none());
    let mut settled = mid.clone();
    settled.settled = true;
    rejected(
        oracle(&before, t, &rig.mem, None, &settled),
        &r::GERROR_TOGGLE,
    );
    // ERR is UNKNOWN with no active error: any value is accepted when CONS reaches PROD.
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi()]);
    let t = Trigger::Prod(prod);
    let (before, _, _) = rig.run(t);
    oracle(
        &before,
        t,
        &rig.mem,
        None,
        &Observation::settled(1 | 0x7f00_0000, 0),
    )
    .unwrap();
    // CONS may lag only while unsettled.
    oracle(&before, t, &rig.mem, None, &Observation::unsettled(0, 0)).unwrap();
    rejected(
        oracle(&before, t, &rig.mem, None, &Observation::settled(0, 0)),
        &r::CONS_REACHES_STOP,
    );
    // An error toggled without a cause.
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(cons_with(0, CmdError::Ill), 1),
        ),
        &r::NO_SPURIOUS_ERROR,
    );
}

#[test]
fn case57_no_second_error_and_independent_bits() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[ill()]);
    rig.run(Trigger::Prod(prod));
    let p2 = rig.submit(&[ill()]);
    let t = Trigger::Prod(p2);
    let (before, obs, _) = rig.run(t);
    oracle(&before, t, &rig.mem, None, &obs).unwrap();
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(obs.cons, obs.gerror ^ 1),
        ),
        &r::GERROR_ONLY_WHEN_INACTIVE,
    );
    // MSI_CMDQ_ABT_ERR: an aborted SYNC MSI is missing and reported; independent of CMDQ_ERR.
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[sync_msi(1), sync_msi(2)]);
    let t = Trigger::Prod(prod);
    let (before, mut obs, _) = rig.run(t);
    obs.msi_writes.remove(0);
    obs.gerror |= GERROR_MSI_CMDQ_ABT_ERR;
    oracle(&before, t, &rig.mem, None, &obs).unwrap();
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi()]);
    let t = Trigger::Prod(prod);
    let (before, _, _) = rig.run(t);
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(1, GERROR_MSI_CMDQ_ABT_ERR),
        ),
        &r::MSI_CMDQ_ABT_ERR,
    );
}

#[test]
fn case69_atc_inv_sync_error() {
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi(), atc_inv(), sync_msi(4)]);
    rig.atc_fail = vec![2];
    let t = Trigger::Prod(prod);
    let (before, obs, res) = rig.run(t);
    assert_eq!(
        res.error.map(|e| (e.rd, e.error)),
        Some((2, CmdError::AtcInvSync))
    );
    assert!(obs.msi_writes.is_empty());
    let ok = oracle(&before, t, &rig.mem, None, &obs).unwrap();
    assert_eq!(ok.consumed, vec![0, 1]);
    // The SYNC completing normally is also permitted.
    let mut normal = Rig::new(&full(), 4);
    let p = normal.submit(&[tlbi(), atc_inv(), sync_msi(4)]);
    let (b2, o2, _) = normal.run(Trigger::Prod(p));
    oracle(&b2, Trigger::Prod(p), &normal.mem, None, &o2).unwrap();
    // Broken: the failed SYNC signalled completion.
    let mut bad = obs.clone();
    bad.msi_writes.push(msi(4));
    rejected(
        oracle(&before, t, &rig.mem, None, &bad),
        &r::SYNC_SIGNAL_ONLY_CONSUMED,
    );
    // Broken: CONS moved past the failed SYNC.
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(cons_with(3, CmdError::AtcInvSync), 1),
        ),
        &r::NO_SPURIOUS_ERROR,
    );
    // Re-fetched after acknowledgement, the SYNC completes.
    rig.atc_fail.clear();
    let ack = Trigger::Gerrorn(rig.ack());
    let (before, obs, _) = rig.run(ack);
    assert_eq!(obs.msi_writes, vec![msi(4)]);
    oracle(&before, ack, &rig.mem, None, &obs).unwrap();
    // ATC_INV_SYNC without an outstanding ATC_INV is not permitted.
    let mut rig = Rig::new(&full(), 4);
    let prod = rig.submit(&[tlbi(), sync_msi(4)]);
    let t = Trigger::Prod(prod);
    let (before, _, _) = rig.run(t);
    rejected(
        oracle(
            &before,
            t,
            &rig.mem,
            None,
            &Observation::settled(cons_with(1, CmdError::AtcInvSync), 1),
        ),
        &r::ATC_INV_SYNC_AT_SYNC,
    );
}

#[test]
fn res0_policy_pinned_or_open() {
    for policy in [Res0Policy::Ill, Res0Policy::Ignore] {
        let mut rig = Rig::new(&full(), 4);
        rig.policy = policy;
        let prod = rig.submit(&[res0_tlbi(), sync_msi(1)]);
        let t = Trigger::Prod(prod);
        let (before, obs, _) = rig.run(t);
        oracle(&before, t, &rig.mem, None, &obs).unwrap();
        oracle(&before, t, &rig.mem, Some(policy), &obs).unwrap();
        let other = match policy {
            Res0Policy::Ill => Res0Policy::Ignore,
            Res0Policy::Ignore => Res0Policy::Ill,
        };
        let rule = match policy {
            Res0Policy::Ill => &r::RES0_ILL_OR_IGNORE,
            Res0Policy::Ignore => &r::RES0_ILL_OR_IGNORE,
        };
        rejected(oracle(&before, t, &rig.mem, Some(other), &obs), rule);
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tlbi,
    Ill,
    Res0,
    SyncNone,
    SyncMsi,
    SyncCs3,
    SyncSev,
    AtcInv,
    Abort,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Tlbi),
        1 => Just(Kind::Ill),
        1 => Just(Kind::Res0),
        1 => Just(Kind::SyncNone),
        2 => Just(Kind::SyncMsi),
        1 => Just(Kind::SyncCs3),
        1 => Just(Kind::SyncSev),
        1 => Just(Kind::AtcInv),
        1 => Just(Kind::Abort),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn processor_outcome_is_accepted_and_cons_flips_rejected(
        log2 in 0u8..4,
        start in 0u32..32,
        kinds in prop::collection::vec(kind(), 0..16),
        ill_policy in any::<bool>(),
        atc_fail in any::<bool>(),
        full_profile in any::<bool>(),
    ) {
        let profile = if full_profile { full() } else { Profile::default() };
        let mut q = QueueState::new(&profile);
        q.write_base(BASE | log2 as u64).unwrap();
        let g = q.geometry();
        let s = start & g.ptr_mask();
        q.write_cons(s).unwrap();
        q.write_prod(s);
        q.write_cr0_cmdqen(true);
        let n = kinds.len().min(g.entries() as usize);
        let mut mem = QueueMemory::new();
        let mut p = s;
        for (i, k) in kinds[..n].iter().enumerate() {
            let c = match k {
                Kind::Tlbi => tlbi(),
                Kind::Ill => ill(),
                Kind::Res0 => res0_tlbi(),
                Kind::SyncNone => sync_cs(0, 0x1234_0000, 1),
                Kind::SyncMsi => sync_msi(i as u32),
                Kind::SyncCs3 => sync_cs(3, 0x1000, 1),
                Kind::SyncSev => sync_cs(2, 0, 0),
                Kind::AtcInv => atc_inv(),
                Kind::Abort => tlbi(),
            };
            mem.write_entry(&q, p, c);
            if matches!(k, Kind::Abort) {
                mem.abort_entry(&q, p);
            }
            p = g.incr(p);
        }
        let policy = if ill_policy { Res0Policy::Ill } else { Res0Policy::Ignore };
        let before = q.clone();
        let t = Trigger::Prod(p);
        q.write_prod(p);
        let res = q.process(&mem, policy, &cls, &mut |_, c, _| {
            if atc_fail && c.opcode() == Opcode::Sync { CmdAction::AtcInvSyncError } else { CmdAction::Continue }
        });
        let obs = res.observation(&q);
        for pin in [Some(policy), None] {
            let ctx = OracleCtx { classifier: &cls, res0_policy: pin };
            let ok = check(&before, t, &mem, &ctx, &obs);
            prop_assert!(ok.is_ok(), "{:?}", ok);
            let ok = ok.unwrap();
            prop_assert_eq!(&ok.consumed, &res.consumed.iter().map(|c| c.rd).collect::<Vec<_>>());
            prop_assert_eq!(ok.error, res.error);
            prop_assert_eq!(ok.after.read_cons(), q.read_cons());
            prop_assert_eq!(ok.after.atc_inv_outstanding(), q.atc_inv_outstanding());
        }
        // Flip the reported CONS to every other value in the batch.
        let ctx = OracleCtx { classifier: &cls, res0_policy: Some(policy) };
        let allowed = allowed_outcomes(&before, t, &mem, &ctx);
        let err = res.error.map(|e| e.error);
        let mut rd = s;
        for i in 0..=n {
            if rd != q.cons_rd() {
                let mut flipped = obs.clone();
                flipped.cons = (obs.cons & !0xfffff) | rd;
                flipped.executed.clear();
                let step = allowed.steps.get(i).filter(|_| (i as u32) < allowed.pending);
                let may_stop_here = match err {
                    Some(e) => step.is_some_and(|st| st.may_raise(e)),
                    None => false,
                };
                let got = check_allowed(&allowed, &flipped);
                if !may_stop_here {
                    prop_assert!(got.is_err(), "CONS flipped to {} accepted: {:?}", rd, got);
                }
            }
            rd = g.incr(rd);
        }
    }
}
