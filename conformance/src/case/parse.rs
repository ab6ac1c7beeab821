//! The case-file parser. One line, one directive; `#` starts a comment; a file holds any number
//! of cases, each starting at its `case NAME` line (docs/case-format.md).

use super::*;
use smmu_model::command::layout::{self, Field};
use smmu_model::command::opcode::ARCHITECTED;
use smmu_model::command::Opcode;

type R<T> = Result<T, String>;

/// Parse every case of a file. `file` is the name used in messages and reproducers.
pub fn parse_cases(file: &str, text: &str) -> Result<Vec<Case>, CaseError> {
    let mut cases: Vec<Case> = Vec::new();
    let err = |line: usize, message: String| CaseError {
        file: file.to_string(),
        line,
        message,
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
            if cases.iter().any(|c| c.name == *name) {
                return Err(err(
                    line,
                    format!("case '{name}' is defined twice in this file"),
                ));
            }
            cases.push(Case {
                name: name.to_string(),
                file: file.to_string(),
                line,
                rules: Vec::new(),
                doc: String::new(),
                needs: Vec::new(),
                kills: Vec::new(),
                steps: Vec::new(),
            });
            continue;
        }
        let Some(case) = cases.last_mut() else {
            return Err(err(
                line,
                format!("'{kw}' before the first `case NAME` line"),
            ));
        };
        let header = matches!(kw, "rules" | "doc" | "needs" | "kills");
        if header && !case.steps.is_empty() {
            return Err(err(
                line,
                format!("'{kw}' is a header line: put it before the first step of the case"),
            ));
        }
        match kw {
            "rules" => {
                if args.is_empty() {
                    return Err(err(line, "`rules` needs at least one rule id".into()));
                }
                for id in &args {
                    let r = smmu_model::rules::by_id(id).ok_or_else(|| {
                        err(
                            line,
                            format!(
                                "unknown rule id '{id}' (see `smmu-conform rules` or docs/rules.md)"
                            ),
                        )
                    })?;
                    case.rules.push(r);
                }
            }
            "doc" => {
                case.doc = text["doc".len()..].trim().to_string();
            }
            "needs" => {
                for a in &args {
                    let (absent, name) = match a.strip_prefix("no-") {
                        Some(n) => (true, n),
                        None => (false, *a),
                    };
                    let feature = Feature::from_name(name).ok_or_else(|| {
                        let known: Vec<_> = Feature::ALL.iter().map(|f| f.name()).collect();
                        err(
                            line,
                            format!(
                                "unknown feature '{name}' in `needs` (known, each also as no-NAME: {})",
                                known.join(" ")
                            ),
                        )
                    })?;
                    case.needs.push(Need { feature, absent });
                }
            }
            "kills" => case.kills.extend(args.iter().map(|s| s.to_string())),
            _ => {
                let step = parse_step(kw, &args).map_err(|m| err(line, m))?;
                case.steps.push(Line {
                    line,
                    text: text.to_string(),
                    step,
                });
            }
        }
    }
    for c in &cases {
        if c.rules.is_empty() {
            return Err(err(
                c.line,
                format!("case '{}' has no `rules` line", c.name),
            ));
        }
        if c.doc.is_empty() {
            return Err(err(c.line, format!("case '{}' has no `doc` line", c.name)));
        }
        if let Some(l) = c.steps.last() {
            if matches!(l.step, CaseStep::Cmd(..)) {
                return Err(err(
                    l.line,
                    "`cmd` lines must be followed by `submit` before the case ends".into(),
                ));
            }
        } else {
            return Err(err(c.line, format!("case '{}' has no steps", c.name)));
        }
    }
    if cases.is_empty() {
        return Err(err(1, "no `case NAME` line in this file".into()));
    }
    Ok(cases)
}

/// A number: 0x-prefixed hex, 0b binary or decimal; `_` separators allowed.
pub fn num(s: &str) -> R<u64> {
    let t = s.replace('_', "");
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else if let Some(b) = t.strip_prefix("0b") {
        u64::from_str_radix(b, 2)
    } else {
        t.parse()
    };
    r.map_err(|_| format!("'{s}' is not a number (hex as 0x..., binary as 0b..., or decimal)"))
}

/// `key=value` arguments and bare flags, checked against the keys and flags a directive takes.
struct Args<'a> {
    kv: Vec<(&'a str, &'a str)>,
    flags: Vec<&'a str>,
}

