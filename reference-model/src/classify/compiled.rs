//! The classifier compiled to masks: the fast path behind [`Classifier`](super::Classifier).
//!
//! [`super::eval`] is the readable statement of the rules (§4.1.3, §4.1.5, §4.1.7, §4.4.1.1,
//! §4.7.3, ...). This module states the same rules again as tables of bit masks, built once per
//! (profile, queue), so that classifying a command is straight-line code: two dependent table
//! loads (the opcode's [`Op`], then the [`Sub`] for the value of its one value-dependent field)
//! and mask arithmetic on the two 64-bit words, with no branch that depends on the command (a
//! random opcode mix would mispredict it) and no 128-bit arithmetic. The two must agree on every command; `tests/classify.rs` checks
//! that by property over every opcode, random words, every named profile and every queue.
//!
//! How the value-dependent rules become masks:
//! - Every "field out of range" test (§4.1.7) is "some bit above the field's size is set", so it
//!   is one DW0 mask per (SSV, SSec) pair (the StreamID size depends on SSec, the SubstreamID
//!   check on SSV), plus the sign/size test of the address (§4.4.2, §4.4.3.1) as one shift.
//! - Each opcode whose RES0 bits, flags or legality depend on field values depends on one small
//!   field: TG/TTL/TTL128 of a range TLBI (§4.4.1.1), CS of CMD_SYNC (§4.7.3), SSV of ATC_INV
//!   (§4.5.1), Resp of PRI_RESP (§4.5.2), Ac of RESUME (§4.7.1), SIZE of DPTI_PA (§4.6.2), Range
//!   of CFGI_STE_RANGE (§4.3.2). That field indexes a [`Sub`] entry holding the masks for that
//!   value, so a `match` on the opcode and on the field becomes one indexed load.

use super::Classification;
use super::{
    Ctx, Entry, Flags, Verdict, ALIGN128_FLAT, ALIGN64_FLAT, C_ATC, C_DPTI, C_IPA, C_PRI, C_RANGE,
    C_RESUME, C_SID, C_SSID, C_SSID_SSV, C_STE_RANGE, C_SYNC, C_VA, DPTI_MISALIGN, I_CS, I_RANGE,
    I_RESP, MSIADDR_DW1, RANGE_PARAMS, SCALE25, TTL128_BIT, VERDICTS,
};
use crate::command::RawCommand;
use crate::rules::Rule;

/// A classification in 24 bytes, `Copy`: what [`Classifier::classify_queue`](super::Classifier)
/// yields per command. Nothing is left out: the verdict (with its rule, hence reason and
/// section), every set RES0 bit and every flag; [`Compact::classification`] gives the rich form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compact {
    /// RES0 bits set, DW0 and DW1.
    res0: [u64; 2],
    flags: u16,
    /// Index into the verdict table: 0 Legal, 1 ReservedFieldSet, 2.. the `legality::ALL` rules.
    verdict: u8,
}

impl Compact {
    #[inline]
    pub fn verdict(self) -> Verdict {
        VERDICTS[self.verdict as usize]
    }
    /// The verdict as a small number: 0 Legal, 1 ReservedFieldSet, `2 + i` for
    /// `rules::legality::ALL[i]` (Illegal).
    #[inline]
    pub fn verdict_code(self) -> u8 {
        self.verdict
    }
    #[inline]
    pub fn is_legal(self) -> bool {
        self.verdict == 0
    }
    /// The CERROR_ILL rule (reason and section), if the command is Illegal.
    #[inline]
    pub fn illegal_rule(self) -> Option<&'static Rule> {
        match self.verdict() {
            Verdict::Illegal(r) => Some(r),
            _ => None,
        }
    }
    #[inline]
    pub fn res0_set(self) -> u128 {
        RawCommand(self.res0).as_u128()
    }
    #[inline]
    pub fn flags(self) -> Flags {
        Flags(self.flags)
    }
    #[inline]
    pub fn classification(self) -> Classification {
        Classification {
            verdict: self.verdict(),
            res0_set: self.res0_set(),
            flags: self.flags(),
        }
    }
}

