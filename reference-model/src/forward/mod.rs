//! The forwarding oracle: is what a forwarder did with a batch of guest commands allowed?
//!
//! A forwarder (a VMM, or a kernel under a VMM) takes the commands a guest put on its virtual
//! SMMU's queue and issues host commands on the real SMMU, then reports how many guest entries
//! it handled and, at most once, an error at an index. [`judge`] decides, from the guest's
//! profile, the mapping (host VMID, vSID to pSID), the host's profile, the guest batch and what
//! the forwarder did, with findings naming rules of `rules::forward` (docs/forwarder.md):
//!
//! 1. scope (FWD-SCOPE, FWD-SYNC): every entry a handled guest command requires removed under
//!    the guest's profile (`scope::required_scope`), translated into host tags
//!    ([`translate`], FWD-TRANSLATE), is required removed by a host command under the host's
//!    profile, and a host CMD_SYNC completes after those commands. Decided on a finite set of
//!    candidate entries ([`witness`]) chosen so that an uncovered interval always shows on one.
//!    Over-invalidation is never a finding (§4.4, §4.3): it is counted.
//! 2. confinement (FWD-CONFINE-VMID, FWD-CONFINE-SID): no host command is required to remove an
//!    entry outside the guest's host VMID and physical StreamIDs, nor acts on another StreamID.
//! 3. errors (FWD-GUEST-ILLEGAL, FWD-SILENT-DROP, FWD-HANDLED-COUNT): a guest command that is
//!    ILLEGAL for the guest is an error at its index; a handled PRI_RESP/RESUME/STALL_TERM
//!    reaches the host; `handled` is the uAPI's entry_num on return: the number of entries
//!    handled, the failing one not counted (include/uapi/linux/iommufd.h, struct
//!    iommu_hwpt_invalidate: "Output the number of requests successfully handled by kernel").
//!    Rejecting a command the guest may legally issue is allowed (Linux returns -EIO for
//!    commands it does not support; the VMM must then deal with it) and only counted.
//! 4. host legality (FWD-HOST-ILL, FWD-HOST-RES0): no host command is ILLEGAL for the host, nor
//!    has a RES0 bit set: §4.1.5 lets the host raise CERROR_ILL for a set RES0 bit, so a
//!    forwarder can never rely on it being ignored, wherever the bit came from (the guest's
//!    command or the forwarder's own encoding).

pub mod translate;
pub mod witness;

use crate::classify::{classify, res0_fields, Verdict};
use crate::command::{layout as l, Opcode, RawCommand};
use crate::oracle::describe_cmd;
use crate::profile::{IdRegs, Profile, Queue};
use crate::rules::forward as fr;
use crate::rules::Rule;
use crate::scope::{required_scope, Scope, ScopeCtx};
use serde::Serialize;

/// A virtual SMMU's setup: the two profiles and the mapping (guest VMIDs all run under one host
/// VMID; each vSID stands for one pSID).
#[derive(Clone, Debug)]
pub struct Mapping {
    pub guest: Profile,
    pub host: Profile,
    pub host_vmid: u16,
    /// (vSID, pSID) pairs.
    pub sids: Vec<(u32, u32)>,
}

impl Mapping {
    pub fn new(guest: IdRegs, host: IdRegs, host_vmid: u16, sids: &[(u32, u32)]) -> Mapping {
        Mapping {
            guest: Profile::from_regs(guest),
            host: Profile::from_regs(host),
            host_vmid,
            sids: sids.to_vec(),
        }
    }

    /// The physical StreamID a virtual one stands for.
    pub fn psid(&self, vsid: u32) -> Option<u32> {
        self.sids.iter().find(|(v, _)| *v == vsid).map(|(_, p)| *p)
    }

    pub fn is_psid(&self, sid: u32) -> bool {
        self.sids.iter().any(|&(_, p)| p == sid)
    }
}

/// What the forwarder did with one batch.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded<'a> {
    /// Host commands issued, in queue order (host CMD_SYNCs included).
    pub host: &'a [RawCommand],
    /// The index of the guest command the forwarder reported an error for.
    pub error: Option<usize>,
    /// Entries reported handled.
    pub handled: usize,
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static Rule,
    /// The guest command it is about, if any.
    pub guest: Option<usize>,
    /// The host command it is about, if any.
    pub host: Option<usize>,
    pub message: String,
}

/// Numbers about a batch that are not verdicts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Guest commands the guest may legally issue that the forwarder rejected (allowed).
    pub rejected_legal: usize,
    /// Host commands required to remove entries of the guest that no handled guest command
    /// required (legal over-invalidation, §4.4, §4.3).
    pub over_invalidating: usize,
    /// Host commands issued, host CMD_SYNCs issued.
    pub host_commands: usize,
    pub host_syncs: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

