//! Fuzz input generators: bytes (through `arbitrary::Unstructured`) to a [`Program`], a list of
//! case-format step lines (docs/case-format.md) that compiles to a [`Trace`] through the case
//! compiler and so through [`crate::build::TraceBuilder`].
//!
//! Generators are kept apart from oracles (the harness and the model judge a trace; a generator
//! never decides what is correct) and from targets (fuzz/src and [`crate::fuzz`] run what is
//! generated), as wasmtime's `crates/fuzzing` does. Why case lines rather than trace steps: a
//! failing input is then already a human-readable case file, the shrinker works on lines a person
//! would delete, and the reproducer is `smmu-conform run --case FILE`, with no second renderer
//! that could drift from the compiler.
//!
//! Two modes, after cranelift's fuzzgen: [`Mode::Legal`] emits only commands the model classifies
//! Legal for the device's profile (so any finding is an invalidation or queue bug, never a
//! legality corner), [`Mode::Raw`] adds malformed fields, RES0 bits, Reserved and IMPLEMENTATION
//! DEFINED opcodes, illegal commands mid-batch followed by `ack`, missing/doubled/moved CMD_SYNC,
//! every CS value and queue wrap. Commands are aimed at the StreamIDs, ASIDs, VMIDs and addresses
//! the program actually mapped, so a missed invalidation is one probe away.

use crate::case::{self, Case, CaseError};
use crate::trace::Trace;
use arbitrary::Unstructured;
use smmu_model::classify::{classify, Verdict};
use smmu_model::command::opcode::ARCHITECTED;
use smmu_model::command::{layout, Opcode, RawCommand};
use smmu_model::granule::Granule;
use smmu_model::profile::{Profile, Queue};
use std::fmt::Write as _;

/// Which commands a generator may emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only well-formed commands the profile makes Legal; queue errors are never provoked.
    Legal,
    /// Anything: malformed and illegal commands, RES0 bits, odd SYNC placement, queue wrap.
    Raw,
}

impl Mode {
    /// The mode byte 0 of a fuzz input selects (`mixed` campaigns): even = legal, odd = raw.
    pub fn from_byte(b: u8) -> Mode {
        if b & 1 == 0 {
            Mode::Legal
        } else {
            Mode::Raw
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::Legal => "legal",
            Mode::Raw => "raw",
        }
    }
}

/// Generator limits.
#[derive(Clone, Copy, Debug)]
pub struct GenConfig {
    /// Upper bound on interleaved operations after setup.
    pub max_ops: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig { max_ops: 48 }
    }
}

/// A generated program: case step lines plus what it needs from the device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// `needs` features (stream kinds used), for the rendered case.
    pub needs: Vec<&'static str>,
    /// Step lines, without line numbers or comments.
    pub lines: Vec<String>,
}

/// The rule named in the header of a program compiled for running only: any registered rule
/// will do (the header is never judged), and the first one always exists.
fn placeholder_rule() -> &'static str {
    smmu_model::rules::all().next().map(|r| r.id).unwrap_or("")
}

/// Number of header lines [`Program::case_text`] writes before the first step for `comments`.
fn header_len(comments: usize, needs: bool) -> usize {
    comments + 3 + usize::from(needs)
}

impl Program {
    /// The program as a complete case file: `comments` (each rendered as `# ...`), then the
    /// header and the step lines.
    pub fn case_text(&self, name: &str, rule: &str, doc: &str, comments: &[String]) -> String {
        let mut s = String::new();
        for c in comments {
            for l in c.lines() {
                let _ = writeln!(s, "# {l}");
            }
        }
        let _ = writeln!(s, "case {name}");
        let _ = writeln!(s, "rules {rule}");
        // `doc` is one line and `#` would start a comment.
        let _ = writeln!(s, "doc {}", doc.replace(['\n', '#'], " "));
        if !self.needs.is_empty() {
            let _ = writeln!(s, "needs {}", self.needs.join(" "));
        }
        for l in &self.lines {
            let _ = writeln!(s, "{l}");
        }
        s
    }

    /// Parse the program as a case (with a placeholder header).
    pub fn to_case(&self) -> Result<Case, CaseError> {
        let text = self.case_text("fuzz", placeholder_rule(), "generated", &[]);
        let mut cases = case::parse_cases("<fuzz>", &text)?;
        cases.pop().ok_or_else(|| CaseError {
            file: "<fuzz>".into(),
            line: 1,
            message: "no case".into(),
        })
    }

    /// Compile the program to the trace a device runs.
    pub fn compile(&self) -> Result<Trace, CaseError> {
        Ok(case::compile(&self.to_case()?)?.trace)
    }

    /// Drop lines the parser or compiler rejects until the program compiles. Generation tracks
    /// the tables only roughly (a page inside a block, a remap of something unmapped); rather
    /// than duplicate the builder's bookkeeping, the builder's own verdict is used. Always
    /// terminates: every round removes a line or stops. The program is parsed once: lines are
    /// removed from the parsed case and the text alike, and only the compiler runs again.
    pub fn repair(&mut self) -> Option<Trace> {
        let hl = header_len(0, !self.needs.is_empty());
        let mut case: Option<Case> = None;
        for _ in 0..=self.lines.len() {
            if self.lines.is_empty() {
                return None;
            }
            let parsed = match case.take() {
                Some(c) => Ok(c),
                None => self.to_case(),
            };
            // One step per line, in order, is what lets removals apply to both.
            let parsed = parsed.and_then(|c| {
                if c.steps.len() == self.lines.len() {
                    Ok(c)
                } else {
                    Err(CaseError {
                        file: "<fuzz>".into(),
                        line: 0,
                        message: "lines and steps differ".into(),
                    })
                }
            });
            let (err, mut c) = match parsed {
                Ok(c) => match case::compile(&c) {
                    Ok(compiled) => return Some(compiled.trace),
                    Err(e) => (e, Some(c)),
                },
                Err(e) => (e, None),
            };
            let idx = match &c {
                Some(c) => c.steps.iter().position(|l| l.line == err.line)?,
                // Error lines are 1-based over the whole text; the header comes first.
                None => err.line.checked_sub(hl + 1)?,
            };
            if idx >= self.lines.len() {
                return None;
            }
            // A `remap` of something a removed line would have mapped is still a good `map`.
            if err.message.starts_with("`remap`") && self.lines[idx].starts_with("remap ") {
                self.lines[idx].replace_range(..5, "map");
                if let Some(c) = c.as_mut() {
                    if let case::CaseStep::Map { remap, .. } = &mut c.steps[idx].step {
                        *remap = false;
                    }
                    c.steps[idx].text.clone_from(&self.lines[idx]);
                }
                case = c;
                continue;
            }
            self.lines.remove(idx);
            // A `cmd` whose `submit` went away would stay pending: drop orphaned cmd lines too.
            let keep = self.fix_batches();
            if let Some(mut c) = c {
                c.steps.remove(idx);
                let mut k = keep.iter();
                c.steps.retain(|_| k.next().copied().unwrap_or(false));
                case = Some(c);
            }
        }
        None
    }

