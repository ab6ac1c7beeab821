//! VMSAv8-64 translation table walks (Arm ARM D8) and the SMMU's translation flow (§3.3,
//! §3.4, §5.2, §5.4): Stream table -> STE -> (CD table -> CD) -> stage 1 -> stage 2.
//!
//! The walk is built from step functions ([`descriptor_address`], [`decode_descriptor`]) that
//! a cache model can drive one level at a time; [`walk_stage`] and [`translate`] are built on
//! them. Nothing here panics on any memory contents: every loop is bounded by the four
//! translation levels, and address arithmetic is masked or wrapping.
//!
//! Not modelled (documented limitations): 52-bit VA/PA (DS, LPA, level -1), VMSAv8-32 LPAE
//! and VMSAv9-128 tables, HTTU (HA/HD/HAFT: ILLEGAL in this profile), the Contiguous hint
//! (decoded, ignored), PAN, permission indirection/overlays, FEAT_XNX (stage 2 XN[0] is
//! ignored; XN[1] forbids all execution), memory attributes (decoded, not interpreted),
//! Secure/Realm streams, ATS, stalls, and MPAM.

use serde::{Deserialize, Serialize};

use crate::granule::Granule;
use crate::memory::MemRead;
use crate::structures::cd::{cd_table_step, BadCd, CdFormat, CdTableStep, L1Cd, TtbRegion};
use crate::structures::ste::BadSte;
use crate::structures::stream_table::{locate_ste, read_struct, SteLookupError};
use crate::structures::{
    addr_mask, bit, bits, Cd, SmmuProfile, Ste, SteConfig, StreamTableConfig, StreamWorld,
};

/// Translation stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    S1,
    S2,
}

/// Event record CLASS of a stage 2 fault (§7.3): what the IPA was being translated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultClass {
    /// CD (or L1CD) fetch.
    Cd,
    /// Stage 1 translation table fetch.
    Tt,
    /// The transaction's input (stage 1 output) address.
    In,
}

/// Outcome of a failed translation: the SMMUv3 event (§7.3), or "aborted, no event".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// STE.Config == 0b000 (or Reserved 0b0xx): abort, no event recorded (§5.2 Config).
    Aborted,
    /// C_BAD_STREAMID, 0x02.
    BadStreamId,
    /// F_STE_FETCH, 0x03.
    SteFetch,
    /// C_BAD_STE, 0x04.
    BadSte,
    /// F_STREAM_DISABLED, 0x06.
    StreamDisabled,
    /// C_BAD_SUBSTREAMID, 0x08.
    BadSubstreamId,
    /// F_CD_FETCH, 0x09.
    CdFetch,
    /// C_BAD_CD, 0x0A.
    BadCd,
    /// F_WALK_EABT, 0x0B.
    WalkEabt,
    /// F_TRANSLATION, 0x10.
    Translation,
    /// F_ADDR_SIZE, 0x11.
    AddrSize,
    /// F_ACCESS, 0x12.
    Access,
    /// F_PERMISSION, 0x13.
    Permission,
}

impl FaultKind {
    /// The event type number (§7.3), or `None` for an abort without event.
    pub fn event_id(self) -> Option<u8> {
        Some(match self {
            FaultKind::Aborted => return None,
            FaultKind::BadStreamId => 0x02,
            FaultKind::SteFetch => 0x03,
            FaultKind::BadSte => 0x04,
            FaultKind::StreamDisabled => 0x06,
            FaultKind::BadSubstreamId => 0x08,
            FaultKind::CdFetch => 0x09,
            FaultKind::BadCd => 0x0A,
            FaultKind::WalkEabt => 0x0B,
            FaultKind::Translation => 0x10,
            FaultKind::AddrSize => 0x11,
            FaultKind::Access => 0x12,
            FaultKind::Permission => 0x13,
        })
    }

    /// The §7.3 event name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Aborted => "ABORT (no event)",
            FaultKind::BadStreamId => "C_BAD_STREAMID",
            FaultKind::SteFetch => "F_STE_FETCH",
            FaultKind::BadSte => "C_BAD_STE",
            FaultKind::StreamDisabled => "F_STREAM_DISABLED",
            FaultKind::BadSubstreamId => "C_BAD_SUBSTREAMID",
            FaultKind::CdFetch => "F_CD_FETCH",
            FaultKind::BadCd => "C_BAD_CD",
            FaultKind::WalkEabt => "F_WALK_EABT",
            FaultKind::Translation => "F_TRANSLATION",
            FaultKind::AddrSize => "F_ADDR_SIZE",
            FaultKind::Access => "F_ACCESS",
            FaultKind::Permission => "F_PERMISSION",
        }
    }
}

/// A fault inside one translation stage (a walk, or a stage's input/output checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageFault {
    pub kind: FaultKind,
    pub stage: Stage,
    /// Level of the descriptor that faulted, if the fault came from a descriptor.
    pub level: Option<u8>,
    /// The address being translated by `stage` (VA for S1, IPA for S2).
    pub address: u64,
    /// For stage 2 faults: what the IPA was for.
    pub class: Option<FaultClass>,
    /// For F_WALK_EABT: the PA whose read aborted.
    pub fetch_pa: Option<u64>,
}

/// A failed translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub sid: u32,
    pub ssid: Option<u32>,
    /// The transaction's input address.
    pub input_addr: u64,
    /// Stage of a translation fault (F_TRANSLATION .. F_PERMISSION, F_WALK_EABT).
    pub stage: Option<Stage>,
    pub class: Option<FaultClass>,
    pub level: Option<u8>,
    /// For stage 2 faults, the IPA that faulted.
    pub ipa: Option<u64>,
    /// For fetch aborts (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT), the address fetched.
    pub fetch_addr: Option<u64>,
    /// For C_BAD_STE, the reason.
    pub bad_ste: Option<BadSte>,
    /// For C_BAD_CD, the reason.
    pub bad_cd: Option<BadCd>,
}

