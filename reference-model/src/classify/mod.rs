//! Classification of a command under a feature profile (§4.1.3, §4.1.5, §4.1.7, §7.1).
//!
//! Every command gets exactly one [`Verdict`]: mandatory CERROR_ILL ([`Verdict::Illegal`], naming
//! the rule from `rules::legality`), "ILL or ignore the Reserved fields" ([`Verdict::ReservedFieldSet`],
//! §4.1.5), or [`Verdict::Legal`]. Precedence: Illegal beats ReservedFieldSet (§4.1.3: an ILLEGAL
//! command raises CERROR_ILL whatever else is true of it), and `res0_set` always reports the set
//! RES0 bits, even for an Illegal command.
//!
//! Two statements of the same rules. `eval` (behind the free [`classify`]) is the readable one:
//! an `Entry` of per-opcode facts and the value-dependent checks spelled out. [`Classifier`]
//! compiles those facts once per (profile, queue) into bit-mask tables (module `compiled`) and
//! classifies with straight-line code, about 100 instructions per command including the read of
//! the queue bytes (docs/performance.md); [`Classifier::classify_queue`] is the bulk entry point.
//! A property test holds the two equal on every opcode, random words, every profile and queue.
//! Nothing allocates per command, nothing panics: every shift amount is bounded by construction.
//!
//! Illegal rules are applied on *effective* values (RES0 bits cleared), so that clearing
//! `res0_set` never turns a non-Illegal command into an Illegal one: "ILL, or behaviour identical
//! to the all-zero encoding of the Reserved fields" (§4.1.5, digest §6.5) stays well defined.

use crate::command::layout::{self, Field};
use crate::command::{Opcode, RawCommand};
use crate::profile::{Profile, Queue};
use crate::rules::legality as lg;
use crate::rules::Rule;
use serde::Serialize;

mod compiled;
pub use compiled::{Compact, PartialCommand};

/// Exactly one of these for every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The command is legal and every RES0 field is zero.
    Legal,
    /// CERROR_ILL is required; the rule names the reason and the section.
    Illegal(&'static Rule),
    /// RES0 bits are non-zero (the set bits are in `Classification::res0_set`): the implementation
    /// may raise CERROR_ILL or ignore the Reserved fields entirely (§4.1.5).
    ReservedFieldSet,
}

/// Flags for parameters whose effect the architecture leaves open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Flags(pub u16);

