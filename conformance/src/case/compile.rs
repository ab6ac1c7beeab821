//! From a parsed case to a [`Trace`], through [`TraceBuilder`] only: a backend receives the same
//! memory writes and register steps whatever wrote the case.

use super::*;
use crate::build::{Stream, TraceBuilder};
use crate::trace::{Step, Trace};
use smmu_model::oracle::enumerate::{Allowed, Outcome};
use smmu_model::structures::{Cd, Ste};
use smmu_model::tables::LeafSpec;
use std::collections::{BTreeMap, HashMap};

/// A compiled case.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub trace: Trace,
    /// For each trace step, the index into `Case::steps` that produced it (`None`: the stream
    /// table setup every trace starts with).
    pub origin: Vec<Option<usize>>,
    /// Hand-written expectations, keyed by the trace index of the probe they follow.
    pub expects: BTreeMap<usize, ExpectCheck>,
    /// Page names with their PA and size, for reports.
    pub pages: Vec<(String, u64, u64)>,
}

/// An `expect` line, resolved to outcomes.
#[derive(Clone, Debug)]
pub struct ExpectCheck {
    /// Index into `Case::steps` of the `expect` line.
    pub case_step: usize,
    pub line: usize,
    pub outcomes: Vec<Matcher>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matcher {
    Pa(u64),
    Fault(Option<u8>),
    Abort,
}

impl Matcher {
    fn matches(&self, o: &Outcome) -> bool {
        match (self, o) {
            (Matcher::Pa(a), Outcome::Translated { pa }) => a == pa,
            (Matcher::Fault(None), Outcome::Fault { .. }) => true,
            (Matcher::Fault(Some(e)), Outcome::Fault { event }) => e == event,
            (Matcher::Abort, Outcome::Abort) => true,
            _ => false,
        }
    }
}

impl ExpectCheck {
    /// `None` when the hand-written set is exactly the model's allowed set, otherwise what
    /// differs. A disagreement is an error in the case, never a verdict on the device.
    pub fn disagreement(&self, allowed: &Allowed) -> Option<String> {
        let missing: Vec<_> = allowed
            .outcomes
            .iter()
            .filter(|o| !self.outcomes.iter().any(|m| m.matches(o)))
            .collect();
        let extra: Vec<_> = self
            .outcomes
            .iter()
            .filter(|m| !allowed.outcomes.iter().any(|o| m.matches(o)))
            .collect();
        if missing.is_empty() && extra.is_empty() {
            return None;
        }
        Some(format!(
            "`expect` at line {} disagrees with the model: the model allows {:?}{}{}",
            self.line,
            allowed.outcomes,
            if missing.is_empty() {
                String::new()
            } else {
                format!(", the case omits {missing:?}")
            },
            if extra.is_empty() {
                String::new()
            } else {
                format!(", the case lists {extra:?} which the model does not allow")
            }
        ))
    }
}

struct Ctx {
    b: TraceBuilder,
    streams: HashMap<String, (Stream, StreamKind)>,
    pages: Vec<(String, u64, u64)>,
}

/// Compile `case` to a trace. Errors are `FILE:LINE: message`.
pub fn compile(case: &Case) -> Result<Compiled, CaseError> {
    let mut cx = Ctx {
        b: TraceBuilder::new(),
        streams: HashMap::new(),
        pages: Vec::new(),
    };
    let mut origin = vec![None; cx.b.trace.steps.len()];
    let mut expects = BTreeMap::new();
    let mut pending: Vec<RawCommand> = Vec::new();
    let mut last_probe: Option<usize> = None;
    for (idx, l) in case.steps.iter().enumerate() {
        let err = |message: String| CaseError {
            file: case.file.clone(),
            line: l.line,
            message,
        };
        if !matches!(l.step, CaseStep::Cmd(..) | CaseStep::Submit) && !pending.is_empty() {
            return Err(err(
                "the `cmd` lines above need a `submit` before this step".into(),
            ));
        }
        if !matches!(l.step, CaseStep::Expect(_)) {
            last_probe = None;
        }
        match &l.step {
            CaseStep::Cmd(c, n) => pending.extend(std::iter::repeat_n(*c, *n)),
            CaseStep::Submit => {
                if pending.is_empty() {
                    return Err(err("`submit` with no `cmd` lines before it".into()));
                }
                cx.b.submit(&std::mem::take(&mut pending));
            }
            CaseStep::Expect(toks) => {
                let Some(p) = last_probe else {
                    return Err(err("`expect` must directly follow a `probe`".into()));
                };
                let CaseStep::Probe { va, .. } = &case.steps[origin[p].unwrap_or(0)].step else {
                    unreachable!("last_probe points at a probe");
                };
                let mut outcomes = Vec::new();
                for t in toks {
                    outcomes.push(match t {
                        ExpectTok::Page(n) => {
                            let (_, pa, size) = cx
                                .pages
                                .iter()
                                .find(|(m, ..)| m == n)
                                .ok_or_else(|| err(format!("no page named '{n}' so far")))?;
                            Matcher::Pa(pa + (va & (size - 1)))
                        }
                        ExpectTok::Addr(a) => Matcher::Pa(*a),
                        ExpectTok::Fault(e) => Matcher::Fault(*e),
                        ExpectTok::Abort => Matcher::Abort,
                    });
                }
                expects.insert(
                    p,
                    ExpectCheck {
                        case_step: idx,
                        line: l.line,
                        outcomes,
                    },
                );
            }
            step => cx.step(step).map_err(err)?,
        }
        if let CaseStep::Probe { .. } = l.step {
            last_probe = Some(cx.b.trace.steps.len() - 1);
        }
        origin.resize(cx.b.trace.steps.len(), Some(idx));
    }
    Ok(Compiled {
        trace: cx.b.finish(),
        origin,
        expects,
        pages: cx.pages,
    })
}

impl Ctx {
    fn stream(&self, name: &str) -> Result<&(Stream, StreamKind), String> {
        self.streams.get(name).ok_or_else(|| {
            format!("no stream named '{name}' (declare it with `stream {name} ...`)")
        })
    }

