//! Invalidation commands, written the way an SMMU implementer would: each TLBI/CFGI command
//! becomes a predicate over cached entries' tags. This is deliberately independent of the
//! model's `smmu_model::scope` so that the two cross-check each other.
//!
//! Choices (all legal because over-invalidation is always permitted, §4.4 intro, §4.3):
//! - TG/TTL hints are ignored: every entry whose input range overlaps the command's range is
//!   removed, whatever its granule or level (§4.4.1.1 only *restricts* the required scope).
//! - Leaf=1 still removes leaf entries only; Leaf=0 also removes walk-cache entries (§4.4.2.4).
//!   Table entries are removed for every ASID (they are per address space, but shared tables are
//!   common and the cost of over-invalidating them is nil here).
//! - S2_IPA removes stage-2 entries only; combined entries stay (§4.4.3.1 allows that; software
//!   follows with NH_ALL/NH_VAA).
//! - CFGI_STE always removes the L1STD covering the StreamID, also with Leaf=1 (§4.3.1).
//! - VMID is matched only when stage 2 is implemented (§3.17: entries carry no VMID otherwise);
//!   with 8-bit ASIDs/VMIDs only the low 8 bits are compared (§4.4: upper bits RES0).

use super::config_cache::ConfigCache;
use super::mutant::Mutant;
use super::tlb::{EntryStage, Tag, Tlb, World};
use super::walk_cache::WalkCache;
use smmu_model::command::layout as l;
use smmu_model::command::{Field, Opcode, RawCommand};
use smmu_model::granule::Granule;
use smmu_model::profile::Profile;

/// What invalidation depends on in the ID registers.
#[derive(Clone, Copy, Debug)]
pub struct InvCtx {
    pub s2p: bool,
    pub asid16: bool,
    pub vmid16: bool,
    pub ril: bool,
    pub ds: bool,
    pub mutant: Option<Mutant>,
}

impl InvCtx {
    pub fn new(p: &Profile, mutant: Option<Mutant>) -> InvCtx {
        InvCtx {
            s2p: p.s2p,
            asid16: p.asid16,
            vmid16: p.vmid16,
            ril: p.ril,
            ds: p.ds,
            mutant,
        }
    }
    fn is(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }
    fn vmid_eq(&self, entry: u16, cmd: u64) -> bool {
        if !self.s2p {
            return true;
        }
        let mask = if self.vmid16 { 0xffff } else { 0xff };
        u64::from(entry) & mask == cmd & mask
    }
    fn asid_eq(&self, entry: u16, cmd: u64) -> bool {
        let mask = if self.asid16 { 0xffff } else { 0xff };
        // MUTANT (AsidUpperByteDropped): the command's ASID is cut to ASID[7:0].
        let cmd = if self.is(Mutant::AsidUpperByteDropped) {
            cmd & 0xff
        } else {
            cmd
        };
        u64::from(entry) & mask == cmd & mask
    }
}

/// The caches a command acts on.
pub struct Caches<'a> {
    pub tlb: &'a mut Tlb,
    pub walk: &'a mut WalkCache,
    pub config: &'a mut ConfigCache,
}

/// The input range an address TLBI covers: [start, end).
#[derive(Clone, Copy, Debug)]
struct AddrRange {
    start: u64,
    end: u128,
    /// A non-range (TG == 0) command: containment of `start`.
    point: bool,
    /// TG != 0 and TTL != 0: the hinted level (only the TTL mutant looks at it).
    ttl: Option<u8>,
    /// The TTL field is 0, level unknown (only the ttl-assumed mutant looks at it).
    ttl_zero: bool,
}