impl<'a> Args<'a> {
    fn new(args: &[&'a str], keys: &[&str], flags: &[&str], what: &str) -> R<Args<'a>> {
        let mut a = Args {
            kv: Vec::new(),
            flags: Vec::new(),
        };
        for s in args {
            if let Some((k, v)) = s.split_once('=') {
                if !keys.contains(&k) {
                    return Err(format!(
                        "`{what}` takes no '{k}=' (it takes: {})",
                        keys.join("= ") + "="
                    ));
                }
                if a.kv.iter().any(|(k2, _)| *k2 == k) {
                    return Err(format!("'{k}=' given twice"));
                }
                a.kv.push((k, v));
            } else if flags.contains(s) {
                a.flags.push(s);
            } else {
                return Err(format!(
                    "`{what}`: unexpected '{s}' (flags: {})",
                    if flags.is_empty() {
                        "none".to_string()
                    } else {
                        flags.join(" ")
                    }
                ));
            }
        }
        Ok(a)
    }
    fn get(&self, k: &str) -> Option<&'a str> {
        self.kv.iter().find(|(k2, _)| *k2 == k).map(|(_, v)| *v)
    }
    fn req(&self, k: &str, what: &str) -> R<&'a str> {
        self.get(k).ok_or_else(|| format!("`{what}` needs {k}="))
    }
    fn num(&self, k: &str, what: &str) -> R<u64> {
        num(self.req(k, what)?)
    }
    fn num_or(&self, k: &str, d: u64) -> R<u64> {
        self.get(k).map(num).unwrap_or(Ok(d))
    }
    fn flag(&self, f: &str) -> bool {
        self.flags.contains(&f)
    }
}

fn u16_of(v: u64, what: &str) -> R<u16> {
    u16::try_from(v).map_err(|_| format!("{what}={v:#x} does not fit 16 bits"))
}

fn stage(s: &str) -> R<Stage> {
    match s {
        "s1" => Ok(Stage::S1),
        "s2" => Ok(Stage::S2),
        _ => Err(format!("expected stage s1 or s2, found '{s}'")),
    }
}

fn name_and_rest<'a>(args: &'a [&'a str], what: &str) -> R<(&'a str, &'a [&'a str])> {
    match args.split_first() {
        Some((n, rest)) if !n.contains('=') => Ok((n, rest)),
        _ => Err(format!("`{what}` needs a stream name first")),
    }
}

