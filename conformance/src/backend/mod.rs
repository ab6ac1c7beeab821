//! The adapter traits through which every implementation under test is reached.
//!
//! Two kinds:
//! - [`Device`]: an SMMU device backend. The harness programs memory and registers, submits
//!   commands, and observes translations with DMA-style probes, CONS, GERROR, events and
//!   CMD_SYNC MSI writes. QEMU's SMMUv3, the reference emulator and its mutants are devices.
//! - [`Forwarder`]: an invalidation forwarder (a VMM or a kernel that takes a guest's commands
//!   and issues host commands). The harness gives it guest commands and a virtual-SMMU context and
//!   reads back the host commands it issued and the status it returned.
//!
//! A backend declares what it can observe ([`Capabilities`]) and answers
//! [`smmu_model::oracle::Observation::CannotObserve`] rather than guess. Every method may fail
//! with a [`HarnessError`]: that is the harness not being able to do its job (crash, timeout,
//! protocol nonsense), always kept apart from a violation of the architecture.

pub mod exec;
pub mod kernel;
pub mod qemu;
pub mod select;

use crate::trace::Step;
use serde::{Deserialize, Serialize};
use smmu_model::command::RawCommand;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::profile::IdRegs;

/// What a device backend can observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Probes report the PA reached.
    pub translation: bool,
    /// Probes that write can be made (and so permission faults seen).
    pub write_probes: bool,
    /// Fault probes report the event number from the event queue.
    pub fault_events: bool,
    /// CONS.RD and CONS.ERR can be read.
    pub cons: bool,
    /// GERROR/GERRORN can be read.
    pub gerror: bool,
    /// CMD_SYNC MSI writes are seen.
    pub msi: bool,
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        translation: true,
        write_probes: true,
        fault_events: true,
        cons: true,
        gerror: true,
        msi: true,
    };
}

/// What the queue registers read once a submission or an acknowledgement settled (§3.5, §7.1).
/// Raw register values: the model's queue oracle interprets them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueObservation {
    /// SMMU_CMDQ_CONS as read (RD index and wrap, ERR[30:24]).
    pub cons: u32,
    /// SMMU_GERROR as read.
    pub gerror: u32,
    /// CMD_SYNC MSI writes seen since the trigger, in order: (address, data).
    pub msi_writes: Vec<(u64, u32)>,
    /// Wired CMD_SYNC interrupts seen since the trigger (may coalesce).
    pub wired_irqs: u32,
    /// SEV wake-up events from CMD_SYNC CS=SIG_SEV seen since the trigger (may coalesce).
    pub sev_events: u32,
}

/// The harness could not do its job: never a verdict about the architecture.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum HarnessError {
    #[error("backend {backend} timed out after {ms} ms during {during}")]
    Timeout {
        backend: String,
        ms: u64,
        during: String,
    },
    #[error("backend {backend} crashed during {during}: {detail}")]
    Crashed {
        backend: String,
        during: String,
        detail: String,
    },
    #[error("backend {backend} broke the protocol during {during}: {detail}")]
    Protocol {
        backend: String,
        during: String,
        detail: String,
    },
    #[error("backend {backend} cannot {what}")]
    Unsupported { backend: String, what: String },
    #[error("{0}")]
    Setup(String),
}

/// An SMMU device under test.
pub trait Device {
    /// A name for reports, e.g. "emulator(tlb=64,walk-cache=on,res0=ill)" or "qemu 10.0.2".
    fn name(&self) -> String;
    fn capabilities(&self) -> Capabilities;
    /// The raw ID registers: the model's profile is derived from these, never assumed.
    fn id_regs(&mut self) -> Result<IdRegs, HarnessError>;
    /// Back to the reset state: SMMUEN = 0, empty caches, empty memory, the Command queue at
    /// [`crate::layout::CMDQ_BASE`] with [`crate::layout::CMDQ_LOG2SIZE`], PROD = CONS = 0,
    /// CMDQEN = 1, no error active.
    fn reset(&mut self) -> Result<(), HarnessError>;
    /// Write a 64-bit little-endian word of memory.
    fn write(&mut self, pa: u64, value: u64) -> Result<(), HarnessError>;
    fn stream_table(&mut self, base: u64, cfg: u32) -> Result<(), HarnessError>;
    fn enable(&mut self, on: bool) -> Result<(), HarnessError>;
    /// Put `commands` on the queue, write PROD once, wait until consumption settles.
    fn submit(&mut self, commands: &[RawCommand]) -> Result<QueueObservation, HarnessError>;
    /// Acknowledge an active CMDQ_ERR (§7.1): optionally replace the command at CONS, or move
    /// PROD back to CONS, then toggle GERRORN; report where consumption settles.
    fn acknowledge(
        &mut self,
        replace: Option<RawCommand>,
        drop: bool,
    ) -> Result<QueueObservation, HarnessError>;
    fn probe(&mut self, probe: &Probe) -> Result<Observation, HarnessError>;