impl Flags {
    /// A StreamID/SubstreamID/address parameter is out of range (§4.1.7): the command has no
    /// effect or an effect with an UNPREDICTABLE parameter value. Also set for a non-canonical VA
    /// (§4.4.2: the SMMU MAY treat it as out of range), an IPA at or above IAS (§4.4.3.1), and
    /// SSV == 1 when SSIDSIZE == 0 (§4.2, §4.5.1, §4.5.2: CONSTRAINED UNPREDICTABLE).
    pub const OUT_OF_RANGE: u16 = 1 << 0;
    /// The invalidated range is UNPREDICTABLE (misaligned for the TTL hint) (§4.4.1.1).
    pub const UNPREDICTABLE_RANGE: u16 = 1 << 1;
    /// TTL128 set with a misaligned address: nothing is required to be invalidated (§4.4.1.1).
    /// Also CMD_DPTI_PA with a misaligned PA or a SIZE code above 9 (§4.6.2).
    pub const NOTHING_REQUIRED: u16 = 1 << 2;
    /// The upper byte of an 8-bit ASID/VMID is non-zero: "not required to affect TLB entries"
    /// (§4.4).
    pub const NARROW_ID_UPPER_SET: u16 = 1 << 3;
    /// SCALE above 39 is treated as 39 (§4.4.1.1).
    pub const SCALE_CLAMPED: u16 = 1 << 4;
    /// The command is IGNORED in this configuration (e.g. ATS not present elsewhere), or a
    /// non-zero field of it is IGNORED: CMD_SYNC MSI fields when CS != SIG_IRQ or IDR0.MSI == 0,
    /// SIG_SEV when IDR0.SEV == 0 (§4.7.3); ATC_INV.Global when SSV == 0 (§4.5.1); RESUME.Ab when
    /// Ac == 1 or TERM_MODEL == 1 (§4.7.1).
    pub const IGNORED: u16 = 1 << 5;
    /// IMPLEMENTATION DEFINED opcode (0x80-0x8F, §4.1.1): the verdict is a modelling choice.
    pub const IMPDEF: u16 = 1 << 6;
    /// CMD_ATC_INV Size > 52: CERROR_ILL permitted but not required, else an UNKNOWN span (§4.5.1).
    pub const UNKNOWN_SPAN: u16 = 1 << 7;
    /// An NH_* VMID is non-zero although stage 2 is not supported for the queue's Security state
    /// (§4.4.2: UNKNOWN VMID or no invalidation; digest §10.2). The verdict is ReservedFieldSet.
    pub const VMID_NO_STAGE2: u16 = 1 << 8;
    pub fn has(self, f: u16) -> bool {
        self.0 & f != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub verdict: Verdict,
    /// Every RES0 bit (static or configuration-dependent) that is set.
    pub res0_set: u128,
    pub flags: Flags,
}

// ---------------------------------------------------------------------------------------------
// Bit masks (bits of the 128-bit command; DW1 masks are also given as u64 of DW1).

const fn m(f: Field) -> u128 {
    f.mask()
}
/// NUM, SCALE, TTL and TTL128: RES0 when TG == 0 (§4.4.1.1).
const RANGE_PARAMS: u128 = m(layout::NUM) | m(layout::SCALE) | m(layout::TTL) | m(layout::TTL128);
/// TG too: all RES0 when IDR3.RIL == 0 (§4.4.1.1, §6.3.4).
const RANGE_ALL: u128 = RANGE_PARAMS | m(layout::TG);
/// SCALE[25]: RES0 when IDR5.DS == 0 (§4.4.1.1).
const SCALE25: u128 = 1 << 25;
const TTL128_BIT: u128 = m(layout::TTL128);
/// ASID[15:8] at [63:56] and VMID[15:8] at [47:40] (§4.4, §6.3.1).
const ASID_HI: u64 = 0xFF << 56;
const VMID_HI: u64 = 0xFF << 40;
const VMID_ALL: u64 = 0xFFFF << 32;
/// Address[55:52] / Address[55:48] of an IPA/PA field (Address[55:12] at [119:76]) and of
/// MSIAddress (PA[55:2] at [119:66]): address bit n sits at command bit n + 64 in both (§4.1.6).
const PA_55_52: u128 = 0xF << 116;
const PA_55_48: u128 = 0xFF << 112;
/// Address bits in DW1 for a VA field ([127:76] = Address[63:12]) and an IPA field ([119:76]).
const VA_DW1: u64 = !0xFFF;
const IPA_DW1: u64 = 0x00FF_FFFF_FFFF_F000;
/// CMD_SYNC MSIAddress in DW1 ([119:66] = DW1[55:2]).
const MSIADDR_DW1: u64 = 0x00FF_FFFF_FFFF_FFFC;

/// Address bits [hi:12] as a mask.
const fn amask(hi: u32) -> u64 {
    ((1u64 << (hi + 1)) - 1) & !0xFFF
}

/// Misalignment masks for 64-bit descriptors, indexed [TG][effective TTL] (§4.4.1.1; digest
/// §2.5, with the 4KB/64KB TTL=01/10 rows re-derived by block-size arithmetic, §10.5). For 16KB
/// TTL=01 the entry is the DS==1 one: with DS==0 the effective TTL is 0b00 and row 0 applies.
const ALIGN64: [[u64; 4]; 4] = [
    [0; 4],
    [0, amask(29), amask(20), 0],
    [amask(13), amask(35), amask(24), amask(13)],
    [amask(15), amask(41), amask(28), amask(15)],
];
/// Misalignment masks for 128-bit descriptors (TTL128 == 1): nothing need be invalidated.
const ALIGN128: [[u64; 4]; 4] = [
    [0; 4],
    [0, amask(27), amask(19), 0],
    [0, amask(33), amask(23), amask(13)],
    [0, amask(39), amask(27), amask(15)],
];

const fn flat(t: [[u64; 4]; 4]) -> [u64; 16] {
    let mut f = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        f[i] = t[i >> 2][i & 3];
        i += 1;
    }
    f
}
/// Indexed by `TG << 2 | TTL` so that the index needs no bounds check.
const ALIGN64_FLAT: [u64; 16] = flat(ALIGN64);
const ALIGN128_FLAT: [u64; 16] = flat(ALIGN128);

/// DPTI_PA SIZE codes 0-9 (§4.6.2): 4KB, 16KB, 64KB, 2MB, 32MB, 512MB, 1GB, 16GB, 64GB, 512GB.
/// The mask of PA bits that must be zero; codes 10-15 mean "no invalidation required".
const DPTI_MISALIGN: [u64; 16] = {
    const L: [u32; 10] = [12, 14, 16, 21, 25, 29, 30, 34, 36, 39];
    let mut t = [0u64; 16];
    let mut i = 0;
    while i < 10 {
        t[i] = ((1u64 << L[i]) - 1) & !0xFFF;
        i += 1;
    }
    t
};

// ---------------------------------------------------------------------------------------------

