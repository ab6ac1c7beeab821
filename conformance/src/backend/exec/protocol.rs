//! The wire format of the out-of-process backend protocol (docs/protocol.md), version
//! [`VERSION`]. One module holds every message so that the client ([`super::ExecDevice`],
//! [`super::ExecForwarder`]) and the server ([`super::serve`]) cannot drift apart.
//!
//! Framing: one JSON object per line (UTF-8, `\n`-terminated) on the peer's stdin (requests)
//! and stdout (responses); strictly one response per request, in order. Integers that can be
//! wider than 53 bits (addresses, memory values, command words) travel as `"0x…"` hex strings so
//! that every JSON library reads them exactly; every integer field also accepts a plain JSON
//! number when it fits.

use crate::backend::{Capabilities, ForwardResult, QueueObservation, VirtualSmmu};
use crate::trace::Step;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use smmu_model::command::RawCommand;
use smmu_model::oracle::{Observation, Probe};
use smmu_model::profile::IdRegs;

/// The protocol version this build speaks. A change that an old peer or an old harness could
/// misread bumps it; the hello exchange refuses a mismatch.
pub const VERSION: u32 = 1;

/// The longest line either side accepts (a forward reply of a few thousand commands is far
/// below it); a longer one is a protocol error, not unbounded memory.
pub const MAX_LINE: usize = 16 << 20;

/// What the peer serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An SMMU device ([`crate::backend::Device`]).
    Device,
    /// An invalidation forwarder ([`crate::backend::Forwarder`]).
    Forwarder,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Device => "device",
            Role::Forwarder => "forwarder",
        }
    }
}

/// Capability names, in [`Capabilities`] field order: the negotiation vocabulary.
pub const CAPABILITY_NAMES: [&str; 6] = [
    "translation",
    "write_probes",
    "fault_events",
    "cons",
    "gerror",
    "msi",
];

/// The protocol capability that allows the `steps` op (a run of trace steps in one request).
/// Not a [`Capabilities`] field: it says how the harness may talk to the peer, not what the
/// device can observe, so in-process backends have nothing to declare.
pub const STEPS: &str = "steps";

/// [`Capabilities`] as the list of names that are true.
pub fn capability_list(c: &Capabilities) -> Vec<String> {
    let bits = [
        c.translation,
        c.write_probes,
        c.fault_events,
        c.cons,
        c.gerror,
        c.msi,
    ];
    CAPABILITY_NAMES
        .iter()
        .zip(bits)
        .filter(|(_, b)| *b)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// The capabilities a peer claimed, restricted to those the harness offered: names the harness
/// does not know are ignored (a newer peer may know more), names it offered and the peer did not
/// claim are false.
pub fn negotiate(claimed: &[String]) -> (Capabilities, Vec<String>) {
    let has = |n: &str| claimed.iter().any(|c| c == n);
    let caps = Capabilities {
        translation: has("translation"),
        write_probes: has("write_probes"),
        fault_events: has("fault_events"),
        cons: has("cons"),
        gerror: has("gerror"),
        msi: has("msi"),
    };
    let unknown = claimed
        .iter()
        .filter(|c| !CAPABILITY_NAMES.contains(&c.as_str()) && c.as_str() != STEPS)
        .cloned()
        .collect();
    (caps, unknown)
}

// ---- integers ------------------------------------------------------------------------------

/// Reads an unsigned integer given as a JSON number or a `"0x…"` hex string (or a decimal
/// string), range-checked against `max`.
struct UintVisitor {
    max: u64,
}

impl Visitor<'_> for UintVisitor {
    type Value = u64;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "an unsigned integer up to {:#x}, as a number or a \"0x…\" string",
            self.max
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if v <= self.max {
            Ok(v)
        } else {
            Err(E::custom(format!("{v:#x} is wider than {:#x}", self.max)))
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative")))
            .and_then(|v| self.visit_u64(v))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        let t = s.trim();
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16),
            None => t.parse::<u64>(),
        };
        parsed
            .map_err(|e| E::custom(format!("'{s}' is not a hex or decimal integer ({e})")))
            .and_then(|v| self.visit_u64(v))
    }
}