impl Fault {
    fn new(kind: FaultKind, sid: u32, ssid: Option<u32>, input_addr: u64) -> Fault {
        Fault {
            kind,
            sid,
            ssid,
            input_addr,
            stage: None,
            class: None,
            level: None,
            ipa: None,
            fetch_addr: None,
            bad_ste: None,
            bad_cd: None,
        }
    }

    fn from_stage(f: StageFault, sid: u32, ssid: Option<u32>, input_addr: u64) -> Fault {
        Fault {
            stage: Some(f.stage),
            class: f.class,
            level: f.level,
            ipa: (f.stage == Stage::S2).then_some(f.address),
            fetch_addr: f.fetch_pa,
            ..Fault::new(f.kind, sid, ssid, input_addr)
        }
    }

    /// The §7.3 event number, `None` for an abort without event.
    pub fn event_id(&self) -> Option<u8> {
        self.kind.event_id()
    }
}

/// Transaction type and attributes (the incoming attributes before STE.PRIVCFG/INSTCFG
/// overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    pub write: bool,
    pub privileged: bool,
    /// Instruction fetch (meaningful for reads only).
    pub instruction: bool,
}

impl Access {
    /// Unprivileged data read.
    pub const READ: Access = Access {
        write: false,
        privileged: false,
        instruction: false,
    };
    /// Unprivileged data write.
    pub const WRITE: Access = Access {
        write: true,
        privileged: false,
        instruction: false,
    };

    pub fn read() -> Access {
        Self::READ
    }
    pub fn write() -> Access {
        Self::WRITE
    }
    pub fn privileged(mut self) -> Access {
        self.privileged = true;
        self
    }
    pub fn instruction(mut self) -> Access {
        self.instruction = true;
        self
    }

    /// Applies STE.PRIVCFG and STE.INSTCFG (§5.2): 0b10 forces unprivileged / data,
    /// 0b11 forces privileged / instruction; other values use the incoming attribute.
    pub fn with_ste_overrides(mut self, ste: &Ste) -> Access {
        match ste.privcfg {
            0b10 => self.privileged = false,
            0b11 => self.privileged = true,
            _ => {}
        }
        match ste.instcfg {
            0b10 => self.instruction = false,
            0b11 => self.instruction = true,
            _ => {}
        }
        if self.write {
            self.instruction = false;
        }
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Walk parameters
// ---------------------------------------------------------------------------------------------

/// Everything a single-stage walk needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WalkParams {
    pub granule: Granule,
    pub start_level: u8,
    /// Starting table base, aligned to the starting table's size.
    pub table_base: u64,
    /// Input address bits resolved by the walk: 64 - TxSZ.
    pub input_bits: u8,
    pub stage: Stage,
    /// Output size in bits for Address Size faults (eff_IPS for S1, eff_S2PS for S2).
    pub output_bits: u8,
    /// AF == 0 does not fault (CD.AFFD / STE.S2AFFD).
    pub affd: bool,
    /// Hierarchical permissions disabled (CD.HAD0/HAD1); always false at stage 2, which has
    /// no hierarchical attributes.
    pub hpd: bool,
    /// The stage 1 region walked, `None` at stage 2.
    pub region: Option<TtbRegion>,
}

/// Stage 1 starting level for an input size: the shallowest level whose tables, together
/// with the levels below, resolve `input_bits` (Arm ARM D8.2). `None` if the size is not
/// reachable with levels 0..=3.
pub fn s1_start_level(g: Granule, input_bits: u8) -> Option<u8> {
    let ib = input_bits as u32;
    if ib <= g.shift() {
        return None;
    }
    let levels = (ib - g.shift()).div_ceil(g.bits_per_level());
    if levels == 0 || levels > 4 {
        return None;
    }
    let start = (4 - levels) as u8;
    (start >= g.min_level()).then_some(start)
}

/// Stage 2 starting level from S2SL0 (§5.2 S2SL0, VTCR_EL2.SL0), checked for consistency with
/// S2T0SZ: the starting level must resolve at least one bit and at most 16 concatenated tables
/// (bits_per_level + 4 bits) (Arm ARM D8.2, "concatenated translation tables"). Returns `None`
/// when inconsistent (ILLEGAL STE, §5.2 S2T0SZ/S2SL0).
pub fn s2_start_level(g: Granule, sl0: u8, s2t0sz: u8) -> Option<u8> {
    let level = crate::structures::ste::s2_level_for_sl0(g, sl0)?;
    if level < g.min_level() {
        return None;
    }
    let input_bits = 64u32.checked_sub(s2t0sz as u32)?;
    let shift = g.level_shift(level);
    if input_bits <= shift || input_bits - shift > g.bits_per_level() + 4 {
        return None;
    }
    // Level 0 tables cannot be concatenated (a 4K/16K level 0 already covers 48 bits).
    if level == 0 && input_bits - shift > g.bits_per_level() {
        return None;
    }
    Some(level)
}

/// Number of index bits of the table at `level` (more than `bits_per_level` only for a
/// concatenated stage 2 starting table).
pub fn index_bits(params: &WalkParams, level: u8) -> u32 {
    let g = params.granule;
    if level == params.start_level {
        (params.input_bits as u32)
            .saturating_sub(g.level_shift(level))
            .clamp(1, g.bits_per_level() + 4)
    } else {
        g.bits_per_level()
    }
}

/// Size in bytes of the table at `level`.
pub fn table_size(params: &WalkParams, level: u8) -> u64 {
    8u64 << index_bits(params, level)
}

fn align_table(params: &WalkParams, base: u64) -> u64 {
    // §5.2 S2TTB / Arm ARM D8.2: base bits below the table's size are treated as zero.
    let size = table_size(params, params.start_level);
    base & !(size - 1) & addr_mask(55, 0)
}

impl WalkParams {
    /// Parameters for building or walking tables directly: output size 48 bits, AF faults
    /// enabled, hierarchical permissions enabled at stage 1, region TTB0 at stage 1.
    pub fn new(
        stage: Stage,
        granule: Granule,
        input_bits: u8,
        start_level: u8,
        table_base: u64,
    ) -> Self {
        let mut p = WalkParams {
            granule,
            start_level,
            table_base: 0,
            input_bits,
            stage,
            output_bits: 48,
            affd: false,
            hpd: stage == Stage::S2,
            region: (stage == Stage::S1).then_some(TtbRegion::Ttb0),
        };
        p.table_base = align_table(&p, table_base);
        p
    }