// Value-dependent checks an opcode needs beyond its table entry (bits of `Entry::chk`). They
// are all computed unconditionally and masked, so the hot path has no data-dependent branches
// and no indirect jump on the opcode.
/// StreamID out of range (§4.1.7).
const C_SID: u16 = 1 << 0;
/// CFGI_STE_RANGE: Range = k ignores StreamID[k:0] (§4.3.2, §4.3.6).
const C_STE_RANGE: u16 = 1 << 1;
/// SubstreamID when SSV == 1 (PREFETCH_*, ATC_INV, PRI_RESP).
const C_SSID_SSV: u16 = 1 << 2;
/// SubstreamID always (CFGI_CD, §4.3.3).
const C_SSID: u16 = 1 << 3;
/// VA parameter: canonical check (§4.4.2).
const C_VA: u16 = 1 << 4;
/// IPA parameter: IAS check (§4.4.3.1).
const C_IPA: u16 = 1 << 5;
/// Range TLBI fields are valid (address-based TLBI and IDR3.RIL == 1) (§4.4.1.1).
const C_RANGE: u16 = 1 << 6;
const C_SYNC: u16 = 1 << 7;
const C_ATC: u16 = 1 << 8;
const C_PRI: u16 = 1 << 9;
const C_RESUME: u16 = 1 << 10;
const C_DPTI: u16 = 1 << 11;

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Index of a rule in [`VERDICTS`]: 2 + its position in `legality::ALL` (0 = Legal,
/// 1 = ReservedFieldSet). Evaluated at compile time; a rule missing from `ALL` fails the build.
const fn vidx(r: &Rule) -> u8 {
    let mut i = 0;
    while i < lg::ALL.len() {
        if str_eq(lg::ALL[i].id, r.id) {
            return (i + 2) as u8;
        }
        i += 1;
    }
    panic!("rule missing from legality::ALL")
}

const I_RANGE: u8 = vidx(&lg::TLBI_RANGE_RESERVED);
const I_CS: u8 = vidx(&lg::SYNC_CS_RESERVED);
const I_RESP: u8 = vidx(&lg::PRI_RESP_RESERVED_RESP);

const fn build_verdicts() -> [Verdict; 256] {
    let mut t = [Verdict::Legal; 256];
    t[1] = Verdict::ReservedFieldSet;
    let mut i = 0;
    while i < lg::ALL.len() {
        t[i + 2] = Verdict::Illegal(lg::ALL[i]);
        i += 1;
    }
    t
}

/// Verdict by index; 256 entries so that a `u8` index needs no bounds check.
static VERDICTS: [Verdict; 256] = build_verdicts();

/// Everything about one opcode under one (profile, queue) that does not depend on field values.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Static RES0 bits plus profile-dependent RES0 bits (RIL==0 range fields, VMID without stage
    /// 2, narrow ASID/VMID upper bytes, address bits by version, Stride in v3.0).
    res0: u128,
    /// Bits of DW0 whose being set means NARROW_ID_UPPER_SET.
    narrow: u64,
    /// Bits of DW0 whose being set means VMID_NO_STAGE2.
    no_s2_vmid: u64,
    /// The address bits of DW1 (VA or IPA/PA field), 0 for commands without an address we check.
    addr: u64,
    /// [`VERDICTS`] index of the mandatory CERROR_ILL whatever the fields say (opcode, features,
    /// queue); 0 for none.
    static_ill: u8,
    /// [`VERDICTS`] index of the rule broken when SSec == 1 (NS or Realm queue); 0 for none.
    ssec_ill: u8,
    /// StreamID size for SSec == 0 and SSec == 1.
    sid_bits: [u8; 2],
    flags: u16,
    chk: u16,
}

/// Profile scalars the value-dependent checks read.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    ds: bool,
    msi: bool,
    sev: bool,
    term_model: bool,
    /// SSIDSIZE == 0: any SSV == 1 is CONSTRAINED UNPREDICTABLE (§4.2, §4.5.1, §4.5.2).
    no_ssid: bool,
    /// StreamID size for SSec == 0 and for SSec == 1 (§4.1.7: S_SIDSIZE for Secure streams).
    sid_bits: u32,
    sid_bits_ssec: u32,
    ssid_bits: u32,
    /// Lowest bit of the sign-extension check for VA parameters (§3.4.1, §4.4.2).
    vas_m1: u32,
    /// IAS for the IPA range check (§3.4, §4.4.3.1).
    ias: u32,
    /// SCALE bits that count: [25:20] with DS == 1, [24:20] otherwise (§4.4.1.1).
    scale_mask: u64,
    /// MSIAddress bits RES0 by version when the MSI is used (§4.1.6, §4.7.3).
    pa_hi: u128,
}

impl Ctx {
    fn new(p: &Profile, q: Queue) -> Ctx {
        let s_sidsize = p.regs.s_idr1 & 0x3F;
        // §3.4: IAS = OAS, or max(OAS, 40) when AArch32 LPAE tables are supported (TTF[0]).
        let ias = if p.ttf & 1 != 0 {
            p.oas_bits.max(40)
        } else {
            p.oas_bits
        };
        let sid_bits = (p.sidsize & 0x3F) as u32;
        Ctx {
            ds: p.ds,
            msi: p.msi,
            sev: p.sev,
            term_model: p.term_model,
            no_ssid: p.ssidsize == 0,
            sid_bits,
            sid_bits_ssec: if q == Queue::Secure {
                s_sidsize
            } else {
                sid_bits
            },
            ssid_bits: (p.ssidsize & 0x1F) as u32,
            vas_m1: p.va_sign_bit() as u32,
            ias: (ias as u32).min(63),
            scale_mask: if p.ds { 63 } else { 31 },
            pa_hi: pa_hi_res0(p),
        }
    }
}

/// Address[55:48] RES0 in v3.0, [55:52] in v3.1-v3.3 (§4.1.6); nothing from v3.4 (AIDR §6.3.8).
fn pa_hi_res0(p: &Profile) -> u128 {
    let major = (p.regs.aidr >> 4) & 0xF;
    match (major, p.arch_minor) {
        (0, 0) => PA_55_48,
        (0, 1..=3) => PA_55_52,
        _ => 0,
    }
}

