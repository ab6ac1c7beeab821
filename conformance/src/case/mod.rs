//! Conformance cases: the line-oriented text format of `corpus/conformance/*.case`
//! (docs/case-format.md), its parser, and the compiler from a case to a [`crate::trace::Trace`].
//!
//! Everything that can be checked without a device is checked at parse or compile time (opcode
//! and field names, field widths, rule ids, stream and page names), so a bad case is reported as
//! `FILE:LINE: message` before any backend is touched.

pub mod compile;
pub mod parse;

pub use compile::{compile, Compiled, ExpectCheck};
pub use parse::{parse_cases, parse_cmd};

use smmu_model::command::RawCommand;
use smmu_model::granule::Granule;
use smmu_model::profile::Profile;
use smmu_model::rules::Rule;
use smmu_model::walk::Stage;
use std::fmt;

/// A problem in a case file, at a line: rendered `FILE:LINE: message` (one line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CaseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// One case of a case file.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    /// The file as given (for reports and reproducers).
    pub file: String,
    /// Line of the `case` header.
    pub line: usize,
    pub rules: Vec<&'static Rule>,
    pub doc: String,
    pub needs: Vec<Need>,
    /// Mutants the author means this case to kill (intent only: the kill matrix is computed).
    pub kills: Vec<String>,
    pub steps: Vec<Line>,
}

impl Case {
    /// `FILE#NAME`, the form `--case` takes.
    pub fn id(&self) -> String {
        format!("{}#{}", self.file, self.name)
    }
}

/// A step with the source line it came from, kept verbatim for reports.
#[derive(Clone, Debug)]
pub struct Line {
    pub line: usize,
    pub text: String,
    pub step: CaseStep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    S1,
    S2,
    Nested,
}

/// Where a mapping points: a named data page (allocated on first use) or a raw address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Page(String),
    Addr(u64),
}

/// Leaf attributes a `map` line can set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapAttrs {
    pub ng: bool,
    pub ro: bool,
    pub xn: bool,
    pub noaf: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteEdit {
    Abort,
    Bypass,
    Invalid,
    /// Back to what the `stream` line wrote.
    Restore,
}

/// One expected outcome of a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectTok {
    Page(String),
    Addr(u64),
    /// Any fault, or a fault with this event number.
    Fault(Option<u8>),
    Abort,
}

#[derive(Clone, Debug)]
pub enum CaseStep {
    Stream {
        name: String,
        sid: u32,
        kind: StreamKind,
        asid: u16,
        vmid: u16,
        granule: Granule,
        /// `el2`: STE.STRW = 0b10 (EL2 or EL2-E2H StreamWorld, §5.2), stage-1 streams only.
        el2: bool,
    },
    Map {
        stream: String,
        stage: Stage,
        va: u64,
        target: Target,
        level: u8,
        attrs: MapAttrs,
        /// `remap`: the address must already be mapped at that level.
        remap: bool,
    },
    Unmap {
        stream: String,
        stage: Stage,
        va: u64,
        level: u8,
    },
    Write {
        pa: u64,
        value: u64,
    },
    Enable(bool),
    /// Rewrite the stream's CD: a new ASID and/or another stream's stage-1 tables.
    Cd {
        stream: String,
        asid: Option<u16>,
        tables: Option<String>,
        /// `fresh`: build the new CD at a never-used address and switch the STE's
        /// S1ContextPtr to it with one 64-bit write of STE word 0 (§3.21.3); otherwise the CD
        /// is rewritten in place, one 64-bit write per word that changes.
        fresh: bool,
    },
    Ste {
        stream: String,
        edit: SteEdit,
    },
    /// A command, repeated `count` times (`cmd ... *N`).
    Cmd(RawCommand, usize),
    Submit,
    Ack {
        replace: Option<RawCommand>,
        drop: bool,
    },
    Probe {
        stream: String,
        va: u64,
        write: bool,
    },
    Expect(Vec<ExpectTok>),
}

/// A feature (or its absence, `no-NAME`) a case needs from the device under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub feature: Feature,
    pub absent: bool,
}

macro_rules! features {
    ($($v:ident $name:literal $why:literal;)*) => {
        /// Features a case can need, named as in `needs` lines.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Feature { $($v),* }
        impl Feature {
            pub const ALL: &'static [Feature] = &[$(Feature::$v),*];
            pub fn name(self) -> &'static str {
                match self { $(Feature::$v => $name),* }
            }
            /// Where the feature comes from, for skip reasons.
            pub fn source(self) -> &'static str {
                match self { $(Feature::$v => $why),* }
            }
        }
    };
}

