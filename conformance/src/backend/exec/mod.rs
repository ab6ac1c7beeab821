//! `exec:` backends: any program, in any language, that speaks the out-of-process protocol
//! (docs/protocol.md) on its stdin and stdout is a [`Device`] or a [`Forwarder`].
//!
//! `--backend exec:'COMMAND ARGS'` starts COMMAND (split like a POSIX shell splits words, no
//! shell involved), says hello, and turns every trait call into one request line and every
//! response line back into the trait's result. Options go between `exec` and the colon:
//! `exec,timeout=2s,hello-timeout=30s:COMMAND`. Whatever the peer does wrong (bad JSON, a
//! missing or mistyped field, an unknown message, an early exit, silence) becomes a
//! [`HarnessError`] (exit status 2) within the timeout, quoting the end of the peer's stderr.

pub mod lockstep;
pub mod peer;
pub mod protocol;
pub mod serve;

use crate::backend::{
    one_by_one, Capabilities, Device, ForwardResult, Forwarder, HarnessError, QueueObservation,
    StepOutcome, VirtualSmmu,
};
use crate::trace::Step;
use peer::Peer;
use protocol::{
    capability_list, negotiate, wire_command, wire_probe, wire_setup, wire_steps, Call, Empty,
    Hello, Hex, Role, WireForward, WireIdRegs, WireObservation, WireQueue, WireStep, WireSteps,
    WireWrite, STEPS, U32, VERSION,
};
use smmu_model::command::RawCommand;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::profile::IdRegs;
use std::time::Duration;

/// How long one request may take before the peer is declared hung and killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the peer may take to start and answer hello (an interpreter, a simulator booting).
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variables that override the defaults (a spec option overrides these).
pub const TIMEOUT_ENV: &str = "SMMU_EXEC_TIMEOUT";
pub const HELLO_TIMEOUT_ENV: &str = "SMMU_EXEC_HELLO_TIMEOUT";

/// Consecutive `Device::write` calls are sent as one request of at most this many writes.
const WRITE_BATCH: usize = 4096;

/// A parsed `exec[,OPTIONS]:COMMAND` spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSpec {
    /// The whole spec, as reports name the backend.
    pub label: String,
    pub argv: Vec<String>,
    pub timeout: Duration,
    pub hello_timeout: Duration,
    /// `exec:` names a device, `exec-forwarder:` a forwarder (the suites differ, so the role is
    /// known before the peer starts).
    pub role: Role,
}

impl ExecSpec {
    /// Parse `exec[,timeout=DUR][,hello-timeout=DUR]:COMMAND ARGS` (a device) or
    /// `exec-forwarder[,OPTIONS]:COMMAND ARGS` (a forwarder); `None` when `spec` is neither.
    pub fn parse(spec: &str) -> Option<Result<ExecSpec, String>> {
        let (head, command) = spec.split_once(':')?;
        let mut opts = head.split(',');
        let role = match opts.next()?.trim() {
            "exec" => Role::Device,
            "exec-forwarder" => Role::Forwarder,
            _ => return None,
        };
        Some(Self::parse_parts(spec, role, opts, command))
    }

    fn parse_parts<'a>(
        spec: &str,
        role: Role,
        opts: impl Iterator<Item = &'a str>,
        command: &str,
    ) -> Result<ExecSpec, String> {
        let env = |name: &str, default: Duration| -> Result<Duration, String> {
            match std::env::var(name) {
                Ok(v) => crate::fuzz::parse_duration(&v).map_err(|e| format!("{name}: {e}")),
                Err(_) => Ok(default),
            }
        };
        let mut timeout = env(TIMEOUT_ENV, DEFAULT_TIMEOUT)?;
        let mut hello_timeout = env(HELLO_TIMEOUT_ENV, DEFAULT_HELLO_TIMEOUT)?;
        for opt in opts.map(str::trim).filter(|o| !o.is_empty()) {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let d = || {
                crate::fuzz::parse_duration(v)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        format!("exec option {k}: '{v}' is not a duration (e.g. 500ms, 10s)")
                    })
            };
            match k {
                "timeout" => timeout = d()?,
                "hello-timeout" => hello_timeout = d()?,
                _ => {
                    return Err(format!(
                        "unknown exec option '{opt}' (expected timeout=DUR, hello-timeout=DUR)"
                    ))
                }
            }
        }
        let argv = shlex::split(command).ok_or_else(|| {
            format!("exec: cannot split '{command}' into words (unbalanced quote?)")
        })?;
        if argv.is_empty() {
            return Err(
                "exec: give a command, e.g. exec:'python3 examples/python/tiny_smmu.py'".into(),
            );
        }
        Ok(ExecSpec {
            label: spec.to_string(),
            argv,
            timeout,
            hello_timeout,
            role,
        })
    }
}