/// Whether stage 2 exists for the Security state of `q` (§4.4.2: NS S2P, Secure S_IDR1.SEL2).
fn stage2_for(p: &Profile, q: Queue) -> bool {
    match q {
        Queue::Secure => p.sel2,
        Queue::NonSecure | Queue::Realm => p.s2p,
    }
}

fn has_field(op: Opcode, name: &str) -> bool {
    layout::fields(op).iter().any(|f| f.name == name)
}

fn is_nh(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::TlbiNhAll | Opcode::TlbiNhAsid | Opcode::TlbiNhVa | Opcode::TlbiNhVaa
    )
}

/// The rule making `op` ILLEGAL under (p, q) whatever its fields, if any (digest §1.1).
fn static_illegal(p: &Profile, q: Queue, op: Opcode) -> Option<&'static Rule> {
    use Opcode::*;
    let secure = q == Queue::Secure;
    let realm = q == Queue::Realm;
    // Hyp is RES0 unless S1P == S2P == 1 (§6.3.1), so read it as 0 otherwise.
    let hyp = p.hyp && p.s1p && p.s2p;
    match op {
        Reserved(_) => Some(&lg::RESERVED_OPCODE),
        ImplementationDefined(_) => Some(&lg::IMPDEF_OPCODE),
        PrefetchConfig | PrefetchAddr | CfgiSte | CfgiSteRange | TlbiNsnhAll | Sync => None,
        CfgiCd | CfgiCdAll => (!p.s1p).then_some(&lg::CFGI_CD_NO_S1P),
        CfgiVmsPidm => (!p.mpam).then_some(&lg::VMS_PIDM_NO_MPAM),
        TlbiNhAll | TlbiNhAsid | TlbiNhVa | TlbiNhVaa => (!p.s1p).then_some(&lg::TLBI_S1_NO_S1P),
        // §4.4.2.5/6: Secure queue only, and not with RME.
        TlbiEl3All | TlbiEl3Va => {
            if !secure {
                Some(&lg::EL3_NOT_SECURE_QUEUE)
            } else if p.rme_impl {
                Some(&lg::EL3_RME)
            } else if !p.s1p {
                Some(&lg::TLBI_S1_NO_S1P)
            } else {
                None
            }
        }
        TlbiEl2All | TlbiEl2Asid | TlbiEl2Va | TlbiEl2Vaa => (!hyp).then_some(&lg::EL2_NO_HYP),
        TlbiS12Vmall | TlbiS2Ipa => (!p.s2p).then_some(&lg::S2_NO_S2P),
        AtcInv => {
            let ats = if realm { p.r_ats } else { p.ats };
            if !ats {
                Some(&lg::ATC_INV_NO_ATS)
            } else if secure && p.sams {
                Some(&lg::ATC_INV_SAMS)
            } else {
                None
            }
        }
        PriResp => {
            if !p.pri {
                Some(&lg::PRI_RESP_NO_PRI)
            } else if secure && p.sams {
                Some(&lg::PRI_RESP_SAMS)
            } else {
                None
            }
        }
        // §4.7.1/2: not on the Realm queue; ILLEGAL with STALL_MODEL == 0b01. S_IDR0 and
        // S_CR0.NSSTALLD are not modelled: IDR0.STALL_MODEL stands for every queue.
        Resume | StallTerm => {
            if realm {
                Some(&lg::STALL_REALM_QUEUE)
            } else if p.stall_model == 0b01 {
                Some(&lg::STALL_NOT_SUPPORTED)
            } else {
                None
            }
        }
        TlbiSEl2All | TlbiSEl2Asid | TlbiSEl2Va | TlbiSEl2Vaa | TlbiSS12Vmall | TlbiSS2Ipa
        | TlbiSnhAll => {
            if !secure {
                Some(&lg::SECURE_ONLY_QUEUE)
            } else if !p.sel2 {
                Some(&lg::SECURE_NO_SEL2)
            } else {
                None
            }
        }
        DptiAll | DptiPa => {
            let dpt = if realm { p.r_dpt } else { p.dpt };
            if !dpt {
                Some(&lg::DPTI_NO_DPT)
            } else if secure && p.sams {
                Some(&lg::DPTI_SAMS)
            } else {
                None
            }
        }
    }
}

/// The value-dependent checks of `op`, and the DW1 address mask they read.
fn checks_of(op: Opcode, ril: bool) -> (u16, u64) {
    use Opcode::*;
    let range = if ril { C_RANGE } else { 0 };
    match op {
        CfgiSte | CfgiCdAll | StallTerm => (C_SID, 0),
        CfgiSteRange => (C_SID | C_STE_RANGE, 0),
        PrefetchConfig | PrefetchAddr => (C_SID | C_SSID_SSV, 0),
        CfgiCd => (C_SID | C_SSID, 0),
        AtcInv => (C_SID | C_SSID_SSV | C_ATC, 0),
        PriResp => (C_SID | C_SSID_SSV | C_PRI, 0),
        Resume => (C_SID | C_RESUME, 0),
        TlbiNhVa | TlbiNhVaa | TlbiEl3Va | TlbiEl2Va | TlbiEl2Vaa | TlbiSEl2Va | TlbiSEl2Vaa => {
            (C_VA | range, VA_DW1)
        }
        TlbiS2Ipa | TlbiSS2Ipa => (C_IPA | range, IPA_DW1),
        Sync => (C_SYNC, 0),
        DptiPa => (C_DPTI, IPA_DW1),
        _ => (0, 0),
    }
}

