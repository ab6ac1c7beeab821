//! Rules about what may be observed after invalidation (§3.21, §4.7.3, §16.2).

use super::Rule;

pub const STALE_TLB_AFTER_SYNC: Rule = Rule {
    id: "STALE-TLB-AFTER-SYNC",
    section: "§4.7.3",
    summary: "After a CMD_SYNC completes, no access may use a TLB or walk-cache entry an earlier invalidation was required to remove",
};

pub const STALE_CFG_AFTER_SYNC: Rule = Rule {
    id: "STALE-CFG-AFTER-SYNC",
    section: "§4.3.8",
    summary: "After a CMD_SYNC completes, no access may use a configuration structure an earlier CFGI was required to remove",
};

pub const NO_SUCH_TRANSLATION: Rule = Rule {
    id: "NO-SUCH-TRANSLATION",
    section: "§3.21.1",
    summary: "A translation must come from the current structures or from entries that may still be cached",
};

pub const SPURIOUS_FAULT: Rule = Rule {
    id: "SPURIOUS-FAULT",
    section: "§3.21.1",
    summary: "Only valid translations are cached: an access that every permitted walk translates must not fault",
};

pub const ALL: &[&Rule] = &[
    &STALE_TLB_AFTER_SYNC,
    &STALE_CFG_AFTER_SYNC,
    &NO_SUCH_TRANSLATION,
    &SPURIOUS_FAULT,
];