fn uint<'de, D: Deserializer<'de>>(d: D, max: u64) -> Result<u64, D::Error> {
    d.deserialize_any(UintVisitor { max })
}

/// A 64-bit value on the wire: written as `"0x…"`, read from a hex string or a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hex(pub u64);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        uint(d, u64::MAX).map(Hex)
    }
}

/// A 32-bit (or narrower) value on the wire: written as a number, read from a number or a
/// `"0x…"` string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct U32(pub u32);

impl Serialize for U32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for U32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        uint(d, u32::MAX as u64).map(|v| U32(v as u32))
    }
}

/// A count or an index (`usize` on the harness side).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count(pub u32);

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        uint(d, u32::MAX as u64).map(|v| Count(v as u32))
    }
}

/// A 16-byte command as `["0xDW0", "0xDW1"]` (DW0 = bits [63:0]).
pub type WireCommand = [Hex; 2];

pub fn wire_command(c: &RawCommand) -> WireCommand {
    [Hex(c.0[0]), Hex(c.0[1])]
}

pub fn raw_command(w: &WireCommand) -> RawCommand {
    RawCommand([w[0].0, w[1].0])
}

// ---- requests (harness to peer) ------------------------------------------------------------

/// One request line: `{"id": N, "op": "...", ...arguments}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Sequence number, echoed by the response: 0 for hello, then 1, 2, ...
    pub id: u64,
    #[serde(flatten)]
    pub call: Call,
}

/// A memory write of [`Call::Write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireWrite {
    pub pa: Hex,
    pub value: Hex,
}

/// The operations, one per trait method (plus hello and bye). A server ignores argument fields
/// it does not know: a newer harness may send more within a protocol version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Call {
    /// The first request: versions, role, capabilities.
    Hello {
        protocol: u32,
        role: Role,
        /// Capability names the harness can use (the peer answers the subset it has).
        capabilities: Vec<String>,
        /// The harness's name and version, for the peer's logs.
        harness: String,
    },
    // Device.
    IdRegs {},
    Reset {},
    /// 64-bit little-endian memory writes, applied in order (several consecutive
    /// `Device::write` calls travel as one request).
    Write {
        writes: Vec<WireWrite>,
    },
    StreamTable {
        base: Hex,
        cfg: U32,
    },
    Enable {
        on: bool,
    },
    Submit {
        commands: Vec<WireCommand>,
    },
    Acknowledge {
        replace: Option<WireCommand>,
        drop: bool,
    },
    Probe {
        sid: U32,
        ssid: Option<U32>,
        addr: Hex,
        write: bool,
    },
    // Forwarder.
    Setup {
        guest: WireIdRegs,
        host: WireIdRegs,
        host_vmid: U32,
        /// (virtual StreamID, physical StreamID) pairs.
        sids: Vec<[U32; 2]>,
    },
    Forward {
        commands: Vec<WireCommand>,
    },
    /// Several device operations run in order, one result each (only to a peer that claimed
    /// the [`STEPS`] capability): one exchange instead of one per step.
    Steps {
        steps: Vec<WireStep>,
    },
    /// The harness is done: the peer answers and exits.
    Bye {},
}

impl Call {
    /// The op name, for error messages.
    pub fn op(&self) -> &'static str {
        match self {
            Call::Hello { .. } => "hello",
            Call::IdRegs {} => "id_regs",
            Call::Reset {} => "reset",
            Call::Write { .. } => "write",
            Call::StreamTable { .. } => "stream_table",
            Call::Enable { .. } => "enable",
            Call::Submit { .. } => "submit",
            Call::Acknowledge { .. } => "acknowledge",
            Call::Probe { .. } => "probe",
            Call::Setup { .. } => "setup",
            Call::Forward { .. } => "forward",
            Call::Steps { .. } => "steps",
            Call::Bye {} => "bye",
        }
    }
}