    /// Remove `cmd` lines not followed by `submit` and `submit` lines with no `cmd` before them.
    /// Returns, for each line before the call, whether it was kept.
    pub fn fix_batches(&mut self) -> Vec<bool> {
        let mut keep = vec![true; self.lines.len()];
        let mut pending: Vec<usize> = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            if l.starts_with("cmd ") {
                pending.push(i);
            } else if l == "submit" {
                if pending.is_empty() {
                    keep[i] = false;
                }
                pending.clear();
            } else {
                for &j in &pending {
                    keep[j] = false;
                }
                pending.clear();
            }
        }
        for &j in &pending {
            keep[j] = false;
        }
        let mut k = keep.iter();
        self.lines.retain(|_| k.next().copied().unwrap_or(false));
        keep
    }
}

/// Render one command as a case line: by opcode and field names when every set bit belongs to a
/// named field of an architected opcode, otherwise `cmd raw W0 W1`. `count` > 1 adds `*N`.
pub fn render_cmd(raw: RawCommand, count: usize) -> String {
    let op = raw.opcode();
    let rep = if count > 1 {
        format!(" *{count}")
    } else {
        String::new()
    };
    let name = ARCHITECTED.iter().find(|e| e.1 == op).map(|e| e.2);
    let named = op.is_architected() && raw.as_u128() & !layout::defined_mask(op) == 0;
    match name {
        Some(n) if named => {
            let mut s = format!("cmd {}", n.trim_start_matches("CMD_"));
            for f in layout::fields(op).iter().skip(1) {
                let v = raw.get(*f);
                if v == 0 {
                    continue;
                }
                if f.shift > 0 {
                    let _ = write!(s, " {}={:#x}", f.name, v << f.shift);
                } else if v < 10 {
                    let _ = write!(s, " {}={v}", f.name);
                } else {
                    let _ = write!(s, " {}={v:#x}", f.name);
                }
            }
            s + &rep
        }
        _ => format!("cmd raw {:#x} {:#x}{rep}", raw.0[0], raw.0[1]),
    }
}

/// Set fields of `op` by spec name; address fields take the full address. Names the opcode does
/// not have are ignored, so callers can describe "the natural command for this change" once.
pub fn cmd(op: Opcode, fields: &[(&str, u64)]) -> RawCommand {
    let fs = layout::fields(op);
    let mut c = RawCommand::new(op.value() as u64, 0);
    for (name, v) in fields {
        if let Some(f) = fs
            .iter()
            .skip(1)
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            let v = if f.shift > 0 { *v >> f.shift } else { *v };
            c = c.with(*f, v);
        }
    }
    c
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    S1,
    S2,
    Nested,
}

#[derive(Clone, Debug)]
struct StreamInfo {
    name: String,
    sid: u32,
    kind: Kind,
    asid: u16,
    vmid: u16,
    /// Stage-1 granule (stage 2 is always 4K in the builder).
    granule: Granule,
    /// Has global (nG=0) stage-1 mappings: they belong to every ASID of its VMID (§3.17.1), so
    /// no other stage-1 stream may share its VMID tag.
    has_global: bool,
    /// The stream whose stage-1 tables this one walks (itself until `cd ... tables=`): a global
    /// mapping written there is global in every stream walking them.
    tables: usize,
    /// STE.STRW = EL2 (§5.2): its entries are tagged with the EL2 StreamWorld, carry neither
    /// ASID nor VMID (§3.17.5, CR2.E2H == 0) and only the EL2 TLBIs remove them (§4.4.2.7-10).
    el2: bool,
}

impl StreamInfo {
    fn has_s1(&self) -> bool {
        self.kind != Kind::S2
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MapRec {
    stream: usize,
    s2: bool,
    va: u64,
    level: u8,
}

/// A never-failing view of the input: when bytes run out, every choice is the first option, so
/// any input (including the empty one) generates a program.
struct G<'a> {
    u: Unstructured<'a>,
}

impl G<'_> {
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.u.choose_index(n).unwrap_or(0)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.u.int_in_range(lo..=hi).unwrap_or(lo)
    }
    /// True with probability about num/den.
    fn chance(&mut self, num: u8, den: u8) -> bool {
        self.u.ratio(num, den).unwrap_or(false)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn u64(&mut self) -> u64 {
        self.u.arbitrary().unwrap_or(0)
    }
    fn done(&self) -> bool {
        self.u.is_empty()
    }
}

fn tg_code(g: Granule) -> u64 {
    match g {
        Granule::K4 => 1,
        Granule::K16 => 2,
        Granule::K64 => 3,
    }
}

fn input_bits(g: Granule) -> u8 {
    crate::build::default_input_bits(g)
}

/// Generation state: what has been declared and mapped so far.
struct Gen<'a, 'p> {
    g: G<'a>,
    p: &'p Profile,
    mode: Mode,
    streams: Vec<StreamInfo>,
    maps: Vec<MapRec>,
    pages: usize,
    /// Bytes of data pages allocated (the data window is 128 MiB).
    data_used: u64,
    lines: Vec<String>,
    /// An error is (maybe) active on the queue: the next thing should usually be `ack`.
    maybe_error: bool,
    /// Every (stream, ASID) a stage-1 stream has had: an old CD may still be cached and tag
    /// entries with its ASID over that stream's tables (§3.21.3), so another stream taking the
    /// ASID under the same VMID tag would give one tag two address spaces (§5.4.1).
    asid_history: Vec<(usize, u16)>,
}