impl From<Compact> for Classification {
    fn from(c: Compact) -> Classification {
        c.classification()
    }
}

/// Everything about one opcode byte that does not depend on field values, as masks.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Op {
    /// RES0 bits of DW0 and DW1 (static and profile-dependent).
    res0: [u64; 2],
    /// DW0 bits meaning NARROW_ID_UPPER_SET / VMID_NO_STAGE2.
    narrow: u64,
    no_s2: u64,
    /// DW0 bits meaning OUT_OF_RANGE, indexed by DW0[11:10] = (SSV, SSec) (§4.1.7).
    oor: [u64; 4],
    /// Address bits of DW1 (VA or IPA/PA field), 0 when the opcode has none we check.
    addr: u64,
    /// The address is out of range when `(addr as i64) >> shift` is neither 0 nor -1: the VA
    /// sign-extension test (§4.4.2) and the IPA-below-IAS test (§4.4.3.1) at once.
    ashift: u8,
    /// Verdict index of the mandatory CERROR_ILL whatever the values, by SSec (0 = none).
    ill: [u8; 2],
    /// 0xFF where `ill` is 0, so a value-dependent CERROR_ILL may apply; by SSec.
    dyn_ok: [u8; 2],
    /// The value-dependent part: `subs[sub_base + ((DW1 >> sub_shift) & sub_mask1) + ((DW0 >>
    /// 11) & sub_mask0)]` (the fields read in DW0 all lie in DW0[13:11]).
    /// (u32 rather than u8 so that each is one instruction with a memory operand.)
    sub_base: u32,
    sub_mask1: u32,
    sub_mask0: u32,
    sub_shift: u8,
}

/// The masks for one value of the one field an opcode's value-dependent rules read.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))] // 64 bytes: indexing is a shift and no entry straddles cache lines
pub(super) struct Sub {
    res0: [u64; 2],
    /// `test_flag[1]` when any of these DW0 / DW1 bits is set: the IGNORED fields (CMD_SYNC,
    /// ATC_INV, RESUME; the flag is IGNORED) or the address bits that must be zero for
    /// alignment (range TLBI, DPTI_PA; UNPREDICTABLE_RANGE or NOTHING_REQUIRED). No opcode
    /// needs both, so one test serves.
    test: [u64; 2],
    /// All but the StreamID bits (in DW0) that CFGI_STE_RANGE's Range exempts from the size
    /// check (§4.3.2).
    keep: u64,
    /// The dynamic CERROR_ILL `ill` applies when these DW0 bits are all zero.
    ill_zero: u32,
    /// Flags set unconditionally.
    flags: u16,
    /// Which of SCALE_CLAMPED (SCALE > 39, §4.4.1.1) and UNKNOWN_SPAN (ATC Size > 52, §4.5.1)
    /// apply.
    compare_flags: u16,
    /// `[0, flag]`, indexed by "a `test` bit is set". Conditions index small tables instead of
    /// choosing between values: the compiler turns a choice that involves a loaded value into a
    /// branch, which mispredicts on a random opcode mix.
    test_flag: [u16; 2],
    /// `[0, verdict index]`, indexed by "the `ill_zero` bits are all zero".
    ill: [u8; 2],
}

impl Default for Sub {
    fn default() -> Sub {
        Sub {
            res0: [0; 2],
            test: [0; 2],
            keep: !0,
            ill_zero: 0,
            flags: 0,
            compare_flags: 0,
            test_flag: [0; 2],
            ill: [0; 2],
        }
    }
}

impl Sub {
    fn set(&mut self, flags: u16, test_flag: u16, compare_flags: u16, ill: u8) {
        self.flags = flags;
        self.compare_flags = compare_flags;
        self.test_flag = [0, test_flag];
        self.ill = [0, ill];
    }
}