features! {
    S1 "s1" "SMMU_IDR0.S1P";
    S2 "s2" "SMMU_IDR0.S2P";
    Nested "nested" "SMMU_IDR0.S1P and S2P";
    Hyp "hyp" "SMMU_IDR0.Hyp";
    Ril "ril" "SMMU_IDR3.RIL";
    Ds "ds" "SMMU_IDR5.DS";
    Msi "msi" "SMMU_IDR0.MSI";
    Sev "sev" "SMMU_IDR0.SEV";
    Asid16 "asid16" "SMMU_IDR0.ASID16";
    Vmid16 "vmid16" "SMMU_IDR0.VMID16";
    Ats "ats" "SMMU_IDR0.ATS";
    Pri "pri" "SMMU_IDR0.PRI";
    Mpam "mpam" "SMMU_IDR3.MPAM";
    Dpt "dpt" "SMMU_IDR3.DPT";
    Vmw "vmw" "SMMU_IDR0.VMW";
    Stall "stall" "SMMU_IDR0.STALL_MODEL != 0b01";
    Gran16k "gran16k" "SMMU_IDR5.GRAN16K";
    Gran64k "gran64k" "SMMU_IDR5.GRAN64K";
    D128 "d128" "SMMU_IDR5.D128";
    Rme "rme" "SMMU_IDR0.RME_IMPL";
    SecureQueue "secure-queue" "a Secure Command queue driven by the harness (it drives only the Non-secure queue)";
    RealmQueue "realm-queue" "a Realm Command queue driven by the harness (it drives only the Non-secure queue)";
    FetchAbort "fetch-abort" "a way to make a command fetch abort (no Device method for it)";
    CmdqDisable "cmdq-disable" "a way to clear CR0.CMDQEN (no Device method for it)";
    Cr0Vmw "cr0-vmw" "a way to set CR0.VMW (no Device method for it)";
    El2Streams "el2-streams" "EL2 StreamWorld streams (the case builder makes only EL1 streams)";
    St2Level "st-2level" "two-level stream tables (the case builder makes only linear tables)";
    CdTables "cd-tables" "CD tables with SubstreamIDs (the case builder makes one CD per stream)";
    AtcProbes "atc-probes" "ATS translation requests from the harness (no Device method for them)";
    Probes "probes" "a backend that observes translations";
    WriteProbes "write-probes" "a backend that can make write probes";
}

impl Feature {
    pub fn from_name(s: &str) -> Option<Feature> {
        Feature::ALL.iter().copied().find(|f| f.name() == s)
    }

    /// Whether the device has the feature. Queues other than Non-secure are never available:
    /// the harness has no way to drive them, so those cases always skip, saying why.
    pub fn present(self, p: &Profile, caps: &crate::backend::Capabilities) -> bool {
        match self {
            Feature::S1 => p.s1p,
            Feature::S2 => p.s2p,
            Feature::Nested => p.s1p && p.s2p,
            Feature::Hyp => p.hyp,
            Feature::Ril => p.ril,
            Feature::Ds => p.ds,
            Feature::Msi => p.msi,
            Feature::Sev => p.sev,
            Feature::Asid16 => p.asid16,
            Feature::Vmid16 => p.vmid16,
            Feature::Ats => p.ats,
            Feature::Pri => p.pri,
            Feature::Mpam => p.mpam,
            Feature::Dpt => p.dpt,
            Feature::Vmw => p.vmw,
            Feature::Stall => p.stall_model != 0b01,
            Feature::Gran16k => p.gran16k,
            Feature::Gran64k => p.gran64k,
            Feature::D128 => p.d128,
            Feature::Rme => p.rme_impl,
            Feature::SecureQueue
            | Feature::RealmQueue
            | Feature::FetchAbort
            | Feature::CmdqDisable
            | Feature::Cr0Vmw
            | Feature::El2Streams
            | Feature::St2Level
            | Feature::CdTables
            | Feature::AtcProbes => false,
            Feature::Probes => caps.translation,
            Feature::WriteProbes => caps.translation && caps.write_probes,
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.absent {
            write!(f, "no-{}", self.feature.name())
        } else {
            f.write_str(self.feature.name())
        }
    }
}

impl Need {
    /// `None` when met, otherwise why the case is skipped.
    pub fn unmet(&self, p: &Profile, caps: &crate::backend::Capabilities) -> Option<String> {
        let has = self.feature.present(p, caps);
        if has != self.absent {
            None
        } else if self.absent {
            Some(format!(
                "needs {self}: the device has {}",
                self.feature.source()
            ))
        } else {
            Some(format!(
                "needs {self}: the device lacks {}",
                self.feature.source()
            ))
        }
    }
}

/// Every reason the device does not meet the case's needs (empty: run it).
pub fn unmet_needs(case: &Case, p: &Profile, caps: &crate::backend::Capabilities) -> Vec<String> {
    case.needs.iter().filter_map(|n| n.unmet(p, caps)).collect()
}