fn entry(p: &Profile, q: Queue, ctx: &Ctx, op: Opcode) -> Entry {
    let mut res0 = layout::static_res0_mask(op);
    let mut narrow = 0u64;
    let mut no_s2_vmid = 0u64;
    let mut flags = 0u16;
    if matches!(op, Opcode::ImplementationDefined(_)) {
        flags |= Flags::IMPDEF;
    }
    if op.is_address_tlbi() && !p.ril {
        res0 |= RANGE_ALL; // §4.4.1.1, §6.3.4
    }
    if has_field(op, "VMID") {
        if is_nh(op) && !stage2_for(p, q) {
            // §4.4.2: VMID unused without stage 2 for this Security state (digest §10.2).
            res0 |= VMID_ALL as u128;
            no_s2_vmid = VMID_ALL;
        } else if !p.vmid16 {
            // §4.4, §6.3.1: VMID[15:8] RES0 with 8-bit VMIDs (digest §10.1).
            res0 |= VMID_HI as u128;
            narrow |= VMID_HI;
        }
    }
    if has_field(op, "ASID") && !p.asid16 {
        res0 |= ASID_HI as u128;
        narrow |= ASID_HI;
    }
    if matches!(op, Opcode::TlbiS2Ipa | Opcode::TlbiSS2Ipa | Opcode::DptiPa) {
        res0 |= ctx.pa_hi; // §4.1.6
    }
    if op == Opcode::PrefetchAddr && (p.regs.aidr & 0xFF) == 0 {
        res0 |= m(layout::PF_STRIDE); // §4.2.2: Stride RES0 in SMMUv3.0
    }
    let ssec_ill = if has_field(op, "SSec") {
        match q {
            Queue::NonSecure => vidx(&lg::SSEC_NON_SECURE_QUEUE),
            Queue::Realm => vidx(&lg::SSEC_REALM_QUEUE),
            Queue::Secure => 0,
        }
    } else {
        0
    };
    let (chk, addr) = checks_of(op, p.ril);
    // ATC_INV and PRI_RESP have no SSec: from the Secure queue their StreamID is Non-secure
    // (§4.5.1, §4.5.2), so SIDSIZE applies whatever bit 10 holds.
    let sid_bits = if has_field(op, "SSec") {
        [ctx.sid_bits as u8, ctx.sid_bits_ssec as u8]
    } else {
        [ctx.sid_bits as u8; 2]
    };
    Entry {
        res0,
        narrow,
        no_s2_vmid,
        addr,
        static_ill: static_illegal(p, q, op).map_or(0, vidx),
        ssec_ill,
        sid_bits,
        flags,
        chk,
    }
}

/// All-ones when `c`, else zero.
#[inline(always)]
fn sel(c: bool) -> u128 {
    (c as u128).wrapping_neg()
}

/// 0xFF when `c`, else 0.
#[inline(always)]
fn sel8(c: bool) -> u8 {
    (c as u8).wrapping_neg()
}

#[inline(always)]
fn flag(c: bool, f: u16) -> u16 {
    (c as u16) * f
}

