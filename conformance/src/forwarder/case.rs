//! The forwarder case format, `corpus/forwarder/*.case` (docs/case-format.md, "Forwarder
//! cases"): a virtual SMMU's setup, then guest command batches. One directive per line; `#`
//! starts a comment.
//!
//! ```text
//! case nsnh-all-becomes-nh-all
//! rules FWD-SCOPE FWD-CONFINE-VMID SCOPE-NSNH-ALL
//! doc §4.4.4.1: a guest NSNH_ALL reaches the host as NH_ALL for the guest's VMID
//! kills nsnh-all-raw
//! guest qemu-10.0-virt-9.1        # the virtual SMMU's ID registers: a named profile ...
//! host qemu-10.0 -ril             # ... with edits: +FEATURE, -FEATURE, idrN=HEX, aidr=HEX
//! vmid 5                          # the host VMID the guest runs under
//! sid 1 -> 0x21                   # vSID -> pSID, one line per device
//! cmd TLBI_NSNH_ALL               # a guest command (as in conformance cases), `*N` repeats
//! forward                         # hand the commands since the last `forward` over as a batch
//! ```

use crate::backend::VirtualSmmu;
use crate::case::parse::{num, parse_cmd};
use crate::case::{Case, CaseError};
use smmu_model::command::RawCommand;
use smmu_model::profile::{IdRegs, NAMED_PROFILES};
use smmu_model::rules::Rule;

/// Features a profile line can switch on (`+NAME`) or off (`-NAME`): (name, register, bit).
pub const FEATURES: &[(&str, Reg, u32)] = &[
    ("s2p", Reg::Idr0, 0),
    ("s1p", Reg::Idr0, 1),
    ("hyp", Reg::Idr0, 9),
    ("ats", Reg::Idr0, 10),
    ("asid16", Reg::Idr0, 12),
    ("msi", Reg::Idr0, 13),
    ("sev", Reg::Idr0, 14),
    ("pri", Reg::Idr0, 16),
    ("vmw", Reg::Idr0, 17),
    ("vmid16", Reg::Idr0, 18),
    ("mpam", Reg::Idr3, 7),
    ("ril", Reg::Idr3, 10),
    ("dpt", Reg::Idr3, 15),
    ("gran4k", Reg::Idr5, 4),
    ("gran16k", Reg::Idr5, 5),
    ("gran64k", Reg::Idr5, 6),
    ("ds", Reg::Idr5, 7),
    ("d128", Reg::Idr5, 8),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Idr0,
    Idr1,
    Idr3,
    Idr5,
    Aidr,
}

impl Reg {
    fn name(self) -> &'static str {
        match self {
            Reg::Idr0 => "idr0",
            Reg::Idr1 => "idr1",
            Reg::Idr3 => "idr3",
            Reg::Idr5 => "idr5",
            Reg::Aidr => "aidr",
        }
    }
    fn get(self, r: &IdRegs) -> u32 {
        match self {
            Reg::Idr0 => r.idr0,
            Reg::Idr1 => r.idr1,
            Reg::Idr3 => r.idr3,
            Reg::Idr5 => r.idr5,
            Reg::Aidr => r.aidr,
        }
    }
    fn slot(self, r: &mut IdRegs) -> &mut u32 {
        match self {
            Reg::Idr0 => &mut r.idr0,
            Reg::Idr1 => &mut r.idr1,
            Reg::Idr3 => &mut r.idr3,
            Reg::Idr5 => &mut r.idr5,
            Reg::Aidr => &mut r.aidr,
        }
    }
    const ALL: [Reg; 5] = [Reg::Idr0, Reg::Idr1, Reg::Idr3, Reg::Idr5, Reg::Aidr];
}

/// One guest batch: the commands and the `forward` line that hands them over.
#[derive(Clone, Debug)]
pub struct Batch {
    pub line: usize,
    /// (source line, command).
    pub cmds: Vec<(usize, RawCommand)>,
}

impl Batch {
    pub fn commands(&self) -> Vec<RawCommand> {
        self.cmds.iter().map(|(_, c)| *c).collect()
    }
}

#[derive(Clone, Debug)]
pub struct FwdCase {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub rules: Vec<&'static Rule>,
    pub doc: String,
    pub kills: Vec<String>,
    pub vsmmu: VirtualSmmu,
    pub batches: Vec<Batch>,
    /// Every step line, verbatim, for traces.
    pub lines: Vec<(usize, String)>,
}

impl FwdCase {
    /// `FILE#NAME`, the form `--case` takes.
    pub fn id(&self) -> String {
        format!("{}#{}", self.file, self.name)
    }