/// Generate a program for a device with `profile`.
pub fn generate(data: &[u8], profile: &Profile, mode: Mode, cfg: &GenConfig) -> Program {
    let mut gen = Gen {
        g: G {
            u: Unstructured::new(data),
        },
        p: profile,
        mode,
        streams: Vec::new(),
        maps: Vec::new(),
        pages: 0,
        data_used: 0,
        lines: Vec::new(),
        maybe_error: false,
        asid_history: Vec::new(),
    };
    gen.run(cfg);
    let mut needs = Vec::new();
    for (k, n) in [(Kind::S1, "s1"), (Kind::S2, "s2"), (Kind::Nested, "nested")] {
        if gen.streams.iter().any(|s| s.kind == k) {
            needs.push(n);
        }
    }
    if gen.streams.iter().any(|s| s.el2) {
        needs.push("hyp");
    }
    let mut prog = Program {
        needs,
        lines: gen.lines,
    };
    let _ = prog.fix_batches();
    prog
}

/// Generate and compile: the program (repaired so it compiles) and its trace. `None` only when
/// nothing compilable is left (not expected; callers treat it as an uninteresting input).
pub fn generate_trace(
    data: &[u8],
    profile: &Profile,
    mode: Mode,
    cfg: &GenConfig,
) -> Option<(Program, Trace)> {
    let mut prog = generate(data, profile, mode, cfg);
    let trace = prog.repair()?;
    Some((prog, trace))
}

impl Gen<'_, '_> {
    fn line(&mut self, l: String) {
        self.lines.push(l);
    }

    fn run(&mut self, cfg: &GenConfig) {
        self.setup_streams();
        self.line("enable".into());
        // Warm the TLBs: a mapping that was never translated cannot be stale.
        for i in 0..self.maps.len() {
            let m = self.maps[i];
            if !m.s2 || self.streams[m.stream].kind == Kind::S2 {
                self.probe_of(m);
            }
        }
        let n = self.g.range(4, cfg.max_ops.max(4) as u64) as usize;
        for _ in 0..n {
            if self.g.done() {
                break;
            }
            if self.maybe_error && (self.mode == Mode::Legal || self.g.chance(7, 8)) {
                self.ack();
            }
            match self.g.below(10) {
                0..=2 => self.change_then_maintain(),
                3 | 4 => {
                    let _ = self.change();
                }
                5 | 6 => self.probe_any(),
                7 | 8 => {
                    let b = self.batch_any();
                    self.emit_batch(b);
                }
                _ => {
                    if self.mode == Mode::Raw {
                        self.raw_queue_op();
                    } else {
                        self.probe_any();
                    }
                }
            }
        }
        if self.maybe_error {
            self.ack();
        }
        // End by looking at everything once more: a late probe is what exposes a late bug.
        for i in 0..self.maps.len().min(8) {
            let m = self.maps[i];
            self.probe_of(m);
        }
    }

    fn asid_pool(&self) -> Vec<u16> {
        let mut v = vec![1, 2, 0];
        if self.p.asid16 {
            v.extend([0x101, 0xffff]);
        } else {
            v.push(0xff);
        }
        v
    }

    fn vmid_pool(&self) -> Vec<u16> {
        let mut v = vec![1, 0, 2];
        if self.p.vmid16 {
            v.extend([0x101, 0xffff]);
        } else {
            v.push(0xff);
        }
        v
    }

    /// The VMID a stream's stage-1 entries are tagged with: STE.S2VMID when stage 2 is
    /// implemented, else none (§3.17).
    fn vmid_tag(&self, vmid: u16) -> u16 {
        if self.p.s2p {
            vmid
        } else {
            0
        }
    }

    /// Whether (asid, vmid) for a stream of `kind` keeps every address space distinct, ignoring
    /// stream `skip`.
    fn ids_ok(&self, kind: Kind, asid: u16, vmid: u16, skip: Option<usize>) -> bool {
        self.streams.iter().enumerate().all(|(i, o)| {
            if Some(i) == skip {
                return true;
            }
            let same_tag = kind != Kind::S2
                && o.kind != Kind::S2
                && self.vmid_tag(o.vmid) == self.vmid_tag(vmid);
            let old_asid = self.asid_history.iter().any(|&(j, a)| j == i && a == asid);
            let s1_clash = same_tag && (o.asid == asid || o.has_global || old_asid);
            let s2_clash = self.p.s2p && (kind != Kind::S1 || o.kind != Kind::S1) && o.vmid == vmid;
            !s1_clash && !s2_clash
        })
    }

    fn fresh_ids(
        &mut self,
        kind: Kind,
        asids: &[u16],
        vmids: &[u16],
        skip: Option<usize>,
    ) -> Option<(u16, u16)> {
        for _ in 0..16 {
            let (a, v) = (self.g.pick(asids), self.g.pick(vmids));
            if self.ids_ok(kind, a, v, skip) {
                return Some((a, v));
            }
        }
        // Deterministic fallback: small distinct values; none when a stream with global mappings
        // already owns the only VMID tag (no stage 2).
        (1..64u16).find_map(|v| {
            (1..64u16)
                .find(|&a| self.ids_ok(kind, a, v, skip))
                .map(|a| (a, v))
        })
    }

    /// Whether stream `si` may have global mappings: no other stage-1 stream shares its VMID
    /// tag (§3.17.1, §5.4.1).
    fn global_ok(&self, si: usize) -> bool {
        // Every stream walking the same tables gets the global mapping (divergence A of
        // 2026-12-08 in docs/fuzzing.md: a stream that adopted another's tables).
        self.sharers(si).into_iter().all(|j| self.global_ok_one(j))
    }

    /// The streams walking the stage-1 tables stream `si` walks (itself included).
    fn sharers(&self, si: usize) -> Vec<usize> {
        let t = self.streams[si].tables;
        (0..self.streams.len())
            .filter(|&j| self.streams[j].tables == t)
            .collect()
    }

    /// Mark the global mapping just written through stream `si` in every stream sharing it.
    fn set_global(&mut self, si: usize) {
        for j in self.sharers(si) {
            self.streams[j].has_global = true;
        }
    }

    fn global_ok_one(&self, si: usize) -> bool {
        let me = &self.streams[si];
        self.streams.iter().enumerate().all(|(i, o)| {
            i == si || o.kind == Kind::S2 || self.vmid_tag(o.vmid) != self.vmid_tag(me.vmid)
        })
    }

    fn fresh_asid(&mut self, si: usize, pool: &[u16]) -> u16 {
        let (kind, vmid) = (self.streams[si].kind, self.streams[si].vmid);
        for _ in 0..16 {
            let a = self.g.pick(pool);
            if self.ids_ok(kind, a, vmid, Some(si)) {
                return a;
            }
        }
        (1..u16::MAX)
            .find(|&a| self.ids_ok(kind, a, vmid, Some(si)))
            .unwrap_or(self.streams[si].asid)
    }