/// The host's view of one host command, computed once.
struct HostCmd {
    raw: RawCommand,
    scope: Scope,
    verdict: Verdict,
}

/// Judge one batch (module docs). Total: never panics, whatever the inputs.
pub fn judge(m: &Mapping, guest: &[RawCommand], f: &Forwarded) -> Judgement {
    let mut out = Judgement::default();
    let gctx = ScopeCtx::new(m.guest, Queue::NonSecure);
    let hctx = ScopeCtx::new(m.host, Queue::NonSecure);
    let hosts: Vec<HostCmd> = f
        .host
        .iter()
        .map(|&raw| HostCmd {
            raw,
            scope: required_scope(&hctx, raw),
            verdict: classify(&m.host, Queue::NonSecure, raw).verdict,
        })
        .collect();
    out.stats.host_commands = hosts.len();
    out.stats.host_syncs = hosts.iter().filter(|h| h.scope.is_sync()).count();

    // 4. Host legality; the first ILLEGAL host command stops the host queue (§7.1), so no
    // CMD_SYNC after it completes.
    let mut first_ill = hosts.len();
    for (j, h) in hosts.iter().enumerate() {
        match h.verdict {
            Verdict::Illegal(rule) => {
                first_ill = first_ill.min(j);
                out.findings.push(Finding {
                    rule: &fr::HOST_ILLEGAL,
                    guest: None,
                    host: Some(j),
                    message: format!(
                        "host command {j} {} is ILLEGAL on the host ({} {}): the host queue raises CERROR_ILL and stops",
                        describe_cmd(h.raw),
                        rule.id,
                        rule.section
                    ),
                });
            }
            Verdict::ReservedFieldSet => {
                let names: Vec<String> = res0_fields(&m.host, Queue::NonSecure, h.raw)
                    .iter()
                    .map(|p| format!("{} ({})", p.name, p.reason))
                    .collect();
                let res0 = classify(&m.host, Queue::NonSecure, h.raw).res0_set;
                let from_guest = guest.iter().any(|g| {
                    g.opcode() == h.raw.opcode() && g.as_u128() & res0 == h.raw.as_u128() & res0
                });
                out.findings.push(Finding {
                    rule: &fr::HOST_RES0,
                    guest: None,
                    host: Some(j),
                    message: format!(
                        "host command {j} {} sets RES0 bits for the host ({}){}: the host may raise CERROR_ILL (§4.1.5)",
                        describe_cmd(h.raw),
                        names.join(", "),
                        if from_guest {
                            "; they are the guest's own bits, passed through"
                        } else {
                            ""
                        }
                    ),
                });
            }
            Verdict::Legal => {}
        }
    }
    // Host commands before the last CMD_SYNC that completes.
    let completed = hosts[..first_ill]
        .iter()
        .rposition(|h| h.scope.is_sync())
        .unwrap_or(0);

    // 2. Confinement.
    confinement(m, &hosts, &mut out);

    // 3. The handled count and the error index.
    let n = guest.len();
    let count_msg = match f.error {
        Some(e) if e >= n => Some(format!(
            "error reported at index {e}, but the batch has {n} entries"
        )),
        Some(e) if f.handled != e => Some(format!(
            "error reported at index {e} with {} entries handled: the entries before the failing one are handled and the failing one is not counted, so handled must be {e}",
            f.handled
        )),
        None if f.handled != n => Some(format!(
            "no error reported but {} of {n} entries handled: without an error every entry is handled",
            f.handled
        )),
        _ => None,
    };
    if let Some(message) = count_msg {
        out.findings.push(Finding {
            rule: &fr::HANDLED_COUNT,
            guest: f.error,
            host: None,
            message,
        });
    }
    if let Some(e) = f.error.filter(|e| *e < n) {
        if !matches!(
            classify(&m.guest, Queue::NonSecure, guest[e]).verdict,
            Verdict::Illegal(_)
        ) {
            out.stats.rejected_legal += 1;
        }
    }

    // 1 and 3, per handled guest command.
    let marks: Vec<witness::AddrMark> = hosts
        .iter()
        .map(|h| witness::addr_mark(&m.host, h.raw))
        .collect();
    let host_asids: Vec<u32> = hosts.iter().map(|h| h.raw.get(l::ASID) as u32).collect();
    let host_ssids: Vec<u32> = hosts.iter().map(|h| h.raw.get(l::SSID) as u32).collect();
    let handled = f.handled.min(n);
    let mut gscopes = Vec::with_capacity(handled);
    for (i, &g) in guest[..handled].iter().enumerate() {
        let cls = classify(&m.guest, Queue::NonSecure, g);
        if let Verdict::Illegal(rule) = cls.verdict {
            out.findings.push(Finding {
                rule: &fr::GUEST_ILLEGAL,
                guest: Some(i),
                host: None,
                message: format!(
                    "guest command {i} {} is ILLEGAL for the guest ({} {}: {}) but was reported handled; it must be an error at index {i} so that the guest sees CERROR_ILL",
                    describe_cmd(g),
                    rule.id,
                    rule.section,
                    rule.summary
                ),
            });
            continue;
        }
        let eff = witness::effective(&m.guest, g);
        if matches!(
            eff.opcode(),
            Opcode::PriResp | Opcode::Resume | Opcode::StallTerm
        ) {
            silent_drop(m, i, eff, &hosts, &mut out);
        }
        let gs = required_scope(&gctx, g);
        if let Some(x) = uncovered(
            m,
            i,
            g,
            eff,
            &gs,
            &hosts,
            completed,
            &marks,
            &host_asids,
            &host_ssids,
        ) {
            out.findings.push(x);
        }
        gscopes.push(gs);
    }

    out.stats.over_invalidating = over_invalidating(m, &hosts, &gscopes);
    out
}

