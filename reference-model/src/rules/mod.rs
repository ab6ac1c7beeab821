//! The registry of rules: every requirement the model checks has an id, the spec section that
//! states it, and a one-line summary. Verdicts name rules; docs/rules.md is generated from this
//! registry (`smmu-conform rules --markdown`), never written by hand.
//!
//! Rules are grouped by what they govern, one submodule each, so that the model's modules can cite
//! them as constants (`rules::legality::RESERVED_OPCODE`).

use serde::Serialize;

pub mod forward;
pub mod legality;
pub mod oracle;
pub mod queue;
pub mod scope;

/// One architectural requirement.
#[derive(Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    /// Stable identifier, e.g. "ILL-RESERVED-OPCODE". Never reused for another meaning.
    pub id: &'static str,
    /// Where the spec states it, e.g. "§4.1.1".
    pub section: &'static str,
    /// One line a kernel developer can act on.
    pub summary: &'static str,
}

/// Every rule group, in the order docs list them.
pub fn groups() -> Vec<(&'static str, &'static [&'static Rule])> {
    vec![
        (
            "Command legality (CERROR_ILL) and RES0 fields",
            legality::ALL,
        ),
        ("Command queue processing, errors and CMD_SYNC", queue::ALL),
        ("Required invalidation scope", scope::ALL),
        ("Observations after invalidation", oracle::ALL),
        (
            "Forwarding guest commands to a host SMMU (nested virtualisation)",
            forward::ALL,
        ),
    ]
}

/// Every registered rule.
pub fn all() -> impl Iterator<Item = &'static Rule> {
    groups().into_iter().flat_map(|(_, rs)| rs.iter().copied())
}

/// Look a rule up by id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    all().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_sections_cited() {
        let mut seen = std::collections::HashSet::new();
        for r in super::all() {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(r.section.starts_with('§'), "{} cites no section", r.id);
            assert!(!r.summary.is_empty());
        }
    }
}