    /// Stage 1 parameters for one region of a CD, or `None` if the region is disabled
    /// (EPDx) or misconfigured (the CD check reports the latter as C_BAD_CD).
    pub fn stage1_region(
        cd: &Cd,
        world: StreamWorld,
        profile: &SmmuProfile,
        region: TtbRegion,
    ) -> Option<WalkParams> {
        if !cd.region_enabled(world, region) {
            return None;
        }
        let (g, txsz, ttb) = cd.region(region);
        let g = g?;
        let input_bits = 64u8.checked_sub(txsz)?;
        let start_level = s1_start_level(g, input_bits)?;
        let hpd = match region {
            TtbRegion::Ttb0 => cd.had0,
            TtbRegion::Ttb1 => cd.had1,
        };
        let mut p = WalkParams {
            granule: g,
            start_level,
            table_base: 0,
            input_bits,
            stage: Stage::S1,
            output_bits: cd.output_bits(profile),
            affd: cd.affd,
            hpd,
            region: Some(region),
        };
        p.table_base = align_table(&p, ttb);
        Some(p)
    }

    /// Stage 1 parameters for `va`: selects TTB0/TTB1 and checks that the VA lies in the
    /// selected region (§3.4 check 1, §3.4.1; Arm ARM D8.1): VA[55] selects the region in
    /// two-range regimes, and VA[63:input_bits] (VA[55:input_bits] with TBI) must equal it.
    /// Errors are stage 1 Translation faults.
    pub fn stage1(
        cd: &Cd,
        world: StreamWorld,
        profile: &SmmuProfile,
        va: u64,
    ) -> Result<WalkParams, StageFault> {
        let fault = StageFault {
            kind: FaultKind::Translation,
            stage: Stage::S1,
            level: None,
            address: va,
            class: None,
            fetch_pa: None,
        };
        let two_ranges = world != StreamWorld::NsEl2;
        let upper = two_ranges && bit(va, 55);
        let region = if upper {
            TtbRegion::Ttb1
        } else {
            TtbRegion::Ttb0
        };
        let p = Self::stage1_region(cd, world, profile, region).ok_or(fault)?;
        let tbi = match region {
            TtbRegion::Ttb0 => cd.tbi0,
            TtbRegion::Ttb1 => cd.tbi1,
        };
        let top = if tbi { 55 } else { 63 };
        let ib = p.input_bits as u32;
        if ib <= top {
            let field = bits(va, top, ib);
            let expect = if upper { bits(u64::MAX, top, ib) } else { 0 };
            if field != expect {
                return Err(fault);
            }
        }
        Ok(p)
    }

    /// Stage 2 parameters of an STE (`None` if S2TG/S2SL0/S2T0SZ are unusable; the STE check
    /// reports that as C_BAD_STE).
    pub fn stage2(ste: &Ste, profile: &SmmuProfile) -> Option<WalkParams> {
        let g = ste.s2_granule()?;
        let start_level = s2_start_level(g, ste.s2sl0, ste.s2t0sz)?;
        let input_bits = 64u8.checked_sub(ste.s2t0sz)?;
        let mut p = WalkParams {
            granule: g,
            start_level,
            table_base: 0,
            input_bits,
            stage: Stage::S2,
            output_bits: ste.s2_output_bits(profile),
            affd: ste.s2affd,
            hpd: true,
            region: None,
        };
        p.table_base = align_table(&p, ste.s2ttb);
        Some(p)
    }

    /// Size of the input region this walk translates.
    pub fn region_size(&self) -> u64 {
        if self.input_bits >= 64 {
            u64::MAX
        } else {
            1u64 << self.input_bits
        }
    }