impl AddrRange {
    fn of(cmd: RawCommand, field: Field, ctx: &InvCtx) -> AddrRange {
        let addr = cmd.address(field);
        let ttl_zero = cmd.get(l::TTL) == 0;
        // Without RIL the range fields are RES0 (§4.4.1.1): treat as TG = 0.
        let tg = if ctx.ril { cmd.get(l::TG) as u8 } else { 0 };
        let Some(g) = Granule::from_tg_field(tg) else {
            // TG == 0: the entry containing Address, whatever its size (§4.4 note).
            return AddrRange {
                start: addr,
                end: u128::from(addr) + 1,
                point: true,
                ttl: None,
                ttl_zero,
            };
        };
        let num = cmd.get(l::NUM);
        // SCALE is 6 bits with DS, else 5 (bit 25 RES0); values above 39 act as 39 (§4.4.1.1).
        let scale_mask = if ctx.ds && !ctx.is(Mutant::Scale5BitDs) {
            0x3f
        } else {
            // MUTANT (Scale5BitDs): SCALE read as 5 bits whatever IDR5.DS says.
            0x1f
        };
        let mut scale = (cmd.get(l::SCALE) & scale_mask).min(39) as u32;
        let mut count = u128::from(num) + 1;
        if ctx.is(Mutant::RangeNumNotPlusOne) {
            // MUTANT: the range is NUM x 2^SCALE granules (NUM = 0 covers nothing).
            count = u128::from(num);
        }
        if ctx.is(Mutant::RangeIgnoresScale) {
            // MUTANT: SCALE dropped.
            scale = 0;
        }
        // Range_bytes = (NUM+1) x 2^SCALE x granule (§4.4.1.1); at most 2^(5+39+16) < 2^128.
        let mut bytes = count << (scale + g.shift());
        if ctx.is(Mutant::RangeFirstPageOnly) {
            // MUTANT: only the first granule.
            bytes = u128::from(g.size());
        }
        // The range starts at Address; misaligned starts are UNPREDICTABLE, so round down to
        // the granule (a superset).
        let start = addr & !(g.size() - 1);
        let ttl = cmd.get(l::TTL) as u8;
        AddrRange {
            start,
            end: u128::from(start) + bytes,
            point: false,
            ttl: (ttl != 0).then_some(ttl),
            ttl_zero,
        }
    }

    fn hits(&self, tag: &Tag, ctx: &InvCtx, leaf: bool) -> bool {
        if self.point && ctx.is(Mutant::Tg0Noop) {
            // MUTANT: a non-range (TG=0) invalidation is dropped.
            return false;
        }
        if leaf && self.ttl_zero && ctx.is(Mutant::TtlAssumed) && tag.level != 3 {
            // MUTANT: TTL=0 (level unknown) taken as the last level: blocks survive.
            return false;
        }
        if self.point && ctx.is(Mutant::VaExactBase) {
            // MUTANT: exact base comparison instead of containment.
            return tag.base == self.start;
        }
        if leaf && ctx.is(Mutant::TtlOffByOne) {
            if let Some(ttl) = self.ttl {
                // MUTANT: TTL honoured one level too shallow.
                if tag.level + 1 != ttl {
                    return false;
                }
            }
        }
        tag.overlaps(self.start, self.end)
    }
}

fn s1_stage(s: EntryStage) -> bool {
    matches!(s, EntryStage::S1 | EntryStage::Combined)
}

fn el2(w: World) -> bool {
    matches!(w, World::NsEl2 | World::NsEl2E2h)
}

