//! Mutants: the reference emulator with one realistic bug each, so that the suite can prove it
//! detects that class of bug (docs/mutants.md). Each mutant is a single, commented deviation at
//! the point in the emulator where that bug would live; grep for `Mutant::` to find it.

use serde::Serialize;

/// What part of an SMMU a mutant breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum MutantClass {
    /// TLB invalidation removes less than its required scope (§4.4).
    TlbScope,
    /// Range invalidation arithmetic (§4.4.1.1).
    Range,
    /// Configuration-cache invalidation removes less than required (§4.3).
    ConfigScope,
    /// Cache lookups match on the wrong tags (§3.17).
    Lookup,
    /// CMD_SYNC completion and its signal (§4.7.3).
    Sync,
    /// Command queue mechanics: errors, indices, acknowledgement (§3.5, §7.1).
    Queue,
}

impl MutantClass {
    pub fn name(self) -> &'static str {
        match self {
            MutantClass::TlbScope => "tlb-scope",
            MutantClass::Range => "range",
            MutantClass::ConfigScope => "config-scope",
            MutantClass::Lookup => "lookup",
            MutantClass::Sync => "sync",
            MutantClass::Queue => "queue",
        }
    }
}

macro_rules! mutants {
    ($( $(#[$m:meta])* $v:ident = $name:literal, $class:ident, $desc:literal; )*) => {
        /// One injected bug (docs/mutants.md lists them with the real bug each one stands for).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum Mutant {
            $( $(#[$m])* $v, )*
        }

        impl Mutant {
            pub const ALL: &'static [Mutant] = &[$(Mutant::$v),*];

            /// The mutant's fixed name, as `mutant:NAME` selects it.
            pub fn name(self) -> &'static str {
                match self { $(Mutant::$v => $name,)* }
            }
            pub fn class(self) -> MutantClass {
                match self { $(Mutant::$v => MutantClass::$class,)* }
            }
            /// One line: what the bug is.
            pub fn description(self) -> &'static str {
                match self { $(Mutant::$v => $desc,)* }
            }
            pub fn from_name(name: &str) -> Option<Mutant> {
                Mutant::ALL.iter().copied().find(|m| m.name() == name)
            }
        }
    };
}

mutants! {
    /// Non-range (TG=0) address TLBIs compare the address with the entry's base instead of
    /// testing containment, so an address inside a block misses it (§4.4 note).
    VaExactBase = "tlbi-va-exact-base", TlbScope,
        "non-range TLBI by address only removes entries whose base equals the address (misses blocks hit mid-block)";
    /// NH_VAA checks ASID 0 instead of all ASIDs (QEMU 6.0 "any ASID" bug).
    VaaAsAsidZero = "tlbi-vaa-as-asid-zero", TlbScope,
        "CMD_TLBI_NH_VAA is handled as NH_VA with ASID 0 instead of every ASID";
    /// NH_VA skips global (nG=0) entries (§4.4.2.4 requires them).
    NhVaSkipsGlobal = "tlbi-nh-va-skips-global", TlbScope,
        "CMD_TLBI_NH_VA removes only non-global entries with the ASID, leaving global ones";
    /// NH_ALL forgets combined stage 1+2 entries of nested streams.
    NhAllSkipsCombined = "tlbi-nh-all-skips-combined", TlbScope,
        "CMD_TLBI_NH_ALL removes stage-1-only entries but not combined (nested) ones";
    /// NH_ALL matches VMID 0 rather than its VMID field (the S2P==0 wildcard applied always).
    NhAllVmidZero = "tlbi-nh-all-vmid-zero", TlbScope,
        "CMD_TLBI_NH_ALL ignores its VMID field and invalidates VMID 0";
    /// S12_VMALL leaves stage-2-only entries.
    S12VmallSkipsS2 = "tlbi-s12-vmall-skips-s2", TlbScope,
        "CMD_TLBI_S12_VMALL removes stage-1 and combined entries but leaves stage-2-only entries";
    /// S2_IPA only removes level-3 (page) entries, not blocks.
    S2IpaPagesOnly = "tlbi-s2-ipa-pages-only", TlbScope,
        "CMD_TLBI_S2_IPA removes only level-3 page entries, leaving stage-2 block entries";
    /// NSNH_ALL only removes stage-1 entries.
    NsnhAllSkipsS2 = "tlbi-nsnh-all-skips-s2", TlbScope,
        "CMD_TLBI_NSNH_ALL removes stage-1 entries but leaves stage-2-only entries";
    /// EL2_ALL is not handled (Xen vSMMU-style "unhandled command" with no error).
    El2AllIgnored = "tlbi-el2-all-ignored", TlbScope,
        "CMD_TLBI_EL2_ALL is consumed but does nothing";
    /// Leaf=0 does not touch the walk cache (Linux 6.5-era TTL/leaf confusion).
    Leaf0KeepsWalkCache = "tlbi-leaf0-keeps-walk-cache", TlbScope,
        "address TLBIs with Leaf=0 leave cached table descriptors (walk cache) in place";
    /// The TTL hint is honoured one level off: TTL=3 removes level-2 entries only.
    TtlOffByOne = "tlbi-ttl-off-by-one", Range,
        "range TLBIs honour TTL but one level too shallow (TTL=0b11 removes only level-2 entries)";
    /// Range length NUM*2^SCALE granules instead of (NUM+1) (QEMU 2020 range mask bug).
    RangeNumNotPlusOne = "range-num-not-plus-one", Range,
        "range TLBIs cover NUM x 2^SCALE granules instead of (NUM+1) x 2^SCALE";
    /// SCALE is ignored.
    RangeIgnoresScale = "range-ignores-scale", Range,
        "range TLBIs ignore SCALE and cover (NUM+1) granules";
    /// Only the first granule of a range is invalidated (an implementation without RIL logic).
    RangeFirstPageOnly = "range-first-page-only", Range,
        "range TLBIs invalidate only the first granule of the range";
    /// CFGI_STE leaves the CDs cached through that StreamID.
    CfgiSteKeepsCd = "cfgi-ste-keeps-cd", ConfigScope,
        "CMD_CFGI_STE invalidates the STE but not the CDs cached through its StreamID";
    /// CFGI_STE_RANGE starts at SID instead of aligning down (QEMU 6.0: low Range+1 bits not
    /// ignored).
    CfgiRangeUnaligned = "cfgi-ste-range-unaligned", ConfigScope,
        "CMD_CFGI_STE_RANGE covers [SID, SID+2^(Range+1)) instead of the aligned block";
    /// CFGI_ALL (Range=31) computes an end StreamID that overflows and covers nothing (QEMU 6.0).
    CfgiAllOverflow = "cfgi-all-overflow", ConfigScope,
        "CMD_CFGI_ALL (STE_RANGE with Range=31) overflows its end StreamID and invalidates nothing";
    /// CFGI_CD is not handled.
    CfgiCdIgnored = "cfgi-cd-ignored", ConfigScope,
        "CMD_CFGI_CD is consumed but does nothing";
    /// CFGI_CD_ALL is not handled.
    CfgiCdAllIgnored = "cfgi-cd-all-ignored", ConfigScope,
        "CMD_CFGI_CD_ALL is consumed but does nothing";
    /// TLB lookups ignore the ASID tag.
    TlbIgnoresAsid = "tlb-ignores-asid", Lookup,
        "TLB lookups do not compare the ASID, so one address space hits another's entries";
    /// TLB lookups ignore the VMID tag.
    TlbIgnoresVmid = "tlb-ignores-vmid", Lookup,
        "TLB lookups do not compare the VMID, so one VM hits another's entries";
    /// Invalidations take effect one CMD_SYNC late (completion reported too early, §4.7.3).
    SyncEarly = "sync-completes-early", Sync,
        "CMD_SYNC completes before the invalidations consumed ahead of it (they apply at the next SYNC)";
    /// CMD_SYNC with CS=SIG_IRQ sends no MSI.
    SyncNoMsi = "sync-no-msi", Sync,
        "CMD_SYNC with CS=SIG_IRQ and a non-zero MSIAddress completes without the MSI write";
    /// Illegal commands are consumed silently (openvmm: CS=0b11 ignored; Xen: unhandled opcodes).
    IllegalConsumed = "illegal-consumed", Queue,
        "ILLEGAL commands are consumed as no-ops instead of stopping with CERROR_ILL";
    /// CONS is reported without its wrap flag.
    ConsWrapLost = "cons-wrap-lost", Queue,
        "SMMU_CMDQ_CONS reads without the wrap flag, so a wrapped queue looks un-wrapped";
    /// Acknowledging CMDQ_ERR does not restart consumption.
    AckNoResume = "ack-no-resume", Queue,
        "toggling GERRORN.CMDQ_ERR does not restart command consumption";
    /// TTL == 0 (level unknown) is taken as the last level: only level-3 leaf entries go, so
    /// level-1/2 blocks survive (Linux 2023, the seed thread: removing a level-1 table with the
    /// level-3 granule's TTL).
    TtlAssumed = "ttl-assumed", Range,
        "address TLBIs with TTL=0 (level unknown) remove only level-3 leaf entries, as if TTL named the last level";
    /// TLBI_NSNH_ALL is not handled at all.
    NsnhAllDropped = "nsnh-all-dropped", TlbScope,
        "CMD_TLBI_NSNH_ALL is consumed but does nothing";
    /// SCALE is read as 5 bits even when IDR5.DS == 1 makes it 6 bits (§4.4.1.1).
    Scale5BitDs = "scale-5bit-ds", Range,
        "range TLBIs read SCALE as 5 bits [24:20] even when IDR5.DS == 1 (SCALE >= 32 wraps)";
    /// Non-range (TG=0) address TLBIs are dropped (seed thread: TG=0 must not be dropped).
    Tg0Noop = "tg0-noop", TlbScope,
        "address TLBIs with TG=0 (non-range) remove nothing";
    /// Leaf=1 inverted: only walk-cache entries go, the leaf entries stay.
    LeafSkipsLeaf = "leaf-skips-leaf", TlbScope,
        "address TLBIs with Leaf=1 remove walk-cache entries and leave the leaf entries";
    /// The command's ASID is truncated to 8 bits before matching 16-bit ASIDs.
    AsidUpperByteDropped = "asid-upper-byte-dropped", Lookup,
        "TLBI commands keep only ASID[7:0], so 16-bit ASIDs above 0xff are never matched";
    /// An ILLEGAL command is skipped: CONS moves past it and processing goes on, with no error.
    ConsPastIll = "cons-past-ill", Queue,
        "an ILLEGAL command is skipped: CONS advances past it, processing continues, no CERROR_ILL";
    /// CONS.ERR is written and consumption stops, but GERROR.CMDQ_ERR is not toggled.
    GerrorNotToggled = "gerror-not-toggled", Queue,
        "on a command error CONS.ERR is written and CONS stops, but GERROR.CMDQ_ERR is not toggled";
    /// TG != 0 with NUM == SCALE == TTL == 0 is run as one granule (Linux 6.6 built it; HiSilicon
    /// hardware rejected it with CERROR_ILL).
    ReservedRangeAccepted = "reserved-range-accepted", Queue,
        "the Reserved range encoding TG!=0, NUM=SCALE=TTL=0 is accepted as one granule instead of CERROR_ILL";
    /// CMD_SYNC with CS == 0b11 completes (as SIG_IRQ) instead of CERROR_ILL (openvmm audit).
    Cs3Accepted = "cs3-accepted", Queue,
        "CMD_SYNC with the Reserved CS=0b11 completes like SIG_IRQ instead of raising CERROR_ILL";
}

impl std::fmt::Display for Mutant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for m in Mutant::ALL {
            assert!(seen.insert(m.name()), "duplicate {}", m.name());
            assert_eq!(Mutant::from_name(m.name()), Some(*m));
            assert!(!m.description().is_empty());
        }
        assert_eq!(Mutant::from_name("nope"), None);
    }
}
