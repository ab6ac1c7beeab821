//! Tags of possibly-cached entries: what the model records for every entry an implementation may
//! hold, so that an invalidation's required scope can be decided per entry (digest §2.2; spec
//! §3.17 table, §16.2). The caches' contents are not modelled here, only their tags.

use crate::granule::Granule;
use serde::Serialize;

/// Security state of a stream or structure (§3.10, §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Security {
    NonSecure,
    Secure,
    Realm,
}

/// The translation regime an entry was inserted for (§3.17, STE.STRW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum StreamWorld {
    NsEl1,
    NsEl2,
    NsEl2E2h,
    SEl1,
    SEl2,
    SEl2E2h,
    El3,
    RealmEl1,
    RealmEl2,
    RealmEl2E2h,
}

impl StreamWorld {
    pub const ALL: [StreamWorld; 10] = [
        StreamWorld::NsEl1,
        StreamWorld::NsEl2,
        StreamWorld::NsEl2E2h,
        StreamWorld::SEl1,
        StreamWorld::SEl2,
        StreamWorld::SEl2E2h,
        StreamWorld::El3,
        StreamWorld::RealmEl1,
        StreamWorld::RealmEl2,
        StreamWorld::RealmEl2E2h,
    ];

    /// One bit per world, for O(1) set membership.
    #[inline]
    pub const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    pub const fn security(self) -> Security {
        use StreamWorld::*;
        match self {
            NsEl1 | NsEl2 | NsEl2E2h => Security::NonSecure,
            SEl1 | SEl2 | SEl2E2h | El3 => Security::Secure,
            RealmEl1 | RealmEl2 | RealmEl2E2h => Security::Realm,
        }
    }

    /// Regimes with two VA ranges (TTB0 and TTB1): EL1 and EL2-E2H (§3.17.5).
    pub const fn has_two_va_ranges(self) -> bool {
        use StreamWorld::*;
        matches!(
            self,
            NsEl1 | NsEl2E2h | SEl1 | SEl2E2h | RealmEl1 | RealmEl2E2h
        )
    }
}

/// Which translation stages an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum EntryStage {
    /// Stage-1-only VA entries.
    S1,
    /// Stage-2-only IPA entries.
    S2,
    /// Combined S1+S2 VA entries (nested configurations).
    Combined,
}

impl EntryStage {
    #[inline]
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A TLB leaf entry (page or block descriptor) or a walk-cache entry (table descriptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum EntryKind {
    Leaf,
    Table,
}

/// The tag of one possibly-cached TLB or walk-cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TlbTag {
    pub world: StreamWorld,
    pub stage: EntryStage,
    pub kind: EntryKind,
    /// 0 when the entry carries no VMID tag (§3.17: S2P == 0, EL2, EL3, Secure without SEL2).
    pub vmid: u16,
    /// Meaningful only for non-global entries of ASID-tagged regimes.
    pub asid: u16,
    /// nG == 0 (§3.17.1).
    pub global: bool,
    /// Matching ignores ASET (§4.4); kept because lookups depend on it.
    pub aset: bool,
    pub granule: Granule,
    /// Lookup level the descriptor was read from.
    pub level: u8,
    /// Inserted from a 128-bit descriptor (VMSAv9-128) regime.
    pub d128: bool,
    /// Input address (VA or IPA) of the first byte covered.
    pub base: u64,
    /// Bytes of input address covered (a page/block, or a table descriptor's next-level span).
    pub size: u64,
    /// For Secure stage 2 entries: the IPA space (§4.4.3.3 NS parameter).
    pub ipa_space_ns: bool,
}

impl TlbTag {
    /// Exclusive end of the input range (u128: an entry may end exactly at 2^64).
    #[inline]
    pub fn end(&self) -> u128 {
        u128::from(self.base) + u128::from(self.size)
    }

    #[inline]
    pub fn contains(&self, addr: u64) -> bool {
        self.base <= addr && u128::from(addr) < self.end()
    }
}

/// The tag of one possibly-cached configuration structure (§16.2, digest §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum CfgTag {
    Ste {
        sec: Security,
        sid: u32,
    },
    /// A level-1 stream table descriptor covering `sid_count` StreamIDs from `sid_first`.
    L1Std {
        sec: Security,
        sid_first: u32,
        sid_count: u64,
    },
    /// A CD cached per {Security, StreamID, SubstreamID} (§4.3.3).
    Cd {
        sec: Security,
        sid: u32,
        ssid: u32,
    },
    L1Cd {
        sec: Security,
        sid: u32,
        ssid_first: u32,
        ssid_count: u64,
    },
    /// VMS / PARTID_MAP information indexed by VMID (§4.3.5).
    VmsPidm {
        sec: Security,
        vmid: u16,
    },
}

impl CfgTag {
    pub const fn sec(&self) -> Security {
        match *self {
            CfgTag::Ste { sec, .. }
            | CfgTag::L1Std { sec, .. }
            | CfgTag::Cd { sec, .. }
            | CfgTag::L1Cd { sec, .. }
            | CfgTag::VmsPidm { sec, .. } => sec,
        }
    }
}

/// The tag of one ATC entry in an endpoint (§3.9, §4.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AtcTag {
    pub sid: u32,
    /// The PASID the translation was requested with, if any.
    pub ssid: Option<u32>,
    /// A global (all-PASID) translation.
    pub global: bool,
    pub base: u64,
    pub size: u64,
}

impl AtcTag {
    #[inline]
    pub fn end(&self) -> u128 {
        u128::from(self.base) + u128::from(self.size)
    }
}