#[inline(always)]
fn eval(ctx: &Ctx, e: &Entry, raw: RawCommand) -> Classification {
    let dw0 = raw.0[0];
    let dw1 = raw.0[1];
    let v = raw.as_u128();
    let chk = e.chk;
    let on = |b: u16| chk & b != 0;
    let mut res0 = v & e.res0;
    let mut fl = e.flags;
    fl |= flag(dw0 & e.narrow != 0, Flags::NARROW_ID_UPPER_SET);
    fl |= flag(dw0 & e.no_s2_vmid != 0, Flags::VMID_NO_STAGE2);

    // StreamID / SubstreamID range (§4.1.7). Shift amounts are <= 63 by construction.
    let ssec = (dw0 >> 10) & 1;
    let ssv = (dw0 >> 11) & 1 != 0;
    let sid = dw0 >> 32;
    let ssid = (dw0 >> 12) & 0xF_FFFF;
    let k = (dw1 & 31) as u32;
    let ignored_low = ((2u64 << k) - 1) & (on(C_STE_RANGE) as u64).wrapping_neg();
    let sid_bits = e.sid_bits[ssec as usize] as u32 & 63;
    let sid_oor = on(C_SID) & ((sid & !ignored_low) >> sid_bits != 0);
    let ssid_v_oor = (ssid >> (ctx.ssid_bits & 31)) != 0;
    let ssid_oor = (on(C_SSID_SSV) & ssv & (ctx.no_ssid | ssid_v_oor)) | (on(C_SSID) & ssid_v_oor);

    // Address parameters: VA canonical (§4.4.2), IPA below IAS (§4.4.3.1).
    let a = dw1 & e.addr;
    let top = (a as i64) >> (ctx.vas_m1 & 63);
    let va_oor = on(C_VA) & ((top.wrapping_add(1) as u64) > 1);
    let ipa_oor = on(C_IPA) & ((a >> (ctx.ias & 63)) != 0);
    fl |= flag(sid_oor | ssid_oor | va_oor | ipa_oor, Flags::OUT_OF_RANGE);

    let mut ill_range = false;
    if on(C_RANGE) {
        // Range TLBI fields (§4.4.1.1), only when IDR3.RIL == 1 (else they are RES0 in the table).
        let tg = ((dw1 >> 10) & 3) as usize;
        let ttl = ((dw1 >> 8) & 3) as usize;
        let ranged = tg != 0;
        res0 |= v & RANGE_PARAMS & sel(!ranged);
        let ttl128 = (dw1 >> 7) & 1 != 0;
        let num = (dw0 >> 12) & 31;
        let scale = (dw0 >> 20) & ctx.scale_mask;
        res0 |= v & TTL128_BIT & sel(ranged & (ttl == 0));
        res0 |= v & SCALE25 & sel(ranged & !ctx.ds);
        // 16KB with TTL=0b01 and DS == 0 is treated as TTL=0b00 (§4.4.1.1, case 1).
        let ttl_eff = ttl & !(((tg == 2) & (ttl == 1) & !ctx.ds) as usize * 3);
        ill_range = ranged & (num == 0) & (scale == 0) & (ttl_eff == 0);
        fl |= flag(ranged & (scale > 39), Flags::SCALE_CLAMPED);
        // The alignment tables are all-zero for TG == 0, so no `ranged` term is needed.
        let use128 = ttl128 & (ttl_eff != 0);
        let i = (tg << 2) | ttl_eff;
        fl |= flag(
            use128 & (a & ALIGN128_FLAT[i] != 0),
            Flags::NOTHING_REQUIRED,
        );
        fl |= flag(
            !use128 & (a & ALIGN64_FLAT[i] != 0),
            Flags::UNPREDICTABLE_RANGE,
        );
    }

    // CMD_SYNC (§4.7.3).
    let mut ill_cs = false;
    if on(C_SYNC) {
        let cs = (dw0 >> 12) & 3;
        ill_cs = cs == 3;
        let msi_used = (cs == 1) & ctx.msi;
        res0 |= v & ctx.pa_hi & sel(msi_used);
        let msi_set = ((dw0 >> 32) != 0) | (dw1 & MSIADDR_DW1 != 0);
        let attr_set = (dw0 >> 22) & 0x3F != 0;
        let sync_ignored = (!msi_used & msi_set) | ((cs == 0) & attr_set) | ((cs == 2) & !ctx.sev);
        fl |= flag(sync_ignored, Flags::IGNORED);
    }

    // ATC_INV (§4.5.1): Global IGNORED without SSV; Size > 52 ILL-or-UNKNOWN span.
    let atc = on(C_ATC);
    fl |= flag(atc & ((dw0 >> 9) & 1 != 0) & !ssv, Flags::IGNORED);
    fl |= flag(atc & ((dw1 & 0x3F) > 52), Flags::UNKNOWN_SPAN);

    // PRI_RESP Resp == 0b11 (§4.5.2).
    let ill_resp = on(C_PRI) & ((dw1 >> 12) & 3 == 3);

    // RESUME: Ab IGNORED when Ac == 1 or TERM_MODEL == 1 (§4.7.1).
    let ac = (dw0 >> 12) & 1 != 0;
    let ab = (dw0 >> 13) & 1 != 0;
    fl |= flag(on(C_RESUME) & ab & (ac | ctx.term_model), Flags::IGNORED);

    // DPTI_PA (§4.6.2): SIZE codes above 9, or a PA misaligned for SIZE: nothing required.
    let code = ((dw1 >> 2) & 0xF) as usize;
    fl |= flag(
        on(C_DPTI) & ((code > 9) | (a & DPTI_MISALIGN[code] != 0)),
        Flags::NOTHING_REQUIRED,
    );

    // Verdict: static illegality, then SSec, then parameter values; Illegal beats RES0.
    let dyn_ill = (ill_range as u8 * I_RANGE) | (ill_cs as u8 * I_CS) | (ill_resp as u8 * I_RESP);
    // Branch-free "first non-zero of" (static, SSec, dynamic), then RES0: opcodes arrive in
    // random order in the fuzzer, so data-dependent branches here would mispredict.
    let ssec_ill = e.ssec_ill & (ssec as u8).wrapping_neg();
    let s0 = e.static_ill;
    let ill = s0 | (ssec_ill & sel8(s0 == 0)) | (dyn_ill & sel8((s0 | ssec_ill) == 0));
    let idx = ill | ((res0 != 0) as u8 & sel8(ill == 0));
    Classification {
        verdict: VERDICTS[idx as usize],
        res0_set: res0,
        flags: Flags(fl),
    }
}