/// One step of a `steps` request: exactly the request of that op without its `id` (the ops
/// of a trace step, [`crate::trace::Step`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WireStep {
    Write {
        writes: Vec<WireWrite>,
    },
    StreamTable {
        base: Hex,
        cfg: U32,
    },
    Enable {
        on: bool,
    },
    Submit {
        commands: Vec<WireCommand>,
    },
    Acknowledge {
        replace: Option<WireCommand>,
        drop: bool,
    },
    Probe {
        sid: U32,
        ssid: Option<U32>,
        addr: Hex,
        write: bool,
    },
}

impl WireStep {
    /// The step as the one-op request it stands for.
    pub fn call(self) -> Call {
        match self {
            WireStep::Write { writes } => Call::Write { writes },
            WireStep::StreamTable { base, cfg } => Call::StreamTable { base, cfg },
            WireStep::Enable { on } => Call::Enable { on },
            WireStep::Submit { commands } => Call::Submit { commands },
            WireStep::Acknowledge { replace, drop } => Call::Acknowledge { replace, drop },
            WireStep::Probe {
                sid,
                ssid,
                addr,
                write,
            } => Call::Probe {
                sid,
                ssid,
                addr,
                write,
            },
        }
    }
}

/// `steps` as wire steps: consecutive writes travel as one `write` step (as consecutive
/// `Device::write` calls travel as one request). Returns the wire steps and, for each, how
/// many trace steps it stands for.
pub fn wire_steps(steps: &[Step]) -> (Vec<WireStep>, Vec<usize>) {
    let (mut out, mut counts): (Vec<WireStep>, Vec<usize>) = (Vec::new(), Vec::new());
    for s in steps {
        let w = match s {
            Step::Write { pa, value } => {
                let w = WireWrite {
                    pa: Hex(*pa),
                    value: Hex(*value),
                };
                if let (Some(WireStep::Write { writes }), Some(n)) =
                    (out.last_mut(), counts.last_mut())
                {
                    writes.push(w);
                    *n += 1;
                    continue;
                }
                WireStep::Write { writes: vec![w] }
            }
            Step::StreamTable { base, cfg } => WireStep::StreamTable {
                base: Hex(*base),
                cfg: U32(*cfg),
            },
            Step::Enable { on } => WireStep::Enable { on: *on },
            Step::Submit { commands } => WireStep::Submit {
                commands: commands.iter().map(wire_command).collect(),
            },
            Step::Acknowledge { replace, drop } => WireStep::Acknowledge {
                replace: replace.as_ref().map(wire_command),
                drop: *drop,
            },
            Step::Probe {
                sid,
                ssid,
                addr,
                write,
            } => WireStep::Probe {
                sid: U32(*sid),
                ssid: ssid.map(U32),
                addr: Hex(*addr),
                write: *write,
            },
        };
        out.push(w);
        counts.push(1);
    }
    (out, counts)
}

/// A wire step as trace steps (a `write` step of N writes is N steps).
pub fn trace_steps(w: &WireStep) -> Vec<Step> {
    match w {
        WireStep::Write { writes } => writes
            .iter()
            .map(|w| Step::Write {
                pa: w.pa.0,
                value: w.value.0,
            })
            .collect(),
        WireStep::StreamTable { base, cfg } => vec![Step::StreamTable {
            base: base.0,
            cfg: cfg.0,
        }],
        WireStep::Enable { on } => vec![Step::Enable { on: *on }],
        WireStep::Submit { commands } => vec![Step::Submit {
            commands: commands.iter().map(raw_command).collect(),
        }],
        WireStep::Acknowledge { replace, drop } => vec![Step::Acknowledge {
            replace: replace.as_ref().map(raw_command),
            drop: *drop,
        }],
        WireStep::Probe {
            sid,
            ssid,
            addr,
            write,
        } => vec![Step::Probe {
            sid: sid.0,
            ssid: ssid.map(|s| s.0),
            addr: addr.0,
            write: *write,
        }],
    }
}