    fn page(&mut self, name: &str, size: u64) -> Result<u64, String> {
        if let Some((_, pa, s)) = self.pages.iter().find(|(n, ..)| n == name) {
            if *s != size {
                return Err(format!(
                    "page '{name}' was allocated with size {s:#x}, this mapping needs {size:#x}"
                ));
            }
            return Ok(*pa);
        }
        let pa = self.b.data(size).map_err(|e| e.to_string())?;
        self.pages.push((name.to_string(), pa, size));
        Ok(pa)
    }

    fn step(&mut self, step: &CaseStep) -> Result<(), String> {
        match step {
            CaseStep::Stream {
                name,
                sid,
                kind,
                asid,
                vmid,
                granule,
                el2,
            } => {
                if self.streams.contains_key(name) {
                    return Err(format!("stream '{name}' is declared twice"));
                }
                if *sid >= 64 {
                    return Err(format!(
                        "sid={sid}: the case stream table is linear with 64 StreamIDs"
                    ));
                }
                if self.streams.values().any(|(s, _)| s.sid == *sid) {
                    return Err(format!("sid={sid} is used by another stream"));
                }
                let s = match kind {
                    StreamKind::S1 => self.b.s1_stream(*sid, *asid, *vmid, *granule),
                    StreamKind::S2 => self.b.s2_stream(*sid, *vmid),
                    StreamKind::Nested => self.b.nested_stream(*sid, *asid, *vmid, *granule),
                }
                .map_err(|e| e.to_string())?;
                let s = if *el2 { self.b.set_strw(s, 0b10) } else { s };
                self.streams.insert(name.clone(), (s, *kind));
            }
            CaseStep::Map {
                stream,
                stage,
                va,
                target,
                level,
                attrs,
                remap,
            } => {
                let (s, _) = self.stream(stream)?;
                let mut s = s.clone();
                let p = match stage {
                    Stage::S1 => s.s1,
                    Stage::S2 => s.s2,
                }
                .ok_or_else(|| format!("stream '{stream}' has no {stage:?} tables"))?;
                let size = p.granule.block_size(*level).ok_or_else(|| {
                    format!(
                        "level {level} cannot hold a leaf with the {:?} granule",
                        p.granule
                    )
                })?;
                if *remap {
                    let mapped = self
                        .b
                        .descriptor_pa(&s, *stage, *va, *level)
                        .map(|d| smmu_model::memory::MemRead::read_u64(&self.b.mem, d) != 0)
                        .unwrap_or(false);
                    if !mapped {
                        return Err(format!(
                            "`remap`: {va:#x} is not mapped at level {level} (use `map`)"
                        ));
                    }
                }
                let oa = match target {
                    Target::Page(n) => self.page(n, size)?,
                    Target::Addr(a) => *a,
                };
                let mut spec = LeafSpec::for_stage(*stage)
                    .ng(attrs.ng)
                    .xn(attrs.xn)
                    .af(!attrs.noaf);
                if attrs.ro {
                    // S1 AP[2]=1 is read-only (AP=0b11: any EL); S2AP=0b01 is read-only.
                    spec = spec.ap(match stage {
                        Stage::S1 => 0b11,
                        Stage::S2 => 0b01,
                    });
                }
                self.b
                    .map(&mut s, *stage, *va, oa, *level, &spec)
                    .map_err(|e| e.to_string())?;
                self.streams.get_mut(stream).expect("checked").0 = s;
            }
            CaseStep::Unmap {
                stream,
                stage,
                va,
                level,
            } => {
                let (s, _) = self.stream(stream)?;
                let d = self
                    .b
                    .descriptor_pa(s, *stage, *va, *level)
                    .ok_or_else(|| format!("{va:#x}: the tables do not reach level {level}"))?;
                self.b.write(d, 0);
            }
            CaseStep::Write { pa, value } => self.b.write(*pa, *value),
            CaseStep::Enable(on) => self.b.step(Step::Enable { on: *on }),
            CaseStep::Cd {
                stream,
                asid,
                tables,
                fresh,
            } => {
                let (s, _) = self.stream(stream)?;
                let (cd_pa, cd) = match (s.cd_pa, s.cd) {
                    (Some(a), Some(c)) => (a, c),
                    _ => return Err(format!("stream '{stream}' has no CD (stage-2 only)")),
                };
                let mut s = s.clone();
                let p = match tables {
                    Some(o) => self
                        .stream(o)?
                        .0
                        .s1
                        .ok_or_else(|| format!("stream '{o}' has no stage-1 tables"))?,
                    None => s.s1.expect("a stream with a CD has stage-1 tables"),
                };
                let new = Cd::new(
                    asid.unwrap_or(cd.asid),
                    p.table_base,
                    64 - p.input_bits,
                    p.granule,
                );
                if *fresh {
                    // A CD no SMMU can have cached, then one single-copy-atomic write of STE
                    // word 0 (S1ContextPtr) to switch to it (§3.21.3).
                    let new_pa = self.b.alloc(64, 64).map_err(|e| e.to_string())?;
                    self.b.write_words(new_pa, &new.encode());
                    let mut ste = s.ste;
                    ste.s1_context_ptr = new_pa;
                    self.b.write(s.ste_pa, ste.encode()[0]);
                    s.ste = ste;
                    s.cd_pa = Some(new_pa);
                } else {
                    // In place, only the words that change: an ASID-only change is one
                    // single-copy-atomic write of word 0; more words can be seen torn.
                    let old = cd.encode();
                    for (i, w) in new.encode().iter().enumerate() {
                        if *w != old[i] {
                            self.b.write(cd_pa + 8 * i as u64, *w);
                        }
                    }
                }
                s.cd = Some(new);
                s.s1 = Some(p);
                self.streams.get_mut(stream).expect("checked").0 = s;
            }
            CaseStep::Ste { stream, edit } => {
                let (s, _) = self.stream(stream)?;
                let ste = match edit {
                    SteEdit::Abort => Ste::abort(),
                    SteEdit::Bypass => Ste::bypass(),
                    SteEdit::Invalid => s.ste.with_valid(false),
                    SteEdit::Restore => s.ste,
                };
                let pa = s.ste_pa;
                self.b.write_words(pa, &ste.encode());
            }
            CaseStep::Ack { replace, drop } => self.b.step(Step::Acknowledge {
                replace: *replace,
                drop: *drop,
            }),
            CaseStep::Probe { stream, va, write } => {
                let sid = self.stream(stream)?.0.sid;
                if *write {
                    self.b.probe_write(sid, *va)
                } else {
                    self.b.probe(sid, *va)
                }
            }
            CaseStep::Cmd(..) | CaseStep::Submit | CaseStep::Expect(_) => {
                unreachable!("handled by compile")
            }
        }
        Ok(())
    }
}