/// A classifier for one (profile, queue), with every opcode's profile-dependent facts
/// compiled to bit masks (module `compiled`). Build once, then call [`Classifier::classify`] per
/// command or [`Classifier::classify_queue`] over a queue's bytes (allocation-free, branch-free
/// per command).
#[derive(Clone, Debug)]
pub struct Classifier {
    /// About 30 KB, so boxed: a `Classifier` is cheap to move.
    tables: Box<Tables>,
    profile: Profile,
    queue: Queue,
}

#[derive(Clone, Debug)]
struct Tables {
    ops: [compiled::Op; 256],
    subs: [compiled::Sub; compiled::SUBS],
}

impl Classifier {
    pub fn new(profile: &Profile, queue: Queue) -> Classifier {
        let ctx = Ctx::new(profile, queue);
        let mut tables = Box::new(Tables {
            ops: [compiled::Op::default(); 256],
            subs: compiled::subs(&ctx),
        });
        for (b, o) in tables.ops.iter_mut().enumerate() {
            let e = entry(profile, queue, &ctx, Opcode::from_u8(b as u8));
            *o = compiled::op(&ctx, &e);
        }
        Classifier {
            tables,
            profile: *profile,
            queue,
        }
    }

    /// The classifier for (profile, queue), built on first use in this thread and shared after
    /// that: building one evaluates all 256 opcodes, which a fuzzing loop that classifies a few
    /// dozen commands per input would otherwise pay on every input. Keeps the last few.
    pub fn shared(profile: &Profile, queue: Queue) -> std::rc::Rc<Classifier> {
        const KEEP: usize = 8;
        std::thread_local! {
            static CACHE: std::cell::RefCell<Vec<std::rc::Rc<Classifier>>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(i) = c
                .iter()
                .position(|k| k.profile == *profile && k.queue == queue)
            {
                let k = c.remove(i);
                c.push(k.clone());
                return k;
            }
            let k = std::rc::Rc::new(Classifier::new(profile, queue));
            if c.len() >= KEEP {
                c.remove(0);
            }
            c.push(k.clone());
            k
        })
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn queue(&self) -> Queue {
        self.queue
    }

    /// Classify one command. Total, allocation-free, deterministic; equal to the free
    /// [`classify`].
    #[inline]
    pub fn classify(&self, raw: RawCommand) -> Classification {
        self.classify_compact(raw).classification()
    }

    /// [`Classifier::classify`] in the compact form.
    #[inline]
    pub fn classify_compact(&self, raw: RawCommand) -> Compact {
        compiled::eval(&self.tables.ops, &self.tables.subs, raw.0[0], raw.0[1])
    }

    /// Classify one 16-byte queue entry (two little-endian doublewords, §4.1.1).
    #[inline]
    pub fn classify_bytes(&self, entry: &[u8; 16]) -> Compact {
        self.classify_compact(RawCommand::from_bytes(entry))
    }

    /// Classify every command of a queue's bytes, in order: `bytes.len() / 16` results, each
    /// the full classification in compact form. Bytes that are not a whole number of commands
    /// are an error, not silently truncated.
    pub fn classify_queue<'a>(
        &'a self,
        bytes: &'a [u8],
    ) -> Result<QueueClassifications<'a>, PartialCommand> {
        if !bytes.len().is_multiple_of(16) {
            return Err(PartialCommand { len: bytes.len() });
        }
        Ok(QueueClassifications {
            classifier: self,
            entries: bytes.chunks_exact(16),
        })
    }
}

/// The iterator of [`Classifier::classify_queue`].
#[derive(Clone, Debug)]
pub struct QueueClassifications<'a> {
    classifier: &'a Classifier,
    entries: std::slice::ChunksExact<'a, u8>,
}

impl Iterator for QueueClassifications<'_> {
    type Item = Compact;
    #[inline]
    fn next(&mut self) -> Option<Compact> {
        let e = self.entries.next()?;
        // `chunks_exact(16)` yields 16-byte slices; the conversion cannot fail.
        let e: &[u8; 16] = e.try_into().ok()?;
        Some(self.classifier.classify_bytes(e))
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
    #[inline]
    fn fold<B, F: FnMut(B, Compact) -> B>(self, init: B, mut f: F) -> B {
        let k = self.classifier;
        self.entries.fold(init, |acc, e| match e.try_into() {
            Ok(e) => f(acc, k.classify_bytes(e)),
            Err(_) => acc, // unreachable: `chunks_exact(16)`
        })
    }
}

impl ExactSizeIterator for QueueClassifications<'_> {}

/// Classify `raw` as submitted to `queue` of an SMMU with `profile`. Total and allocation-free.
/// Computes only the entry for this opcode; use [`Classifier`] for bulk classification.
pub fn classify(profile: &Profile, queue: Queue, raw: RawCommand) -> Classification {
    let ctx = Ctx::new(profile, queue);
    let e = entry(profile, queue, &ctx, raw.opcode());
    eval(&ctx, &e, raw)
}