/// Start the peer and say hello, as `role`.
fn start(spec: &ExecSpec, role: Role) -> Result<(Peer, Hello, Capabilities), HarnessError> {
    let mut peer = Peer::spawn(&spec.label, &spec.argv)?;
    let mut offered = capability_list(&Capabilities::ALL);
    if role == Role::Device {
        offered.push(STEPS.to_string());
    }
    let hello: Hello = peer.call(
        Call::Hello {
            protocol: VERSION,
            role,
            capabilities: offered,
            harness: format!("smmu-conform {}", env!("CARGO_PKG_VERSION")),
        },
        spec.hello_timeout,
    )?;
    let refuse = |peer: &mut Peer, detail: String| {
        let e = HarnessError::Protocol {
            backend: spec.label.clone(),
            during: "hello".into(),
            detail: format!("{detail}{}", peer.stderr_quote()),
        };
        peer.kill();
        e
    };
    if hello.protocol != VERSION {
        let d = format!(
            "the peer speaks protocol version {}, this harness speaks {VERSION}",
            hello.protocol
        );
        return Err(refuse(&mut peer, d));
    }
    if hello.role != role {
        let d = format!(
            "the peer serves a {}, the harness asked for a {}",
            hello.role.name(),
            role.name()
        );
        return Err(refuse(&mut peer, d));
    }
    // Names the harness does not know are ignored: a newer peer may offer more.
    let (caps, _unknown) = negotiate(&hello.capabilities);
    Ok((peer, hello, caps))
}

/// A device behind the protocol.
pub struct ExecDevice {
    spec: ExecSpec,
    peer: Peer,
    name: String,
    caps: Capabilities,
    /// The peer claimed `steps`: a run of trace steps travels as one request.
    steps: bool,
    /// `Device::write`s not sent yet: they go with the next request of any other kind.
    writes: Vec<WireWrite>,
}

impl ExecDevice {
    pub fn open(spec: &ExecSpec) -> Result<ExecDevice, HarnessError> {
        let (peer, hello, caps) = start(spec, Role::Device)?;
        Ok(ExecDevice {
            spec: spec.clone(),
            peer,
            name: format!("exec:{}", hello.name),
            caps,
            steps: hello.capabilities.iter().any(|c| c == STEPS),
            writes: Vec::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }

    fn flush(&mut self) -> Result<(), HarnessError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut self.writes);
        let Empty {} = self.peer.call(Call::Write { writes }, self.spec.timeout)?;
        Ok(())
    }

    fn call<T: serde::de::DeserializeOwned>(&mut self, call: Call) -> Result<T, HarnessError> {
        self.flush()?;
        self.peer.call(call, self.spec.timeout)
    }
}