    /// Lowest input address of the region (TTB1 regions sit at the top of the VA space).
    pub fn region_base(&self) -> u64 {
        match self.region {
            Some(TtbRegion::Ttb1) if self.input_bits < 64 => u64::MAX << self.input_bits,
            _ => 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptors (Arm ARM D8.3)
// ---------------------------------------------------------------------------------------------

/// Attributes of a block or page descriptor (Arm ARM D8.3, VMSAv8-64 lower/upper attributes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct DescAttrs {
    /// S1: AttrIndx [4:2]; S2: MemAttr [5:2].
    pub attr: u8,
    /// S1: NS [5] (ignored for Non-secure streams).
    pub ns: bool,
    /// S1: AP[2:1] (bits [7:6]); S2: S2AP[1:0] (bit 6 read, bit 7 write).
    pub ap: u8,
    /// SH [9:8].
    pub sh: u8,
    /// AF [10].
    pub af: bool,
    /// S1: nG [11] (not global); always false at stage 2.
    pub ng: bool,
    /// DBM [51].
    pub dbm: bool,
    /// Contiguous [52] (hint; ignored by this model).
    pub contiguous: bool,
    /// S1: PXN [53]; S2: XN[0] (FEAT_XNX, ignored).
    pub pxn: bool,
    /// S1: UXN/XN [54]; S2: XN[1].
    pub xn: bool,
}

impl DescAttrs {
    fn decode(raw: u64, stage: Stage) -> DescAttrs {
        DescAttrs {
            attr: match stage {
                Stage::S1 => bits(raw, 4, 2) as u8,
                Stage::S2 => bits(raw, 5, 2) as u8,
            },
            ns: stage == Stage::S1 && bit(raw, 5),
            ap: bits(raw, 7, 6) as u8,
            sh: bits(raw, 9, 8) as u8,
            af: bit(raw, 10),
            ng: stage == Stage::S1 && bit(raw, 11),
            dbm: bit(raw, 51),
            contiguous: bit(raw, 52),
            pxn: bit(raw, 53),
            xn: bit(raw, 54),
        }
    }
}

/// Hierarchical attributes of a stage 1 table descriptor (Arm ARM D8.3): PXNTable [59],
/// XNTable/UXNTable [60], APTable [62:61], NSTable [63]. Accumulated (OR-ed) down the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TableAttrs {
    pub pxn_table: bool,
    pub xn_table: bool,
    pub ap_table: u8,
    pub ns_table: bool,
}

impl TableAttrs {
    fn decode(raw: u64) -> TableAttrs {
        TableAttrs {
            pxn_table: bit(raw, 59),
            xn_table: bit(raw, 60),
            ap_table: bits(raw, 62, 61) as u8,
            ns_table: bit(raw, 63),
        }
    }

    fn merge(self, o: TableAttrs) -> TableAttrs {
        TableAttrs {
            pxn_table: self.pxn_table | o.pxn_table,
            xn_table: self.xn_table | o.xn_table,
            ap_table: self.ap_table | o.ap_table,
            ns_table: self.ns_table | o.ns_table,
        }
    }
}

/// A decoded VMSAv8-64 descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Descriptor {
    /// Faults with a Translation fault: bit 0 clear, a block where none is permitted, or the
    /// reserved encoding 0b01 at level 3.
    Invalid,
    /// Points at the next-level table (address bits [47:granule shift]; bits [51:48] are
    /// kept so that the Address Size check can see them).
    Table { next_table: u64, attrs: TableAttrs },
    /// Block (levels 1-2) or page (level 3).
    Leaf {
        /// Base output address of the block/page.
        output_address: u64,
        level: u8,
        size: u64,
        page: bool,
        attrs: DescAttrs,
    },
}

/// Decodes the descriptor `raw` read at `level` (Arm ARM D8.3).
pub fn decode_descriptor(granule: Granule, level: u8, raw: u64, stage: Stage) -> Descriptor {
    if level > 3 || !bit(raw, 0) {
        return Descriptor::Invalid;
    }
    let is_table_bit = bit(raw, 1);
    if level < 3 && is_table_bit {
        return Descriptor::Table {
            next_table: raw & addr_mask(51, granule.shift()),
            attrs: if stage == Stage::S1 {
                TableAttrs::decode(raw)
            } else {
                TableAttrs::default()
            },
        };
    }
    if level == 3 && !is_table_bit {
        return Descriptor::Invalid;
    }
    match granule.block_size(level) {
        Some(size) => Descriptor::Leaf {
            output_address: raw & addr_mask(51, granule.level_shift(level)),
            level,
            size,
            page: level == 3,
            attrs: DescAttrs::decode(raw, stage),
        },
        None => Descriptor::Invalid,
    }
}

/// PA (or, for a nested stage 1, IPA) of the descriptor indexed by `ia` in the table at
/// `table_base`, which is a table at `level` of the walk described by `params`.
pub fn descriptor_address(params: &WalkParams, level: u8, table_base: u64, ia: u64) -> u64 {
    let shift = params.granule.level_shift(level);
    let n = index_bits(params, level);
    let idx = (ia >> shift) & ((1u64 << n) - 1);
    table_base.wrapping_add(idx * 8)
}

/// What a walk step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepKind {
    Table,
    Leaf,
    /// An invalid descriptor, or one that faulted (Address Size / Access).
    Fault,
}

/// One descriptor read of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WalkStep {
    pub stage: Stage,
    pub level: u8,
    /// Address of the descriptor in the walk's own address space (IPA for nested stage 1).
    pub descriptor_addr: u64,
    /// Physical address read.
    pub descriptor_pa: u64,
    pub raw: u64,
    pub kind: StepKind,
}

/// The result of a successful single-stage walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Leaf {
    pub stage: Stage,
    /// The address translated.
    pub input_address: u64,
    /// The translated address (block base + offset).
    pub output_address: u64,
    /// Base of the block/page in input space.
    pub input_base: u64,
    /// Base of the block/page in output space.
    pub output_base: u64,
    pub level: u8,
    pub size: u64,
    pub granule: Granule,
    pub attrs: DescAttrs,
    /// Hierarchical attributes accumulated from the table descriptors (zero if HPD).
    pub table_attrs: TableAttrs,
    pub descriptor_pa: u64,
    pub raw: u64,
    pub region: Option<TtbRegion>,
}

/// Walks one stage where table addresses are physical.
pub fn walk_stage<M: MemRead + ?Sized>(
    mem: &M,
    params: &WalkParams,
    ia: u64,
    trace: &mut Vec<WalkStep>,
) -> Result<Leaf, StageFault> {
    walk_stage_with(mem, params, ia, trace, |a, _, _| Ok(a))
}

