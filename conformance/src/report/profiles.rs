//! `smmu-conform profiles`: the named profiles, their raw ID registers and what the model reads
//! from them.

use crate::target::DEFAULT_PROFILE;
use serde::Serialize;
use smmu_model::profile::{IdRegs, Profile, NAMED_PROFILES};
use std::fmt::Write as _;

#[derive(Debug, Serialize)]
pub struct ProfileReport {
    pub name: &'static str,
    pub description: &'static str,
    pub default: bool,
    /// Raw registers, hex.
    pub regs: Vec<(&'static str, String)>,
    /// The parsed features, as the model sees them.
    pub features: Profile,
}

fn regs_list(r: &IdRegs) -> Vec<(&'static str, String)> {
    [
        ("IDR0", r.idr0),
        ("IDR1", r.idr1),
        ("IDR3", r.idr3),
        ("IDR5", r.idr5),
        ("AIDR", r.aidr),
        ("S_IDR1", r.s_idr1),
        ("S_IDR3", r.s_idr3),
        ("R_IDR0", r.r_idr0),
        ("R_IDR3", r.r_idr3),
    ]
    .into_iter()
    .map(|(n, v)| (n, format!("0x{v:08x}")))
    .collect()
}

pub fn reports() -> Vec<ProfileReport> {
    NAMED_PROFILES
        .iter()
        .map(|p| ProfileReport {
            name: p.name,
            description: p.description,
            default: p.name == DEFAULT_PROFILE,
            regs: regs_list(&p.regs),
            features: Profile::from_regs(p.regs),
        })
        .collect()
}

/// The single-bit features that are set, by their register field names.
pub fn feature_names(p: &Profile) -> Vec<&'static str> {
    [
        ("S1P", p.s1p),
        ("S2P", p.s2p),
        ("COHACC", p.cohacc),
        ("BTM", p.btm),
        ("Hyp", p.hyp),
        ("ATS", p.ats),
        ("NS1ATS", p.ns1ats),
        ("ASID16", p.asid16),
        ("MSI", p.msi),
        ("SEV", p.sev),
        ("ATOS", p.atos),
        ("PRI", p.pri),
        ("VMW", p.vmw),
        ("VMID16", p.vmid16),
        ("CD2L", p.cd2l),
        ("TERM_MODEL", p.term_model),
        ("RME_IMPL", p.rme_impl),
        ("ECMDQ", p.ecmdq),
        ("HAD", p.had),
        ("MPAM", p.mpam),
        ("FWB", p.fwb),
        ("RIL", p.ril),
        ("DPT", p.dpt),
        ("GRAN4K", p.gran4k),
        ("GRAN16K", p.gran16k),
        ("GRAN64K", p.gran64k),
        ("DS", p.ds),
        ("D128", p.d128),
        ("SECURE_IMPL", p.secure_impl),
        ("SEL2", p.sel2),
        ("SAMS", p.sams),
        ("R_ATS", p.r_ats),
        ("R_DPT", p.r_dpt),
    ]
    .into_iter()
    .filter_map(|(n, on)| on.then_some(n))
    .collect()
}

/// One profile per block, for people.
pub fn text() -> String {
    let mut s = String::new();
    for (i, r) in reports().iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let p = &r.features;
        let default = if r.default { "  (default)" } else { "" };
        let _ = writeln!(s, "{}{default}", r.name);
        let _ = writeln!(s, "  {}", r.description);
        let regs: Vec<String> = r.regs.iter().map(|(n, v)| format!("{n} {v}")).collect();
        let _ = writeln!(s, "  registers  {}", regs[..5].join("  "));
        let _ = writeln!(s, "             {}", regs[5..].join("  "));
        let _ = writeln!(s, "  features   {}", feature_names(p).join(" "));
        let _ = writeln!(
            s,
            "  fields     SMMUv3.{} TTF=0b{:02b} HTTU=0b{:02b} STALL_MODEL=0b{:02b} ST_LEVEL=0b{:02b} BBML={}",
            p.arch_minor, p.ttf, p.httu, p.stall_model, p.st_level, p.bbml
        );
        let _ = writeln!(
            s,
            "             SIDSIZE={} SSIDSIZE={} CMDQS={} EVENTQS={} OAS={} bits VA={} bits",
            p.sidsize,
            p.ssidsize,
            p.cmdqs,
            p.eventqs,
            p.oas_bits,
            p.vas_bits()
        );
    }
    s
}

/// A JSON array of every profile.
pub fn json() -> String {
    serde_json::to_string_pretty(&reports()).unwrap_or_default()
}