// ---- responses (peer to harness) -----------------------------------------------------------

/// One response line: `{"id": N, "ok": RESULT}` or `{"id": N, "error": {...}}`. The result's
/// shape depends on the request's op; the client reads it as that op's result type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PeerError>,
}

/// Why a peer could not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The peer does not implement this operation or these arguments (a forwarder refusing a
    /// virtual-SMMU mapping, a device without write probes asked for one).
    Unsupported,
    /// The peer tried and failed (its device crashed, its hardware did not answer).
    Failed,
    /// The request made no sense to the peer (it could not parse it).
    BadRequest,
}

/// The hello result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub protocol: u32,
    pub role: Role,
    /// The backend's name for reports.
    pub name: String,
    /// Capability names the peer has (device role; a forwarder sends `[]`).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// The result of ops that return nothing: `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// [`IdRegs`] on the wire. The Secure and Realm registers default to 0 (not implemented).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireIdRegs {
    pub idr0: U32,
    pub idr1: U32,
    pub idr3: U32,
    pub idr5: U32,
    pub aidr: U32,
    #[serde(default)]
    pub s_idr1: U32,
    #[serde(default)]
    pub s_idr3: U32,
    #[serde(default)]
    pub r_idr0: U32,
    #[serde(default)]
    pub r_idr3: U32,
}

impl From<IdRegs> for WireIdRegs {
    fn from(r: IdRegs) -> Self {
        WireIdRegs {
            idr0: U32(r.idr0),
            idr1: U32(r.idr1),
            idr3: U32(r.idr3),
            idr5: U32(r.idr5),
            aidr: U32(r.aidr),
            s_idr1: U32(r.s_idr1),
            s_idr3: U32(r.s_idr3),
            r_idr0: U32(r.r_idr0),
            r_idr3: U32(r.r_idr3),
        }
    }
}

impl From<WireIdRegs> for IdRegs {
    fn from(r: WireIdRegs) -> Self {
        IdRegs {
            idr0: r.idr0.0,
            idr1: r.idr1.0,
            idr3: r.idr3.0,
            idr5: r.idr5.0,
            aidr: r.aidr.0,
            s_idr1: r.s_idr1.0,
            s_idr3: r.s_idr3.0,
            r_idr0: r.r_idr0.0,
            r_idr3: r.r_idr3.0,
        }
    }
}

/// The `steps` result: one result per step, each what that op alone would have returned
/// (`{}`, a queue observation or an observation), read by the client as the step's op says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSteps {
    pub results: Vec<serde_json::Value>,
}

/// A CMD_SYNC MSI write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireMsi {
    pub addr: Hex,
    pub data: U32,
}

/// [`QueueObservation`] on the wire (submit and acknowledge results).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireQueue {
    pub cons: U32,
    pub gerror: U32,
    #[serde(default)]
    pub msi_writes: Vec<WireMsi>,
    #[serde(default)]
    pub wired_irqs: U32,
    #[serde(default)]
    pub sev_events: U32,
}

impl From<&QueueObservation> for WireQueue {
    fn from(q: &QueueObservation) -> Self {
        WireQueue {
            cons: U32(q.cons),
            gerror: U32(q.gerror),
            msi_writes: q
                .msi_writes
                .iter()
                .map(|&(a, d)| WireMsi {
                    addr: Hex(a),
                    data: U32(d),
                })
                .collect(),
            wired_irqs: U32(q.wired_irqs),
            sev_events: U32(q.sev_events),
        }
    }
}