/// Walks one stage; `table_pa(addr, level, steps_so_far)` maps each descriptor address to the
/// PA to read (identity, or a stage 2 translation for a nested stage 1: §3.3.4, the stage 1
/// table addresses are IPAs). Its faults are returned unchanged. `steps_so_far` is this walk's
/// trace up to now, so a caller can interleave its own records in read order.
pub fn walk_stage_with<M, F>(
    mem: &M,
    params: &WalkParams,
    ia: u64,
    trace: &mut Vec<WalkStep>,
    mut table_pa: F,
) -> Result<Leaf, StageFault>
where
    M: MemRead + ?Sized,
    F: FnMut(u64, u8, &[WalkStep]) -> Result<u64, StageFault>,
{
    let g = params.granule;
    let fault = |kind, level| StageFault {
        kind,
        stage: params.stage,
        level,
        address: ia,
        class: None,
        fetch_pa: None,
    };
    // Input range (§3.4 checks 1): the stage 1 caller has checked sign extension; here IA
    // bits above input_bits must be zero (stage 2), and are ignored for a TTB1 region.
    if params.stage == Stage::S2 && params.input_bits < 64 && ia >> params.input_bits != 0 {
        return Err(fault(FaultKind::Translation, None));
    }
    let mut table = params.table_base;
    let mut tattrs = TableAttrs::default();
    for level in params.start_level..=3 {
        let addr = descriptor_address(params, level, table, ia);
        let pa = table_pa(addr, level, trace)?;
        let raw = match mem.try_read_u64(pa) {
            Some(r) => r,
            None => {
                return Err(StageFault {
                    fetch_pa: Some(pa),
                    ..fault(FaultKind::WalkEabt, Some(level))
                })
            }
        };
        let mut step = WalkStep {
            stage: params.stage,
            level,
            descriptor_addr: addr,
            descriptor_pa: pa,
            raw,
            kind: StepKind::Fault,
        };
        match decode_descriptor(g, level, raw, params.stage) {
            Descriptor::Invalid => {
                trace.push(step);
                return Err(fault(FaultKind::Translation, Some(level)));
            }
            Descriptor::Table { next_table, attrs } => {
                // Arm ARM D8: a next-level table address beyond the output size is an
                // Address Size fault at this level.
                if out_of_range(next_table, params.output_bits) {
                    trace.push(step);
                    return Err(fault(FaultKind::AddrSize, Some(level)));
                }
                step.kind = StepKind::Table;
                trace.push(step);
                if !params.hpd {
                    tattrs = tattrs.merge(attrs);
                }
                table = next_table;
            }
            Descriptor::Leaf {
                output_address,
                size,
                attrs,
                ..
            } => {
                if out_of_range(output_address, params.output_bits) {
                    trace.push(step);
                    return Err(fault(FaultKind::AddrSize, Some(level)));
                }
                // Access flag (Arm ARM D8.5; §5.4 AFFD, §5.2 S2AFFD). No HTTU in this model.
                if !attrs.af && !params.affd {
                    trace.push(step);
                    return Err(fault(FaultKind::Access, Some(level)));
                }
                step.kind = StepKind::Leaf;
                trace.push(step);
                let offset = ia & (size - 1);
                return Ok(Leaf {
                    stage: params.stage,
                    input_address: ia,
                    output_address: output_address | offset,
                    input_base: ia & !(size - 1),
                    output_base: output_address,
                    level,
                    size,
                    granule: g,
                    attrs,
                    table_attrs: tattrs,
                    descriptor_pa: pa,
                    raw,
                    region: params.region,
                });
            }
        }
    }
    // Unreachable for well-formed params (level 3 never yields a table), kept panic-free.
    Err(fault(FaultKind::Translation, Some(3)))
}

fn out_of_range(addr: u64, bits: u8) -> bool {
    bits < 64 && addr >> bits != 0
}

// ---------------------------------------------------------------------------------------------
// Permissions (Arm ARM D8.4)
// ---------------------------------------------------------------------------------------------

/// Effective permissions of a leaf for the four kinds of access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Perms {
    pub priv_read: bool,
    pub priv_write: bool,
    pub priv_exec: bool,
    pub user_read: bool,
    pub user_write: bool,
    pub user_exec: bool,
}

impl Perms {
    /// Every access permitted: what a stage that does not translate restricts.
    pub const ALL: Perms = Perms {
        priv_read: true,
        priv_write: true,
        priv_exec: true,
        user_read: true,
        user_write: true,
        user_exec: true,
    };

    /// Whether `access` is permitted.
    pub fn allows(&self, access: Access) -> bool {
        match (access.privileged, access.write, access.instruction) {
            (true, true, _) => self.priv_write,
            (true, false, true) => self.priv_exec,
            (true, false, false) => self.priv_read,
            (false, true, _) => self.user_write,
            (false, false, true) => self.user_exec,
            (false, false, false) => self.user_read,
        }
    }

    pub fn intersect(&self, o: &Perms) -> Perms {
        Perms {
            priv_read: self.priv_read && o.priv_read,
            priv_write: self.priv_write && o.priv_write,
            priv_exec: self.priv_exec && o.priv_exec,
            user_read: self.user_read && o.user_read,
            user_write: self.user_write && o.user_write,
            user_exec: self.user_exec && o.user_exec,
        }
    }
}

/// Stage 1 permissions (Arm ARM D8.4): AP[2:1] with APTable, (U)XN/PXN with XNTable/PXNTable,
/// and WXN. EL2 (non-E2H) has one privilege level: AP[1] and APTable[0] are ignored and
/// privileged and unprivileged accesses are checked alike.
pub fn s1_perms(leaf: &Leaf, world: StreamWorld, wxn: bool) -> Perms {
    let t = leaf.table_attrs;
    let mut ap = leaf.attrs.ap;
    if t.ap_table & 2 != 0 {
        ap |= 2; // APTable[1]: read-only at all levels below.
    }
    if world == StreamWorld::NsEl2 {
        let w = ap & 2 == 0;
        let x = !(leaf.attrs.xn || t.xn_table || (wxn && w));
        return Perms {
            priv_read: true,
            priv_write: w,
            priv_exec: x,
            user_read: true,
            user_write: w,
            user_exec: x,
        };
    }
    if t.ap_table & 1 != 0 {
        ap &= !1; // APTable[0]: no unprivileged access below.
    }
    let priv_write = ap & 2 == 0;
    let user_read = ap & 1 != 0;
    let user_write = ap == 0b01;
    Perms {
        priv_read: true,
        priv_write,
        // Privileged execute-never when unprivileged-writable (Arm ARM D8.4.1.2).
        priv_exec: !(leaf.attrs.pxn || t.pxn_table || user_write || (wxn && priv_write)),
        user_read,
        user_write,
        user_exec: !(leaf.attrs.xn || t.xn_table || (wxn && user_write)),
    }
}