/// The first candidate entry `g` requires that the host does not cover (FWD-SCOPE), or covers
/// only with commands no completed CMD_SYNC follows (FWD-SYNC).
#[allow(clippy::too_many_arguments)]
fn uncovered(
    m: &Mapping,
    i: usize,
    g: RawCommand,
    eff: RawCommand,
    gs: &Scope,
    hosts: &[HostCmd],
    completed: usize,
    marks: &[witness::AddrMark],
    host_asids: &[u32],
    host_ssids: &[u32],
) -> Option<Finding> {
    if gs.is_empty() {
        return None;
    }
    let finding = |rule: &'static Rule,
                   what: String,
                   host_what: String,
                   grule: &Rule,
                   sync: bool| {
        let tail = if sync {
            "host commands cover it, but no host CMD_SYNC after them completes before the entry is reported handled".to_string()
        } else {
            "no host command is required to remove it".to_string()
        };
        Finding {
            rule,
            guest: Some(i),
            host: None,
            message: format!(
                "guest command {i} {} requires removing {what} ({} {}); on the host that is {host_what}: {tail}",
                describe_cmd(g),
                grule.id,
                grule.section
            ),
        }
    };
    // TLB entries.
    for t in witness::guest_tlb(&m.guest, eff, host_asids, marks) {
        let Some(grule) = gs.rule_for_tlb(&t) else {
            continue;
        };
        let Some(hts) = translate::host_tlb(m, &t) else {
            continue;
        };
        for ht in hts {
            let done = hosts[..completed].iter().any(|h| h.scope.requires_tlb(&ht));
            if !done {
                let any = hosts.iter().any(|h| h.scope.requires_tlb(&ht));
                let rule = if any { &fr::SYNC } else { &fr::SCOPE };
                return Some(finding(
                    rule,
                    translate::describe_tlb(&t),
                    translate::describe_tlb(&ht),
                    grule,
                    any,
                ));
            }
        }
    }
    for c in witness::guest_cfg(m, eff, host_ssids) {
        let Some(grule) = gs.rule_for_cfg(&c) else {
            continue;
        };
        let Some(hc) = translate::host_cfg(m, &c) else {
            continue;
        };
        if !hosts[..completed].iter().any(|h| h.scope.requires_cfg(&hc)) {
            let any = hosts.iter().any(|h| h.scope.requires_cfg(&hc));
            let rule = if any { &fr::SYNC } else { &fr::SCOPE };
            return Some(finding(
                rule,
                translate::describe_cfg(&c),
                translate::describe_cfg(&hc),
                grule,
                any,
            ));
        }
    }
    for a in witness::guest_atc(m, eff, marks) {
        let Some(grule) = gs.rule_for_atc(&a) else {
            continue;
        };
        let Some(ha) = translate::host_atc(m, &a) else {
            continue;
        };
        if !hosts[..completed].iter().any(|h| h.scope.requires_atc(&ha)) {
            let any = hosts.iter().any(|h| h.scope.requires_atc(&ha));
            let rule = if any { &fr::SYNC } else { &fr::SCOPE };
            return Some(finding(
                rule,
                translate::describe_atc(&a),
                translate::describe_atc(&ha),
                grule,
                any,
            ));
        }
    }
    None
}