    fn granules(&self) -> Vec<Granule> {
        let mut v = Vec::new();
        if self.p.gran4k {
            v.push(Granule::K4);
        }
        if self.p.gran16k {
            v.push(Granule::K16);
        }
        if self.p.gran64k {
            v.push(Granule::K64);
        }
        if v.is_empty() {
            v.push(Granule::K4);
        }
        v
    }

    fn setup_streams(&mut self) {
        let mut kinds = Vec::new();
        if self.p.s1p {
            kinds.push(Kind::S1);
        }
        if self.p.s2p {
            kinds.push(Kind::S2);
        }
        if self.p.s1p && self.p.s2p {
            kinds.push(Kind::Nested);
        }
        if kinds.is_empty() {
            return;
        }
        let n = 1 + self.g.below(3);
        let sid_pool = [1u32, 2, 0, 3, 8, 9, 31, 32, 63];
        let asids = self.asid_pool();
        let vmids = self.vmid_pool();
        let grans = self.granules();
        for i in 0..n {
            let mut sid = self.g.pick(&sid_pool);
            while self.streams.iter().any(|s| s.sid == sid) {
                sid = (sid + 1) % 64;
            }
            let kind = self.g.pick(&kinds);
            // Every stream has its own tables, so IDs must stay distinct: CDs with the same
            // regime, VMID and ASID must describe the same address space (§5.4.1), STEs with
            // different stage-2 tables need different VMIDs (§3.17.6), and stage-1-only and
            // stage-2 configurations should not share a VMID (§3.17 note). Breaking that makes
            // lookups UNPREDICTABLE, which no oracle can judge.
            let Some((asid, vmid)) = self.fresh_ids(kind, &asids, &vmids, None) else {
                break;
            };
            let granule = if kind == Kind::S2 {
                Granule::K4
            } else {
                self.g.pick(&grans)
            };
            let name = format!("dev{i}");
            let gname = match granule {
                Granule::K4 => "4k",
                Granule::K16 => "16k",
                Granule::K64 => "64k",
            };
            let kname = match kind {
                Kind::S1 => "s1",
                Kind::S2 => "s2",
                Kind::Nested => "nested",
            };
            // At most one EL2 stream: EL2 entries carry no ASID or VMID (§3.17.5), so two EL2
            // streams with their own tables would be one address space with two meanings.
            let el2 = kind == Kind::S1
                && self.p.hyp
                && !self.streams.iter().any(|s| s.el2)
                && self.g.chance(1, 3);
            let el2s = if el2 { " el2" } else { "" };
            self.line(format!(
                "stream {name} sid={sid} {kname} asid={asid:#x} vmid={vmid:#x} granule={gname}{el2s}"
            ));
            self.asid_history.push((self.streams.len(), asid));
            self.streams.push(StreamInfo {
                name,
                sid,
                kind,
                asid,
                vmid,
                granule,
                has_global: false,
                tables: self.streams.len(),
                el2,
            });
            let maps = 1 + self.g.below(4);
            for _ in 0..maps {
                self.map_new(self.streams.len() - 1, false);
            }
        }
    }

    /// The translation regime a stage of a stream uses: (granule, input bits).
    fn regime(&self, si: usize, s2: bool) -> (Granule, u8) {
        let s = &self.streams[si];
        if s2 {
            (Granule::K4, 39)
        } else {
            (s.granule, input_bits(s.granule))
        }
    }

    /// An address biased toward neighbours of what is already mapped (ranges, blocks around
    /// pages) and toward block boundaries.
    fn pick_va(&mut self, si: usize, s2: bool, level: u8) -> u64 {
        let (g, ib) = self.regime(si, s2);
        let size = g.block_size(level).unwrap_or(g.size());
        let b2 = g.block_size(2).unwrap_or(g.size());
        let top = (1u64 << ib) - size;
        let existing: Vec<u64> = self
            .maps
            .iter()
            .filter(|m| m.s2 == s2 && self.regime(m.stream, m.s2).0 == g)
            .map(|m| m.va)
            .collect();
        let va = if !existing.is_empty() && self.g.chance(1, 2) {
            let base = self.g.pick(&existing);
            let d = self.g.range(0, 3) * g.size();
            if self.g.chance(1, 2) {
                base.wrapping_add(d)
            } else {
                base.wrapping_sub(d)
            }
        } else {
            let base = self
                .g
                .pick(&[0, b2, 2 * b2, 0x4000_0000 % (1u64 << ib), top]);
            base + self.g.range(0, 3) * g.size()
        };
        (va & !(size - 1)).min(top)
    }

    fn map_new(&mut self, si: usize, s2_ok: bool) {
        let s = self.streams[si].clone();
        let s2 = match s.kind {
            Kind::S2 => true,
            Kind::S1 => false,
            // Stage 2 of a nested stream is the 1:1 window its CD and tables live in.
            Kind::Nested => s2_ok && self.g.chance(1, 8),
        };
        let (g, _) = self.regime(si, s2);
        let mut levels = vec![3u8, 3, 3];
        if g.block_size(2).is_some() {
            levels.push(2);
        }
        if g == Granule::K4 {
            levels.push(1);
        }
        let level = self.g.pick(&levels);
        let va = if s2 && s.kind == Kind::Nested {
            0x4000_0000
        } else {
            self.pick_va(si, s2, level)
        };
        let size = g.block_size(level).unwrap_or(g.size());
        let target = self.target_for(size);
        let stage = if s2 { "s2" } else { "s1" };
        let key = if s2 { "ipa" } else { "va" };
        let mut attrs = String::new();
        if !s2 && (self.g.chance(1, 2) || !self.global_ok(si)) {
            attrs.push_str(" ng");
        } else if !s2 {
            self.set_global(si);
        }
        if self.mode == Mode::Raw && self.g.chance(1, 8) {
            attrs.push_str(self.g.pick(&[" ro", " xn", " noaf"]));
        }
        let verb = if self
            .maps
            .iter()
            .any(|m| m.stream == si && m.s2 == s2 && m.va == va && m.level == level)
        {
            "remap"
        } else {
            "map"
        };
        let name = &s.name;
        self.line(format!(
            "{verb} {name} {stage} {key}={va:#x} {target} level={level}{attrs}"
        ));
        let rec = MapRec {
            stream: si,
            s2,
            va,
            level,
        };
        if !self.maps.contains(&rec) {
            self.maps.push(rec);
        }
    }