/// Apply one consumed command to the caches (§4.3, §4.4). Commands without a cache effect
/// (SYNC, PREFETCH, ATC_INV, PRI_RESP, RESUME, STALL_TERM, VMS_PIDM) do nothing here.
pub fn apply(cmd: RawCommand, ctx: &InvCtx, c: &mut Caches<'_>) {
    let vmid = cmd.get(l::VMID);
    let asid = cmd.get(l::ASID);
    let leaf_flag = cmd.get(l::LEAF) != 0;
    let sid = cmd.get(l::SID);
    match cmd.opcode() {
        // §4.4.2.1: all stage-1 NS-EL1 entries of VMID, global or not, combined included.
        Opcode::TlbiNhAll => {
            let vmid = if ctx.is(Mutant::NhAllVmidZero) {
                // MUTANT: the VMID field is ignored, VMID 0 is used.
                0
            } else {
                vmid
            };
            let skip_combined = ctx.is(Mutant::NhAllSkipsCombined);
            let sel = |t: &Tag| {
                t.world == World::NsEl1
                    && s1_stage(t.stage)
                    // MUTANT (NhAllSkipsCombined): nested entries forgotten.
                    && !(skip_combined && t.stage == EntryStage::Combined)
                    && ctx.vmid_eq(t.vmid, vmid)
            };
            c.tlb.remove_if(sel);
            c.walk.remove_if(sel);
        }
        // §4.4.2.2: non-global stage-1 entries with ASID in VMID.
        Opcode::TlbiNhAsid => {
            let sel = |t: &Tag| {
                t.world == World::NsEl1
                    && s1_stage(t.stage)
                    && !t.global
                    && ctx.vmid_eq(t.vmid, vmid)
                    && ctx.asid_eq(t.asid, asid)
            };
            c.tlb.remove_if(sel);
            c.walk.remove_if(sel);
        }
        // §4.4.2.4/5: by address, ASID or global (VA), any ASID (VAA).
        Opcode::TlbiNhVa | Opcode::TlbiNhVaa => {
            let r = AddrRange::of(cmd, l::VA, ctx);
            let vaa = cmd.opcode() == Opcode::TlbiNhVaa;
            // MUTANT (LeafSkipsLeaf): Leaf=1 inverted, the leaf entries are left and only the
            // walk cache is cleaned.
            let leaf_inverted = leaf_flag && ctx.is(Mutant::LeafSkipsLeaf);
            c.tlb.remove_if(|t| {
                if leaf_inverted {
                    return false;
                }
                if t.world != World::NsEl1 || !s1_stage(t.stage) || !ctx.vmid_eq(t.vmid, vmid) {
                    return false;
                }
                let asid_ok = if vaa && ctx.is(Mutant::VaaAsAsidZero) {
                    // MUTANT: VAA handled as VA with ASID 0.
                    t.global || ctx.asid_eq(t.asid, 0)
                } else if vaa {
                    true
                } else if ctx.is(Mutant::NhVaSkipsGlobal) {
                    // MUTANT: global entries not matched.
                    !t.global && ctx.asid_eq(t.asid, asid)
                } else {
                    t.global || ctx.asid_eq(t.asid, asid)
                };
                asid_ok && r.hits(t, ctx, true)
            });
            if (!leaf_flag || leaf_inverted) && !ctx.is(Mutant::Leaf0KeepsWalkCache) {
                c.walk.remove_if(|t| {
                    t.world == World::NsEl1
                        && s1_stage(t.stage)
                        && ctx.vmid_eq(t.vmid, vmid)
                        && r.hits(t, ctx, false)
                });
            }
        }
        // §4.4.2.7: every EL2 and EL2-E2H entry.
        Opcode::TlbiEl2All => {
            if ctx.is(Mutant::El2AllIgnored) {
                // MUTANT: unhandled.
                return;
            }
            c.tlb.remove_if(|t| el2(t.world));
            c.walk.remove_if(|t| el2(t.world));
        }
        // §4.4.2.10: non-global EL2-E2H entries with ASID.
        Opcode::TlbiEl2Asid => {
            let sel =
                |t: &Tag| t.world == World::NsEl2E2h && !t.global && ctx.asid_eq(t.asid, asid);
            c.tlb.remove_if(sel);
            c.walk.remove_if(sel);
        }
        // §4.4.2.8/9: EL2 entries by address. Both EL2 flavours are hit (a superset of either
        // E2H setting); ASID is compared only for E2H entries.
        Opcode::TlbiEl2Va | Opcode::TlbiEl2Vaa => {
            let r = AddrRange::of(cmd, l::VA, ctx);
            let vaa = cmd.opcode() == Opcode::TlbiEl2Vaa;
            c.tlb.remove_if(|t| {
                el2(t.world)
                    && (vaa || t.world == World::NsEl2 || t.global || ctx.asid_eq(t.asid, asid))
                    && r.hits(t, ctx, true)
            });
            if !leaf_flag && !ctx.is(Mutant::Leaf0KeepsWalkCache) {
                c.walk.remove_if(|t| el2(t.world) && r.hits(t, ctx, false));
            }
        }
        // §4.4.3.2: every NS-EL1 entry of VMID, all stages.
        Opcode::TlbiS12Vmall => {
            let skip_s2 = ctx.is(Mutant::S12VmallSkipsS2);
            let sel = |t: &Tag| {
                t.world == World::NsEl1
                    && ctx.vmid_eq(t.vmid, vmid)
                    // MUTANT (S12VmallSkipsS2): stage-2-only entries forgotten.
                    && !(skip_s2 && t.stage == EntryStage::S2)
            };
            c.tlb.remove_if(sel);
            c.walk.remove_if(sel);
        }
        // §4.4.3.1: stage-2 entries of VMID translating the IPA range.
        Opcode::TlbiS2Ipa => {
            let r = AddrRange::of(cmd, l::IPA, ctx);
            let pages_only = ctx.is(Mutant::S2IpaPagesOnly);
            c.tlb.remove_if(|t| {
                t.world == World::NsEl1
                    && t.stage == EntryStage::S2
                    && ctx.vmid_eq(t.vmid, vmid)
                    // MUTANT (S2IpaPagesOnly): blocks forgotten.
                    && !(pages_only && t.level != 3)
                    && r.hits(t, ctx, true)
            });
            if !leaf_flag && !ctx.is(Mutant::Leaf0KeepsWalkCache) {
                c.walk.remove_if(|t| {
                    t.world == World::NsEl1
                        && t.stage == EntryStage::S2
                        && ctx.vmid_eq(t.vmid, vmid)
                        && r.hits(t, ctx, false)
                });
            }
        }
        // §4.4.4.1: every NS-EL1 entry, all VMIDs, all stages.
        Opcode::TlbiNsnhAll => {
            if ctx.is(Mutant::NsnhAllDropped) {
                // MUTANT: unhandled.
                return;
            }
            let skip_s2 = ctx.is(Mutant::NsnhAllSkipsS2);
            let sel = |t: &Tag| {
                t.world == World::NsEl1
                    // MUTANT (NsnhAllSkipsS2): stage-2-only entries forgotten.
                    && !(skip_s2 && t.stage == EntryStage::S2)
            };
            c.tlb.remove_if(sel);
            c.walk.remove_if(sel);
        }
        // §4.3.1: the STE, the CDs cached through that StreamID, and the L1STD on the way.
        Opcode::CfgiSte => {
            c.config.remove_stes(sid, 1);
            if !ctx.is(Mutant::CfgiSteKeepsCd) {
                c.config.remove_cds_of(sid, 1);
            }
            c.config.remove_l1stds(sid, 1);
        }
        // §4.3.2, §4.3.6: 2^(Range+1) StreamIDs with SID[Range:0] ignored; Range 31 = all.
        Opcode::CfgiSteRange => {
            let range = cmd.get(l::RANGE) as u32;
            let count = 1u64 << (range.min(31) + 1);
            let mut first = sid & !(count - 1);
            let mut count = count;
            if ctx.is(Mutant::CfgiRangeUnaligned) {
                // MUTANT: SID[Range:0] not ignored.
                first = sid;
            }
            if ctx.is(Mutant::CfgiAllOverflow) && range >= 31 {
                // MUTANT: 32-bit end StreamID overflow; the range is empty.
                count = 0;
            }
            c.config.remove_stes(first, count);
            c.config.remove_cds_of(first, count);
            c.config.remove_l1stds(first, count);
        }
        // §4.3.3: the CD at index SSID reached through SID.
        Opcode::CfgiCd => {
            if ctx.is(Mutant::CfgiCdIgnored) {
                // MUTANT: unhandled.
                return;
            }
            c.config.remove_cd(sid as u32, cmd.get(l::SSID) as u32);
        }
        // §4.3.4: every CD of SID.
        Opcode::CfgiCdAll => {
            if ctx.is(Mutant::CfgiCdAllIgnored) {
                // MUTANT: unhandled.
                return;
            }
            c.config.remove_cds_of(sid, 1);
        }
        _ => {}
    }
}

/// Whether a command has a cache effect that a SYNC must complete (for the SYNC-early mutant).
pub fn is_invalidation(op: Opcode) -> bool {
    op.is_tlbi() || op.is_cfgi()
}
