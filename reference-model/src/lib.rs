//! smmu-model: the golden reference model of Arm SMMUv3 command and invalidation semantics
//! (Arm IHI 0070). It answers "is this observation allowed by the architecture?" as a set, and
//! names the rule (with its section) that an observation breaks.
//!
//! Data flow: raw 16-byte commands are decoded by [`command`] and judged legal or not under a
//! [`profile`] by [`classify`]. Structures in memory ([`structures`]) are walked by [`walk`];
//! each command's required invalidation scope is computed by [`scope`] over entry tags ([`tlb`]);
//! the command queue is modelled by [`queue`]; and [`oracle`] answers, from the history of
//! memory writes and consumed commands, whether an observation is allowed.

pub mod classify;
pub mod command;
pub mod forward;
pub mod granule;
pub mod memory;
pub mod oracle;
pub mod profile;
pub mod queue;
pub mod range;
pub mod rules;
pub mod scope;
pub mod structures;
pub mod tables;
pub mod tlb;
pub mod walk;
