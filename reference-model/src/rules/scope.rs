//! Rules about the MINIMUM set of cached entries each invalidation command is required to remove
//! (§3.17, §3.21, §4.3, §4.4, §4.5.1, §16.2). Cited by `crate::scope`; everything outside the
//! required set may be kept or removed (over-invalidation is always permitted, §4.4, §4.3).

use super::Rule;

macro_rules! rule {
    ($name:ident, $id:literal, $sec:literal, $sum:literal) => {
        pub const $name: Rule = Rule {
            id: $id,
            section: $sec,
            summary: $sum,
        };
    };
}

// ---- Stage 1, NH (§4.4.2) ----
rule!(NH_ALL, "SCOPE-NH-ALL", "§4.4.2.1",
    "NH_ALL must remove every stage-1 (and combined) EL1 entry of the queue's world for VMID, global or not, at all levels; S2-only entries need not go");
rule!(NH_ASID, "SCOPE-NH-ASID", "§4.4.2.2",
    "NH_ASID must remove non-global EL1 stage-1 entries with that ASID in VMID, at all levels; global entries need not go");
rule!(NH_VA, "SCOPE-NH-VA", "§4.4.2.4",
    "NH_VA must remove EL1 stage-1 entries for VMID with that ASID that translate the address (and walk-cache entries when Leaf==0)");
rule!(
    NH_VA_GLOBAL,
    "SCOPE-NH-VA-GLOBAL",
    "§4.4.2.4, §3.17.1",
    "NH_VA must remove global entries translating the address whatever ASID the command names"
);
rule!(NH_VAA, "SCOPE-NH-VAA", "§4.4.2.3",
    "NH_VAA must remove EL1 stage-1 entries for VMID translating the address, any ASID, global included");
rule!(NH_VMID_UNMATCHED, "SCOPE-NH-VMID-NO-S2", "§4.4.2, §4.3.5",
    "Without stage 2 for the Security state the NH_* (and CFGI_VMS_PIDM) VMID is not matched: VMID==0 covers every VMID, VMID!=0 may hit an UNKNOWN VMID so nothing is required");
rule!(VMW_WILDCARD, "SCOPE-VMW", "§3.17.6, §6.3.9",
    "With CR0.VMW (S_CR0.VMW for Secure VMIDs) = 1..4, VMID-matching invalidations ignore VMID[VMW-1:0]");
// ---- EL3 (§4.4.2.5/6) ----
rule!(
    EL3_ALL,
    "SCOPE-EL3-ALL",
    "§4.4.2.5",
    "EL3_ALL must remove every EL3 entry"
);
rule!(
    EL3_VA,
    "SCOPE-EL3-VA",
    "§4.4.2.6",
    "EL3_VA must remove EL3 entries translating the address (walk-cache entries too when Leaf==0)"
);
// ---- EL2 (§4.4.2.7-14) ----
rule!(EL2_ALL, "SCOPE-EL2-ALL", "§4.4.2.7",
    "EL2_ALL must remove every EL2 and EL2-E2H entry of the queue's world (Non-secure from NS and Secure queues), ASID-tagged or not");
rule!(EL2_VA, "SCOPE-EL2-VA", "§4.4.2.8",
    "EL2_VA: with E2H==1 EL2-E2H entries translating the address with that ASID; with E2H==0 EL2 entries translating it, ASID ignored");
rule!(EL2_VA_GLOBAL, "SCOPE-EL2-VA-GLOBAL", "§4.4.2.8, §3.17.1",
    "EL2_VA with E2H==1 must remove global EL2-E2H entries translating the address whatever the ASID");
rule!(EL2_VAA, "SCOPE-EL2-VAA", "§4.4.2.9",
    "EL2_VAA: with E2H==1 EL2-E2H entries translating the address, all ASIDs; with E2H==0 EL2 entries translating it");
rule!(EL2_ASID, "SCOPE-EL2-ASID", "§4.4.2.10",
    "EL2_ASID must remove non-global EL2-E2H entries with that ASID; untagged EL2 and global entries need not go");
