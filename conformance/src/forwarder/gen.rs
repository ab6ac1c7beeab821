//! Generator of forwarder inputs: a virtual SMMU (guest and host profiles that a VMM would
//! pair, a host VMID, one to three devices) and a batch of guest commands aimed at it: mostly at
//! the mapped vSIDs and at a few ASIDs and addresses, with ranges around them.
//!
//! - `legal` mode: every command is Legal for the guest's profile (checked with the model's
//!   classifier), so a finding is a forwarding bug, never an error the guest earned.
//! - `raw` mode: also RES0 bits, VMIDs on a stage-1-only guest, 16-bit IDs on 8-bit profiles,
//!   unmapped vSIDs, reserved range encodings, SCALE above 31, commands the guest cannot issue
//!   (EL2, stage 2, CFGI_ALL, Reserved opcodes), guest CMD_SYNCs.
//!
//! Aimed at a forwarder that says what it can honour ([`crate::backend::Aim`], e.g. the
//! kernel's vSMMU), [`generate_aimed`] draws only setups it can take (its guest profile, at
//! most its devices) and commands it forwards, so most batches exercise the accepted path; the
//! rest is kept reachable at a lower rate: in `raw` mode at most one command of a batch may be
//! malformed (reserved bits, range-field edges, an unknown vSID, another opcode), and one
//! batch in 8 carries a command of an opcode it rejects (a later error after forwarded entries
//! is what docs/findings/linux-iommufd.md #1 is about).

use super::case::parse_profile;
use crate::backend::{Aim, VirtualSmmu};
use crate::gen::{cmd, Mode};
use arbitrary::Unstructured;
use smmu_model::classify::{classify, Verdict};
use smmu_model::command::opcode::ARCHITECTED;
use smmu_model::command::{layout, Opcode, RawCommand};
use smmu_model::profile::{IdRegs, Profile, Queue};

/// One forwarder input.
#[derive(Clone, Debug)]
pub struct FwdInput {
    pub mode: Mode,
    pub vsmmu: VirtualSmmu,
    pub batch: Vec<RawCommand>,
}

/// Guest profiles a VMM offers: stage-1-only virtual SMMUs.
const GUESTS: &[&str] = &[
    "qemu-10.0-virt-9.1",
    "qemu-7.2",
    "smmuv3.0-s1-norange",
    "qemu-10.0-virt-9.1 +ds",
    "smmuv3.4-full -s2p -hyp",
    "smmuv3.4-full -s2p -hyp -ril",
    "emulator-default -s2p -hyp",
];

/// Host profiles with nesting.
const HOSTS: &[&str] = &[
    "qemu-10.0",
    "qemu-10.0 -ril",
    "smmuv3.4-full",
    "smmuv3.4-full -ril",
    "smmuv3.4-full -ds",
    "emulator-default",
];

const VSIDS: &[u32] = &[0, 1, 2, 3, 8, 0x10];
const PSIDS: &[u32] = &[0x10, 0x11, 0x21, 0x22, 0x23, 0x100];
const VMIDS: &[u16] = &[1, 5, 0x80, 0x1234];
const ASIDS: &[u64] = &[0, 1, 2, 0x1234];
const VAS: &[u64] = &[
    0x10_0000,
    0x10_1000,
    0x20_0000,
    0x4000_0000,
    0x1234_5000,
    0xffff_8000_0000_0000,
];

fn profile(s: &str) -> IdRegs {
    let words: Vec<&str> = s.split_whitespace().collect();
    parse_profile(&words).expect("built-in generator profiles parse")
}

fn pick<'a, T>(u: &mut Unstructured, xs: &'a [T]) -> &'a T {
    let i = u.choose_index(xs.len()).unwrap_or(0);
    &xs[i]
}

fn bit(u: &mut Unstructured) -> bool {
    u.arbitrary::<bool>().unwrap_or(false)
}

fn small(u: &mut Unstructured, max: u64) -> u64 {
    u.int_in_range(0..=max).unwrap_or(0)
}

/// Build an input from fuzz bytes. Byte 0 of `data` is not read here: callers pick the mode.
pub fn generate(data: &[u8], mode: Mode) -> FwdInput {
    generate_aimed(data, mode, None)
}

/// The opcodes an unaimed batch draws from.
fn all_ops(raw: bool) -> Vec<Opcode> {
    use Opcode as O;
    let mut ops = vec![
        O::TlbiNsnhAll,
        O::TlbiNhAll,
        O::TlbiNhAsid,
        O::TlbiNhVa,
        O::TlbiNhVa,
        O::TlbiNhVaa,
        O::CfgiSte,
        O::CfgiSteRange,
        O::CfgiCd,
        O::CfgiCdAll,
        O::AtcInv,
        O::PriResp,
    ];
    if raw {
        ops.extend([O::Sync, O::TlbiEl2All, O::TlbiS12Vmall, O::PrefetchConfig]);
    }
    ops
}

