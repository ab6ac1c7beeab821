//! Classification of a command under a feature profile (§4.1.3, §4.1.5, §4.1.7, §7.1).
//! API fixed by the lead; body written by the classification work.

use crate::command::RawCommand;
use crate::profile::{Profile, Queue};
use crate::rules::Rule;
use serde::Serialize;

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
    /// effect or an effect with an UNPREDICTABLE parameter value.
    pub const OUT_OF_RANGE: u16 = 1 << 0;
    /// The invalidated range is UNPREDICTABLE (misaligned for the TTL hint) (§4.4.1.1).
    pub const UNPREDICTABLE_RANGE: u16 = 1 << 1;
    /// TTL128 set with a misaligned address: nothing is required to be invalidated (§4.4.1.1).
    pub const NOTHING_REQUIRED: u16 = 1 << 2;
    /// The upper byte of an 8-bit ASID/VMID is non-zero: "not required to affect TLB entries"
    /// (§4.4).
    pub const NARROW_ID_UPPER_SET: u16 = 1 << 3;
    /// SCALE above 39 is treated as 39 (§4.4.1.1).
    pub const SCALE_CLAMPED: u16 = 1 << 4;
    /// The command is IGNORED in this configuration (e.g. ATS not present elsewhere).
    pub const IGNORED: u16 = 1 << 5;
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

/// Classify `raw` as submitted to `queue` of an SMMU with `profile`. Total and allocation-free.
pub fn classify(_profile: &Profile, _queue: Queue, raw: RawCommand) -> Classification {
    let _ = raw;
    Classification {
        verdict: Verdict::Legal,
        res0_set: 0,
        flags: Flags::default(),
    }
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

/// The RES0 fields of `raw` that are set, named (for reports; not on the hot path).
pub fn res0_fields(_profile: &Profile, _queue: Queue, _raw: RawCommand) -> Vec<Res0Field> {
    Vec::new()
}
