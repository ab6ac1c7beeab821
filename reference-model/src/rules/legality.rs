//! Rules about which commands are legal (§4.1, §7.1). Every mandatory CERROR_ILL condition the
//! classifier checks has a rule here; `classify::Verdict::Illegal` names one of them.
//!
//! Sections are those of IHI 0070 (see the digest §1.1 opcode map and "Extra legality rules").

use super::Rule;

/// §4.1.1, §4.1.3, §7.1: every opcode the table does not assign (incl. 0x0B-0x0F, see
/// docs/spec-notes.md).
pub const RESERVED_OPCODE: Rule = Rule {
    id: "ILL-RESERVED-OPCODE",
    section: "§4.1.1",
    summary: "A Reserved opcode must raise CERROR_ILL",
};

/// §4.1.1, §7.1: 0x80-0x8F are IMPLEMENTATION DEFINED. The model knows no IMPDEF command, so it
/// treats them as unknown opcodes (CERROR_ILL, as QEMU does) and sets `Flags::IMPDEF` to say the
/// verdict is a modelling choice, not an architectural requirement.
pub const IMPDEF_OPCODE: Rule = Rule {
    id: "ILL-IMPDEF-OPCODE",
    section: "§4.1.1",
    summary: "IMPLEMENTATION DEFINED opcode (0x80-0x8F): modelled as unknown (CERROR_ILL); any outcome is IMPDEF",
};

/// §4.3.3, §4.3.4: CFGI_CD and CFGI_CD_ALL need stage 1.
pub const CFGI_CD_NO_S1P: Rule = Rule {
    id: "ILL-CFGI-CD-NO-S1P",
    section: "§4.3.3",
    summary:
        "CMD_CFGI_CD/CMD_CFGI_CD_ALL raise CERROR_ILL when SMMU_IDR0.S1P == 0 (§4.3.3, §4.3.4)",
};

/// §4.3.5: CFGI_VMS_PIDM needs MPAM.
pub const VMS_PIDM_NO_MPAM: Rule = Rule {
    id: "ILL-VMS-PIDM-NO-MPAM",
    section: "§4.3.5",
    summary: "CMD_CFGI_VMS_PIDM raises CERROR_ILL when SMMU_IDR3.MPAM == 0",
};

/// §4.4.2 (table): stage-1 TLBIs (NH_*, EL2_*, EL3_*) on a stage-2-only SMMU.
pub const TLBI_S1_NO_S1P: Rule = Rule {
    id: "ILL-TLBI-S1-NO-S1P",
    section: "§4.4.2",
    summary: "Stage 1 TLBI (NH_*, EL3_*) raises CERROR_ILL when SMMU_IDR0.S1P == 0",
};

/// §4.4.2.7-§4.4.2.10: EL2 TLBIs need Hyp (Hyp is RES0 unless S1P == S2P == 1, §6.3.1).
pub const EL2_NO_HYP: Rule = Rule {
    id: "ILL-TLBI-EL2-NO-HYP",
    section: "§4.4.2.7",
    summary: "CMD_TLBI_EL2_* raise CERROR_ILL when SMMU_IDR0.Hyp == 0 (§4.4.2.7-§4.4.2.10)",
};

/// §4.4.2.5, §4.4.2.6: EL3 TLBIs are Secure-queue only.
pub const EL3_NOT_SECURE_QUEUE: Rule = Rule {
    id: "ILL-TLBI-EL3-QUEUE",
    section: "§4.4.2.5",
    summary: "CMD_TLBI_EL3_* raise CERROR_ILL on the Non-secure and Realm Command queues (§4.4.2.5, §4.4.2.6)",
};

/// §4.4.2.5, §4.4.2.6: EL3 TLBIs are ILLEGAL when RME is implemented.
pub const EL3_RME: Rule = Rule {
    id: "ILL-TLBI-EL3-RME",
    section: "§4.4.2.5",
    summary: "CMD_TLBI_EL3_* raise CERROR_ILL when SMMU_IDR0.RME_IMPL == 1 (§4.4.2.5, §4.4.2.6)",
};

