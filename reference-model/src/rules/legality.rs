//! Rules about which commands are legal (§4.1, §7.1). Filled in by the classification module.

use super::Rule;

pub const RESERVED_OPCODE: Rule = Rule {
    id: "ILL-RESERVED-OPCODE",
    section: "§4.1.1",
    summary: "A Reserved opcode must raise CERROR_ILL",
};

pub const ALL: &[&Rule] = &[&RESERVED_OPCODE];