    /// Several probes with no step between them, in order. A backend that can batch them (QEMU:
    /// one pipelined qtest exchange) overrides this; the default makes them one at a time.
    fn probe_many(&mut self, probes: &[Probe]) -> Result<Vec<Observation>, HarnessError> {
        probes.iter().map(|p| self.probe(p)).collect()
    }

    /// Several trace steps in order, with what each reported: the same as calling the method of
    /// each step in turn (the default does exactly that), but a backend may pipeline them. The
    /// harness hands over the runs of steps between acknowledgements (it must judge the queue
    /// before it acknowledges), so a device is never asked to do anything the trace does not
    /// say; it may run steps whose results the harness then ignores (those after a queue
    /// violation), which is harmless before the next reset.
    fn run_steps(&mut self, steps: &[Step]) -> Result<Vec<StepOutcome>, HarnessError> {
        one_by_one(self, steps)
    }
}

/// [`Device::run_steps`] the plain way: each step's method in turn (the default, and what a
/// backend that batches falls back to when it cannot).
pub fn one_by_one<D: Device + ?Sized>(
    d: &mut D,
    steps: &[Step],
) -> Result<Vec<StepOutcome>, HarnessError> {
    let mut out = Vec::with_capacity(steps.len());
    for s in steps {
        out.push(match s {
            Step::Write { pa, value } => {
                d.write(*pa, *value)?;
                StepOutcome::Done
            }
            Step::StreamTable { base, cfg } => {
                d.stream_table(*base, *cfg)?;
                StepOutcome::Done
            }
            Step::Enable { on } => {
                d.enable(*on)?;
                StepOutcome::Done
            }
            Step::Submit { commands } => StepOutcome::Queue(d.submit(commands)?),
            Step::Acknowledge { replace, drop } => {
                StepOutcome::Queue(d.acknowledge(*replace, *drop)?)
            }
            Step::Probe {
                sid,
                ssid,
                addr,
                write,
            } => StepOutcome::Probe(d.probe(&Probe {
                sid: *sid,
                ssid: *ssid,
                addr: *addr,
                write: *write,
            })?),
        });
    }
    Ok(out)
}

/// What one step of [`Device::run_steps`] reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// A write or register step: nothing to report.
    Done,
    /// A submission or an acknowledgement.
    Queue(QueueObservation),
    Probe(Observation),
}

/// The mapping a VMM sets up for one virtual SMMU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualSmmu {
    /// The guest's view: the ID registers the virtual SMMU advertises.
    pub guest: IdRegs,
    /// The host SMMU's ID registers.
    pub host: IdRegs,
    /// The host VMID the guest's stage-1 context runs under.
    pub host_vmid: u16,
    /// Virtual StreamID to physical StreamID.
    pub sids: Vec<(u32, u32)>,
}

/// What a forwarder did with one batch of guest commands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardResult {
    /// Host commands issued, in order (including any host CMD_SYNC).
    pub host_commands: Vec<RawCommand>,
    /// The error the forwarder reported, with the index of the guest command it blames.
    pub error: Option<(usize, String)>,
    /// Guest entries reported handled (the interface's entry_num on return).
    pub handled: usize,
}

/// An invalidation forwarder under test (a VMM or a kernel path).
pub trait Forwarder {
    fn name(&self) -> String;
    /// Set up the virtual SMMU; the forwarder may refuse a mapping it cannot honour
    /// ([`HarnessError::Unsupported`]). Returns the mapping it ended up with, which the oracle
    /// judges with: `vsmmu` itself for a forwarder that takes the mapping it is given, or what
    /// a forwarder that chooses for itself chose (the Linux kernel picks the host VMID, its
    /// devices have their own StreamIDs, its vSMMU's profile comes from IOMMU_GET_HW_INFO).
    fn setup(&mut self, vsmmu: &VirtualSmmu) -> Result<VirtualSmmu, HarnessError>;
    fn forward(&mut self, guest: &[RawCommand]) -> Result<ForwardResult, HarnessError>;
    /// What this forwarder can honour, once it knows (a kernel learns its vSMMU's profile from
    /// its first guest), for generators that aim at it (`forwarder::gen`). None for a
    /// forwarder that takes any mapping. Only inputs are drawn from it: the oracle still judges
    /// with the mapping [`Forwarder::setup`] returns.
    fn aim(&self) -> Option<Aim> {
        None
    }
}

/// The setups and commands a forwarder can honour ([`Forwarder::aim`]): fuzzing spends most of
/// its executions there instead of on inputs refused at setup or rejected at their first
/// command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aim {
    /// The guest profile it offers (its vSMMU's ID registers).
    pub guest: IdRegs,
    /// The host's ID registers.
    pub host: IdRegs,
    /// Devices a setup may map at most.
    pub devices: usize,
    /// Guest opcodes it forwards (a well-formed one, on a mapped vSID, is accepted); the others
    /// it rejects.
    pub accepts: Vec<smmu_model::command::Opcode>,
}