impl From<WireQueue> for QueueObservation {
    fn from(q: WireQueue) -> Self {
        QueueObservation {
            cons: q.cons.0,
            gerror: q.gerror.0,
            msi_writes: q.msi_writes.iter().map(|m| (m.addr.0, m.data.0)).collect(),
            wired_irqs: q.wired_irqs.0,
            sev_events: q.sev_events.0,
        }
    }
}

/// [`Observation`] on the wire (the probe result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireObservation {
    Translated {
        pa: Hex,
    },
    Fault {
        /// The event number (e.g. 0x10 F_TRANSLATION), or null when not read.
        #[serde(default)]
        event: Option<U32>,
    },
    Abort {},
    CannotObserve {},
}

impl From<Observation> for WireObservation {
    fn from(o: Observation) -> Self {
        match o {
            Observation::Translated { pa } => WireObservation::Translated { pa: Hex(pa) },
            Observation::Fault { event } => WireObservation::Fault {
                event: event.map(|e| U32(e.into())),
            },
            Observation::Abort => WireObservation::Abort {},
            Observation::CannotObserve => WireObservation::CannotObserve {},
        }
    }
}

impl TryFrom<WireObservation> for Observation {
    type Error = String;
    fn try_from(o: WireObservation) -> Result<Self, String> {
        Ok(match o {
            WireObservation::Translated { pa } => Observation::Translated { pa: pa.0 },
            WireObservation::Fault { event } => Observation::Fault {
                event: match event {
                    None => None,
                    Some(U32(e)) => Some(
                        u8::try_from(e)
                            .map_err(|_| format!("event number {e:#x} is wider than 8 bits"))?,
                    ),
                },
            },
            WireObservation::Abort {} => Observation::Abort,
            WireObservation::CannotObserve {} => Observation::CannotObserve,
        })
    }
}

pub fn wire_probe(p: &Probe) -> Call {
    Call::Probe {
        sid: U32(p.sid),
        ssid: p.ssid.map(U32),
        addr: Hex(p.addr),
        write: p.write,
    }
}

pub fn wire_setup(v: &VirtualSmmu) -> Call {
    Call::Setup {
        guest: v.guest.into(),
        host: v.host.into(),
        host_vmid: U32(v.host_vmid.into()),
        sids: v.sids.iter().map(|&(a, b)| [U32(a), U32(b)]).collect(),
    }
}

/// Read back a [`Call::Setup`] (server side).
pub fn virtual_smmu(
    guest: &WireIdRegs,
    host: &WireIdRegs,
    host_vmid: U32,
    sids: &[[U32; 2]],
) -> Result<VirtualSmmu, String> {
    Ok(VirtualSmmu {
        guest: (*guest).into(),
        host: (*host).into(),
        host_vmid: u16::try_from(host_vmid.0)
            .map_err(|_| format!("host_vmid {:#x} is wider than 16 bits", host_vmid.0))?,
        sids: sids.iter().map(|[a, b]| (a.0, b.0)).collect(),
    })
}

/// The guest command a forwarder blames, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireForwardError {
    pub index: Count,
    pub message: String,
}

/// [`ForwardResult`] on the wire (the forward result).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireForward {
    pub host_commands: Vec<WireCommand>,
    #[serde(default)]
    pub error: Option<WireForwardError>,
    pub handled: Count,
}

impl From<&ForwardResult> for WireForward {
    fn from(r: &ForwardResult) -> Self {
        WireForward {
            host_commands: r.host_commands.iter().map(wire_command).collect(),
            error: r.error.as_ref().map(|(i, m)| WireForwardError {
                index: Count(*i as u32),
                message: m.clone(),
            }),
            handled: Count(r.handled as u32),
        }
    }
}

