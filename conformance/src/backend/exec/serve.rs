//! The server half of the protocol: serves any in-process [`Device`] or [`Forwarder`] on a pair
//! of streams (the `smmu-conform-serve` binary puts it on stdin and stdout). It is how the
//! reference emulator, its mutants and the reference forwarders are reached over the protocol,
//! so that in-process and out-of-process verdicts can be compared one for one.
//!
//! [`Misbehave`] makes it break the protocol on purpose, once, at a chosen request: the tests of
//! the client's error handling use it.

use super::protocol::{
    capability_list, raw_command, trace_steps, virtual_smmu, Call, Empty, ErrorKind, Hello,
    PeerError, Request, Response, Role, WireForward, WireIdRegs, WireObservation, WireQueue,
    WireStep, WireSteps, MAX_LINE, STEPS, VERSION,
};
use crate::backend::{Device, Forwarder, HarnessError, StepOutcome};
use serde::Serialize;
use std::io::{BufRead, Read, Write};

/// What is served.
pub enum Served {
    Device(Box<dyn Device>),
    Forwarder(Box<dyn Forwarder>),
}

impl Served {
    fn role(&self) -> Role {
        match self {
            Served::Device(_) => Role::Device,
            Served::Forwarder(_) => Role::Forwarder,
        }
    }
    fn name(&self) -> String {
        match self {
            Served::Device(d) => d.name(),
            Served::Forwarder(f) => f.name(),
        }
    }
}

/// Ways to break the protocol, for testing clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A line that is not JSON.
    MalformedJson,
    /// The right response with its first result field's value replaced by a string of the
    /// wrong type (or an unexpected field added to an empty result).
    WrongField,
    /// The right response without its first result field (or without "ok").
    MissingField,
    /// A response to another request id.
    WrongId,
    /// A message the protocol does not have.
    UnknownMessage,
    /// Exit with status 3 without answering, after a line on stderr.
    Exit,
    /// Never answer (and never exit); start a grandchild that would outlive a careless
    /// harness, so that tests can check the whole process group goes.
    Stall,
}

impl Fault {
    pub const ALL: [(&'static str, Fault); 7] = [
        ("malformed-json", Fault::MalformedJson),
        ("wrong-field", Fault::WrongField),
        ("missing-field", Fault::MissingField),
        ("wrong-id", Fault::WrongId),
        ("unknown-message", Fault::UnknownMessage),
        ("exit", Fault::Exit),
        ("stall", Fault::Stall),
    ];
}

/// When to misbehave: a fault at a request, chosen by its id (0 is hello) or by its op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misbehave {
    pub fault: Fault,
    pub at: At,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    Id(u64),
    /// The first request with this op.
    Op(String),
}

impl Misbehave {
    /// `MODE[@N|@OP]`, e.g. `stall`, `exit@0`, `wrong-field@probe`; without `@`, the first
    /// request after hello.
    pub fn parse(s: &str) -> Result<Misbehave, String> {
        let (mode, at) = s.split_once('@').unwrap_or((s, "1"));
        let fault = Fault::ALL
            .iter()
            .find(|(n, _)| *n == mode)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<_> = Fault::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown misbehaviour '{mode}' (one of {})",
                    names.join(", ")
                )
            })?;
        let at = match at.parse::<u64>() {
            Ok(n) => At::Id(n),
            Err(_) => At::Op(at.to_string()),
        };
        Ok(Misbehave { fault, at })
    }

    fn fires(&self, id: u64, op: &str) -> bool {
        match &self.at {
            At::Id(n) => *n == id,
            At::Op(o) => o == op,
        }
    }
}

fn ok<T: Serialize>(id: u64, v: &T) -> Response {
    Response {
        id,
        ok: Some(serde_json::to_value(v).unwrap_or(serde_json::Value::Null)),
        error: None,
    }
}

fn err(id: u64, kind: ErrorKind, message: String) -> Response {
    Response {
        id,
        ok: None,
        error: Some(PeerError { kind, message }),
    }
}

fn from_harness(id: u64, e: HarnessError) -> Response {
    match e {
        HarnessError::Unsupported { what, .. } => err(id, ErrorKind::Unsupported, what),
        e => err(id, ErrorKind::Failed, e.to_string()),
    }
}

