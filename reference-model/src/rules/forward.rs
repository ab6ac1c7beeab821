//! Rules about forwarding a guest's commands to a host SMMU (nested virtualisation: a VMM or a
//! kernel takes the commands a guest put on its virtual SMMU's queue and issues host commands).
//! Cited by `crate::forward`; docs/forwarder.md explains how each one is decided.
//!
//! The architecture says what each guest command requires of the *guest's* SMMU (§4.3, §4.4,
//! §4.5.1); a forwarder is conformant when the host commands it issues, judged by the host's own
//! profile, require at least that, translated into the host's tags, and nothing outside the
//! guest's VMID and StreamIDs.

use super::Rule;

macro_rules! rule {
    ($name:ident, $id:literal, $sec:literal, $sum:literal) => {
        pub const $name: Rule = Rule {
            id: $id,
            section: $sec,
            summary: $sum,
        };
    };
}

rule!(TRANSLATE, "FWD-TRANSLATE", "§3.17, §16.2.1",
    "Interpretation: a guest stage-1 entry is cached on the host as a combined S1+S2 (or S1) NS-EL1 entry tagged with the host VMID and the guest's ASID, address, granule, level and format; a guest CD/STE/ATC entry under the physical StreamID");
rule!(SCOPE, "FWD-SCOPE", "§4.3, §4.4, §4.5.1",
    "Every entry a handled guest command requires removed (guest profile), translated to host tags, must be required removed by a host command under the host profile (over-invalidation is fine)");
rule!(SYNC, "FWD-SYNC", "§4.7.3, §4.1.4",
    "The host commands covering a handled guest command must be followed by a host CMD_SYNC that completes (no CERROR_ILL before it) before the entry is reported handled");
rule!(CONFINE_VMID, "FWD-CONFINE-VMID", "§3.17, §4.4.2.1, §4.4.4.1",
    "Isolation: no host command may be required to remove TLB entries outside the guest's host VMID (other VMIDs, EL2, EL3, Secure or Realm entries)");
rule!(CONFINE_SID, "FWD-CONFINE-SID", "§4.3, §4.5.1, §4.7.1",
    "Isolation: no host command may remove configuration or ATC entries of, or act on, a StreamID not assigned to the guest (nor VMS information of another VMID)");
rule!(GUEST_ILLEGAL, "FWD-GUEST-ILLEGAL", "§4.1.3, §7.1",
    "A guest command that is ILLEGAL under the guest's profile must be reported as an error at its index (the VMM then raises CERROR_ILL), never reported handled");
rule!(SILENT_DROP, "FWD-SILENT-DROP", "§4.5.2, §4.7.1, §4.7.2",
    "A handled guest PRI_RESP, RESUME or STALL_TERM must reach the host with its StreamID translated: its effect is not a cache removal the scope check could see");
rule!(HANDLED_COUNT, "FWD-HANDLED-COUNT", "§7.1",
    "handled (the uAPI's entry_num on return, include/uapi/linux/iommufd.h) counts the entries handled: the index of the failing entry, which is not counted, or the batch length without an error");
rule!(HOST_ILLEGAL, "FWD-HOST-ILL", "§4.1.3, §7.1",
    "No host command may be ILLEGAL under the host's profile: a guest must never make the shared host queue raise CERROR_ILL");
rule!(HOST_RES0, "FWD-HOST-RES0", "§4.1.5",
    "No host command may have a RES0 bit set under the host's profile: the host may raise CERROR_ILL for it (§4.1.5 permits either), so the forwarder cannot rely on it being ignored");

pub const ALL: &[&Rule] = &[
    &TRANSLATE,
    &SCOPE,
    &SYNC,
    &CONFINE_VMID,
    &CONFINE_SID,
    &GUEST_ILLEGAL,
    &SILENT_DROP,
    &HANDLED_COUNT,
    &HOST_ILLEGAL,
    &HOST_RES0,
];