// Sub-table layout: one block per kind of value-dependent opcode.
const S_NONE: u8 = 0;
const S_IMPDEF: u8 = 1;
/// Indexed by DW1[11:7] = TG:TTL:TTL128.
const S_RANGE: u8 = 2;
/// Indexed by 2 * CS (DW0[13:12]).
const S_SYNC: u8 = S_RANGE + 32;
/// Indexed by SSV, DW0[11].
const S_ATC: u8 = S_SYNC + 8;
/// Indexed by Resp, DW1[13:12].
const S_PRI: u8 = S_ATC + 2;
/// Indexed by 2 * Ac (DW0[12]).
const S_RESUME: u8 = S_PRI + 4;
/// Indexed by SIZE, DW1[5:2].
const S_DPTI: u8 = S_RESUME + 4;
/// Indexed by Range, DW1[4:0].
const S_STE_RANGE: u8 = S_DPTI + 16;
pub(super) const SUBS: usize = 128;
const _: () = assert!(S_STE_RANGE as usize + 32 <= SUBS);
// The compare trick in `eval` puts its results at these bits.
const _: () = assert!(Flags::SCALE_CLAMPED == 1 << 4 && Flags::UNKNOWN_SPAN == 1 << 7);

fn split(m: u128) -> [u64; 2] {
    [m as u64, (m >> 64) as u64]
}

/// All DW0 bits above the low `bits` of the field at DW0[lo + width - 1 : lo].
fn above(lo: u32, width: u32, bits: u32) -> u64 {
    let field = ((1u64 << width) - 1) << lo;
    field & (!0u64).checked_shl(bits + lo).unwrap_or(0)
}

/// Compile one opcode's [`Entry`].
pub(super) fn op(ctx: &Ctx, e: &Entry) -> Op {
    let on = |b: u16| e.chk & b != 0;
    let mut oor = [0u64; 4];
    for (i, m) in oor.iter_mut().enumerate() {
        let (ssec, ssv) = (i & 1, i >> 1 != 0);
        if on(C_SID) {
            *m |= above(32, 32, e.sid_bits[ssec] as u32 & 63);
        }
        let ssid = above(12, 20, ctx.ssid_bits & 31);
        if on(C_SSID) {
            *m |= ssid;
        }
        if on(C_SSID_SSV) && ssv {
            // SSV == 1 with SSIDSIZE == 0 is out of range whatever the SubstreamID: the SSV
            // bit itself is the witness.
            *m |= if ctx.no_ssid { 1 << 11 } else { ssid };
        }
    }
    let ashift = if on(C_VA) {
        ctx.vas_m1 & 63
    } else if on(C_IPA) {
        ctx.ias & 63
    } else {
        63
    };
    // (base, DW1 shift, DW1 mask, mask of DW0[13:11]).
    let (sub_base, sub_shift, sub_mask1, sub_mask0) = if on(C_RANGE) {
        (S_RANGE, 7, 31, 0)
    } else if on(C_SYNC) {
        (S_SYNC, 0, 0, 0b110)
    } else if on(C_ATC) {
        (S_ATC, 0, 0, 0b001)
    } else if on(C_PRI) {
        (S_PRI, 12, 3, 0)
    } else if on(C_RESUME) {
        (S_RESUME, 0, 0, 0b010)
    } else if on(C_DPTI) {
        (S_DPTI, 2, 15, 0)
    } else if on(C_STE_RANGE) {
        (S_STE_RANGE, 0, 31, 0)
    } else if e.flags & Flags::IMPDEF != 0 {
        (S_IMPDEF, 0, 0, 0)
    } else {
        (S_NONE, 0, 0, 0)
    };
    debug_assert_eq!(e.flags & !Flags::IMPDEF, 0, "per-opcode flags live in Sub");
    let ill = [
        e.static_ill,
        if e.static_ill != 0 {
            e.static_ill
        } else {
            e.ssec_ill
        },
    ];
    Op {
        res0: split(e.res0),
        narrow: e.narrow,
        no_s2: e.no_s2_vmid,
        oor,
        // The address only matters to an opcode with an address check or a Sub reading it.
        addr: e.addr,
        ashift: ashift as u8,
        ill,
        dyn_ok: ill.map(|i| if i == 0 { 0xFF } else { 0 }),
        sub_base: sub_base as u32,
        sub_shift,
        sub_mask1,
        sub_mask0,
    }
}