fn parse_step(kw: &str, args: &[&str]) -> R<CaseStep> {
    Ok(match kw {
        "stream" => {
            let (name, rest) = name_and_rest(args, kw)?;
            let a = Args::new(
                rest,
                &["sid", "asid", "vmid", "granule"],
                &["s1", "s2", "nested", "el2"],
                kw,
            )?;
            let el2 = a.flag("el2");
            let kinds: Vec<&str> = a.flags.iter().copied().filter(|f| *f != "el2").collect();
            let kind = match kinds.as_slice() {
                ["s1"] => StreamKind::S1,
                ["s2"] => StreamKind::S2,
                ["nested"] => StreamKind::Nested,
                _ => return Err("`stream` needs exactly one of s1, s2, nested".into()),
            };
            if el2 && kind != StreamKind::S1 {
                return Err("`el2` streams are stage-1 only (STRW applies to Config = S1 translate)".into());
            }
            let sid = a.num("sid", kw)?;
            let granule = match a.get("granule").unwrap_or("4k") {
                "4k" => Granule::K4,
                "16k" => Granule::K16,
                "64k" => Granule::K64,
                g => return Err(format!("granule '{g}': expected 4k, 16k or 64k")),
            };
            if kind == StreamKind::S2 && granule != Granule::K4 {
                return Err("stage-2-only streams use the 4k granule (the builder's S2 tables)".into());
            }
            CaseStep::Stream {
                name: name.to_string(),
                sid: u32::try_from(sid).map_err(|_| format!("sid={sid:#x} does not fit 32 bits"))?,
                kind,
                asid: u16_of(a.num_or("asid", 0)?, "asid")?,
                vmid: u16_of(a.num_or("vmid", 0)?, "vmid")?,
                granule,
                el2,
            }
        }
        "map" | "remap" => {
            let (name, rest) = name_and_rest(args, kw)?;
            let (st, rest) = rest
                .split_first()
                .ok_or_else(|| format!("`{kw}` needs a stage (s1 or s2) after the stream"))?;
            let a = Args::new(
                rest,
                &["va", "ipa", "page", "pa", "level"],
                &["ng", "ro", "xn", "noaf"],
                kw,
            )?;
            let va = match (a.get("va"), a.get("ipa")) {
                (Some(v), None) | (None, Some(v)) => num(v)?,
                _ => return Err(format!("`{kw}` needs one of va= or ipa=")),
            };
            let target = match (a.get("page"), a.get("pa")) {
                (Some(p), None) => Target::Page(p.to_string()),
                (None, Some(p)) => Target::Addr(num(p)?),
                _ => return Err(format!("`{kw}` needs one of page=NAME or pa=ADDR")),
            };
            CaseStep::Map {
                stream: name.to_string(),
                stage: stage(st)?,
                va,
                target,
                level: level(a.num_or("level", 3)?)?,
                attrs: MapAttrs {
                    ng: a.flag("ng"),
                    ro: a.flag("ro"),
                    xn: a.flag("xn"),
                    noaf: a.flag("noaf"),
                },
                remap: kw == "remap",
            }
        }
        "unmap" => {
            let (name, rest) = name_and_rest(args, kw)?;
            let (st, rest) = rest
                .split_first()
                .ok_or_else(|| "`unmap` needs a stage (s1 or s2) after the stream".to_string())?;
            let a = Args::new(rest, &["va", "ipa", "level"], &[], kw)?;
            let va = match (a.get("va"), a.get("ipa")) {
                (Some(v), None) | (None, Some(v)) => num(v)?,
                _ => return Err("`unmap` needs one of va= or ipa=".into()),
            };
            CaseStep::Unmap {
                stream: name.to_string(),
                stage: stage(st)?,
                va,
                level: level(a.num_or("level", 3)?)?,
            }
        }
        "write" => match args {
            [pa, v] => CaseStep::Write {
                pa: num(pa)?,
                value: num(v)?,
            },
            _ => return Err("expected `write PA VALUE`".into()),
        },
        "enable" if args.is_empty() => CaseStep::Enable(true),
        "disable" if args.is_empty() => CaseStep::Enable(false),
        "enable" | "disable" => return Err(format!("`{kw}` takes no arguments")),
        "cd" => {
            let (name, rest) = name_and_rest(args, kw)?;
            let a = Args::new(rest, &["asid", "tables"], &["fresh"], kw)?;
            if a.kv.is_empty() {
                return Err("`cd` needs asid=N and/or tables=STREAM".into());
            }
            CaseStep::Cd {
                stream: name.to_string(),
                asid: a.get("asid").map(num).transpose()?.map(|v| u16_of(v, "asid")).transpose()?,
                tables: a.get("tables").map(str::to_string),
                fresh: a.flag("fresh"),
            }
        }
        "ste" => {
            let edit = match args {
                [_, "abort"] => SteEdit::Abort,
                [_, "bypass"] => SteEdit::Bypass,
                [_, "invalid"] => SteEdit::Invalid,
                [_, "restore"] => SteEdit::Restore,
                _ => return Err("expected `ste STREAM abort|bypass|invalid|restore`".into()),
            };
            CaseStep::Ste {
                stream: args[0].to_string(),
                edit,
            }
        }
        "cmd" => match args.split_last() {
            Some((last, init)) if last.starts_with('*') => {
                let n = num(&last[1..])?;
                if n == 0 || n > 1024 {
                    return Err(format!("repeat '{last}': 1 to 1024 times"));
                }
                CaseStep::Cmd(parse_cmd(init)?, n as usize)
            }
            _ => CaseStep::Cmd(parse_cmd(args)?, 1),
        },
        "submit" if args.is_empty() => CaseStep::Submit,
        "submit" => return Err("`submit` takes no arguments (put commands on `cmd` lines)".into()),
        "ack" => {
            let mut drop = false;
            let mut replace = None;
            let mut rest = args;
            while let Some((w, tail)) = rest.split_first() {
                match *w {
                    "drop" => {
                        drop = true;
                        rest = tail;
                    }
                    "replace" => {
                        replace = Some(parse_cmd(tail)?);
                        rest = &[];
                    }
                    _ => return Err(format!("`ack`: unexpected '{w}' (expected `ack [drop] [replace OPNAME FIELD=VALUE...]`)")),
                }
            }
            CaseStep::Ack { replace, drop }
        }
        "probe" => {
            let (name, rest) = name_and_rest(args, kw)?;
            let a = Args::new(rest, &["va"], &["write"], kw)?;
            CaseStep::Probe {
                stream: name.to_string(),
                va: a.num("va", kw)?,
                write: a.flag("write"),
            }
        }
        "expect" => {
            if args.is_empty() {
                return Err("`expect` needs outcomes: PAGE, pa=ADDR, fault, fault=EVENT or abort".into());
            }
            let mut v = Vec::new();
            for a in args {
                v.push(match *a {
                    "fault" => ExpectTok::Fault(None),
                    "abort" => ExpectTok::Abort,
                    "or" => continue,
                    s => match s.split_once('=') {
                        Some(("fault", e)) => ExpectTok::Fault(Some(
                            u8::try_from(num(e)?).map_err(|_| format!("event '{e}' is not 8 bits"))?,
                        )),
                        Some(("pa", p)) => ExpectTok::Addr(num(p)?),
                        Some(_) => return Err(format!("`expect`: unexpected '{s}'")),
                        None => ExpectTok::Page(s.to_string()),
                    },
                });
            }
            CaseStep::Expect(v)
        }
        _ => {
            return Err(format!(
                "unknown directive '{kw}' (see docs/case-format.md: stream map remap unmap write enable \
                 disable cd ste cmd submit ack probe expect)"
            ))
        }
    })
}