    /// The case as the coverage matrix sees it (rules, doc, kills; no device steps).
    pub fn as_case(&self) -> Case {
        Case {
            name: self.name.clone(),
            file: self.file.clone(),
            line: self.line,
            rules: self.rules.clone(),
            doc: self.doc.clone(),
            needs: Vec::new(),
            kills: self.kills.clone(),
            steps: Vec::new(),
        }
    }
}

type R<T> = Result<T, String>;

/// A profile line's arguments: `NAME [+FEATURE|-FEATURE|idrN=HEX|aidr=HEX]...`.
pub fn parse_profile(args: &[&str]) -> R<IdRegs> {
    let Some((name, edits)) = args.split_first() else {
        return Err("expected a profile name (see `smmu-conform profiles`)".into());
    };
    let mut regs = NAMED_PROFILES
        .iter()
        .find(|p| p.name == *name)
        .map(|p| p.regs)
        .ok_or_else(|| {
            let known: Vec<_> = NAMED_PROFILES.iter().map(|p| p.name).collect();
            format!("unknown profile '{name}' (known: {})", known.join(", "))
        })?;
    for e in edits {
        if let Some((k, v)) = e.split_once('=') {
            let reg = Reg::ALL
                .iter()
                .find(|r| r.name().eq_ignore_ascii_case(k))
                .ok_or_else(|| format!("unknown register '{k}' (idr0 idr1 idr3 idr5 aidr)"))?;
            let x = num(v)?;
            *reg.slot(&mut regs) =
                u32::try_from(x).map_err(|_| format!("{k}={v} is wider than 32 bits"))?;
            continue;
        }
        let (on, f) = match (e.strip_prefix('+'), e.strip_prefix('-')) {
            (Some(f), _) => (true, f),
            (_, Some(f)) => (false, f),
            _ => {
                return Err(format!(
                    "expected +FEATURE, -FEATURE or REG=HEX, found '{e}'"
                ))
            }
        };
        let &(_, reg, bit) = FEATURES.iter().find(|(n, _, _)| *n == f).ok_or_else(|| {
            let names: Vec<_> = FEATURES.iter().map(|(n, _, _)| *n).collect();
            format!("unknown feature '{f}' (known: {})", names.join(" "))
        })?;
        let slot = reg.slot(&mut regs);
        if on {
            *slot |= 1 << bit;
        } else {
            *slot &= !(1 << bit);
        }
    }
    Ok(regs)
}

/// The profile line for `regs`: the named profile it differs least from, then the differences
/// as `+FEATURE`/`-FEATURE` where they are named features, else the whole register in hex.
pub fn profile_line(regs: &IdRegs) -> String {
    let others = |p: &IdRegs| {
        (p.s_idr1, p.s_idr3, p.r_idr0, p.r_idr3)
            != (regs.s_idr1, regs.s_idr3, regs.r_idr0, regs.r_idr3)
    };
    let cost = |p: &IdRegs| {
        Reg::ALL
            .iter()
            .map(|r| (r.get(p) ^ r.get(regs)).count_ones() as usize)
            .sum::<usize>()
            + usize::from(others(p)) * 100
    };
    let best = NAMED_PROFILES
        .iter()
        .min_by_key(|p| cost(&p.regs))
        .expect("named profiles exist");
    let mut s = best.name.to_string();
    for r in Reg::ALL {
        let (a, b) = (r.get(&best.regs), r.get(regs));
        let mut diff = a ^ b;
        let mut named = Vec::new();
        for &(name, reg, bit) in FEATURES {
            if reg == r && diff & (1 << bit) != 0 {
                diff &= !(1 << bit);
                named.push(format!(
                    "{}{name}",
                    if b & (1 << bit) != 0 { '+' } else { '-' }
                ));
            }
        }
        if diff != 0 {
            s.push_str(&format!(" {}={b:#x}", r.name()));
        } else {
            for n in named {
                s.push(' ');
                s.push_str(&n);
            }
        }
    }
    s
}

