//! The trace: the low-level steps every conformance case and every fuzz input reduces to, and
//! the form reproducers are printed in. A backend only ever sees these steps; the model sees the
//! same steps, so a verdict is always about exactly what the backend was given.

use serde::{Deserialize, Serialize};
use smmu_model::command::RawCommand;

/// One step of a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// A 64-bit write to memory (structures, page tables, anything). Little-endian.
    Write { pa: u64, value: u64 },
    /// Program STRTAB_BASE and STRTAB_BASE_CFG (§6.3.23, §6.3.24) while SMMUEN == 0 or as an
    /// Update.
    StreamTable { base: u64, cfg: u32 },
    /// CR0.SMMUEN (§6.3.9).
    Enable { on: bool },
    /// Append commands to the Command queue and write PROD once (§3.5); the backend reports
    /// where consumption stopped.
    Submit { commands: Vec<RawCommand> },
    /// Acknowledge an active command-queue error by toggling GERRORN.CMDQ_ERR (§7.1),
    /// optionally replacing the command at CONS first, or moving PROD back to CONS (`drop`).
    Acknowledge {
        replace: Option<RawCommand>,
        drop: bool,
    },
    /// A DMA-style access whose outcome is judged by the model.
    Probe {
        sid: u32,
        ssid: Option<u32>,
        addr: u64,
        write: bool,
    },
}

impl Step {
    pub fn write(pa: u64, value: u64) -> Step {
        Step::Write { pa, value }
    }
    pub fn submit(commands: impl IntoIterator<Item = RawCommand>) -> Step {
        Step::Submit {
            commands: commands.into_iter().collect(),
        }
    }
    pub fn probe(sid: u32, addr: u64) -> Step {
        Step::Probe {
            sid,
            ssid: None,
            addr,
            write: false,
        }
    }
}

/// A named trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub steps: Vec<Step>,
}
