//! Known divergences of a backend, so that fuzzing it reports only new findings.
//!
//! The source is the list the suite already uses: the backend's expectation file
//! (corpus/expectations/BACKEND.toml), each entry a triaged violation with a case, the rule it
//! breaks and a reason. A fuzzer finding rarely comes from that very case, so each entry becomes
//! a signature: its rule, and the other rules its case exercises (the case's `rules` line). A
//! finding matches an entry when it breaks the entry's rule and its message names one of those
//! other rules; when the case names no other rule, the rule alone decides. For example, entry
//! `ill-tlbi-el2-no-hyp` / QUEUE-CONS-STOPS-AT-ILL (case rules ILL-TLBI-EL2-NO-HYP) matches any
//! "CONS moved past ... must raise CERROR_ILL (ILL-TLBI-EL2-NO-HYP, ...)" finding, whatever the
//! other commands, but not one about ILL-SYNC-CS.
//!
//! An entry may instead give `fuzz_match`, text the finding's message must contain, when its
//! case's rules are too general to tell it apart (QEMU 7.2's missing Access flag fault breaks
//! NO-SUCH-TRANSLATION, the rule of every wrong translation; its entry matches "fault 0x12",
//! the F_ACCESS the model allowed instead).
//!
//! The cost of a signature this coarse: a second bug with the same rule and the same illegal
//! command class (or, for a rule-only entry, the same rule) is counted as the known one. Such
//! findings are still counted per entry, so a campaign shows how often each known divergence
//! fired.

use crate::suite::{self, Expectations, SuiteError};
use std::path::Path;

/// One known divergence, as a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownEntry {
    /// The expectation file's case.
    pub case: String,
    /// The rule a finding must break.
    pub rule: String,
    /// Rules the finding's message must name one of (empty: any message).
    pub names: Vec<&'static str>,
    /// Text the finding's message must contain (replaces `names` when given).
    pub contains: Option<String>,
    pub reason: String,
}

/// The known divergences of one backend (empty for a backend without an expectation file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub entries: Vec<KnownEntry>,
    /// Where they came from, for reports.
    pub source: Option<String>,
}

/// Whether `id` occurs in `text` as a whole rule id (not inside a longer one).
fn names(text: &str, id: &str) -> bool {
    let is_id = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(id).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + id.len()..].chars().next();
        !before.is_some_and(is_id) && !after.is_some_and(is_id)
    })
}

impl Known {
    /// Nothing is known: every finding is new.
    pub fn none() -> Known {
        Known::default()
    }

    /// The entries of the expectation file `path`, with the rules of each entry's case from
    /// the cases in `cases_dir`. A listed case that does not exist is an error: the file is stale.
    pub fn load(path: &Path, cases_dir: &Path) -> Result<Known, SuiteError> {
        let exp = Expectations::load(path)?;
        let cases = suite::load(&[], cases_dir)?;
        let mut entries = Vec::new();
        for d in exp.divergence {
            let case = cases
                .iter()
                .find(|l| l.case.name == d.case)
                .ok_or_else(|| SuiteError::Expectations {
                    path: suite::display_path(path),
                    message: format!("case '{}' is not in {}", d.case, cases_dir.display()),
                })?;
            let names = case
                .case
                .rules
                .iter()
                .map(|r| r.id)
                .filter(|&id| id != d.rule)
                .collect();
            entries.push(KnownEntry {
                case: d.case,
                rule: d.rule,
                names,
                contains: d.fuzz_match,
                reason: d.reason,
            });
        }
        Ok(Known {
            entries,
            source: Some(suite::display_path(path)),
        })
    }