/// Stage 2 permissions: S2AP[0] read, S2AP[1] write, XN[1] execute-never (FEAT_XNX's XN[0]
/// is not modelled). Privilege does not matter at stage 2.
pub fn s2_perms(leaf: &Leaf) -> Perms {
    let r = leaf.attrs.ap & 1 != 0;
    let w = leaf.attrs.ap & 2 != 0;
    let x = !leaf.attrs.xn;
    Perms {
        priv_read: r,
        priv_write: w,
        priv_exec: x,
        user_read: r,
        user_write: w,
        user_exec: x,
    }
}

// ---------------------------------------------------------------------------------------------
// Whole translation
// ---------------------------------------------------------------------------------------------

/// Raw contents of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Raw {
    Word(u64),
    Struct([u64; 8]),
}

/// What a stage 2 walk was done for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum S2Purpose {
    L1Cd,
    Cd,
    S1Table,
    /// The transaction's IPA (stage 1 output, or input when stage 1 bypasses).
    Output,
}

/// The role of a read done by [`translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TraceRole {
    L1Std {
        sid: u32,
    },
    Ste {
        sid: u32,
    },
    L1Cd {
        sid: u32,
        ssid: u32,
    },
    Cd {
        sid: u32,
        ssid: u32,
    },
    /// A stage 1 descriptor; `addr` is its address in the stage 1 table space (an IPA when
    /// nested, else equal to the PA).
    S1 {
        level: u8,
        kind: StepKind,
        region: TtbRegion,
        addr: u64,
    },
    S2 {
        level: u8,
        kind: StepKind,
        purpose: S2Purpose,
    },
}

/// One memory read of a translation, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceEntry {
    pub role: TraceRole,
    pub pa: u64,
    pub raw: Raw,
}

/// One translated stage of a successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageInfo {
    pub input: u64,
    pub output: u64,
    pub input_base: u64,
    pub level: u8,
    pub granule: Granule,
    pub block_size: u64,
    pub attrs: DescAttrs,
    pub table_attrs: TableAttrs,
    pub perms: Perms,
    pub region: Option<TtbRegion>,
    pub descriptor_pa: u64,
}

impl StageInfo {
    fn from_leaf(l: &Leaf, perms: Perms) -> StageInfo {
        StageInfo {
            input: l.input_address,
            output: l.output_address,
            input_base: l.input_base,
            level: l.level,
            granule: l.granule,
            block_size: l.size,
            attrs: l.attrs,
            table_attrs: l.table_attrs,
            perms,
            region: l.region,
            descriptor_pa: l.descriptor_pa,
        }
    }
}

/// A successful translation with the tags a TLB entry would carry (§3.17).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    pub sid: u32,
    pub ssid: Option<u32>,
    pub input: u64,
    /// Output PA.
    pub pa: u64,
    pub config: SteConfig,
    pub stream_world: StreamWorld,
    /// CD index used (SubstreamID, or 0 for S1DSS == 0b10 / single CD).
    pub cd_index: Option<u32>,
    /// CD.ASID when stage 1 translated in a world with ASIDs.
    pub asid: Option<u16>,
    pub aset: bool,
    /// Stage 1 leaf had nG == 0 (always true for NS-EL2, which has no ASIDs); false if
    /// stage 1 did not translate.
    pub global: bool,
    /// VMID tag: STE.S2VMID when stage 2 is implemented and the world is NS-EL1, else 0.
    pub vmid: u16,
    pub s1: Option<StageInfo>,
    pub s2: Option<StageInfo>,
    /// Combined permissions of the translating stages (all-true for bypass).
    pub perms: Perms,
    pub trace: Vec<TraceEntry>,
}

/// Translates with the default [`SmmuProfile`] except for `s2_implemented`.
pub fn translate<M: MemRead + ?Sized>(
    mem: &M,
    st: &StreamTableConfig,
    s2_implemented: bool,
    sid: u32,
    ssid: Option<u32>,
    iova: u64,
    access: Access,
) -> Result<Translation, Fault> {
    let profile = SmmuProfile {
        s2p: s2_implemented,
        ..SmmuProfile::default()
    };
    let mut trace = Vec::new();
    translate_traced(mem, st, &profile, sid, ssid, iova, access, &mut trace)
}

/// Full translation of one transaction (§3.3: configuration lookup, then translation).
/// Every configuration and descriptor read is appended to `trace`, also when the result is
/// a fault; on success the same entries are also returned in [`Translation::trace`].
#[allow(clippy::too_many_arguments)]
pub fn translate_traced<M: MemRead + ?Sized>(
    mem: &M,
    st: &StreamTableConfig,
    profile: &SmmuProfile,
    sid: u32,
    ssid: Option<u32>,
    iova: u64,
    access: Access,
    trace: &mut Vec<TraceEntry>,
) -> Result<Translation, Fault> {
    let mut t = Translator {
        mem,
        profile,
        sid,
        ssid,
        iova,
        trace,
    };
    let mut out = t.run(st, access)?;
    out.trace = t.trace.clone();
    Ok(out)
}