fn level(v: u64) -> R<u8> {
    if v <= 3 {
        Ok(v as u8)
    } else {
        Err(format!("level={v}: levels are 0 to 3"))
    }
}

/// The opcode named NAME or CMD_NAME (case-insensitive).
pub fn opcode_by_name(s: &str) -> Option<Opcode> {
    let up = s.to_ascii_uppercase();
    let full = if up.starts_with("CMD_") {
        up
    } else {
        format!("CMD_{up}")
    };
    ARCHITECTED.iter().find(|e| e.2 == full).map(|e| e.1)
}

/// `OPNAME FIELD=VALUE ...` or `raw W0 W1`. Fields by their spec names in
/// `smmu_model::command::layout` (case-insensitive); address fields take the full address, which
/// must be aligned to the field's lowest address bit.
pub fn parse_cmd(args: &[&str]) -> R<RawCommand> {
    let Some((op, rest)) = args.split_first() else {
        return Err("expected OPNAME FIELD=VALUE... or raw W0 W1".into());
    };
    if *op == "raw" {
        let [w0, w1] = rest else {
            return Err("expected `raw W0 W1` (DW0 then DW1)".into());
        };
        return Ok(RawCommand::new(num(w0)?, num(w1)?));
    }
    let opcode = opcode_by_name(op).ok_or_else(|| {
        format!(
            "unknown opcode '{op}' (spec names without CMD_, e.g. TLBI_NH_VA; `raw W0 W1` for any encoding)"
        )
    })?;
    let fields = layout::fields(opcode);
    let mut c = RawCommand::new(opcode.value() as u64, 0);
    for a in rest {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("expected FIELD=VALUE, found '{a}'"))?;
        let f: &Field = fields
            .iter()
            .skip(1)
            .find(|f| f.name.eq_ignore_ascii_case(k))
            .ok_or_else(|| {
                let names: Vec<_> = fields.iter().skip(1).map(|f| f.name).collect();
                format!(
                    "{} has no field '{k}' (fields: {})",
                    opcode.name(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(" ")
                    }
                )
            })?;
        let v = num(v)?;
        let w = f.width();
        if f.shift > 0 {
            let low = (1u64 << f.shift) - 1;
            if v & low != 0 {
                return Err(format!(
                    "{k}={v:#x} is not aligned: the command holds {}[{}:{}]",
                    f.name,
                    f.shift as u32 + w - 1,
                    f.shift
                ));
            }
            let field_v = v >> f.shift;
            if w < 64 && field_v >> w != 0 {
                return Err(format!(
                    "{k}={v:#x} does not fit {}[{}:{}]",
                    f.name,
                    f.shift as u32 + w - 1,
                    f.shift
                ));
            }
            c = c.with(*f, field_v);
        } else {
            if w < 64 && v >> w != 0 {
                return Err(format!(
                    "{k}={v:#x} does not fit the {w}-bit field {}",
                    f.name
                ));
            }
            c = c.with(*f, v);
        }
    }
    Ok(c)
}