impl From<WireForward> for ForwardResult {
    fn from(r: WireForward) -> Self {
        ForwardResult {
            host_commands: r.host_commands.iter().map(raw_command).collect(),
            error: r.error.map(|e| (e.index.0 as usize, e.message)),
            handled: r.handled.0 as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_look_as_documented() {
        let r = Request {
            id: 3,
            call: Call::Submit {
                commands: vec![wire_command(&RawCommand([0x12, 0xffff_ffff_ffff_f000]))],
            },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"id":3,"op":"submit","commands":[["0x12","0xfffffffffffff000"]]}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        let p = Request {
            id: 4,
            call: wire_probe(&Probe {
                sid: 16,
                ssid: None,
                addr: 0x1000,
                write: false,
            }),
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"id":4,"op":"probe","sid":16,"ssid":null,"addr":"0x1000","write":false}"#
        );
        let b = serde_json::to_string(&Request {
            id: 9,
            call: Call::Reset {},
        })
        .unwrap();
        assert_eq!(b, r#"{"id":9,"op":"reset"}"#);
        assert!(serde_json::from_str::<Request>(r#"{"id":1,"op":"frobnicate"}"#).is_err());
    }

    #[test]
    fn steps_merge_consecutive_writes_and_look_as_documented() {
        let trace = [
            Step::write(0x4020_1000, 0x4020_300b),
            Step::write(0x4020_1008, 0),
            Step::Enable { on: true },
            Step::probe(1, 0x10_0000),
            Step::write(0x4000_0000, 7),
        ];
        let (wire, counts) = wire_steps(&trace);
        assert_eq!(counts, [2, 1, 1, 1]);
        let back: Vec<Step> = wire.iter().flat_map(trace_steps).collect();
        assert_eq!(back, trace);
        let r = Request {
            id: 5,
            call: Call::Steps {
                steps: wire[..3].to_vec(),
            },
        };
        let s = serde_json::to_string(&r).unwrap();
        // docs/protocol.md shows this request.
        assert_eq!(
            s,
            r#"{"id":5,"op":"steps","steps":[{"op":"write","writes":[{"pa":"0x40201000","value":"0x4020300b"},{"pa":"0x40201008","value":"0x0"}]},{"op":"enable","on":true},{"op":"probe","sid":1,"ssid":null,"addr":"0x100000","write":false}]}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        // Only the ops of a trace step may be steps.
        let nested = r#"{"id":1,"op":"steps","steps":[{"op":"reset"}]}"#;
        assert!(serde_json::from_str::<Request>(nested).is_err());
        let (_, unknown) = negotiate(&["steps".to_string(), "teleport".to_string()]);
        assert_eq!(unknown, ["teleport"], "steps is a known capability");
    }

    #[test]
    fn results_accept_numbers_or_hex_and_reject_nonsense() {
        let o: WireObservation =
            serde_json::from_str(r#"{"kind":"translated","pa":"0x48001000"}"#).unwrap();
        assert_eq!(
            Observation::try_from(o).unwrap(),
            Observation::Translated { pa: 0x4800_1000 }
        );
        let o: WireObservation =
            serde_json::from_str(r#"{"kind":"translated","pa":1207963648}"#).unwrap();
        assert_eq!(
            o,
            WireObservation::Translated {
                pa: Hex(0x4800_1000)
            }
        );
        let f: WireObservation = serde_json::from_str(r#"{"kind":"fault"}"#).unwrap();
        assert_eq!(
            Observation::try_from(f).unwrap(),
            Observation::Fault { event: None }
        );
        let f: WireObservation =
            serde_json::from_str(r#"{"kind":"fault","event":"0x10"}"#).unwrap();
        assert_eq!(
            Observation::try_from(f).unwrap(),
            Observation::Fault { event: Some(0x10) }
        );
        let big: WireObservation = serde_json::from_str(r#"{"kind":"fault","event":300}"#).unwrap();
        assert!(Observation::try_from(big).is_err());
        for bad in [
            r#"{"kind":"translated"}"#,
            r#"{"kind":"translated","pa":"banana"}"#,
            r#"{"kind":"translated","pa":-1}"#,
            r#"{"kind":"translated","pa":"0x1","extra":1}"#,
            r#"{"kind":"teleported"}"#,
        ] {
            assert!(
                serde_json::from_str::<WireObservation>(bad).is_err(),
                "{bad}"
            );
        }
        let q: WireQueue = serde_json::from_str(r#"{"cons":5,"gerror":0}"#).unwrap();
        assert_eq!(QueueObservation::from(q).cons, 5);
        assert!(serde_json::from_str::<WireQueue>(r#"{"cons":"0x100000000","gerror":0}"#).is_err());
        assert!(serde_json::from_str::<WireQueue>(r#"{"gerror":0}"#).is_err());
    }

    #[test]
    fn conversions_are_lossless() {
        let q = QueueObservation {
            cons: 0x0100_0005,
            gerror: 1,
            msi_writes: vec![(0xffff_ffff_ffff_fffc, 7)],
            wired_irqs: 2,
            sev_events: 1,
        };
        let s = serde_json::to_string(&WireQueue::from(&q)).unwrap();
        let back: WireQueue = serde_json::from_str(&s).unwrap();
        assert_eq!(QueueObservation::from(back), q);
        let f = ForwardResult {
            host_commands: vec![RawCommand([0x46, 0])],
            error: Some((2, "bad".into())),
            handled: 2,
        };
        let s = serde_json::to_string(&WireForward::from(&f)).unwrap();
        assert_eq!(
            ForwardResult::from(serde_json::from_str::<WireForward>(&s).unwrap()),
            f
        );
        let caps = Capabilities {
            msi: false,
            ..Capabilities::ALL
        };
        let (back, unknown) = negotiate(&capability_list(&caps));
        assert_eq!(back, caps);
        assert!(unknown.is_empty());
        let (_, unknown) = negotiate(&["telepathy".to_string()]);
        assert_eq!(unknown, ["telepathy"]);
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// The example exchange in docs/protocol.md parses with these types, result by result, so
    /// the document cannot drift from the code.
    #[test]
    fn the_documented_exchange_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let mut last_op = None;
        let mut seen = 0;
        for line in doc.lines() {
            if let Some(req) = line.strip_prefix("> ") {
                let r: Request = serde_json::from_str(req).unwrap_or_else(|e| panic!("{req}: {e}"));
                last_op = Some(r.call.op());
                seen += 1;
            } else if let Some(resp) = line.strip_prefix("< ") {
                let r: Response =
                    serde_json::from_str(resp).unwrap_or_else(|e| panic!("{resp}: {e}"));
                let ok = r.ok.clone().unwrap_or_else(|| panic!("{resp}: no ok"));
                let parsed = match last_op.expect("a request before a response") {
                    "id_regs" => serde_json::from_value::<WireIdRegs>(ok).map(|_| ()),
                    "submit" | "acknowledge" => serde_json::from_value::<WireQueue>(ok).map(|_| ()),
                    "probe" => serde_json::from_value::<WireObservation>(ok).map(|_| ()),
                    "hello" => serde_json::from_value::<Hello>(ok).map(|_| ()),
                    "forward" => serde_json::from_value::<WireForward>(ok).map(|_| ()),
                    "steps" => serde_json::from_value::<WireSteps>(ok).map(|_| ()),
                    _ => serde_json::from_value::<Empty>(ok).map(|_| ()),
                };
                parsed.unwrap_or_else(|e| panic!("{resp}: {e}"));
                seen += 1;
            }
        }
        assert!(seen >= 16, "the example exchange has {seen} lines");
        // The hello lines given as JSON blocks.
        for block in doc.split("```json\n").skip(1) {
            let text = block.split("```").next().unwrap().trim();
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            if v.get("op").is_some() {
                serde_json::from_value::<Request>(v).unwrap();
            } else {
                let r: Response = serde_json::from_value(v).unwrap();
                serde_json::from_value::<Hello>(r.ok.unwrap()).unwrap();
            }
        }
    }
}