impl Device for ExecDevice {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    fn id_regs(&mut self) -> Result<IdRegs, HarnessError> {
        let r: WireIdRegs = self.call(Call::IdRegs {})?;
        Ok(r.into())
    }
    fn reset(&mut self) -> Result<(), HarnessError> {
        // Writes before a reset are lost anyway, but the peer sees the same sequence of calls
        // as an in-process device would.
        let Empty {} = self.call(Call::Reset {})?;
        Ok(())
    }
    fn write(&mut self, pa: u64, value: u64) -> Result<(), HarnessError> {
        self.writes.push(WireWrite {
            pa: Hex(pa),
            value: Hex(value),
        });
        if self.writes.len() >= WRITE_BATCH {
            self.flush()?;
        }
        Ok(())
    }
    fn stream_table(&mut self, base: u64, cfg: u32) -> Result<(), HarnessError> {
        let Empty {} = self.call(Call::StreamTable {
            base: Hex(base),
            cfg: U32(cfg),
        })?;
        Ok(())
    }
    fn enable(&mut self, on: bool) -> Result<(), HarnessError> {
        let Empty {} = self.call(Call::Enable { on })?;
        Ok(())
    }
    fn submit(&mut self, commands: &[RawCommand]) -> Result<QueueObservation, HarnessError> {
        let q: WireQueue = self.call(Call::Submit {
            commands: commands.iter().map(wire_command).collect(),
        })?;
        Ok(q.into())
    }
    fn acknowledge(
        &mut self,
        replace: Option<RawCommand>,
        drop: bool,
    ) -> Result<QueueObservation, HarnessError> {
        let q: WireQueue = self.call(Call::Acknowledge {
            replace: replace.as_ref().map(wire_command),
            drop,
        })?;
        Ok(q.into())
    }
    fn probe(&mut self, probe: &Probe) -> Result<Observation, HarnessError> {
        let o: WireObservation = self.call(wire_probe(probe))?;
        Observation::try_from(o).map_err(|detail| HarnessError::Protocol {
            backend: self.spec.label.clone(),
            during: "probe".into(),
            detail,
        })
    }
    fn run_steps(&mut self, steps: &[Step]) -> Result<Vec<StepOutcome>, HarnessError> {
        if !self.steps || steps.len() < 2 {
            return one_by_one(self, steps);
        }
        let (wire, counts) = wire_steps(steps);
        // What each result must be read as, kept before the steps move into the request.
        let kinds: Vec<u8> = wire
            .iter()
            .map(|w| match w {
                WireStep::Submit { .. } | WireStep::Acknowledge { .. } => 1,
                WireStep::Probe { .. } => 2,
                _ => 0,
            })
            .collect();
        let r: WireSteps = self.call(Call::Steps { steps: wire })?;
        if r.results.len() != kinds.len() {
            let d = format!("{} results for {} steps", r.results.len(), kinds.len());
            return Err(self.peer.broken("steps", d));
        }
        let mut out = Vec::with_capacity(steps.len());
        for (i, ((kind, n), v)) in kinds.iter().zip(&counts).zip(r.results).enumerate() {
            let outcome = match kind {
                0 => serde_json::from_value::<Empty>(v).map(|Empty {}| StepOutcome::Done),
                1 => serde_json::from_value::<WireQueue>(v).map(|q| StepOutcome::Queue(q.into())),
                _ => serde_json::from_value::<WireObservation>(v).and_then(|o| {
                    Observation::try_from(o)
                        .map(StepOutcome::Probe)
                        .map_err(serde::de::Error::custom)
                }),
            };
            match outcome {
                Ok(o) => out.extend(std::iter::repeat_n(o, *n)),
                Err(e) => {
                    let d = format!("bad steps result: result {i}: {e}");
                    return Err(self.peer.broken("steps", d));
                }
            }
        }
        Ok(out)
    }
}

/// A forwarder behind the protocol.
pub struct ExecForwarder {
    spec: ExecSpec,
    peer: Peer,
    name: String,
}

impl ExecForwarder {
    pub fn open(spec: &ExecSpec) -> Result<ExecForwarder, HarnessError> {
        let (peer, hello, _) = start(spec, Role::Forwarder)?;
        Ok(ExecForwarder {
            spec: spec.clone(),
            peer,
            name: format!("exec:{}", hello.name),
        })
    }

    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }
}