/// [`generate`], aimed at what a forwarder can honour when `aim` is given (module doc); with
/// None, the same input as [`generate`] for the same bytes.
pub fn generate_aimed(data: &[u8], mode: Mode, aim: Option<&Aim>) -> FwdInput {
    let mut u = Unstructured::new(data);
    let raw = mode == Mode::Raw;
    let (mut guest, host) = match aim {
        Some(a) => (a.guest, a.host),
        None => {
            let g: &&str = pick(&mut u, GUESTS);
            let h: &&str = pick(&mut u, HOSTS);
            (profile(g), profile(h))
        }
    };
    // Aimed, a toggled feature would only be refused at setup (or ignored: the forwarder
    // offers its own profile).
    if raw && aim.is_none() && bit(&mut u) {
        // A feature toggled on the guest: the forwarder may refuse the mapping, or must cope.
        let (_, reg, b) = *pick(&mut u, super::case::FEATURES);
        let r = match reg {
            super::case::Reg::Idr0 => &mut guest.idr0,
            super::case::Reg::Idr1 => &mut guest.idr1,
            super::case::Reg::Idr3 => &mut guest.idr3,
            super::case::Reg::Idr5 => &mut guest.idr5,
            super::case::Reg::Aidr => &mut guest.aidr,
        };
        *r ^= 1 << b;
    }
    let hp = Profile::from_regs(host);
    let vmids: Vec<u16> = VMIDS
        .iter()
        .copied()
        .filter(|v| hp.vmid16 || *v <= 0xFF || raw)
        .collect();
    let host_vmid = *pick(&mut u, &vmids);
    let max_extra = aim.map_or(2, |a| a.devices.clamp(1, 3) as u64 - 1);
    let n = 1 + small(&mut u, max_extra) as usize;
    let mut sids: Vec<(u32, u32)> = Vec::new();
    for _ in 0..n {
        let v = *pick(&mut u, VSIDS);
        let p = *pick(&mut u, PSIDS);
        if !sids.iter().any(|&(a, b)| a == v || b == p) {
            sids.push((v, p));
        }
    }
    let vsmmu = VirtualSmmu {
        guest,
        host,
        host_vmid,
        sids,
    };
    let gp = Profile::from_regs(guest);
    let len = 1 + small(&mut u, 11) as usize;
    // Aimed: the opcodes it forwards (NH_VA twice: the range fields live there), and in raw
    // mode one command, half the time, that may come out malformed.
    let (ops, victim) = match aim {
        None => (all_ops(raw), None),
        Some(a) => {
            let mut ops = a.accepts.clone();
            if ops.contains(&Opcode::TlbiNhVa) {
                ops.push(Opcode::TlbiNhVa);
            }
            if ops.is_empty() {
                ops = all_ops(false);
            }
            let v = (raw && bit(&mut u)).then(|| small(&mut u, len as u64 - 1) as usize);
            (ops, v)
        }
    };
    let mut batch = Vec::new();
    for i in 0..len {
        if u.is_empty() {
            break;
        }
        let wild = raw && (aim.is_none() || victim == Some(i));
        let c = guest_cmd(&mut u, &gp, &vsmmu, raw, wild, aim.is_some(), &ops);
        if raw || classify(&gp, Queue::NonSecure, c).verdict == Verdict::Legal {
            batch.push(c);
        }
    }
    // Aimed: one batch in 8 also carries a command the forwarder rejects, anywhere in it.
    if let Some(a) = aim {
        if !u.is_empty() && u.ratio(1, 8).unwrap_or(false) {
            let rejected: Vec<Opcode> = all_ops(raw)
                .into_iter()
                .filter(|o| !a.accepts.contains(o))
                .collect();
            if !rejected.is_empty() {
                let c = guest_cmd(&mut u, &gp, &vsmmu, raw, false, true, &rejected);
                let at = small(&mut u, batch.len() as u64) as usize;
                if raw || classify(&gp, Queue::NonSecure, c).verdict == Verdict::Legal {
                    batch.insert(at.min(batch.len()), c);
                }
            }
        }
    }
    if batch.is_empty() {
        batch.push(cmd(Opcode::TlbiNhAll, &[]));
    }
    FwdInput { mode, vsmmu, batch }
}

