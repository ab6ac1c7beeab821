//! Rules about Command queue processing, command errors and CMD_SYNC completion (§3.5, §4.1.2,
//! §4.7.3, §6.3.26-28, §7.1, §7.5). Checked by `crate::queue::oracle`.

use super::Rule;

pub const CONS_STOPS_AT_ILL: Rule = Rule {
    id: "QUEUE-CONS-STOPS-AT-ILL",
    section: "§7.1",
    summary: "Consumption stops at a command that raises CERROR_ILL: CONS.RD must not move past it",
};
pub const ABT_CONS_NOT_ADVANCED: Rule = Rule {
    id: "QUEUE-ABT-CONS-NOT-ADVANCED",
    section: "§7.1",
    summary: "An external abort on command fetch raises CERROR_ABT with CONS.RD left at the entry",
};
pub const NO_SPURIOUS_ERROR: Rule = Rule {
    id: "QUEUE-NO-SPURIOUS-ERROR",
    section: "§7.1",
    summary:
        "A command error is raised only at a command that can raise it (ILL, ABT or ATC_INV_SYNC)",
};
pub const ERR_CODE: Rule = Rule {
    id: "QUEUE-ERR-CODE",
    section: "§6.3.28",
    summary: "CMDQ_CONS.ERR holds the code of the error that stopped the queue",
};
pub const GERROR_TOGGLE: Rule = Rule {
    id: "QUEUE-GERROR-TOGGLE",
    section: "§7.1",
    summary: "A command error writes CONS.ERR and then toggles GERROR.CMDQ_ERR",
};
pub const GERROR_ONLY_WHEN_INACTIVE: Rule = Rule {
    id: "QUEUE-GERROR-ONLY-WHEN-INACTIVE",
    section: "§7.5",
    summary: "The SMMU toggles a GERROR bit only to activate an inactive error, never to clear one",
};
pub const ATC_INV_SYNC_AT_SYNC: Rule = Rule {
    id: "QUEUE-ATC-INV-SYNC-AT-SYNC",
    section: "§4.7.3",
    summary:
        "CERROR_ATC_INV_SYNC is raised only by a CMD_SYNC after an ATC_INV, which stays unconsumed",
};
pub const SYNC_SIGNAL_ONLY_CONSUMED: Rule = Rule {
    id: "QUEUE-SYNC-SIGNAL-ONLY-CONSUMED",
    section: "§4.7.3",
    summary: "A CMD_SYNC completion signal is sent only for a consumed SYNC; seeing it implies CONS shows it consumed",
};
pub const SYNC_MSI_WRITE: Rule = Rule {
    id: "QUEUE-SYNC-MSI-WRITE",
    section: "§4.7.3",
    summary: "A SIG_IRQ MSI writes MSIData to MSIAddress truncated to OAS, in SYNC order",
};
pub const SYNC_NO_UNREQUESTED_SIGNAL: Rule = Rule {
    id: "QUEUE-SYNC-NO-UNREQUESTED-SIGNAL",
    section: "§4.7.3",
    summary: "No MSI when CS != SIG_IRQ, MSIAddress == 0 or IDR0.MSI == 0; no SEV event when IDR0.SEV == 0",
};
pub const SYNC_SIGNAL_SENT: Rule = Rule {
    id: "QUEUE-SYNC-SIGNAL-SENT",
    section: "§4.7.3",
    summary: "A completed CMD_SYNC sends the completion signal its CS requests",
};
pub const MSI_CMDQ_ABT_ERR: Rule = Rule {
    id: "QUEUE-MSI-CMDQ-ABT-ERR",
    section: "§7.5",
    summary: "GERROR.MSI_CMDQ_ABT_ERR reports an aborted CMD_SYNC MSI, so it needs a SYNC MSI to have been sent",
};
pub const NO_PAST_PROD: Rule = Rule {
    id: "QUEUE-NO-PAST-PROD",
    section: "§4.1.2",
    summary: "The SMMU never consumes or executes commands at or beyond PROD.WR",
};
pub const WRAP_FLAG: Rule = Rule {
    id: "QUEUE-WRAP-FLAG",
    section: "§3.5.1",
    summary:
        "RD/WR carry a wrap flag at bit [QS]: equal indices with different wraps is a full queue",
};
pub const CONS_RD_RAZ: Rule = Rule {
    id: "QUEUE-CONS-RD-RAZ",
    section: "§6.3.28",
    summary: "CMDQ_CONS.RD bits above the wrap flag read as zero",
};
pub const STOPPED_WHILE_ERROR: Rule = Rule {
    id: "QUEUE-STOPPED-WHILE-ERROR",
    section: "§7.5",
    summary: "No command is consumed or executed while GERROR.CMDQ_ERR is active",
};
pub const STOPPED_WHILE_DISABLED: Rule = Rule {
    id: "QUEUE-STOPPED-WHILE-DISABLED",
    section: "§6.3.9.3",
    summary: "No command is fetched or consumed while CR0.CMDQEN == 0",
};
pub const CONS_REACHES_STOP: Rule = Rule {
    id: "QUEUE-CONS-REACHES-STOP",
    section: "§6.3.28",
    summary: "Within finite time CONS.RD reaches PROD.WR or the command that raised an error",
};
pub const RESTART_ON_ACK: Rule = Rule {
    id: "QUEUE-RESTART-ON-ACK",
    section: "§7.1",
    summary: "Acknowledging CMDQ_ERR through GERRORN restarts processing from CONS.RD without a PROD write",
};
pub const RES0_ILL_OR_IGNORE: Rule = Rule {
    id: "QUEUE-RES0-ILL-OR-IGNORE",
    section: "§4.1.5",
    summary: "A non-zero RES0 field gives CERROR_ILL or is ignored entirely, as the implementation's policy says",
};
pub const NO_EXECUTION_PAST_STOP: Rule = Rule {
    id: "QUEUE-NO-EXECUTION-PAST-STOP",
    section: "§7.1",
    summary: "Commands newer than the one that raised an error have no effect",
};

pub const ALL: &[&Rule] = &[
    &CONS_STOPS_AT_ILL,
    &ABT_CONS_NOT_ADVANCED,
    &NO_SPURIOUS_ERROR,
    &ERR_CODE,
    &GERROR_TOGGLE,
    &GERROR_ONLY_WHEN_INACTIVE,
    &ATC_INV_SYNC_AT_SYNC,
    &SYNC_SIGNAL_ONLY_CONSUMED,
    &SYNC_MSI_WRITE,
    &SYNC_NO_UNREQUESTED_SIGNAL,
    &SYNC_SIGNAL_SENT,
    &MSI_CMDQ_ABT_ERR,
    &NO_PAST_PROD,
    &WRAP_FLAG,
    &CONS_RD_RAZ,
    &STOPPED_WHILE_ERROR,
    &STOPPED_WHILE_DISABLED,
    &CONS_REACHES_STOP,
    &RESTART_ON_ACK,
    &RES0_ILL_OR_IGNORE,
    &NO_EXECUTION_PAST_STOP,
];