/// §4.4.3.1, §4.4.3.2: stage 2 TLBIs need stage 2.
pub const S2_NO_S2P: Rule = Rule {
    id: "ILL-TLBI-S2-NO-S2P",
    section: "§4.4.3.1",
    summary: "CMD_TLBI_S2_IPA/CMD_TLBI_S12_VMALL raise CERROR_ILL when SMMU_IDR0.S2P == 0 (§4.4.3.1, §4.4.3.2)",
};

/// §4.4.2.11-14, §4.4.3.3/4, §4.4.4.2: Secure-only TLBIs on another queue.
pub const SECURE_ONLY_QUEUE: Rule = Rule {
    id: "ILL-TLBI-SECURE-ONLY-QUEUE",
    section: "§4.4.2.11",
    summary: "CMD_TLBI_S_EL2_*, S_S12_VMALL, S_S2_IPA, SNH_ALL raise CERROR_ILL off the Secure Command queue (§4.4.2.11-14, §4.4.3.3/4, §4.4.4.2)",
};

/// §4.4.2.11-14, §4.4.3.3/4, §4.4.4.2: Secure-only TLBIs need Secure EL2 / Secure stage 2.
pub const SECURE_NO_SEL2: Rule = Rule {
    id: "ILL-TLBI-SECURE-NO-SEL2",
    section: "§4.4.2.11",
    summary: "CMD_TLBI_S_EL2_*, S_S12_VMALL, S_S2_IPA, SNH_ALL raise CERROR_ILL when SMMU_S_IDR1.SEL2 == 0 (§4.4.2.11-14, §4.4.3.3/4, §4.4.4.2)",
};

/// §4.5.1: ATC_INV without ATS for the queue's interface.
pub const ATC_INV_NO_ATS: Rule = Rule {
    id: "ILL-ATC-INV-NO-ATS",
    section: "§4.5.1",
    summary: "CMD_ATC_INV raises CERROR_ILL when IDR0.ATS == 0 (NS/Secure queue) or R_IDR0.ATS == 0 (Realm queue)",
};

/// §4.5.1: ATC_INV on the Secure queue with SAMS.
pub const ATC_INV_SAMS: Rule = Rule {
    id: "ILL-ATC-INV-SAMS",
    section: "§4.5.1",
    summary: "CMD_ATC_INV raises CERROR_ILL on the Secure Command queue when SMMU_S_IDR3.SAMS == 1",
};

/// §4.5.2: PRI_RESP without PRI.
pub const PRI_RESP_NO_PRI: Rule = Rule {
    id: "ILL-PRI-RESP-NO-PRI",
    section: "§4.5.2",
    summary: "CMD_PRI_RESP raises CERROR_ILL when SMMU_IDR0.PRI == 0",
};

/// §4.5.2: PRI_RESP on the Secure queue with SAMS.
pub const PRI_RESP_SAMS: Rule = Rule {
    id: "ILL-PRI-RESP-SAMS",
    section: "§4.5.2",
    summary:
        "CMD_PRI_RESP raises CERROR_ILL on the Secure Command queue when SMMU_S_IDR3.SAMS == 1",
};

/// §4.5.2: Resp == 0b11 is Reserved: ILLEGAL.
pub const PRI_RESP_RESERVED_RESP: Rule = Rule {
    id: "ILL-PRI-RESP-RESP",
    section: "§4.5.2",
    summary: "CMD_PRI_RESP with Resp == 0b11 (Reserved) raises CERROR_ILL",
};

/// §4.7.1, §4.7.2: RESUME/STALL_TERM with STALL_MODEL == 0b01 (stall not supported).
pub const STALL_NOT_SUPPORTED: Rule = Rule {
    id: "ILL-STALL-MODEL",
    section: "§4.7.1",
    summary: "CMD_RESUME/CMD_STALL_TERM raise CERROR_ILL when the effective STALL_MODEL == 0b01 (§4.7.1, §4.7.2)",
};

