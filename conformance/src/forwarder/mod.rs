//! Forwarders under test (issue #7): the reference forwarder and its mutants, the forwarder case
//! format (`corpus/forwarder/*.case`), the forwarder suite, generators and fuzzing campaign.
//! Every verdict comes from the model's forwarding oracle (`smmu_model::forward`, docs/forwarder.md).
//!
//! Backends by spec: `forwarder` (the reference), `fwd-mutant:NAME` (`smmu-conform mutants --list
//! --forwarders`), `exec-forwarder:COMMAND` (any program speaking docs/protocol.md), `kernel` or
//! `kernel:DIR` (the Linux iommufd path under QEMU, [`crate::backend::kernel`]). Other
//! forwarders implement [`crate::backend::Forwarder`] and are added to [`open_forwarder`].

pub mod case;
pub mod fuzz;
pub mod gen;
pub mod one;
pub mod reference;
pub mod suite;

use crate::backend::{Forwarder, HarnessError, VirtualSmmu};
pub use reference::{FwdMutant, ReferenceForwarder};
use smmu_model::forward::Mapping;

/// The reference forwarder's backend spec.
pub const REFERENCE: &str = "forwarder";
/// The prefix of forwarder mutant specs.
pub const MUTANT_PREFIX: &str = "fwd-mutant:";

/// Whether a backend spec names a forwarder (run with the forwarder suite, not the device one).
pub fn is_forwarder_spec(spec: &str) -> bool {
    let s = spec.trim();
    s == REFERENCE
        || s.starts_with(MUTANT_PREFIX)
        || crate::backend::kernel::is_kernel_spec(s)
        || crate::backend::exec::ExecSpec::parse(s).is_some_and(|p| {
            p.is_ok_and(|p| p.role == crate::backend::exec::protocol::Role::Forwarder)
        })
}

/// Open a forwarder by spec.
pub fn open_forwarder(spec: &str) -> Result<Box<dyn Forwarder>, HarnessError> {
    let s = spec.trim();
    // `exec-forwarder:COMMAND`: any program speaking docs/protocol.md.
    if let Some(f) = crate::backend::exec::open_forwarder(s) {
        return f;
    }
    if s == REFERENCE {
        return Ok(Box::new(ReferenceForwarder::new(None)));
    }
    if crate::backend::kernel::is_kernel_spec(s) {
        return Ok(Box::new(crate::backend::kernel::KernelForwarder::open(s)?));
    }
    if let Some(name) = s.strip_prefix(MUTANT_PREFIX) {
        return FwdMutant::from_name(name)
            .map(|m| Box::new(ReferenceForwarder::new(Some(m))) as Box<dyn Forwarder>)
            .ok_or_else(|| {
                HarnessError::Setup(format!(
                    "unknown forwarder mutant '{name}' (`smmu-conform mutants --list --forwarders` lists them)"
                ))
            });
    }
    Err(HarnessError::Setup(format!(
        "unknown forwarder backend '{s}' (expected {REFERENCE}, {MUTANT_PREFIX}NAME, kernel[:DIR] or exec-forwarder:COMMAND)"
    )))
}

/// Every forwarder mutant: (name, description).
pub fn list_mutants() -> Vec<(&'static str, &'static str)> {
    FwdMutant::ALL
        .iter()
        .map(|m| (m.name(), m.description()))
        .collect()
}

/// The oracle's view of a virtual SMMU.
pub fn mapping(vs: &VirtualSmmu) -> Mapping {
    Mapping::new(vs.guest, vs.host, vs.host_vmid, &vs.sids)
}