/// Compile the value-dependent rules of `ctx`'s profile.
pub(super) fn subs(ctx: &Ctx) -> [Sub; SUBS] {
    let mut t = [Sub::default(); SUBS];
    t[S_IMPDEF as usize].set(Flags::IMPDEF, 0, 0, 0);

    // Range TLBI fields, §4.4.1.1 (only reached when IDR3.RIL == 1).
    for i in 0..32usize {
        let s = &mut t[S_RANGE as usize + i];
        let (ttl128, ttl, tg) = (i & 1 != 0, (i >> 1) & 3, i >> 3);
        let ranged = tg != 0;
        let mut res0 = 0u128;
        if !ranged {
            res0 |= RANGE_PARAMS;
        }
        if ranged && ttl == 0 {
            res0 |= TTL128_BIT;
        }
        if ranged && !ctx.ds {
            res0 |= SCALE25;
        }
        s.res0 = split(res0);
        // 16KB with TTL=0b01 and DS == 0 is treated as TTL=0b00 (§4.4.1.1, case 1).
        let ttl_eff = if tg == 2 && ttl == 1 && !ctx.ds {
            0
        } else {
            ttl
        };
        let mut ill = 0;
        if ranged && ttl_eff == 0 {
            // NUM == 0, SCALE == 0 (the bits that count) and TTL == 0: reserved (§4.4.1.1).
            ill = I_RANGE;
            s.ill_zero = ((31 << 12) | (ctx.scale_mask << 20)) as u32;
        }
        // Without DS, SCALE[25] is RES0 and the SCALE that counts is at most 31.
        let clamp = if ranged && ctx.ds {
            Flags::SCALE_CLAMPED
        } else {
            0
        };
        let use128 = ttl128 && ttl_eff != 0;
        let j = (tg << 2) | ttl_eff;
        // The masks lie within the VA and IPA address fields (bits [41:12] at most).
        let align_flag = if use128 {
            s.test[1] = ALIGN128_FLAT[j];
            Flags::NOTHING_REQUIRED
        } else {
            s.test[1] = ALIGN64_FLAT[j];
            Flags::UNPREDICTABLE_RANGE
        };
        s.set(0, align_flag, clamp, ill);
    }

    // CMD_SYNC, §4.7.3.
    for cs in 0..4u64 {
        let s = &mut t[S_SYNC as usize + 2 * cs as usize];
        let msi_used = cs == 1 && ctx.msi;
        if msi_used {
            s.res0 = split(ctx.pa_hi);
        } else {
            // MSIData (DW0[63:32]) and MSIAddress are IGNORED when the MSI is not sent.
            s.test = [0xFFFF_FFFF << 32, MSIADDR_DW1];
        }
        if cs == 0 {
            s.test[0] |= 0x3F << 22; // MSH, MSIAttr
        }
        let flags = if cs == 2 && !ctx.sev {
            Flags::IGNORED
        } else {
            0
        };
        s.set(flags, Flags::IGNORED, 0, if cs == 3 { I_CS } else { 0 });
    }

    // ATC_INV, §4.5.1: Global (DW0[9]) IGNORED when SSV == 0; Size > 52 whatever SSV.
    t[S_ATC as usize].test[0] = 1 << 9;
    t[S_ATC as usize].set(0, Flags::IGNORED, Flags::UNKNOWN_SPAN, 0);
    t[S_ATC as usize + 1].set(0, 0, Flags::UNKNOWN_SPAN, 0);

    // PRI_RESP, §4.5.2: Resp == 0b11 is reserved.
    t[S_PRI as usize + 3].set(0, 0, 0, I_RESP);

    // RESUME, §4.7.1: Ab (DW0[13]) IGNORED when Ac == 1 or TERM_MODEL == 1.
    for ac in 0..2 {
        if ac == 1 || ctx.term_model {
            t[S_RESUME as usize + 2 * ac].test[0] = 1 << 13;
            t[S_RESUME as usize + 2 * ac].set(0, Flags::IGNORED, 0, 0);
        }
    }

    // CFGI_STE_RANGE, §4.3.2: Range = k invalidates StreamIDs that match in bits above k, so
    // StreamID[k:0] is not a parameter and cannot be out of range.
    for k in 0..32 {
        t[S_STE_RANGE as usize + k].keep = !(((2u64 << k) - 1) << 32);
    }

    // DPTI_PA, §4.6.2: SIZE above 9, or a PA misaligned for SIZE: nothing required.
    for (code, &mis) in DPTI_MISALIGN.iter().enumerate() {
        let s = &mut t[S_DPTI as usize + code];
        if code > 9 {
            s.set(Flags::NOTHING_REQUIRED, 0, 0, 0);
        } else {
            s.test[1] = mis; // within the PA field, bits [38:12]
            s.set(0, Flags::NOTHING_REQUIRED, 0, 0);
        }
    }
    t
}

