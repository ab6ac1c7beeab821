//! Two devices driven in lockstep: every call goes to both and their answers must be equal.
//!
//! This is how the protocol is shown to be transparent: the harness drives the in-process
//! backend and the same backend behind `exec:` together, and any difference in any answer
//! (ID registers, queue observation, probe outcome, error) stops the run with a harness error
//! naming the call. Since the harness and the model are deterministic functions of the trace and
//! of these answers, equal answers mean equal verdicts.

use crate::backend::{Capabilities, Device, HarnessError, QueueObservation, StepOutcome};
use crate::trace::Step;
use smmu_model::command::RawCommand;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::profile::IdRegs;
use std::fmt::Debug;

pub struct Lockstep {
    pub a: Box<dyn Device>,
    pub b: Box<dyn Device>,
    /// Calls compared so far.
    pub calls: u64,
}

impl Lockstep {
    pub fn new(a: Box<dyn Device>, b: Box<dyn Device>) -> Lockstep {
        Lockstep { a, b, calls: 0 }
    }

    fn same<T: PartialEq + Debug>(
        &mut self,
        during: &str,
        ra: Result<T, HarnessError>,
        rb: Result<T, HarnessError>,
    ) -> Result<T, HarnessError> {
        self.calls += 1;
        match (ra, rb) {
            (Ok(x), Ok(y)) if x == y => Ok(x),
            (Err(e), Err(_)) => Err(e),
            (x, y) => Err(HarnessError::Protocol {
                backend: format!("lockstep({}, {})", self.a.name(), self.b.name()),
                during: during.to_string(),
                detail: format!("call {}: {x:?} != {y:?}", self.calls),
            }),
        }
    }
}

impl Lockstep {
    fn same_capabilities(&self, during: &str) -> Result<(), HarnessError> {
        if self.a.capabilities() == self.b.capabilities() {
            return Ok(());
        }
        Err(HarnessError::Protocol {
            backend: self.name(),
            during: during.into(),
            detail: format!(
                "capabilities differ: {:?} != {:?}",
                self.a.capabilities(),
                self.b.capabilities()
            ),
        })
    }
}

impl Device for Lockstep {
    fn name(&self) -> String {
        format!("lockstep({}, {})", self.a.name(), self.b.name())
    }
    fn capabilities(&self) -> Capabilities {
        // Differing capabilities would make the harness ask different things: refuse them at
        // the first call that depends on them (the probe), by answering the first's here.
        self.a.capabilities()
    }
    fn id_regs(&mut self) -> Result<IdRegs, HarnessError> {
        let (x, y) = (self.a.id_regs(), self.b.id_regs());
        self.same("id_regs", x, y)
    }
    fn reset(&mut self) -> Result<(), HarnessError> {
        let (x, y) = (self.a.reset(), self.b.reset());
        self.same("reset", x, y)
    }
    fn write(&mut self, pa: u64, value: u64) -> Result<(), HarnessError> {
        let (x, y) = (self.a.write(pa, value), self.b.write(pa, value));
        self.same("write", x, y)
    }
    fn stream_table(&mut self, base: u64, cfg: u32) -> Result<(), HarnessError> {
        let (x, y) = (
            self.a.stream_table(base, cfg),
            self.b.stream_table(base, cfg),
        );
        self.same("stream_table", x, y)
    }
    fn enable(&mut self, on: bool) -> Result<(), HarnessError> {
        let (x, y) = (self.a.enable(on), self.b.enable(on));
        self.same("enable", x, y)
    }
    fn submit(&mut self, commands: &[RawCommand]) -> Result<QueueObservation, HarnessError> {
        let (x, y) = (self.a.submit(commands), self.b.submit(commands));
        self.same("submit", x, y)
    }
    fn acknowledge(
        &mut self,
        replace: Option<RawCommand>,
        drop: bool,
    ) -> Result<QueueObservation, HarnessError> {
        let (x, y) = (
            self.a.acknowledge(replace, drop),
            self.b.acknowledge(replace, drop),
        );
        self.same("acknowledge", x, y)
    }
    fn probe(&mut self, probe: &Probe) -> Result<Observation, HarnessError> {
        self.same_capabilities("probe")?;
        let (x, y) = (self.a.probe(probe), self.b.probe(probe));
        self.same("probe", x, y)
    }
    /// The run goes to each side's own `run_steps` (an `exec:` device sends it as one `steps`
    /// request), and every step's outcome is compared, one answer each.
    fn run_steps(&mut self, steps: &[Step]) -> Result<Vec<StepOutcome>, HarnessError> {
        if steps.iter().any(|s| matches!(s, Step::Probe { .. })) {
            self.same_capabilities("run_steps")?;
        }
        let (x, y) = (self.a.run_steps(steps), self.b.run_steps(steps));
        match (x, y) {
            (Ok(x), Ok(y)) => {
                if let Some(i) = (0..x.len().max(y.len())).find(|&i| x.get(i) != y.get(i)) {
                    self.calls += i as u64 + 1;
                    return Err(HarnessError::Protocol {
                        backend: self.name(),
                        during: "run_steps".into(),
                        detail: format!(
                            "call {} (step {i} of {}): {:?} != {:?}",
                            self.calls,
                            steps.len(),
                            x.get(i),
                            y.get(i)
                        ),
                    });
                }
                self.calls += x.len() as u64;
                Ok(x)
            }
            (x, y) => self.same("run_steps", x, y),
        }
    }
}