rule!(
    S_EL2_ALL,
    "SCOPE-S-EL2-ALL",
    "§4.4.2.11",
    "S_EL2_ALL must remove every S-EL2 and S-EL2-E2H entry"
);
rule!(
    S_EL2_VA,
    "SCOPE-S-EL2-VA",
    "§4.4.2.12",
    "S_EL2_VA: as EL2_VA for S-EL2/S-EL2-E2H entries, governed by S_CR2.E2H"
);
rule!(S_EL2_VA_GLOBAL, "SCOPE-S-EL2-VA-GLOBAL", "§4.4.2.12, §3.17.1",
    "S_EL2_VA with S_CR2.E2H==1 must remove global S-EL2-E2H entries translating the address whatever the ASID");
rule!(
    S_EL2_VAA,
    "SCOPE-S-EL2-VAA",
    "§4.4.2.13",
    "S_EL2_VAA: as EL2_VAA for S-EL2/S-EL2-E2H entries, governed by S_CR2.E2H"
);
rule!(
    S_EL2_ASID,
    "SCOPE-S-EL2-ASID",
    "§4.4.2.14",
    "S_EL2_ASID must remove non-global S-EL2-E2H entries with that ASID"
);
// ---- Stage 2 and common (§4.4.3, §4.4.4) ----
rule!(S12_VMALL, "SCOPE-S12-VMALL", "§4.4.3.2",
    "S12_VMALL must remove every EL1 entry for VMID at all stages: S1-only, S2-only, combined and walk caches");
rule!(S2_IPA, "SCOPE-S2-IPA", "§4.4.3.1",
    "S2_IPA must remove S2-only entries for VMID translating the IPA; combined S1+S2 entries need not go");
rule!(
    S_S12_VMALL,
    "SCOPE-S-S12-VMALL",
    "§4.4.3.4",
    "S_S12_VMALL must remove every Secure EL1 entry for VMID at all stages"
);
rule!(S_S2_IPA, "SCOPE-S-S2-IPA", "§4.4.3.3",
    "S_S2_IPA must remove Secure S2-only entries for VMID translating the IPA in the IPA space NS selects");
rule!(NSNH_ALL, "SCOPE-NSNH-ALL", "§4.4.4.1",
    "NSNH_ALL must remove every non-EL2 EL1 entry of the Non-secure (Realm on the Realm queue) world, all VMIDs, all stages");
rule!(
    SNH_ALL,
    "SCOPE-SNH-ALL",
    "§4.4.4.2",
    "SNH_ALL must remove every Secure non-S-EL2 EL1 entry, all VMIDs, all stages"
);
// ---- Address, Leaf, TG, TTL (§4.4.1.1, §4.4) ----
rule!(
    LEAF_ONLY,
    "SCOPE-LEAF",
    "§4.4.2.3, §4.4.3.1, §3.21.1",
    "Leaf==1 requires only last-level (page/block) entries; walk-cache table entries may stay"
);
rule!(
    NONRANGE_CONTAINS,
    "SCOPE-NONRANGE-CONTAINS",
    "§4.4",
    "TG==0: every entry (any granule, any level) whose input range contains the address must go"
);
rule!(
    TG_GRANULE,
    "SCOPE-TG-GRANULE",
    "§4.4.1.1",
    "TG!=0: only entries inserted with that granule are required"
);
rule!(
    TTL_LEVEL,
    "SCOPE-TTL-LEVEL",
    "§4.4.1.1",
    "TTL!=0: leaf entries only from level TTL, table entries (Leaf==0) only from levels before TTL"
);
rule!(TTL_COMBINED, "SCOPE-TTL-COMBINED", "§4.4.1.1, §16.2.1",
    "Interpretation: with a TTL hint a combined S1+S2 leaf entry is required only when its recorded level equals TTL (table entries: levels before TTL, as for S1)");