/// §4.7.1, §4.7.2, §10.7: RESUME/STALL_TERM on the Realm queue.
pub const STALL_REALM_QUEUE: Rule = Rule {
    id: "ILL-STALL-REALM-QUEUE",
    section: "§4.7.1",
    summary:
        "CMD_RESUME/CMD_STALL_TERM raise CERROR_ILL on the Realm Command queue (§4.7.1, §4.7.2)",
};

/// §4.7.3: CMD_SYNC CS == 0b11 is Reserved.
pub const SYNC_CS_RESERVED: Rule = Rule {
    id: "ILL-SYNC-CS",
    section: "§4.7.3",
    summary: "CMD_SYNC with CS == 0b11 (Reserved) raises CERROR_ILL",
};

/// §4.4.1.1: TG != 0 with NUM == 0, SCALE == 0, TTL == 0b00 (TTL after the 16KB/DS==0 rule).
pub const TLBI_RANGE_RESERVED: Rule = Rule {
    id: "ILL-TLBI-RANGE-RESERVED",
    section: "§4.4.1.1",
    summary: "Range TLBI with TG != 0, NUM == 0, SCALE == 0 and (effective) TTL == 0b00 raises CERROR_ILL",
};

/// §4.6.1, §4.6.2: DPTI without DPT for the queue's interface.
pub const DPTI_NO_DPT: Rule = Rule {
    id: "ILL-DPTI-NO-DPT",
    section: "§4.6.1",
    summary: "CMD_DPTI_ALL/CMD_DPTI_PA raise CERROR_ILL when IDR3.DPT == 0 (NS/Secure queue) or R_IDR3.DPT == 0 (Realm queue) (§4.6.1, §4.6.2)",
};

/// §4.6.1, §4.6.2, §6.3.55: DPTI on the Secure queue with SAMS.
pub const DPTI_SAMS: Rule = Rule {
    id: "ILL-DPTI-SAMS",
    section: "§4.6.1",
    summary: "CMD_DPTI_ALL/CMD_DPTI_PA raise CERROR_ILL on the Secure Command queue when SMMU_S_IDR3.SAMS == 1",
};

/// §4.1.6: SSec == 1 on the Non-secure queue, whether or not Secure state exists.
pub const SSEC_NON_SECURE_QUEUE: Rule = Rule {
    id: "ILL-SSEC-NS-QUEUE",
    section: "§4.1.6",
    summary: "SSec == 1 on the Non-secure Command queue raises CERROR_ILL (even where the command would be IGNORED, §4.1.3)",
};

/// §4.1.6, §10.7: SSec == 1 on the Realm queue.
pub const SSEC_REALM_QUEUE: Rule = Rule {
    id: "ILL-SSEC-REALM-QUEUE",
    section: "§4.1.6",
    summary: "SSec == 1 on the Realm Command queue raises CERROR_ILL",
};

pub const ALL: &[&Rule] = &[
    &RESERVED_OPCODE,
    &IMPDEF_OPCODE,
    &CFGI_CD_NO_S1P,
    &VMS_PIDM_NO_MPAM,
    &TLBI_S1_NO_S1P,
    &EL2_NO_HYP,
    &EL3_NOT_SECURE_QUEUE,
    &EL3_RME,
    &S2_NO_S2P,
    &SECURE_ONLY_QUEUE,
    &SECURE_NO_SEL2,
    &ATC_INV_NO_ATS,
    &ATC_INV_SAMS,
    &PRI_RESP_NO_PRI,
    &PRI_RESP_SAMS,
    &PRI_RESP_RESERVED_RESP,
    &STALL_NOT_SUPPORTED,
    &STALL_REALM_QUEUE,
    &SYNC_CS_RESERVED,
    &TLBI_RANGE_RESERVED,
    &DPTI_NO_DPT,
    &DPTI_SAMS,
    &SSEC_NON_SECURE_QUEUE,
    &SSEC_REALM_QUEUE,
];
