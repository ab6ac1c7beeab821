//! `smmu-conform forward`: one guest batch on one forwarder, every host command it issued, what
//! it returned, and the oracle's verdict. A debugging aid for a forwarder under work (the
//! kernel especially: a batch costs one round trip once the guest is up).

use super::case::profile_line;
use super::mapping;
use crate::backend::{ForwardResult, Forwarder, HarnessError, VirtualSmmu};
use smmu_model::command::RawCommand;
use smmu_model::forward::{judge, Forwarded, Judgement};
use smmu_model::oracle::describe_cmd;

/// What one batch did, judged.
pub struct Outcome {
    pub effective: VirtualSmmu,
    pub result: ForwardResult,
    pub judgement: Judgement,
}

/// Set up `vs`, forward `batch`, judge with the mapping the forwarder ended up with.
pub fn forward_once(
    fwd: &mut dyn Forwarder,
    vs: &VirtualSmmu,
    batch: &[RawCommand],
) -> Result<Outcome, HarnessError> {
    let effective = fwd.setup(vs)?;
    let result = fwd.forward(batch)?;
    let judgement = judge(
        &mapping(&effective),
        batch,
        &Forwarded {
            host: &result.host_commands,
            error: result.error.as_ref().map(|(i, _)| *i),
            handled: result.handled,
        },
    );
    Ok(Outcome {
        effective,
        result,
        judgement,
    })
}

/// The report of [`forward_once`] as text.
pub fn text(fwd_name: &str, batch: &[RawCommand], o: &Outcome) -> String {
    let mut s = format!("forwarder {fwd_name}\n");
    let e = &o.effective;
    s.push_str(&format!("guest {}\n", profile_line(&e.guest)));
    s.push_str(&format!("host {}\n", profile_line(&e.host)));
    s.push_str(&format!("vmid {:#x}\n", e.host_vmid));
    for (v, p) in &e.sids {
        s.push_str(&format!("sid {v:#x} -> {p:#x}\n"));
    }
    for (i, c) in batch.iter().enumerate() {
        s.push_str(&format!(
            "guest {i}: {:#018x} {:#018x}  {}\n",
            c.0[0],
            c.0[1],
            describe_cmd(*c)
        ));
    }
    for (i, c) in o.result.host_commands.iter().enumerate() {
        s.push_str(&format!(
            "  host {i}: {:#018x} {:#018x}  {}\n",
            c.0[0],
            c.0[1],
            describe_cmd(*c)
        ));
    }
    s.push_str(&format!(
        "handled {} of {}{}\n",
        o.result.handled,
        batch.len(),
        match &o.result.error {
            Some((i, why)) => format!(", error at {i}: {why}"),
            None => String::new(),
        }
    ));
    if o.judgement.findings.is_empty() {
        s.push_str("verdict: conformant\n");
    } else {
        for f in &o.judgement.findings {
            s.push_str(&format!(
                "FAIL {} ({}): {}\n",
                f.rule.id, f.rule.section, f.message
            ));
        }
    }
    s
}