/// Parse every case of a file.
pub fn parse_cases(file: &str, text: &str) -> Result<Vec<FwdCase>, CaseError> {
    let err = |line: usize, message: String| CaseError {
        file: file.to_string(),
        line,
        message,
    };
    struct Open {
        case: FwdCase,
        guest: bool,
        host: bool,
        vmid: bool,
        pending: Vec<(usize, RawCommand)>,
    }
    let mut done: Vec<FwdCase> = Vec::new();
    let mut cur: Option<Open> = None;
    let finish = |o: Open| -> Result<FwdCase, CaseError> {
        let c = &o.case;
        if c.rules.is_empty() {
            return Err(err(
                c.line,
                format!("case '{}' has no `rules` line", c.name),
            ));
        }
        if c.doc.is_empty() {
            return Err(err(c.line, format!("case '{}' has no `doc` line", c.name)));
        }
        for (ok, what) in [(o.guest, "guest"), (o.host, "host"), (o.vmid, "vmid")] {
            if !ok {
                return Err(err(
                    c.line,
                    format!("case '{}' has no `{what}` line", c.name),
                ));
            }
        }
        if let Some((l, _)) = o.pending.first() {
            return Err(err(
                *l,
                "`cmd` lines must be followed by `forward` before the case ends".into(),
            ));
        }
        if c.batches.is_empty() {
            return Err(err(c.line, format!("case '{}' forwards nothing", c.name)));
        }
        Ok(o.case)
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let mut words = text.split_whitespace();
        let kw = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        if kw == "case" {
            let [name] = args.as_slice() else {
                return Err(err(line, "expected `case NAME`".into()));
            };
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(err(
                    line,
                    format!("case name '{name}' may use only letters, digits, '-', '_' and '.'"),
                ));
            }
            if let Some(o) = cur.take() {
                done.push(finish(o)?);
            }
            if done.iter().any(|c| c.name == *name) {
                return Err(err(
                    line,
                    format!("case '{name}' is defined twice in this file"),
                ));
            }
            cur = Some(Open {
                case: FwdCase {
                    name: name.to_string(),
                    file: file.to_string(),
                    line,
                    rules: Vec::new(),
                    doc: String::new(),
                    kills: Vec::new(),
                    vsmmu: VirtualSmmu::default(),
                    batches: Vec::new(),
                    lines: Vec::new(),
                },
                guest: false,
                host: false,
                vmid: false,
                pending: Vec::new(),
            });
            continue;
        }
        let Some(o) = cur.as_mut() else {
            return Err(err(
                line,
                format!("'{kw}' before the first `case NAME` line"),
            ));
        };
        let started = !o.case.batches.is_empty() || !o.pending.is_empty();
        let header = matches!(kw, "rules" | "doc" | "kills");
        let setup = matches!(kw, "guest" | "host" | "vmid" | "sid");
        if header && !o.case.lines.is_empty() {
            return Err(err(
                line,
                format!("'{kw}' is a header line: put it before the setup and commands"),
            ));
        }
        if setup && started {
            return Err(err(
                line,
                format!("'{kw}' sets up the virtual SMMU: put it before the first `cmd`"),
            ));
        }
        let fail = |m: String| err(line, m);
        match kw {
            "rules" => {
                if args.is_empty() {
                    return Err(fail("`rules` needs at least one rule id".into()));
                }
                for id in &args {
                    let r = smmu_model::rules::by_id(id).ok_or_else(|| {
                        fail(format!(
                            "unknown rule id '{id}' (see `smmu-conform rules` or docs/rules.md)"
                        ))
                    })?;
                    o.case.rules.push(r);
                }
            }
            "doc" => o.case.doc = text["doc".len()..].trim().to_string(),
            "kills" => o.case.kills.extend(args.iter().map(|s| s.to_string())),
            _ => {
                match kw {
                    "guest" => {
                        o.case.vsmmu.guest = parse_profile(&args).map_err(fail)?;
                        o.guest = true;
                    }
                    "host" => {
                        o.case.vsmmu.host = parse_profile(&args).map_err(fail)?;
                        o.host = true;
                    }
                    "vmid" => {
                        let [v] = args.as_slice() else {
                            return Err(fail("expected `vmid N`".into()));
                        };
                        let v = num(v).map_err(fail)?;
                        o.case.vsmmu.host_vmid = u16::try_from(v)
                            .map_err(|_| fail(format!("vmid {v:#x} does not fit 16 bits")))?;
                        o.vmid = true;
                    }
                    "sid" => {
                        let (v, p) = match args.as_slice() {
                            [v, "->", p] => (v, p),
                            _ => return Err(fail("expected `sid VSID -> PSID`".into())),
                        };
                        let id = |s: &str| -> R<u32> {
                            let x = num(s)?;
                            u32::try_from(x).map_err(|_| format!("StreamID {s} is wider than 32 bits"))
                        };
                        let (v, p) = (id(v).map_err(fail)?, id(p).map_err(fail)?);
                        o.case.vsmmu.sids.push((v, p));
                    }
                    "cmd" => {
                        let (args, count) = match args.last().and_then(|a| a.strip_prefix('*')) {
                            Some(n) => {
                                let n = num(n).map_err(fail)?;
                                if n == 0 || n > 4096 {
                                    return Err(fail(format!("repeat count {n} is not in 1..=4096")));
                                }
                                (&args[..args.len() - 1], n as usize)
                            }
                            None => (&args[..], 1),
                        };
                        let c = parse_cmd(args).map_err(fail)?;
                        for _ in 0..count {
                            o.pending.push((line, c));
                        }
                    }
                    "forward" => {
                        if !args.is_empty() {
                            return Err(fail("`forward` takes no arguments".into()));
                        }
                        let cmds = std::mem::take(&mut o.pending);
                        o.case.batches.push(Batch { line, cmds });
                    }
                    _ => {
                        return Err(fail(format!(
                            "unknown directive '{kw}' (forwarder cases: rules doc kills guest host vmid sid cmd forward)"
                        )))
                    }
                }
                o.case.lines.push((line, text.to_string()));
            }
        }
    }
    if let Some(o) = cur.take() {
        done.push(finish(o)?);
    }
    if done.is_empty() {
        return Err(err(1, "no `case NAME` line in this file".into()));
    }
    Ok(done)
}