impl Forwarder for ExecForwarder {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn setup(&mut self, vsmmu: &VirtualSmmu) -> Result<VirtualSmmu, HarnessError> {
        let Empty {} = self.peer.call(wire_setup(vsmmu), self.spec.timeout)?;
        // The protocol's forwarders take the mapping they are given.
        Ok(vsmmu.clone())
    }
    fn forward(&mut self, guest: &[RawCommand]) -> Result<ForwardResult, HarnessError> {
        let r: WireForward = self.peer.call(
            Call::Forward {
                commands: guest.iter().map(wire_command).collect(),
            },
            self.spec.timeout,
        )?;
        let r = ForwardResult::from(r);
        if r.handled > guest.len() || r.error.as_ref().is_some_and(|(i, _)| *i >= guest.len()) {
            return Err(HarnessError::Protocol {
                backend: self.spec.label.clone(),
                during: "forward".into(),
                detail: format!(
                    "handled {} or error index {:?} is beyond the {} guest commands given",
                    r.handled,
                    r.error.as_ref().map(|e| e.0),
                    guest.len()
                ),
            });
        }
        Ok(r)
    }
}

fn parsed(spec: &str, role: Role) -> Option<Result<ExecSpec, HarnessError>> {
    let parsed = ExecSpec::parse(spec)?.map_err(HarnessError::Setup);
    Some(parsed.and_then(|s| {
        if s.role == role {
            Ok(s)
        } else {
            Err(HarnessError::Setup(format!(
                "backend {spec} names a {}, not a {} (exec: is a device, exec-forwarder: a forwarder)",
                s.role.name(),
                role.name()
            )))
        }
    }))
}

/// Open a device from an `exec:` spec; `None` when `spec` is not an exec spec.
pub fn open_device(spec: &str) -> Option<Result<Box<dyn Device>, HarnessError>> {
    Some(
        parsed(spec, Role::Device)?
            .and_then(|s| ExecDevice::open(&s))
            .map(|d| Box::new(d) as Box<dyn Device>),
    )
}

/// Open a forwarder from an `exec-forwarder:` spec; `None` when `spec` is not an exec spec.
pub fn open_forwarder(spec: &str) -> Option<Result<Box<dyn Forwarder>, HarnessError>> {
    Some(
        parsed(spec, Role::Forwarder)?
            .and_then(|s| ExecForwarder::open(&s))
            .map(|d| Box::new(d) as Box<dyn Forwarder>),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = ExecSpec::parse("exec:python3 'my dir/x.py' --flag")
            .unwrap()
            .unwrap();
        assert_eq!(s.argv, ["python3", "my dir/x.py", "--flag"]);
        let s = ExecSpec::parse("exec,timeout=250ms,hello-timeout=2s:./peer")
            .unwrap()
            .unwrap();
        assert_eq!(s.timeout, Duration::from_millis(250));
        assert_eq!(s.hello_timeout, Duration::from_secs(2));
        assert_eq!(s.label, "exec,timeout=250ms,hello-timeout=2s:./peer");
        assert_eq!(s.role, Role::Device);
        let f = ExecSpec::parse("exec-forwarder:./vmm").unwrap().unwrap();
        assert_eq!(
            (f.role, f.argv.as_slice()),
            (Role::Forwarder, &["./vmm".to_string()][..])
        );
        assert!(matches!(
            open_device("exec-forwarder:./vmm"),
            Some(Err(HarnessError::Setup(_)))
        ));
        assert!(ExecSpec::parse("emulator").is_none());
        assert!(ExecSpec::parse("mutant:x").is_none());
        assert!(ExecSpec::parse("exec:").unwrap().is_err());
        assert!(ExecSpec::parse("exec:'unbalanced").unwrap().is_err());
        let e = ExecSpec::parse("exec,colour=red:x").unwrap().unwrap_err();
        assert!(e.contains("unknown exec option"), "{e}");
        assert!(ExecSpec::parse("exec,timeout=soon:x").unwrap().is_err());
        assert!(ExecSpec::parse("exec,timeout=0s:x").unwrap().is_err());
    }

    #[test]
    fn a_missing_program_is_a_setup_error() {
        let Some(Err(e)) = open_device("exec:/nonexistent/peer-program") else {
            panic!("expected an error");
        };
        assert!(matches!(e, HarnessError::Setup(_)), "{e}");
        assert!(e.to_string().contains("cannot start"), "{e}");
    }
}