    /// `page=pN` for a fresh (or reused) data page, or `pa=` into RAM for blocks too large for
    /// the 128 MiB data window.
    fn target_for(&mut self, size: u64) -> String {
        if size > 0x20_0000 || self.data_used + size > 0x600_0000 {
            // RAM is [0x4000_0000, 0x5000_0000); a block must be aligned to its size.
            let base = crate::layout::RAM_BASE;
            let n = ((crate::layout::RAM_END - base) / size).max(1);
            let k = self.g.range(0, n - 1);
            return format!("pa={:#x}", base + k * size);
        }
        self.pages += 1;
        self.data_used += size;
        // The page name carries the size so reusing a name never mismatches sizes.
        format!("page=p{}_{:x}", self.pages, size)
    }

    fn probe_of(&mut self, m: MapRec) {
        let s = &self.streams[m.stream];
        // A stage-2 mapping of a nested stream is reached through stage 1, not probed directly.
        if m.s2 && s.kind == Kind::Nested {
            return;
        }
        let (g, _) = self.regime(m.stream, m.s2);
        let size = g.block_size(m.level).unwrap_or(g.size());
        let off = if self.g.chance(1, 3) {
            (self.g.range(0, 7) * g.size()) % size + 8 * self.g.range(0, 3)
        } else {
            0
        };
        let write = if self.g.chance(1, 6) { " write" } else { "" };
        let name = s.name.clone();
        self.line(format!("probe {name} va={:#x}{write}", m.va + off));
    }

    fn probe_any(&mut self) {
        if self.maps.is_empty() || self.g.chance(1, 10) {
            if self.streams.is_empty() {
                return;
            }
            let si = self.g.below(self.streams.len());
            let va = self.pick_va(si, self.streams[si].kind == Kind::S2, 3);
            let name = self.streams[si].name.clone();
            self.line(format!("probe {name} va={va:#x}"));
            return;
        }
        let m = self.maps[self.g.below(self.maps.len())];
        self.probe_of(m);
    }

    /// One change to translation state; returns what the natural invalidation for it is.
    fn change(&mut self) -> Option<Vec<RawCommand>> {
        if self.streams.is_empty() {
            return None;
        }
        match self.g.below(12) {
            0..=3 if !self.maps.is_empty() => {
                // Remap an existing mapping to a fresh page.
                let m = self.maps[self.g.below(self.maps.len())];
                if m.s2 && self.streams[m.stream].kind == Kind::Nested {
                    return None;
                }
                let (g, _) = self.regime(m.stream, m.s2);
                let size = g.block_size(m.level).unwrap_or(g.size());
                let target = self.target_for(size);
                let s = self.streams[m.stream].name.clone();
                let (stage, key) = if m.s2 { ("s2", "ipa") } else { ("s1", "va") };
                let ng = if !m.s2 && (self.g.chance(1, 2) || !self.global_ok(m.stream)) {
                    " ng"
                } else {
                    if !m.s2 {
                        self.set_global(m.stream);
                    }
                    ""
                };
                self.line(format!(
                    "remap {s} {stage} {key}={:#x} {target} level={}{ng}",
                    m.va, m.level
                ));
                Some(self.tlbi_for(m))
            }
            4 | 5 if !self.maps.is_empty() => {
                let i = self.g.below(self.maps.len());
                let m = self.maps[i];
                if m.s2 && self.streams[m.stream].kind == Kind::Nested {
                    return None;
                }
                // Unmapping above the leaf level removes a table descriptor: walk-cache work.
                let (g, _) = self.regime(m.stream, m.s2);
                let min = if g == Granule::K4 { 1 } else { 2 };
                let level = if m.level > min && self.g.chance(1, 3) {
                    m.level - 1
                } else {
                    m.level
                };
                let s = self.streams[m.stream].name.clone();
                let (stage, key) = if m.s2 { ("s2", "ipa") } else { ("s1", "va") };
                self.line(format!("unmap {s} {stage} {key}={:#x} level={level}", m.va));
                self.maps.remove(i);
                let mut inv = self.tlbi_for(MapRec { level, ..m });
                if level < m.level {
                    // A removed table: Leaf=0 invalidations are the correct ones.
                    for c in &mut inv {
                        if c.opcode() != Opcode::Sync {
                            *c = c.with(layout::LEAF, 0);
                        }
                    }
                }
                Some(inv)
            }
            6 | 7 => {
                let si = self.g.below(self.streams.len());
                self.map_new(si, true);
                None
            }
            8 | 9 => {
                let cands: Vec<usize> = (0..self.streams.len())
                    .filter(|&i| self.streams[i].has_s1())
                    .collect();
                if cands.is_empty() {
                    return None;
                }
                let si = self.g.pick(&cands);
                let s = self.streams[si].clone();
                let old_asid = s.asid;
                let other = self.g.pick(&cands);
                // Adopting tables with global mappings is only consistent when no other stream
                // shares this stream's VMID tag (§3.17.1, §5.4.1).
                let globals_clash = self.streams[other].has_global && !self.global_ok(si);
                if self.g.chance(1, 2) || other == si || globals_clash {
                    let pool = self.asid_pool();
                    let asid = self.fresh_asid(si, &pool);
                    self.line(format!("cd {} asid={asid:#x}", s.name));
                    self.streams[si].asid = asid;
                    self.asid_history.push((si, asid));
                } else {
                    let o = self.streams[other].name.clone();
                    self.line(format!("cd {} tables={o}", s.name));
                    self.streams[si].tables = self.streams[other].tables;
                    if self.streams[other].has_global {
                        self.streams[si].has_global = true;
                    }
                }
                let mut v = vec![self.cfgi_cd_for(si)];
                if self.g.chance(1, 2) {
                    v.push(cmd(
                        Opcode::TlbiNhAsid,
                        &[("VMID", s.vmid as u64), ("ASID", old_asid as u64)],
                    ));
                }
                Some(v)
            }
            10 => {
                let si = self.g.below(self.streams.len());
                let e = self
                    .g
                    .pick(&["abort", "bypass", "invalid", "restore", "restore"]);
                let name = self.streams[si].name.clone();
                self.line(format!("ste {name} {e}"));
                Some(vec![self.cfgi_ste_for(si)])
            }
            _ => {
                // Not with an EL2 stream: junk in another STE's STRW field makes a second EL2
                // stream, whose untagged entries then mean two things at once (§3.17.5, §5.4.1:
                // UNPREDICTABLE, which no oracle can judge).
                let junk_ok = !self.streams.iter().any(|s| s.el2);
                if self.mode == Mode::Raw && junk_ok && self.g.chance(1, 2) {
                    // Junk into the structure area: STEs, CDs and tables go bad (C_BAD_*).
                    let pa = crate::layout::STRUCT_BASE + 8 * self.g.range(0, 0x3ff);
                    let v = self.g.u64();
                    self.line(format!("write {pa:#x} {v:#x}"));
                    Some(vec![cmd(Opcode::CfgiSteRange, &[("Range", 31)])])
                } else if self.mode == Mode::Raw && self.g.chance(1, 3) {
                    self.line("disable".into());
                    self.line("enable".into());
                    None
                } else {
                    let si = self.g.below(self.streams.len());
                    self.map_new(si, true);
                    None
                }
            }
        }
    }