/// A non-zero RES0 field, named for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Res0Field {
    /// e.g. "SCALE[25]", "bits[127:120]", "VMID (no stage 2)".
    pub name: String,
    pub hi: u8,
    pub lo: u8,
    pub value: u128,
    /// Why these bits are RES0 here, e.g. "IDR5.DS == 0".
    pub reason: &'static str,
    pub section: &'static str,
}

fn push_part(
    out: &mut Vec<Res0Field>,
    v: u128,
    mask: u128,
    name: String,
    reason: &'static str,
    section: &'static str,
) {
    if v & mask == 0 {
        return;
    }
    let lo = mask.trailing_zeros() as u8;
    let hi = (127 - mask.leading_zeros()) as u8;
    out.push(Res0Field {
        name,
        hi,
        lo,
        value: (v & mask) >> lo,
        reason,
        section,
    });
}

/// The RES0 fields of `raw` that are set, named (for reports; not on the hot path). The union of
/// the reported fields is exactly `classify(..).res0_set`.
pub fn res0_fields(profile: &Profile, queue: Queue, raw: RawCommand) -> Vec<Res0Field> {
    let p = profile;
    let op = raw.opcode();
    let v = raw.as_u128();
    let mut out = Vec::new();

    // Static RES0: contiguous runs of undefined bits (§4.1.5).
    let st = layout::static_res0_mask(op);
    let mut b = 0u32;
    while b < 128 {
        if (st >> b) & 1 == 0 {
            b += 1;
            continue;
        }
        let lo = b;
        while b < 128 && (st >> b) & 1 == 1 {
            b += 1;
        }
        let hi = b - 1;
        let run = if hi - lo + 1 == 128 {
            u128::MAX
        } else {
            ((1u128 << (hi - lo + 1)) - 1) << lo
        };
        push_part(
            &mut out,
            v,
            run,
            format!("bits[{hi}:{lo}]"),
            "not a field of this command",
            "§4.1.5",
        );
    }

    let f = |out: &mut Vec<Res0Field>, fl: Field, name: &str, reason, section| {
        push_part(out, v, fl.mask(), name.to_string(), reason, section)
    };
    if op.is_address_tlbi() {
        let dw1 = raw.0[1];
        let tg = (dw1 >> 10) & 3;
        let ttl = (dw1 >> 8) & 3;
        if !p.ril {
            for fl in [
                layout::NUM,
                layout::SCALE,
                layout::TTL128,
                layout::TTL,
                layout::TG,
            ] {
                f(&mut out, fl, fl.name, "IDR3.RIL == 0", "§4.4.1.1");
            }
        } else if tg == 0 {
            for fl in [layout::NUM, layout::SCALE, layout::TTL128, layout::TTL] {
                f(&mut out, fl, fl.name, "TG == 0 (no range)", "§4.4.1.1");
            }
        } else {
            if !p.ds {
                push_part(
                    &mut out,
                    v,
                    SCALE25,
                    "SCALE[25]".into(),
                    "IDR5.DS == 0",
                    "§4.4.1.1",
                );
            }
            if ttl == 0 {
                f(&mut out, layout::TTL128, "TTL128", "TTL == 0", "§4.4.1.1");
            }
        }
    }
    if has_field(op, "VMID") {
        if is_nh(op) && !stage2_for(p, queue) {
            let reason = if queue == Queue::Secure {
                "S_IDR1.SEL2 == 0 (no Secure stage 2)"
            } else {
                "IDR0.S2P == 0 (no stage 2)"
            };
            push_part(
                &mut out,
                v,
                VMID_ALL as u128,
                "VMID (no stage 2)".into(),
                reason,
                "§4.4.2",
            );
        } else if !p.vmid16 {
            push_part(
                &mut out,
                v,
                VMID_HI as u128,
                "VMID[15:8]".into(),
                "IDR0.VMID16 == 0",
                "§4.4",
            );
        }
    }
    if has_field(op, "ASID") && !p.asid16 {
        push_part(
            &mut out,
            v,
            ASID_HI as u128,
            "ASID[15:8]".into(),
            "IDR0.ASID16 == 0",
            "§4.4",
        );
    }
    let pa_hi = pa_hi_res0(p);
    let (pa_name, pa_reason) = if pa_hi == PA_55_48 {
        ("[55:48]", "SMMUv3.0 (AIDR)")
    } else {
        ("[55:52]", "SMMUv3.1-v3.3 (AIDR)")
    };
    let sync_msi = op == Opcode::Sync && (raw.0[0] >> 12) & 3 == 1 && p.msi;
    if matches!(op, Opcode::TlbiS2Ipa | Opcode::TlbiSS2Ipa | Opcode::DptiPa) {
        push_part(
            &mut out,
            v,
            pa_hi,
            format!("Address{pa_name}"),
            pa_reason,
            "§4.1.6",
        );
    } else if sync_msi {
        push_part(
            &mut out,
            v,
            pa_hi,
            format!("MSIAddress{pa_name}"),
            pa_reason,
            "§4.7.3",
        );
    }
    if op == Opcode::PrefetchAddr && (p.regs.aidr & 0xFF) == 0 {
        f(
            &mut out,
            layout::PF_STRIDE,
            "Stride",
            "SMMUv3.0 (AIDR)",
            "§4.2.2",
        );
    }
    out
}