rule!(TTL128, "SCOPE-TTL128", "§4.4.1.1",
    "With TTL!=0, TTL128 selects 128-bit (1) or 64-bit (0) descriptor entries; the other format is not required");
rule!(RANGE_OVERLAP, "SCOPE-RANGE-OVERLAP", "§4.4.1.1",
    "Interpretation: a range TLBI must remove every entry whose input range intersects [Addr, Addr+Range), end exclusive");
rule!(
    RANGE_NO_WRAP,
    "SCOPE-RANGE-NO-WRAP",
    "§4.4.1.1",
    "A range running past 2^64 does not wrap: TTB0-half entries are not required"
);
rule!(RANGE_TTB1_CLIP, "SCOPE-RANGE-TTB1-CLIP", "§4.4.1.1",
    "A TTB0-half base whose range runs into the TTB1 region is not required to remove TTB1-region entries");
rule!(RANGE_UNPREDICTABLE, "SCOPE-RANGE-UNPREDICTABLE", "§4.4.1.1",
    "Address not aligned to the TTL-implied block (64-bit descriptors): the invalidated range is UNPREDICTABLE, nothing required");
rule!(
    RANGE_TTL128_MISALIGNED,
    "SCOPE-RANGE-TTL128-MISALIGNED",
    "§4.4.1.1",
    "TTL128==1 with a misaligned address: the TLBI is not required to invalidate any entries"
);
rule!(
    RANGE_RESERVED,
    "SCOPE-RANGE-RESERVED",
    "§4.4.1.1",
    "NUM==SCALE==0 with TTL==00 and TG!=0 is Reserved (CERROR_ILL): nothing is required"
);
// ---- Parameters (§4.1, §4.4) ----
rule!(
    NARROW_ID,
    "SCOPE-NARROW-ID",
    "§4.4",
    "8-bit ASID/VMID with a non-zero upper byte: the command is not required to affect TLB entries"
);
rule!(OUT_OF_RANGE, "SCOPE-OUT-OF-RANGE", "§4.1.7, §4.4.2, §4.4.3.1",
    "Out-of-range StreamID/SubstreamID/VA/IPA parameter: no effect is permitted, so nothing is required");
rule!(
    RES0_AS_ZERO,
    "SCOPE-RES0-AS-ZERO",
    "§4.1.5",
    "Without CERROR_ILL a command with RES0 bits set must behave as its all-zero-RES0 encoding"
);
rule!(
    ILLEGAL,
    "SCOPE-ILLEGAL",
    "§4.1.3, §4.4.2",
    "A command that is ILLEGAL on this queue or SMMU has no effect: nothing is required"
);
rule!(
    IGNORED,
    "SCOPE-IGNORED",
    "§4.5.1, §4.5.2",
    "An IGNORED command is not required to do anything"
);
rule!(NO_CACHE_EFFECT, "SCOPE-NO-CACHE-EFFECT", "§4.1.1, §4.2, §4.5.2, §4.6, §4.7",
    "PREFETCH_*, PRI_RESP, RESUME, STALL_TERM, SYNC, DPTI_* and IMPLEMENTATION DEFINED commands are required to remove no TLB, configuration or ATC entries");
// ---- Configuration (§4.3) ----
rule!(CFGI_SSEC, "SCOPE-CFGI-SSEC", "§4.3, §4.1.6",
    "CFGI_* from the Secure queue target Secure (SSec==1) or Non-secure (SSec==0) structures; NS and Realm queues only their own");
rule!(
    CFGI_STE,
    "SCOPE-CFGI-STE",
    "§4.3.1",
    "CFGI_STE must remove the STE for (Security, SID) and the CDs/L1CDs cached through that SID"
);
rule!(
    CFGI_STE_L1,
    "SCOPE-CFGI-STE-L1STD",
    "§4.3.1",
    "CFGI_STE with Leaf==0 must also remove the L1STD walked to the STE; with Leaf==1 it may stay"
);
rule!(CFGI_STE_RANGE, "SCOPE-CFGI-STE-RANGE", "§4.3.2",
    "CFGI_STE_RANGE removes STEs, L1STDs and CDs/L1CDs of the aligned 2^(Range+1) SIDs; SID[Range:0] is ignored");