/// Run a `steps` request on `d` through [`Device::run_steps`] (so a device that pipelines, QEMU,
/// pipelines here too), one result per wire step.
fn run_steps(d: &mut dyn Device, id: u64, steps: Vec<WireStep>) -> Response {
    let mut trace = Vec::new();
    let mut counts = Vec::with_capacity(steps.len());
    for w in &steps {
        let t = trace_steps(w);
        counts.push(t.len());
        trace.extend(t);
    }
    let outcomes = match d.run_steps(&trace) {
        Ok(o) => o,
        Err(e) => return from_harness(id, e),
    };
    if outcomes.len() != trace.len() {
        return err(
            id,
            ErrorKind::Failed,
            format!(
                "the device reported {} outcomes for {} steps",
                outcomes.len(),
                trace.len()
            ),
        );
    }
    let mut outcomes = outcomes.into_iter();
    let value = |v: Result<serde_json::Value, serde_json::Error>| v.unwrap_or_default();
    let results = counts
        .iter()
        .map(|&n| {
            // A `write` step of n writes has one result, {}, like the `write` op.
            let last = outcomes.by_ref().take(n).last();
            match last {
                Some(StepOutcome::Queue(q)) => value(serde_json::to_value(WireQueue::from(&q))),
                Some(StepOutcome::Probe(o)) => {
                    value(serde_json::to_value(WireObservation::from(o)))
                }
                Some(StepOutcome::Done) | None => value(serde_json::to_value(Empty {})),
            }
        })
        .collect();
    ok(id, &WireSteps { results })
}

/// Answer one request.
fn answer(served: &mut Served, req: Request, steps: bool) -> Response {
    let id = req.id;
    let role = served.role().name();
    let unsupported = |op: &str| {
        err(
            id,
            ErrorKind::Unsupported,
            format!("{op} is not a {role} operation"),
        )
    };
    match (served, req.call) {
        (s, Call::Hello { .. }) => ok(
            id,
            &Hello {
                protocol: VERSION,
                role: s.role(),
                name: s.name(),
                capabilities: match s {
                    Served::Device(d) => {
                        let mut c = capability_list(&d.capabilities());
                        if steps {
                            c.push(STEPS.to_string());
                        }
                        c
                    }
                    Served::Forwarder(_) => Vec::new(),
                },
            },
        ),
        (_, Call::Bye {}) => ok(id, &Empty {}),
        (Served::Device(d), call) => match call {
            Call::IdRegs {} => match d.id_regs() {
                Ok(r) => ok(id, &WireIdRegs::from(r)),
                Err(e) => from_harness(id, e),
            },
            Call::Reset {} => unit(id, d.reset()),
            Call::Write { writes } => {
                let r = writes.iter().try_for_each(|w| d.write(w.pa.0, w.value.0));
                unit(id, r)
            }
            Call::StreamTable { base, cfg } => unit(id, d.stream_table(base.0, cfg.0)),
            Call::Enable { on } => unit(id, d.enable(on)),
            Call::Submit { commands } => {
                let cmds: Vec<_> = commands.iter().map(raw_command).collect();
                match d.submit(&cmds) {
                    Ok(q) => ok(id, &WireQueue::from(&q)),
                    Err(e) => from_harness(id, e),
                }
            }
            Call::Acknowledge { replace, drop } => {
                match d.acknowledge(replace.as_ref().map(raw_command), drop) {
                    Ok(q) => ok(id, &WireQueue::from(&q)),
                    Err(e) => from_harness(id, e),
                }
            }
            Call::Probe {
                sid,
                ssid,
                addr,
                write,
            } => {
                let p = smmu_model::oracle::Probe {
                    sid: sid.0,
                    ssid: ssid.map(|s| s.0),
                    addr: addr.0,
                    write,
                };
                match d.probe(&p) {
                    Ok(o) => ok(id, &WireObservation::from(o)),
                    Err(e) => from_harness(id, e),
                }
            }
            Call::Steps { steps: list } if steps => run_steps(d.as_mut(), id, list),
            c => unsupported(c.op()),
        },
        (Served::Forwarder(f), call) => match call {
            Call::Setup {
                guest,
                host,
                host_vmid,
                sids,
            } => match virtual_smmu(&guest, &host, host_vmid, &sids) {
                Ok(v) => unit(id, f.setup(&v).map(|_| ())),
                Err(m) => err(id, ErrorKind::BadRequest, m),
            },
            Call::Forward { commands } => {
                let cmds: Vec<_> = commands.iter().map(raw_command).collect();
                match f.forward(&cmds) {
                    Ok(r) => ok(id, &WireForward::from(&r)),
                    Err(e) => from_harness(id, e),
                }
            }
            c => unsupported(c.op()),
        },
    }
}