    fn change_then_maintain(&mut self) {
        let inv = self.change();
        let mut batch = match inv {
            Some(v) if !v.is_empty() => v,
            _ => self.batch_any(),
        };
        // SYNC "sometimes": mostly, since a missing SYNC makes stale results legal.
        if self.g.chance(7, 8) {
            batch.push(self.sync());
        }
        self.emit_batch(batch);
        if !self.maps.is_empty() {
            let m = self.maps[self.g.below(self.maps.len())];
            self.probe_of(m);
        } else {
            self.probe_any();
        }
    }

    fn sync(&mut self) -> RawCommand {
        if self.p.msi && self.g.chance(1, 4) {
            let data = self.g.range(0, 0xffff);
            cmd(
                Opcode::Sync,
                &[
                    ("CS", 1),
                    ("MSIAddress", 0x4ff0_0000 + 4 * self.g.range(0, 15)),
                    ("MSIData", data),
                ],
            )
        } else {
            cmd(Opcode::Sync, &[])
        }
    }

    fn cfgi_cd_for(&mut self, si: usize) -> RawCommand {
        let sid = self.streams[si].sid as u64;
        match self.g.below(5) {
            0 | 1 => cmd(
                Opcode::CfgiCd,
                &[("StreamID", sid), ("Leaf", self.g.range(0, 1))],
            ),
            2 => cmd(Opcode::CfgiCdAll, &[("StreamID", sid)]),
            3 => self.cfgi_ste_for(si),
            _ => cmd(Opcode::CfgiSteRange, &[("Range", 31)]),
        }
    }

    fn cfgi_ste_for(&mut self, si: usize) -> RawCommand {
        let sid = self.streams[si].sid as u64;
        match self.g.below(5) {
            0 | 1 => cmd(
                Opcode::CfgiSte,
                &[("StreamID", sid), ("Leaf", self.g.range(0, 1))],
            ),
            2 | 3 => {
                // Range n covers the 2^(n+1) aligned StreamIDs around sid; the low bits of the
                // StreamID given are ignored (§4.3.2), so set some.
                let range = self.g.range(0, 5);
                let low = self.g.u64() & ((2u64 << range) - 1);
                cmd(
                    Opcode::CfgiSteRange,
                    &[("StreamID", sid | low), ("Range", range)],
                )
            }
            _ => cmd(Opcode::CfgiSteRange, &[("Range", 31)]),
        }
    }