struct Translator<'a, M: MemRead + ?Sized> {
    mem: &'a M,
    profile: &'a SmmuProfile,
    sid: u32,
    ssid: Option<u32>,
    iova: u64,
    trace: &'a mut Vec<TraceEntry>,
}

impl<M: MemRead + ?Sized> Translator<'_, M> {
    fn fault(&self, kind: FaultKind) -> Fault {
        Fault::new(kind, self.sid, self.ssid, self.iova)
    }

    fn stage_fault(&self, f: StageFault) -> Fault {
        Fault::from_stage(f, self.sid, self.ssid, self.iova)
    }

    fn push_walk(&mut self, steps: &[WalkStep], purpose: Option<S2Purpose>, region: TtbRegion) {
        for s in steps {
            let role = match (s.stage, purpose) {
                (Stage::S2, p) => TraceRole::S2 {
                    level: s.level,
                    kind: s.kind,
                    purpose: p.unwrap_or(S2Purpose::Output),
                },
                (Stage::S1, _) => TraceRole::S1 {
                    level: s.level,
                    kind: s.kind,
                    region,
                    addr: s.descriptor_addr,
                },
            };
            self.trace.push(TraceEntry {
                role,
                pa: s.descriptor_pa,
                raw: Raw::Word(s.raw),
            });
        }
    }

    /// Stage 2 translation of an IPA used for `purpose` (§3.4 stage 2 checks).
    fn s2(
        &mut self,
        s2p: &WalkParams,
        ipa: u64,
        purpose: S2Purpose,
        access: Access,
    ) -> Result<Leaf, StageFault> {
        let class = match purpose {
            S2Purpose::L1Cd | S2Purpose::Cd => FaultClass::Cd,
            S2Purpose::S1Table => FaultClass::Tt,
            S2Purpose::Output => FaultClass::In,
        };
        let mut steps = Vec::with_capacity(4);
        let r = walk_stage(self.mem, s2p, ipa, &mut steps);
        self.push_walk(&steps, Some(purpose), TtbRegion::Ttb0);
        let leaf = r.map_err(|mut f| {
            f.class = Some(class);
            f
        })?;
        // Configuration and table fetches are reads; they need stage 2 read permission.
        let need = if purpose == S2Purpose::Output {
            access
        } else {
            Access::READ
        };
        if !s2_perms(&leaf).allows(need) {
            return Err(StageFault {
                kind: FaultKind::Permission,
                stage: Stage::S2,
                level: Some(leaf.level),
                address: ipa,
                class: Some(class),
                fetch_pa: None,
            });
        }
        Ok(leaf)
    }

    /// Maps a configuration-structure address (PA, or IPA when stage 2 is enabled: §5.2
    /// S1ContextPtr, §5.3 L2Ptr) to a PA.
    fn config_pa(
        &mut self,
        s2p: Option<&WalkParams>,
        addr: u64,
        purpose: S2Purpose,
    ) -> Result<u64, Fault> {
        match s2p {
            None => Ok(addr),
            Some(p) => self
                .s2(p, addr, purpose, Access::READ)
                .map(|l| l.output_address)
                .map_err(|f| self.stage_fault(f)),
        }
    }

    fn push(&mut self, role: TraceRole, pa: u64, raw: Raw) {
        self.trace.push(TraceEntry { role, pa, raw });
    }

    fn run(&mut self, st: &StreamTableConfig, access: Access) -> Result<Translation, Fault> {
        let p = self.profile;
        let mem = self.mem;
        let sid = self.sid;

        // 1. Stream table (§3.3.2, §5.1).
        let loc = match locate_ste(mem, st, p, sid) {
            Ok(l) => l,
            Err(SteLookupError::BadStreamId { l1std }) => {
                if let Some((pa, raw)) = l1std {
                    self.push(TraceRole::L1Std { sid }, pa, Raw::Word(raw));
                }
                return Err(self.fault(FaultKind::BadStreamId));
            }
            Err(SteLookupError::L1StdFetch { pa }) => {
                return Err(Fault {
                    fetch_addr: Some(pa),
                    ..self.fault(FaultKind::SteFetch)
                })
            }
        };
        if let Some((pa, raw)) = loc.l1std {
            self.push(TraceRole::L1Std { sid }, pa, Raw::Word(raw));
        }
        let words = read_struct(mem, loc.ste_pa).ok_or(Fault {
            fetch_addr: Some(loc.ste_pa),
            ..self.fault(FaultKind::SteFetch)
        })?;
        self.push(TraceRole::Ste { sid }, loc.ste_pa, Raw::Struct(words));

        // 2. STE validity (§5.2.2) and Config (§5.2).
        let ste = Ste::decode(words);
        if let Err(e) = ste.check(p) {
            return Err(Fault {
                bad_ste: Some(e),
                ..self.fault(FaultKind::BadSte)
            });
        }
        let config = ste.config();
        if config == SteConfig::Abort {
            return Err(self.fault(FaultKind::Aborted));
        }
        let world = ste.stream_world(p).unwrap_or(StreamWorld::NsEl1);
        let vmid = ste.tlb_vmid(p);
        let access = access.with_ste_overrides(&ste);
        let s2p = if config.s2_enabled() {
            Some(WalkParams::stage2(&ste, p).ok_or(Fault {
                bad_ste: Some(BadSte::S2Sl0),
                ..self.fault(FaultKind::BadSte)
            })?)
        } else {
            None
        };

        // 3. SubstreamID (§5.2 S1CDMax, S1DSS, S1Fmt).
        let mut cd_index = None;
        if !config.s1_enabled() {
            if self.ssid.is_some() {
                return Err(self.fault(FaultKind::BadSubstreamId));
            }
        } else {
            let substreams = ste.s1cdmax != 0 && p.ssid_bits != 0;
            match self.ssid {
                Some(s) => {
                    if !substreams || (s as u64) >= (1u64 << ste.s1cdmax) {
                        return Err(self.fault(FaultKind::BadSubstreamId));
                    }
                    if ste.s1dss == 0b10 && s == 0 {
                        return Err(self.fault(FaultKind::StreamDisabled));
                    }
                    cd_index = Some(s);
                }
                None if !substreams => cd_index = Some(0),
                None => match ste.s1dss {
                    0b01 => {} // bypass stage 1
                    0b10 => cd_index = Some(0),
                    _ => return Err(self.fault(FaultKind::StreamDisabled)),
                },
            }
        }

        // 4. CD (§5.3, §5.4). Table pointers are IPAs when stage 2 translates.
        let cd = match cd_index {
            None => None,
            Some(idx) => {
                let cd_addr = match cd_table_step(&ste, p, idx) {
                    CdTableStep::Cd { addr } => addr,
                    CdTableStep::L1Cd {
                        l1cd_addr,
                        l2_index,
                    } => {
                        let pa = self.config_pa(s2p.as_ref(), l1cd_addr, S2Purpose::L1Cd)?;
                        let raw = mem.try_read_u64(pa).ok_or(Fault {
                            fetch_addr: Some(pa),
                            ..self.fault(FaultKind::CdFetch)
                        })?;
                        self.push(TraceRole::L1Cd { sid, ssid: idx }, pa, Raw::Word(raw));
                        let l1 = L1Cd::decode(raw);
                        if !l1.v {
                            // §5.3.1: L1CD.V == 0 gives C_BAD_SUBSTREAMID.
                            return Err(self.fault(FaultKind::BadSubstreamId));
                        }
                        l1.l2_base(CdFormat::of_ste(&ste, p))
                            .wrapping_add(l2_index * 64)
                    }
                };
                let pa = self.config_pa(s2p.as_ref(), cd_addr, S2Purpose::Cd)?;
                let words = read_struct(mem, pa).ok_or(Fault {
                    fetch_addr: Some(pa),
                    ..self.fault(FaultKind::CdFetch)
                })?;
                self.push(TraceRole::Cd { sid, ssid: idx }, pa, Raw::Struct(words));
                let cd = Cd::decode(words);
                if let Err(e) = cd.check(p, world) {
                    return Err(Fault {
                        bad_cd: Some(e),
                        ..self.fault(FaultKind::BadCd)
                    });
                }
                Some(cd)
            }
        };

        // 5. Stage 1 (§3.4 stage 1 checks; Arm ARM D8).
        let iova = self.iova;
        let mut asid = None;
        let mut aset = false;
        let mut global = false;
        let mut s1info = None;
        let ipa = match cd {
            Some(cd) => {
                let params =
                    WalkParams::stage1(&cd, world, p, iova).map_err(|f| self.stage_fault(f))?;
                let region = params.region.unwrap_or(TtbRegion::Ttb0);
                let mut steps = Vec::with_capacity(4);
                let mut flushed = 0usize;
                let r = walk_stage_with(mem, &params, iova, &mut steps, |addr, _lvl, so_far| {
                    self.push_walk(so_far.get(flushed..).unwrap_or(&[]), None, region);
                    flushed = so_far.len();
                    match s2p.as_ref() {
                        None => Ok(addr),
                        Some(s2) => self
                            .s2(s2, addr, S2Purpose::S1Table, Access::READ)
                            .map(|l| l.output_address),
                    }
                });
                self.push_walk(steps.get(flushed..).unwrap_or(&[]), None, region);
                let leaf = r.map_err(|f| self.stage_fault(f))?;
                let perms = s1_perms(&leaf, world, cd.wxn);
                if !perms.allows(access) {
                    return Err(Fault {
                        stage: Some(Stage::S1),
                        level: Some(leaf.level),
                        ..self.fault(FaultKind::Permission)
                    });
                }
                if world.has_asid() {
                    asid = Some(cd.asid);
                    aset = cd.aset;
                }
                global = world == StreamWorld::NsEl2 || !leaf.attrs.ng;
                s1info = Some(StageInfo::from_leaf(&leaf, perms));
                leaf.output_address
            }
            None => {
                // Stage 1 bypass: the input must fit the IAS (OAS for full bypass); a stage 1
                // Address Size fault otherwise (§3.4).
                let limit = if config.s2_enabled() {
                    p.ias()
                } else {
                    p.oas()
                };
                if iova >> limit != 0 {
                    return Err(Fault {
                        stage: Some(Stage::S1),
                        ..self.fault(FaultKind::AddrSize)
                    });
                }
                iova
            }
        };

        // 6. Stage 2 of the output IPA (class IN), or bypass (truncate to OAS, §3.4).
        let (pa, s2info) = match s2p.as_ref() {
            Some(s2) => {
                let leaf = self
                    .s2(s2, ipa, S2Purpose::Output, access)
                    .map_err(|f| self.stage_fault(f))?;
                let perms = s2_perms(&leaf);
                (
                    leaf.output_address,
                    Some(StageInfo::from_leaf(&leaf, perms)),
                )
            }
            None => (ipa & addr_mask(p.oas() as u32 - 1, 0), None),
        };
        let perms = s1info
            .map(|s| s.perms)
            .unwrap_or(Perms::ALL)
            .intersect(&s2info.map(|s| s.perms).unwrap_or(Perms::ALL));
        Ok(Translation {
            sid,
            ssid: self.ssid,
            input: iova,
            pa,
            config,
            stream_world: world,
            cd_index: cd.and(cd_index),
            asid,
            aset,
            global,
            vmid,
            s1: s1info,
            s2: s2info,
            perms,
            trace: Vec::new(),
        })
    }
}