rule!(CFGI_ALL, "SCOPE-CFGI-ALL", "§4.3.6",
    "CFGI_ALL (STE_RANGE with Range==31) removes all configuration of the selected Security state, VMS included");
rule!(
    CFGI_CD,
    "SCOPE-CFGI-CD",
    "§4.3.3",
    "CFGI_CD must remove the CD at index SSID reached through SID"
);
rule!(
    CFGI_CD_L1,
    "SCOPE-CFGI-CD-L1CD",
    "§4.3.3",
    "CFGI_CD with Leaf==0 must also remove the L1CD covering SSID; with Leaf==1 it may stay"
);
rule!(
    CFGI_CD_ALL,
    "SCOPE-CFGI-CD-ALL",
    "§4.3.4",
    "CFGI_CD_ALL must remove every CD and L1CD cached for SID"
);
rule!(CFGI_VMS_PIDM, "SCOPE-CFGI-VMS-PIDM", "§4.3.5",
    "CFGI_VMS_PIDM must remove VMS PARTID_MAP information for VMID (VMID treated as in TLBI commands)");
// ---- ATC (§4.5.1) ----
rule!(ATC_INV, "SCOPE-ATC-INV", "§4.5.1",
    "ATC_INV must remove ATC entries of SID (and SSID when SSV==1) intersecting the aligned 4096*2^Size span; Size==52 is everything");
rule!(ATC_INV_GLOBAL, "SCOPE-ATC-INV-GLOBAL", "§4.5.1",
    "ATC_INV with SSV==1 and Global==1 must also remove global entries of every SubstreamID of SID in the span");
rule!(
    ATC_INV_SIZE,
    "SCOPE-ATC-INV-SIZE",
    "§4.5.1",
    "ATC_INV with Size>52 uses an UNKNOWN span (possibly none): nothing is required"
);

pub const ALL: &[&Rule] = &[
    &NH_ALL,
    &NH_ASID,
    &NH_VA,
    &NH_VA_GLOBAL,
    &NH_VAA,
    &NH_VMID_UNMATCHED,
    &VMW_WILDCARD,
    &EL3_ALL,
    &EL3_VA,
    &EL2_ALL,
    &EL2_VA,
    &EL2_VA_GLOBAL,
    &EL2_VAA,
    &EL2_ASID,
    &S_EL2_ALL,
    &S_EL2_VA,
    &S_EL2_VA_GLOBAL,
    &S_EL2_VAA,
    &S_EL2_ASID,
    &S12_VMALL,
    &S2_IPA,
    &S_S12_VMALL,
    &S_S2_IPA,
    &NSNH_ALL,
    &SNH_ALL,
    &LEAF_ONLY,
    &NONRANGE_CONTAINS,
    &TG_GRANULE,
    &TTL_LEVEL,
    &TTL_COMBINED,
    &TTL128,
    &RANGE_OVERLAP,
    &RANGE_NO_WRAP,
    &RANGE_TTB1_CLIP,
    &RANGE_UNPREDICTABLE,
    &RANGE_TTL128_MISALIGNED,
    &RANGE_RESERVED,
    &NARROW_ID,
    &OUT_OF_RANGE,
    &RES0_AS_ZERO,
    &ILLEGAL,
    &IGNORED,
    &NO_CACHE_EFFECT,
    &CFGI_SSEC,
    &CFGI_STE,
    &CFGI_STE_L1,
    &CFGI_STE_RANGE,
    &CFGI_ALL,
    &CFGI_CD,
    &CFGI_CD_L1,
    &CFGI_CD_ALL,
    &CFGI_VMS_PIDM,
    &ATC_INV,
    &ATC_INV_GLOBAL,
    &ATC_INV_SIZE,
];