    /// The invalidations that would remove the stale translations a change to `m` leaves, with
    /// scope, level hint and range variations.
    fn tlbi_for(&mut self, m: MapRec) -> Vec<RawCommand> {
        let s = self.streams[m.stream].clone();
        let (g, _) = self.regime(m.stream, m.s2);
        let vmid = s.vmid as u64;
        let asid = s.asid as u64;
        let leaf = self.g.range(0, 1);
        let mut addr = m.va;
        let mut range: Vec<(&str, u64)> = Vec::new();
        if self.p.ril && self.g.chance(1, 2) {
            let num = self.g.pick(&[0u64, 1, 2, 3, 31]);
            // SCALE is 6 bits with IDR5.DS (§4.4.1.1, bit 25 RES0 otherwise): a range from 0 with
            // SCALE >= 32 covers every mapped address (2^32 granules), which a decoder reading 5
            // bits shrinks to a few granules. Raw mode also sends it without DS.
            let big = (self.p.ds || self.mode == Mode::Raw) && self.g.chance(1, 4);
            let scale = if big {
                32 + self.g.pick(&[0u64, 0, 1, 2, 7, 31])
            } else {
                self.g.pick(&[0u64, 0, 1, 2])
            };
            let ttl = self.g.pick(&[0u64, m.level as u64, 3]);
            // Start the range a few granules before the address sometimes, or at 0 for the huge
            // ranges.
            let back = self.g.range(0, 1) * g.size();
            addr = if big && self.g.chance(3, 4) {
                0
            } else {
                m.va.saturating_sub(back)
            };
            range = vec![
                ("TG", tg_code(g)),
                ("TTL", ttl),
                ("NUM", num),
                ("SCALE", scale),
            ];
        } else if self.g.chance(1, 3) {
            range = vec![("TG", tg_code(g)), ("TTL", m.level as u64)];
        }
        let with = |mut base: Vec<(&'static str, u64)>, r: &[(&'static str, u64)]| {
            base.extend_from_slice(r);
            base
        };
        let c = if s.el2 && !m.s2 {
            // EL2 entries (§4.4.2.7-10): NH and NSNH TLBIs do not touch them.
            match self.g.below(8) {
                0..=2 => cmd(Opcode::TlbiEl2All, &[]),
                3 | 4 => cmd(
                    Opcode::TlbiEl2Va,
                    &with(
                        vec![("ASID", asid), ("Address", addr), ("Leaf", leaf)],
                        &range,
                    ),
                ),
                5 | 6 => cmd(
                    Opcode::TlbiEl2Vaa,
                    &with(vec![("Address", addr), ("Leaf", leaf)], &range),
                ),
                _ => cmd(Opcode::TlbiEl2Asid, &[("ASID", asid)]),
            }
        } else if m.s2 {
            match self.g.below(6) {
                0..=2 => cmd(
                    Opcode::TlbiS2Ipa,
                    &with(
                        vec![("VMID", vmid), ("Address", addr), ("Leaf", leaf)],
                        &range,
                    ),
                ),
                3 | 4 => cmd(Opcode::TlbiS12Vmall, &[("VMID", vmid)]),
                _ => cmd(Opcode::TlbiNsnhAll, &[]),
            }
        } else {
            match self.g.below(10) {
                0..=3 => cmd(
                    Opcode::TlbiNhVa,
                    &with(
                        vec![
                            ("VMID", vmid),
                            ("ASID", asid),
                            ("Address", addr),
                            ("Leaf", leaf),
                        ],
                        &range,
                    ),
                ),
                4 | 5 => cmd(
                    Opcode::TlbiNhVaa,
                    &with(
                        vec![("VMID", vmid), ("Address", addr), ("Leaf", leaf)],
                        &range,
                    ),
                ),
                6 => cmd(Opcode::TlbiNhAsid, &[("VMID", vmid), ("ASID", asid)]),
                7 => cmd(Opcode::TlbiNhAll, &[("VMID", vmid)]),
                8 => cmd(Opcode::TlbiS12Vmall, &[("VMID", vmid)]),
                _ => cmd(Opcode::TlbiNsnhAll, &[]),
            }
        };
        let mut v = vec![c];
        // A nested stream's stage-1 entries are combined with stage 2: S2 invalidation alone
        // is not enough (§4.4.3), so add stage-1 maintenance sometimes.
        if s.kind == Kind::Nested && m.s2 && self.g.chance(1, 2) {
            v.push(cmd(Opcode::TlbiNhAll, &[("VMID", vmid)]));
        }
        v
    }

    /// A batch of commands aimed at something mapped, or anything in raw mode.
    fn batch_any(&mut self) -> Vec<RawCommand> {
        let n = 1 + self.g.below(4);
        let mut v = Vec::new();
        for _ in 0..n {
            if !self.maps.is_empty() && self.g.chance(2, 3) {
                let m = self.maps[self.g.below(self.maps.len())];
                v.extend(self.tlbi_for(m));
            } else if !self.streams.is_empty() && self.g.chance(1, 2) {
                let si = self.g.below(self.streams.len());
                let c = if self.g.chance(1, 2) {
                    self.cfgi_ste_for(si)
                } else {
                    self.cfgi_cd_for(si)
                };
                v.push(c);
            } else {
                let c = self.other_command();
                v.push(c);
            }
        }
        if self.g.chance(3, 4) {
            v.push(self.sync());
        }
        v
    }

    /// Commands not tied to a mapping: global invalidations, prefetches, EL2 maintenance.
    fn other_command(&mut self) -> RawCommand {
        let va = self.g.range(0, 0x3ff) << 12;
        let sid = if self.streams.is_empty() {
            0
        } else {
            self.streams[self.g.below(self.streams.len())].sid as u64
        };
        match self.g.below(8) {
            0 => cmd(Opcode::TlbiNsnhAll, &[]),
            1 => cmd(Opcode::PrefetchConfig, &[("StreamID", sid)]),
            2 => cmd(Opcode::PrefetchAddr, &[("StreamID", sid), ("Address", va)]),
            3 => cmd(Opcode::TlbiEl2All, &[]),
            4 => cmd(Opcode::TlbiEl2Asid, &[("ASID", 1)]),
            5 => cmd(Opcode::TlbiEl2Va, &[("ASID", 1), ("Address", va)]),
            6 => cmd(Opcode::CfgiSteRange, &[("Range", 31)]),
            _ => cmd(
                Opcode::AtcInv,
                &[("StreamID", sid), ("Address", va), ("Size", 0)],
            ),
        }
    }

    /// Raw-mode corruption of one command.
    fn corrupt(&mut self, c: RawCommand) -> RawCommand {
        let op = c.opcode();
        match self.g.below(9) {
            0 => {
                // TG/TTL/NUM/SCALE anything (reserved combinations included).
                let mut r = c;
                for (f, hi) in [
                    (layout::TG, 3),
                    (layout::TTL, 3),
                    (layout::NUM, 31),
                    (layout::SCALE, 63),
                ] {
                    if layout::fields(op).contains(&f) && self.g.chance(1, 2) {
                        r = r.with(f, self.g.range(0, hi));
                    }
                }
                r
            }
            1 => {
                // A RES0 bit set.
                let mask = layout::static_res0_mask(op);
                if mask == 0 {
                    return c;
                }
                let mut bit = self.g.range(0, 127) as u32;
                while mask & (1u128 << bit) == 0 {
                    bit = (bit + 1) % 128;
                }
                RawCommand::from_u128(c.as_u128() | (1u128 << bit))
            }
            2 => {
                // A Reserved opcode, payload kept.
                let b = self
                    .g
                    .pick(&[0x00u8, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x13, 0x7f, 0xff]);
                let b = if Opcode::from_u8(b).is_architected() {
                    0
                } else {
                    b
                };
                RawCommand::new((c.0[0] & !0xff) | b as u64, c.0[1])
            }
            3 => {
                let b = 0x80 + self.g.range(0, 15);
                RawCommand::new((c.0[0] & !0xff) | b, c.0[1])
            }
            4 => c.with(layout::SSEC, 1),
            5 => {
                // 16-bit IDs on a profile that may have 8-bit ones.
                let mut r = c;
                for f in [layout::ASID, layout::VMID] {
                    if layout::fields(op).contains(&f) {
                        r = r.with(f, r.get(f) | (0x100 * self.g.range(0, 0xff)));
                    }
                }
                r
            }
            6 => {
                // Any architected opcode with random fields: commands for features the
                // profile lacks included.
                let (b, ..) = self.g.pick(ARCHITECTED);
                RawCommand::new((self.g.u64() & !0xff) | b as u64, self.g.u64())
            }
            7 => cmd(Opcode::Sync, &[("CS", self.g.range(0, 3))]),
            _ => RawCommand::new(self.g.u64(), self.g.u64()),
        }
    }

    /// Raw-mode queue traffic: SYNC missing/doubled/moved, CS values, errors mid-batch, wrap.
    fn raw_queue_op(&mut self) {
        match self.g.below(5) {
            0 => {
                // Queue wrap: hundreds of commands through the 256-entry queue.
                let n = self.g.range(100, 600) as usize;
                let c = if self.g.chance(1, 2) {
                    cmd(Opcode::Sync, &[])
                } else {
                    cmd(Opcode::TlbiNsnhAll, &[])
                };
                self.line(render_cmd(c, n));
                if self.g.chance(1, 2) {
                    self.line(render_cmd(cmd(Opcode::Sync, &[]), 1));
                }
                self.line("submit".into());
            }
            1 => {
                // SYNC moved before the invalidation it should follow, or doubled.
                let mut b = self.batch_any();
                b.retain(|c| c.opcode() != Opcode::Sync);
                let s = self.sync();
                if self.g.chance(1, 2) {
                    b.insert(0, s);
                } else {
                    b.push(s);
                    b.push(s);
                }
                self.emit_batch(b);
            }
            2 => self.ack(),
            _ => {
                let mut b = self.batch_any();
                if !b.is_empty() {
                    let i = self.g.below(b.len());
                    b[i] = self.corrupt(b[i]);
                }
                self.emit_batch(b);
            }
        }
    }

    fn ack(&mut self) {
        let l = match self.g.below(3) {
            0 => "ack drop".to_string(),
            1 => {
                let c = self.sync();
                format!(
                    "ack replace {}",
                    render_cmd(c, 1).trim_start_matches("cmd ")
                )
            }
            _ => "ack".to_string(),
        };
        self.line(l);
        self.maybe_error = false;
    }

    /// Queue a batch: legal mode filters through the classifier, raw mode sometimes corrupts.
    fn emit_batch(&mut self, batch: Vec<RawCommand>) {
        let mut out: Vec<RawCommand> = Vec::new();
        for c in batch {
            let c = if self.mode == Mode::Raw && self.g.chance(1, 6) {
                self.corrupt(c)
            } else {
                c
            };
            let v = classify(self.p, Queue::NonSecure, c).verdict;
            match (self.mode, v) {
                (_, Verdict::Legal) => out.push(c),
                (Mode::Legal, _) => {
                    // Try the plain (non-range) form before giving the command up.
                    let plain = c
                        .with(layout::TG, 0)
                        .with(layout::TTL, 0)
                        .with(layout::NUM, 0)
                        .with(layout::SCALE, 0);
                    let plain = if layout::fields(c.opcode()).contains(&layout::TG) {
                        plain
                    } else {
                        c
                    };
                    if classify(self.p, Queue::NonSecure, plain).verdict == Verdict::Legal {
                        out.push(plain);
                    }
                }
                (Mode::Raw, _) => {
                    out.push(c);
                    self.maybe_error = true;
                }
            }
        }
        if out.is_empty() {
            return;
        }
        // Collapse runs so wraps stay one line.
        let mut i = 0;
        while i < out.len() {
            let mut n = 1;
            while i + n < out.len() && out[i + n] == out[i] {
                n += 1;
            }
            self.line(render_cmd(out[i], n));
            i += n;
        }
        self.line("submit".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::parse_cmd;
    use smmu_model::profile::NAMED_PROFILES;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn rendered_commands_parse_back() {
        let mut r = Rng(7);
        for _ in 0..20_000 {
            let raw = RawCommand::new(r.next(), r.next());
            // Architected opcodes with only defined bits take the named form.
            let op = ARCHITECTED[(r.next() % ARCHITECTED.len() as u64) as usize].0;
            let named = RawCommand::from_u128(
                (raw.as_u128() & !0xff | op as u128) & layout::defined_mask(Opcode::from_u8(op)),
            );
            for c in [raw, named] {
                let line = render_cmd(c, 1);
                let words: Vec<&str> = line.split_whitespace().skip(1).collect();
                assert_eq!(parse_cmd(&words), Ok(c), "{line}");
            }
        }
    }

    #[test]
    fn every_input_compiles_on_every_profile() {
        let mut r = Rng(0x5eed);
        for named in NAMED_PROFILES {
            let p = Profile::from_regs(named.regs);
            for i in 0..60 {
                let n = (r.next() % 2048) as usize;
                let data = r.bytes(n);
                let mode = if i % 2 == 0 { Mode::Legal } else { Mode::Raw };
                let prog = generate(&data, &p, mode, &GenConfig::default());
                let mut repaired = prog.clone();
                let t = repaired.repair();
                assert!(
                    t.is_some() || !p.s1p && !p.s2p,
                    "{}: nothing compiles from {} lines",
                    named.name,
                    prog.lines.len()
                );
                // Repair should rarely need to remove anything.
                assert!(2 * repaired.lines.len() >= prog.lines.len());
            }
        }
    }

    #[test]
    fn legal_mode_emits_only_legal_commands() {
        let mut r = Rng(11);
        let p = Profile::from_regs(NAMED_PROFILES[0].regs);
        for _ in 0..200 {
            let data = r.bytes(1500);
            let prog = generate(&data, &p, Mode::Legal, &GenConfig::default());
            let case = prog.to_case().unwrap();
            for l in &case.steps {
                if let case::CaseStep::Cmd(c, _) = l.step {
                    assert_eq!(
                        classify(&p, Queue::NonSecure, c).verdict,
                        Verdict::Legal,
                        "{}",
                        l.text
                    );
                }
                assert!(!l.text.starts_with("ack"), "{}", l.text);
            }
        }
    }

    /// Divergence A of 2026-12-08 (docs/fuzzing.md): dev2 (VMID 0) adopted dev1's tables (VMID
    /// 0x101); a global mapping written through dev1 would be global for dev2 too, whose VMID tag
    /// dev0 shares (§3.17.1). Without the sharing, dev1 alone owns its tag and may map globally.
    #[test]
    fn global_mapping_checks_every_stream_walking_the_tables() {
        let named = NAMED_PROFILES
            .iter()
            .find(|n| Profile::from_regs(n.regs).s2p)
            .expect("a profile with stage 2");
        let p = Profile::from_regs(named.regs);
        let stream = |name: &str, asid, vmid, tables| StreamInfo {
            name: name.into(),
            sid: 0,
            kind: Kind::S1,
            asid,
            vmid,
            granule: Granule::K4,
            has_global: false,
            tables,
            el2: false,
        };
        let mut gen = Gen {
            g: G {
                u: Unstructured::new(&[]),
            },
            p: &p,
            mode: Mode::Legal,
            streams: vec![
                stream("dev0", 0xffff, 0, 0),
                stream("dev1", 0xffff, 0x101, 1),
                stream("dev2", 2, 0, 2),
            ],
            maps: Vec::new(),
            pages: 0,
            data_used: 0,
            lines: Vec::new(),
            maybe_error: false,
            asid_history: Vec::new(),
        };
        assert!(gen.global_ok(1), "dev1 alone in VMID 0x101");
        gen.streams[2].tables = gen.streams[1].tables;
        assert!(
            !gen.global_ok(1),
            "dev2 walks dev1's tables and shares dev0's tag"
        );
        gen.streams[0].vmid = 0x7;
        assert!(gen.global_ok(1), "no other stream in dev2's tag any more");
        gen.set_global(1);
        assert!(gen.streams[2].has_global && !gen.streams[0].has_global);
    }

    #[test]
    fn empty_input_is_fine() {
        for named in NAMED_PROFILES {
            let p = Profile::from_regs(named.regs);
            let _ = generate_trace(&[], &p, Mode::Raw, &GenConfig::default());
        }
    }
}