fn unit(id: u64, r: Result<(), HarnessError>) -> Response {
    match r {
        Ok(()) => ok(id, &Empty {}),
        Err(e) => from_harness(id, e),
    }
}

/// The misbehaving version of `resp` as a line (without the newline), or `None` to stay silent.
fn broken(fault: Fault, resp: &Response) -> Option<String> {
    let mut v = serde_json::to_value(resp).unwrap_or_default();
    match fault {
        Fault::MalformedJson => return Some("{\"id\": 1, \"ok\": {this is not json".into()),
        Fault::WrongField | Fault::MissingField => {
            if let Some(obj) = v.get_mut("ok").and_then(|o| o.as_object_mut()) {
                let first = obj.keys().next().cloned();
                match (fault, first) {
                    (Fault::WrongField, Some(k)) => {
                        obj.insert(k, serde_json::Value::String("banana".into()));
                    }
                    (Fault::WrongField, None) => {
                        obj.insert("unexpected".into(), serde_json::Value::Bool(true));
                    }
                    (_, Some(k)) => {
                        obj.remove(&k);
                    }
                    (_, None) => {
                        v.as_object_mut().map(|o| o.remove("ok"));
                    }
                }
            } else if let Some(o) = v.as_object_mut() {
                o.remove("ok");
                o.remove("error");
            }
        }
        Fault::WrongId => {
            v["id"] = serde_json::json!(resp.id + 1);
        }
        Fault::UnknownMessage => {
            v = serde_json::json!({"id": resp.id, "notice": "the device is feeling chatty"});
        }
        Fault::Exit | Fault::Stall => return None,
    }
    Some(v.to_string())
}

/// Serve requests from `input` on `output` until bye or end of input. Returns the exit status
/// the serving process should use: 0 after bye or end of input, 2 when the output broke.
/// A device claims the `steps` capability (docs/protocol.md) unless `steps` is false: the
/// one-op-per-request path stays testable.
pub fn serve(
    mut served: Served,
    input: impl BufRead,
    mut output: impl Write,
    misbehave: Option<&Misbehave>,
    steps: bool,
) -> i32 {
    let mut input = input;
    loop {
        let mut buf = Vec::new();
        match (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let (resp, op) = match serde_json::from_str::<Request>(text.trim_end()) {
            Ok(req) => {
                let op = req.call.op();
                (answer(&mut served, req, steps), op)
            }
            Err(e) => {
                // Echo the id when there is one, so that the harness sees which request failed.
                let id = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|i| i.as_u64()))
                    .unwrap_or(0);
                (
                    err(
                        id,
                        ErrorKind::BadRequest,
                        format!("cannot read request: {e}"),
                    ),
                    "?",
                )
            }
        };
        let line = match misbehave.filter(|m| m.fires(resp.id, op)) {
            None => serde_json::to_string(&resp).unwrap_or_default(),
            Some(m) => match (m.fault, broken(m.fault, &resp)) {
                (_, Some(l)) => l,
                (Fault::Exit, None) => {
                    eprintln!("smmu-conform-serve: exiting early on purpose (--misbehave exit)");
                    std::process::exit(3);
                }
                (_, None) => {
                    eprintln!("smmu-conform-serve: stalling on purpose (--misbehave stall)");
                    // A grandchild in our process group: the harness must kill it too.
                    let _ = std::process::Command::new("sleep").arg("3600").spawn();
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(3600));
                    }
                }
            },
        };
        if writeln!(output, "{line}")
            .and_then(|_| output.flush())
            .is_err()
        {
            return 2;
        }
        if op == "bye" {
            return 0;
        }
    }
}