/// FWD-CONFINE-VMID / FWD-CONFINE-SID: one finding per host command and rule.
fn confinement(m: &Mapping, hosts: &[HostCmd], out: &mut Judgement) {
    for (j, h) in hosts.iter().enumerate() {
        if let Verdict::Illegal(_) = h.verdict {
            continue;
        }
        let tlb = witness::host_tlb_reach(m, &m.host, h.raw)
            .into_iter()
            .find(|t| !translate::tlb_in_domain(m, t) && h.scope.requires_tlb(t));
        if let Some(t) = tlb {
            out.findings.push(Finding {
                rule: &fr::CONFINE_VMID,
                guest: None,
                host: Some(j),
                message: format!(
                    "host command {j} {} is required to remove {}, outside the guest's host VMID {:#x}: {}",
                    describe_cmd(h.raw),
                    translate::describe_tlb(&t),
                    m.host_vmid,
                    h.scope.describe()
                ),
            });
        }
        let cfg = witness::host_cfg_reach(m, &m.host, h.raw)
            .into_iter()
            .find(|c| !translate::cfg_in_domain(m, c) && h.scope.requires_cfg(c));
        let atc = witness::host_atc_reach(&m.host, h.raw)
            .into_iter()
            .find(|a| !translate::atc_in_domain(m, a) && h.scope.requires_atc(a));
        let what = cfg
            .map(|c| format!("is required to remove {}", translate::describe_cfg(&c)))
            .or_else(|| {
                atc.map(|a| format!("is required to remove {}", translate::describe_atc(&a)))
            })
            .or_else(|| {
                // Commands that act on a StreamID without removing cached entries (§4.2,
                // §4.5.2, §4.7.1, §4.7.2).
                let sid = h.raw.get(l::SID) as u32;
                matches!(
                    h.raw.opcode(),
                    Opcode::PriResp
                        | Opcode::Resume
                        | Opcode::StallTerm
                        | Opcode::PrefetchConfig
                        | Opcode::PrefetchAddr
                )
                .then_some(())
                .filter(|_| !m.is_psid(sid))
                .map(|_| format!("acts on StreamID {sid:#x}"))
            });
        if let Some(what) = what {
            let mut psids: Vec<String> = m.sids.iter().map(|(_, p)| format!("{p:#x}")).collect();
            psids.dedup();
            out.findings.push(Finding {
                rule: &fr::CONFINE_SID,
                guest: None,
                host: Some(j),
                message: format!(
                    "host command {j} {} {what}, outside the guest's StreamIDs [{}]",
                    describe_cmd(h.raw),
                    psids.join(", ")
                ),
            });
        }
    }
}

/// FWD-SILENT-DROP: a handled PRI_RESP/RESUME/STALL_TERM must appear on the host with the
/// physical StreamID and every other field as the guest gave it.
fn silent_drop(m: &Mapping, i: usize, eff: RawCommand, hosts: &[HostCmd], out: &mut Judgement) {
    let vsid = eff.get(l::SID) as u32;
    let want = m.psid(vsid).map(|p| eff.with(l::SID, u64::from(p)));
    let found = want.is_some_and(|w| {
        hosts
            .iter()
            .any(|h| witness::effective(&m.host, h.raw) == w)
    });
    if !found {
        out.findings.push(Finding {
            rule: &fr::SILENT_DROP,
            guest: Some(i),
            host: None,
            message: format!(
                "guest command {i} {} was reported handled but {}",
                describe_cmd(eff),
                match want {
                    None => format!(
                        "vSID {vsid:#x} has no physical StreamID, so it cannot have been honoured"
                    ),
                    Some(w) => format!("no host command {} was issued", describe_cmd(w)),
                }
            ),
        });
    }
}

/// Host commands whose scope reaches an entry of the guest that no handled guest command
/// required: legal over-invalidation, counted (never a finding, §4.4, §4.3).
fn over_invalidating(m: &Mapping, hosts: &[HostCmd], gscopes: &[Scope]) -> usize {
    let mut n = 0;
    for h in hosts {
        if h.scope.is_empty() || h.scope.is_sync() {
            continue;
        }
        // Entries of the guest the host command removes: its own witnesses inside the domain,
        // and the same at another address and ASID.
        let mut ts = witness::host_tlb_reach(m, &m.host, h.raw);
        ts.retain(|t| translate::tlb_in_domain(m, t) && t.stage != crate::tlb::EntryStage::S2);
        let moved: Vec<_> = ts
            .iter()
            .map(|t| crate::tlb::TlbTag {
                base: t.base ^ (1 << 40),
                asid: t.asid ^ 1,
                ..*t
            })
            .collect();
        ts.extend(moved);
        let over = ts.iter().any(|t| {
            h.scope.requires_tlb(t) && {
                // Back into the guest's view (S2P==0 guests tag nothing with a VMID).
                let g = crate::tlb::TlbTag {
                    stage: crate::tlb::EntryStage::S1,
                    vmid: 0,
                    ..*t
                };
                !gscopes.iter().any(|s| s.requires_tlb(&g))
            }
        });
        if over {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests;