    /// The known divergences of forwarder backend `spec` (its expectation file, with the rules
    /// of the forwarder cases, corpus/forwarder and its subdirectories).
    pub fn for_forwarder(spec: &str) -> Result<Known, SuiteError> {
        let path = suite::default_expectations(spec);
        if !path.exists() {
            return Ok(Known::none());
        }
        let exp = Expectations::load(&path)?;
        let dir = crate::forwarder::suite::default_cases_dir();
        let cases = crate::forwarder::suite::load(&[], &dir)?;
        let mut entries = Vec::new();
        for d in exp.divergence {
            let case = cases.iter().find(|c| c.name == d.case).ok_or_else(|| {
                SuiteError::Expectations {
                    path: suite::display_path(&path),
                    message: format!("case '{}' is not in {}", d.case, dir.display()),
                }
            })?;
            entries.push(KnownEntry {
                names: case
                    .rules
                    .iter()
                    .map(|r| r.id)
                    .filter(|&id| id != d.rule)
                    .collect(),
                case: d.case,
                rule: d.rule,
                contains: d.fuzz_match,
                reason: d.reason,
            });
        }
        Ok(Known {
            entries,
            source: Some(suite::display_path(&path)),
        })
    }

    /// The known divergences of backend `spec`: its default expectation file
    /// ([`suite::default_expectations`]) when there is one, otherwise none.
    pub fn for_backend(spec: &str) -> Result<Known, SuiteError> {
        let path = suite::default_expectations(spec);
        if path.exists() {
            Known::load(&path, &suite::default_cases_dir())
        } else {
            Ok(Known::none())
        }
    }

    /// The entry a finding (its rule id and message) matches, if any.
    pub fn matches(&self, rule: &str, message: &str) -> Option<&KnownEntry> {
        self.entries.iter().find(|e| {
            e.rule == rule
                && match &e.contains {
                    Some(text) => message.contains(text.as_str()),
                    None => e.names.is_empty() || e.names.iter().any(|&n| names(message, n)),
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_ids_only() {
        assert!(names(
            "must raise CERROR_ILL (ILL-TLBI-EL2-NO-HYP, §4.4.2.7)",
            "ILL-TLBI-EL2-NO-HYP"
        ));
        assert!(!names("(ILL-TLBI-EL3-RME, §x)", "ILL-TLBI-EL3"));
        assert!(!names("XILL-SYNC-CS", "ILL-SYNC-CS"));
        assert!(names("ILL-SYNC-CS", "ILL-SYNC-CS"));
    }

    #[test]
    fn qemu_expectations_become_signatures() {
        let k = Known::for_backend("qemu").unwrap();
        assert!(k.entries.len() >= 10, "{k:?}");
        let el2 = "CONS.RD moved past entry 0 (wrap 0) (CMD_TLBI_EL2_ALL (0x20)) to entry 2 (wrap 0), but it must raise CERROR_ILL (ILL-TLBI-EL2-NO-HYP, §4.4.2.7: ...) (QUEUE-CONS-STOPS-AT-ILL, §7.1)";
        assert_eq!(
            k.matches("QUEUE-CONS-STOPS-AT-ILL", el2)
                .map(|e| e.case.as_str()),
            Some("ill-tlbi-el2-no-hyp")
        );
        // The same rule for an illegal command class QEMU handles correctly: new.
        let other = el2.replace("ILL-TLBI-EL2-NO-HYP", "ILL-RESERVED-OPCODE");
        assert_eq!(k.matches("QUEUE-CONS-STOPS-AT-ILL", &other), None);
        // A rule-only entry.
        assert!(k.matches("SCOPE-NH-VA-GLOBAL", "anything").is_some());
        assert_eq!(k.matches("STALE-TLB-AFTER-SYNC", "anything"), None);
        // QEMU 7.2's missing Access flag fault: NO-SUCH-TRANSLATION, told apart by its text.
        let k72 = Known::for_backend("qemu-7.2").unwrap();
        let af = "IOVA 0x203000 (SID 0x9) reached PA 0x48000000, which no walk of current or still-cacheable structures gives. Allowed now: fault 0x12";
        assert_eq!(
            k72.matches("NO-SUCH-TRANSLATION", af)
                .map(|e| e.case.as_str()),
            Some("s1-access-flag-fault")
        );
        assert_eq!(
            k72.matches(
                "NO-SUCH-TRANSLATION",
                "reached PA 0x48000000. Allowed now: PA 0x48001000"
            ),
            None
        );
        // No expectation file: nothing known.
        assert_eq!(Known::for_backend("emulator").unwrap(), Known::none());
    }
}
