//! A test-only device: the model itself, answering every probe with the fresh walk and running
//! the queue as `QueueState::process` does. It is conformant by construction (never stale, which
//! is always allowed), so it checks cases and the runner's plumbing before the emulator exists.
//! Never used by the CLI.
#![allow(dead_code)]

use smmu_conform::backend::{Capabilities, Device, HarnessError, QueueObservation};
use smmu_conform::layout::{CMDQ_BASE, CMDQ_LOG2SIZE};
use smmu_model::command::{Opcode, RawCommand};
use smmu_model::oracle::enumerate::Outcome;
use smmu_model::oracle::{Model, Observation, Probe};
use smmu_model::profile::{IdRegs, Profile, Queue};
use smmu_model::queue::process::{CmdAction, QueueMemory};
use smmu_model::queue::{ProfileClassifier, QueueState, Res0Policy};
use smmu_model::structures::StreamTableConfig;

pub struct ModelDevice {
    pub profile: Profile,
    model: Model,
    q: QueueState,
    qmem: QueueMemory,
    /// A bug to inject: answer every probe with this PA.
    pub wrong_pa: Option<u64>,
}

impl ModelDevice {
    pub fn new(profile: &str) -> ModelDevice {
        let p = Profile::named(profile).expect("named profile");
        let mut d = ModelDevice {
            profile: p,
            model: Model::new(p),
            q: QueueState::configured(&p, CMDQ_BASE, CMDQ_LOG2SIZE),
            qmem: QueueMemory::new(),
            wrong_pa: None,
        };
        d.reset().unwrap();
        d
    }

    fn process(&mut self) -> QueueObservation {
        let classifier = ProfileClassifier {
            profile: self.profile,
            queue: Queue::NonSecure,
        };
        let mut consumed = Vec::new();
        let res = self.q.process(
            &self.qmem,
            Res0Policy::Ill,
            &classifier,
            &mut |_, cmd, _| {
                consumed.push(cmd);
                CmdAction::Continue
            },
        );
        for c in consumed {
            if c.opcode() == Opcode::Sync {
                self.model.complete_sync();
            } else {
                let _ = self.model.consume(c);
            }
        }
        let o = res.observation(&self.q);
        QueueObservation {
            cons: o.cons,
            gerror: o.gerror,
            msi_writes: o.msi_writes.iter().map(|w| (w.addr, w.data)).collect(),
            wired_irqs: o.wired_irqs,
            sev_events: 0,
        }
    }
}

impl Device for ModelDevice {
    fn name(&self) -> String {
        "model-device (test only)".into()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
    fn id_regs(&mut self) -> Result<IdRegs, HarnessError> {
        Ok(self.profile.regs)
    }
    fn reset(&mut self) -> Result<(), HarnessError> {
        self.model = Model::new(self.profile);
        self.q = QueueState::configured(&self.profile, CMDQ_BASE, CMDQ_LOG2SIZE);
        self.q.write_cr0_cmdqen(true);
        self.qmem = QueueMemory::new();
        Ok(())
    }
    fn write(&mut self, pa: u64, value: u64) -> Result<(), HarnessError> {
        self.model.write_u64(pa, value);
        Ok(())
    }
    fn stream_table(&mut self, base: u64, cfg: u32) -> Result<(), HarnessError> {
        self.model
            .set_stream_table(StreamTableConfig::from_regs(base, cfg));
        Ok(())
    }
    fn enable(&mut self, on: bool) -> Result<(), HarnessError> {
        self.model.set_smmuen(on);
        Ok(())
    }
    fn submit(&mut self, commands: &[RawCommand]) -> Result<QueueObservation, HarnessError> {
        let prod = self.qmem.submit(&self.q, commands);
        self.q.write_prod(prod);
        Ok(self.process())
    }
    fn acknowledge(
        &mut self,
        replace: Option<RawCommand>,
        drop: bool,
    ) -> Result<QueueObservation, HarnessError> {
        if let Some(c) = replace {
            self.qmem.write_entry(&self.q, self.q.cons_rd(), c);
        }
        if drop {
            let c = self.q.cons_rd();
            self.q.write_prod(c);
        }
        let g = (self.q.read_gerrorn() & !1) | (self.q.read_gerror() & 1);
        self.q.write_gerrorn(g);
        Ok(self.process())
    }
    fn probe(&mut self, probe: &Probe) -> Result<Observation, HarnessError> {
        if let Some(pa) = self.wrong_pa {
            return Ok(Observation::Translated { pa });
        }
        Ok(match self.model.fresh(probe) {
            Some(Outcome::Translated { pa }) => Observation::Translated { pa },
            Some(Outcome::Fault { event }) => Observation::Fault { event: Some(event) },
            Some(Outcome::Abort) | None => Observation::Abort,
        })
    }
}