/// One guest command aimed at the mapping, its opcode drawn from `ops`. `raw`: the mode's
/// freedoms that keep a command well formed (a VMID on a stage-1-only guest, 16-bit ASIDs);
/// `wild`: the malformations (unknown vSIDs, reserved range encodings and bits, another
/// opcode). Unaimed, raw mode is wild everywhere; `edges` (aimed) adds range-field edge values.
fn guest_cmd(
    u: &mut Unstructured,
    g: &Profile,
    vs: &VirtualSmmu,
    raw: bool,
    wild: bool,
    edges: bool,
    ops: &[Opcode],
) -> RawCommand {
    use Opcode as O;
    let op = *pick(u, ops);
    let asids: Vec<u64> = ASIDS
        .iter()
        .copied()
        .filter(|a| g.asid16 || *a <= 0xFF || raw)
        .collect();
    let asid = *pick(u, &asids);
    let va = *pick(u, VAS);
    let vmid = if raw && bit(u) { small(u, 3) } else { 0 };
    let mapped = !vs.sids.is_empty() && (!wild || u.ratio(7, 8).unwrap_or(true));
    let sid = if mapped {
        u64::from(pick(u, &vs.sids).0)
    } else {
        u64::from(*pick(u, VSIDS))
    };
    let ssid = if g.ssidsize > 0 { small(u, 3) } else { 0 };
    let leaf = u64::from(bit(u));
    let mut c = match op {
        O::TlbiNhAll => cmd(op, &[("VMID", vmid)]),
        O::TlbiNhAsid => cmd(op, &[("VMID", vmid), ("ASID", asid)]),
        O::TlbiNhVa | O::TlbiNhVaa => {
            let mut c = cmd(
                op,
                &[
                    ("VMID", vmid),
                    ("ASID", asid),
                    ("Address", va),
                    ("Leaf", leaf),
                ],
            );
            if (g.ril || wild) && bit(u) {
                c = range_fields(u, c, g, wild, edges);
            }
            c
        }
        O::CfgiSte => cmd(op, &[("StreamID", sid), ("Leaf", leaf)]),
        O::CfgiSteRange => {
            let r = if wild && u.ratio(1, 6).unwrap_or(false) {
                31
            } else {
                small(u, 3)
            };
            cmd(op, &[("StreamID", sid), ("Range", r)])
        }
        O::CfgiCd => cmd(
            op,
            &[("StreamID", sid), ("SubstreamID", ssid), ("Leaf", leaf)],
        ),
        O::CfgiCdAll => cmd(op, &[("StreamID", sid)]),
        O::AtcInv => {
            let size = if u.ratio(1, 8).unwrap_or(false) {
                52
            } else {
                small(u, 4)
            };
            let ssv = u64::from(g.ssidsize > 0 && bit(u));
            cmd(
                op,
                &[
                    ("StreamID", sid),
                    ("SSV", ssv),
                    ("SubstreamID", ssid * ssv),
                    ("Global", u64::from(bit(u)) * ssv),
                    ("Address", va & !0xFFFF),
                    ("Size", size),
                ],
            )
        }
        O::PriResp => cmd(
            op,
            &[
                ("StreamID", sid),
                ("PRGIndex", small(u, 7)),
                ("Resp", small(u, 2)),
            ],
        ),
        _ => cmd(op, &[("StreamID", sid), ("VMID", vmid)]),
    };
    if wild {
        // Reserved bits, an arbitrary opcode, or a random word.
        match small(u, 7) {
            0 => {
                let undefined = !layout::defined_mask(c.opcode());
                let b = small(u, 127) as u32;
                if undefined & (1u128 << b) != 0 {
                    c = RawCommand::from_u128(c.as_u128() | (1u128 << b));
                }
            }
            1 => {
                let op = if bit(u) {
                    pick(u, ARCHITECTED).0
                } else {
                    u.arbitrary::<u8>().unwrap_or(0)
                };
                c = RawCommand::new((c.0[0] & !0xFF) | u64::from(op), c.0[1]);
            }
            2 => c = c.with(layout::ASID, asid | 0x100),
            _ => {}
        }
    }
    c
}

/// TG/TTL/NUM/SCALE around a command: mostly small ranges, sometimes huge ones (SCALE up to 39
/// with DS), sometimes a TTL hint; with `edges`, a quarter of the time the extreme values of
/// each field (and, `raw`, TG 0 with range fields: Reserved).
fn range_fields(
    u: &mut Unstructured,
    c: RawCommand,
    g: &Profile,
    raw: bool,
    edges: bool,
) -> RawCommand {
    let mut tg = 1 + small(u, 2);
    let mut num = if bit(u) { small(u, 3) } else { small(u, 31) };
    let mut scale = match small(u, 5) {
        0 => small(u, if g.ds || raw { 39 } else { 31 }),
        1 if g.ds || raw => 32 + small(u, 7),
        _ => small(u, 2),
    };
    let mut ttl = if bit(u) { 0 } else { small(u, 3) };
    if edges && u.ratio(1, 4).unwrap_or(false) {
        num = *pick(u, &[0, 1, 30, 31]);
        let top = if g.ds || raw { 39 } else { 31 };
        scale = *pick(u, &[0, 1, 30, 31, top]);
        ttl = *pick(u, &[0, 1, 3]);
        tg = *pick(u, &[1, 2, 3]);
        if raw && u.ratio(1, 4).unwrap_or(false) {
            tg = 0;
        }
    }
    // Legal mode: align the address for the TTL hint (else the range is UNPREDICTABLE and the
    // guest requires nothing, which tests little).
    let granule = 12 + 2 * (tg.max(1) as u32 - 1);
    let ttl_shift = match ttl {
        0 => granule,
        l => granule + (3 - l as u32) * (granule - 3),
    };
    let mut a = c.address(layout::VA);
    if !raw {
        a &= !((1u64 << ttl_shift.min(63)) - 1);
    }
    let (num, ttl) = if !raw && num == 0 && scale == 0 && ttl == 0 {
        (1, 0)
    } else {
        (num, ttl)
    };
    c.with(layout::TG, tg)
        .with(layout::NUM, num)
        .with(layout::SCALE, scale)
        .with(layout::TTL, ttl)
        .with_address(layout::VA, a)
}