/// A forwarder case as text (for fuzzing findings): header, setup, one batch.
pub fn case_text(
    name: &str,
    rule: &str,
    doc: &str,
    comments: &[String],
    vs: &VirtualSmmu,
    batch: &[RawCommand],
) -> String {
    let mut s = String::new();
    for c in comments {
        for l in c.lines() {
            s.push_str(&format!("# {l}\n"));
        }
    }
    s.push_str(&format!("case {name}\nrules {rule}\ndoc {doc}\n"));
    s.push_str(&format!("guest {}\n", profile_line(&vs.guest)));
    s.push_str(&format!("host {}\n", profile_line(&vs.host)));
    s.push_str(&format!("vmid {:#x}\n", vs.host_vmid));
    for (v, p) in &vs.sids {
        s.push_str(&format!("sid {v:#x} -> {p:#x}\n"));
    }
    for c in batch {
        s.push_str(&crate::gen::render_cmd(*c, 1));
        s.push('\n');
    }
    s.push_str("forward\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "\
# a comment
case a
rules FWD-SCOPE
doc d
guest qemu-10.0-virt-9.1 -ril +ats idr1=0x02730010
host qemu-10.0
vmid 5
sid 1 -> 0x21
cmd TLBI_NH_ALL *2
cmd raw 0x30 0
forward
cmd TLBI_NSNH_ALL
forward
";

    #[test]
    fn parses_and_renders() {
        let cs = parse_cases("f.case", OK).unwrap();
        let c = &cs[0];
        assert_eq!(c.batches.len(), 2);
        assert_eq!(c.batches[0].cmds.len(), 3);
        assert_eq!(c.vsmmu.host_vmid, 5);
        assert_eq!(c.vsmmu.sids, vec![(1, 0x21)]);
        assert_eq!(c.vsmmu.guest.idr3 & (1 << 10), 0);
        assert_ne!(c.vsmmu.guest.idr0 & (1 << 10), 0);
        let text = case_text(
            "x",
            "FWD-SCOPE",
            "d",
            &[],
            &c.vsmmu,
            &c.batches[0].commands(),
        );
        let back = parse_cases("g.case", &text).unwrap();
        assert_eq!(back[0].vsmmu, c.vsmmu);
        assert_eq!(back[0].batches[0].commands(), c.batches[0].commands());
    }

    #[test]
    fn profile_lines_round_trip() {
        for p in NAMED_PROFILES {
            for &(name, reg, bit) in FEATURES {
                let mut r = p.regs;
                *reg.slot(&mut r) ^= 1 << bit;
                let line = profile_line(&r);
                let words: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(
                    parse_profile(&words).unwrap(),
                    r,
                    "{} {name}: {line}",
                    p.name
                );
            }
            assert_eq!(profile_line(&p.regs), p.name);
        }
    }

    #[test]
    fn errors_name_the_line() {
        for (text, needle) in [
            ("case a\nrules NOPE\n", ":2: unknown rule id"),
            ("case a\nrules FWD-SCOPE\ndoc d\nguest nope\n", ":4: unknown profile 'nope'"),
            ("case a\nrules FWD-SCOPE\ndoc d\nguest qemu-10.0 +zz\n", ":4: unknown feature 'zz'"),
            ("case a\nrules FWD-SCOPE\ndoc d\nsid 1 2\n", ":4: expected `sid VSID -> PSID`"),
            ("case a\nrules FWD-SCOPE\ndoc d\nguest qemu-10.0\nhost qemu-10.0\nvmid 1\ncmd TLBI_NH_ALL\n", ":7: `cmd` lines must be followed by `forward`"),
            ("case a\nrules FWD-SCOPE\ndoc d\nhost qemu-10.0\nvmid 1\ncmd TLBI_NH_ALL\nforward\n", ":1: case 'a' has no `guest` line"),
            ("case a\nrules FWD-SCOPE\ndoc d\nguest qemu-10.0\nhost qemu-10.0\nvmid 1\ncmd SYNC\nforward\nvmid 2\n", ":9: 'vmid' sets up"),
            ("case a\nrules FWD-SCOPE\ndoc d\nfrob\n", ":4: unknown directive 'frob'"),
        ] {
            let e = parse_cases("f.case", text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} does not contain {needle}");
        }
    }
}