/// 0xFFFF when `c`, else 0.
#[inline(always)]
fn sel16(c: bool) -> u16 {
    (c as u16).wrapping_neg()
}

/// Classify one command with compiled tables. Mirrors [`super::eval`] step by step.
#[inline(always)]
pub(super) fn eval(ops: &[Op; 256], subs: &[Sub; SUBS], dw0: u64, dw1: u64) -> Compact {
    let e = &ops[dw0 as u8 as usize];
    let ssec = ((dw0 >> 10) & 1) as usize;
    let mut fl = sel16(dw0 & e.narrow != 0) & Flags::NARROW_ID_UPPER_SET;
    fl |= sel16(dw0 & e.no_s2 != 0) & Flags::VMID_NO_STAGE2;

    // The value-dependent part.
    let si = e.sub_base
        + ((dw1 >> (e.sub_shift & 63)) as u32 & e.sub_mask1)
        + ((dw0 >> 11) as u32 & e.sub_mask0);
    let s = &subs[si as usize & (SUBS - 1)];

    // Out of range (§4.1.7): StreamID/SubstreamID bits above their sizes, less the StreamID
    // bits CFGI_STE_RANGE's Range covers; then the address.
    let ids = dw0 & e.oor[((dw0 >> 10) & 3) as usize] & s.keep;
    let a = dw1 & e.addr;
    let top = (a as i64) >> (e.ashift & 63);
    let oor = (ids != 0) | (top.wrapping_add(1) as u64 > 1);
    fl |= sel16(oor) & Flags::OUT_OF_RANGE;

    let r0 = dw0 & (e.res0[0] | s.res0[0]);
    let r1 = dw1 & (e.res0[1] | s.res0[1]);
    fl |= s.flags;
    fl |= s.test_flag[((dw0 & s.test[0]) | (dw1 & s.test[1]) != 0) as usize];
    // SCALE > 39 and Size > 52 without a compare, the answer landing on the flag's bit:
    // SCALE >= 40 iff SCALE[5:2] >= 10 iff SCALE[5:2] + 6 carries into bit 4 (SCALE_CLAMPED);
    // Size >= 53 iff Size + 75 carries into bit 7 (UNKNOWN_SPAN). Bits [3:0] of the first are
    // masked off by `compare_flags`.
    let scale_gt = ((dw0 >> 22) & 15) + 6;
    let size_gt = ((dw1 & 63) + 75) & 0x80;
    fl |= (scale_gt | size_gt) as u16 & s.compare_flags;
    let dynamic = s.ill[(dw0 & s.ill_zero as u64 == 0) as usize];

    // Verdict: static (by SSec), then value-dependent illegality; Illegal beats RES0.
    let ill = e.ill[ssec] | (dynamic & e.dyn_ok[ssec]);
    // Rule indices are >= 2, ReservedFieldSet is 1, Legal 0.
    let verdict = ill.max(((r0 | r1) != 0) as u8);
    Compact {
        res0: [r0, r1],
        flags: fl,
        verdict,
    }
}

/// A queue's bytes were not a whole number of 16-byte commands (§4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("queue of {len} bytes is not a whole number of 16-byte commands ({} bytes left over)", len % 16)]
pub struct PartialCommand {
    pub len: usize,
}
