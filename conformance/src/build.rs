//! Building traces: stream tables, STEs, CDs and translation tables as plain memory writes on
//! the [`crate::layout`] memory map. Cases, fuzz generators and tests all build through this, so
//! a backend always receives ordinary memory writes and register steps, nothing higher level.

use crate::layout::{DATA_BASE, DATA_END, STRUCT_BASE, STRUCT_END};
use crate::trace::{Step, Trace};
use smmu_model::command::RawCommand;
use smmu_model::granule::Granule;
use smmu_model::memory::{MemRead, Memory};
use smmu_model::structures::{Cd, Ste, StreamTableConfig};
use smmu_model::tables::{leaf_descriptor, table_descriptor, LeafSpec};
use smmu_model::walk::{
    decode_descriptor, descriptor_address, s1_start_level, Descriptor, Stage, WalkParams,
};

/// Why a build step could not be done (a case asked for something impossible).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("out of {0} memory in the case memory map")]
    OutOfMemory(&'static str),
    #[error("level {level} cannot hold a leaf with the {granule:?} granule")]
    BadLevel { level: u8, granule: Granule },
    #[error("address {addr:#x} is already mapped by a block at level {level}")]
    Conflict { addr: u64, level: u8 },
    #[error("no {0} translation for this stream")]
    NoStage(&'static str),
}

/// One stream's structures: where its STE and CD are and how its tables are rooted.
#[derive(Clone, Debug)]
pub struct Stream {
    pub sid: u32,
    pub ste_pa: u64,
    pub ste: Ste,
    pub cd_pa: Option<u64>,
    pub cd: Option<Cd>,
    pub s1: Option<WalkParams>,
    pub s2: Option<WalkParams>,
}

/// Input sizes used for each granule: 39-bit (4K, walk from level 1), 36-bit (16K, level 2),
/// 42-bit (64K, level 2).
pub fn default_input_bits(g: Granule) -> u8 {
    match g {
        Granule::K4 => 39,
        Granule::K16 => 36,
        Granule::K64 => 42,
    }
}

pub struct TraceBuilder {
    pub trace: Trace,
    /// What has been written so far (to extend tables without re-reading a device).
    pub mem: Memory,
    next_struct: u64,
    next_data: u64,
    pub stream_table: StreamTableConfig,
}

impl Default for TraceBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceBuilder {
    /// A linear stream table of 2^6 StreamIDs at the start of the structure area, programmed
    /// as the first step.
    pub fn new() -> Self {
        Self::with_stream_table(6)
    }

    pub fn with_stream_table(log2size: u8) -> Self {
        let base = STRUCT_BASE;
        let size = 64u64 << log2size;
        let st = StreamTableConfig::linear(base, log2size);
        let mut b = TraceBuilder {
            trace: Trace::default(),
            mem: Memory::new(),
            next_struct: base + size.max(0x1000),
            next_data: DATA_BASE,
            stream_table: st,
        };
        b.trace.steps.push(Step::StreamTable {
            base: st.strtab_base(),
            cfg: st.strtab_base_cfg(),
        });
        b
    }

    /// Zeroed structure memory, `align`-aligned (a power of two).
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<u64, BuildError> {
        let a = self.next_struct.div_ceil(align.max(8)) * align.max(8);
        let end = a
            .checked_add(size)
            .ok_or(BuildError::OutOfMemory("structure"))?;
        if end > STRUCT_END {
            return Err(BuildError::OutOfMemory("structure"));
        }
        self.next_struct = end;
        Ok(a)
    }

    /// A fresh output page (or block) of `size` bytes, naturally aligned.
    pub fn data(&mut self, size: u64) -> Result<u64, BuildError> {
        let a = self.next_data.div_ceil(size) * size;
        let end = a.checked_add(size).ok_or(BuildError::OutOfMemory("data"))?;
        if end > DATA_END {
            return Err(BuildError::OutOfMemory("data"));
        }
        self.next_data = end;
        Ok(a)
    }

    pub fn write(&mut self, pa: u64, value: u64) {
        self.mem.write_u64(pa, value);
        self.trace.steps.push(Step::Write { pa, value });
    }

    pub fn write_words(&mut self, pa: u64, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            self.write(pa + 8 * i as u64, *w);
        }
    }

    pub fn step(&mut self, s: Step) {
        self.trace.steps.push(s);
    }
    pub fn enable(&mut self) {
        self.step(Step::Enable { on: true });
    }
    pub fn submit(&mut self, cmds: &[RawCommand]) {
        self.step(Step::submit(cmds.iter().copied()));
    }
    pub fn probe(&mut self, sid: u32, addr: u64) {
        self.step(Step::probe(sid, addr));
    }
    pub fn probe_write(&mut self, sid: u32, addr: u64) {
        self.step(Step::Probe {
            sid,
            ssid: None,
            addr,
            write: true,
        });
    }

    fn ste_pa(&self, sid: u32) -> u64 {
        (self.stream_table.strtab_base() & 0x00ff_ffff_ffff_ffc0) + sid as u64 * 64
    }

    fn root(&mut self, stage: Stage, g: Granule, input_bits: u8) -> Result<WalkParams, BuildError> {
        let start = s1_start_level(g, input_bits).ok_or(BuildError::BadLevel {
            level: 0,
            granule: g,
        })?;
        let probe = WalkParams::new(stage, g, input_bits, start, 0);
        let size = smmu_model::walk::table_size(&probe, start);
        let base = self.alloc(size, size.max(g.size()))?;
        Ok(WalkParams::new(stage, g, input_bits, start, base))
    }

    /// A stage-1 stream: STE (S2VMID = `vmid`, meaningful when stage 2 is implemented) -> one
    /// CD with `asid` -> a TTB0 table of granule `g`.
    pub fn s1_stream(
        &mut self,
        sid: u32,
        asid: u16,
        vmid: u16,
        g: Granule,
    ) -> Result<Stream, BuildError> {
        let p = self.root(Stage::S1, g, default_input_bits(g))?;
        let cd_pa = self.alloc(64, 64)?;
        let cd = Cd::new(asid, p.table_base, 64 - p.input_bits, g);
        self.write_words(cd_pa, &cd.encode());
        let ste = Ste::stage1(cd_pa).with_vmid(vmid);
        let ste_pa = self.ste_pa(sid);
        self.write_words(ste_pa, &ste.encode());
        Ok(Stream {
            sid,
            ste_pa,
            ste,
            cd_pa: Some(cd_pa),
            cd: Some(cd),
            s1: Some(p),
            s2: None,
        })
    }

    /// A stage-2-only stream with a 4K-granule, 39-bit IPA space walked from level 1.
    pub fn s2_stream(&mut self, sid: u32, vmid: u16) -> Result<Stream, BuildError> {
        let p = self.root(Stage::S2, Granule::K4, 39)?;
        let ste = Ste::stage2(vmid, p.table_base, Granule::K4, 64 - 39, p.start_level);
        let ste_pa = self.ste_pa(sid);
        self.write_words(ste_pa, &ste.encode());
        Ok(Stream {
            sid,
            ste_pa,
            ste,
            cd_pa: None,
            cd: None,
            s1: None,
            s2: Some(p),
        })
    }

    /// A nested stream. Stage 2 maps the whole RAM window 1:1 with 1 GiB blocks, so the CD and
    /// stage-1 tables (allocated as ordinary memory) have IPA == PA; cases then remap stage 2
    /// where they need to.
    pub fn nested_stream(
        &mut self,
        sid: u32,
        asid: u16,
        vmid: u16,
        g: Granule,
    ) -> Result<Stream, BuildError> {
        let p2 = self.root(Stage::S2, Granule::K4, 39)?;
        let mut s = Stream {
            sid,
            ste_pa: self.ste_pa(sid),
            ste: Ste::bypass(),
            cd_pa: None,
            cd: None,
            s1: None,
            s2: Some(p2),
        };
        self.map(
            &mut s,
            Stage::S2,
            0x4000_0000,
            0x4000_0000,
            1,
            &LeafSpec::S2,
        )?;
        let p1 = self.root(Stage::S1, g, default_input_bits(g))?;
        let cd_pa = self.alloc(64, 64)?;
        let cd = Cd::new(asid, p1.table_base, 64 - p1.input_bits, g);
        self.write_words(cd_pa, &cd.encode());
        let ste = Ste::nested(
            cd_pa,
            vmid,
            p2.table_base,
            Granule::K4,
            64 - 39,
            p2.start_level,
        );
        self.write_words(s.ste_pa, &ste.encode());
        s.ste = ste;
        s.cd_pa = Some(cd_pa);
        s.cd = Some(cd);
        s.s1 = Some(p1);
        Ok(s)
    }

    /// Rewrite a stream's STE with STRW = `strw` (§5.2; 0b10 is EL2 or EL2-E2H) before the
    /// device can have cached it.
    pub fn set_strw(&mut self, mut s: Stream, strw: u8) -> Stream {
        s.ste = s.ste.with_strw(strw);
        self.write_words(s.ste_pa, &s.ste.encode());
        s
    }

    /// Map the block or page containing `ia` at `level` to `oa`, allocating tables as needed.
    /// Returns the PA of the leaf descriptor.
    pub fn map(
        &mut self,
        s: &mut Stream,
        stage: Stage,
        ia: u64,
        oa: u64,
        level: u8,
        spec: &LeafSpec,
    ) -> Result<u64, BuildError> {
        let p = match stage {
            Stage::S1 => s.s1.ok_or(BuildError::NoStage("stage-1"))?,
            Stage::S2 => s.s2.ok_or(BuildError::NoStage("stage-2"))?,
        };
        let g = p.granule;
        if level < p.start_level || g.block_size(level).is_none() {
            return Err(BuildError::BadLevel { level, granule: g });
        }
        let mut table = p.table_base;
        for l in p.start_level..level {
            let da = descriptor_address(&p, l, table, ia);
            match decode_descriptor(g, l, self.mem.read_u64(da), stage) {
                Descriptor::Table { next_table, .. } => table = next_table,
                Descriptor::Leaf { .. } => return Err(BuildError::Conflict { addr: ia, level: l }),
                Descriptor::Invalid => {
                    let t = self.alloc(g.size(), g.size())?;
                    self.write(da, table_descriptor(t));
                    table = t;
                }
            }
        }
        let da = descriptor_address(&p, level, table, ia);
        self.write(da, leaf_descriptor(g, level, oa, spec, stage));
        Ok(da)
    }

    /// The PA of the descriptor that translates `ia` at `level`, if the tables reach it.
    pub fn descriptor_pa(&self, s: &Stream, stage: Stage, ia: u64, level: u8) -> Option<u64> {
        let p = match stage {
            Stage::S1 => s.s1?,
            Stage::S2 => s.s2?,
        };
        let mut table = p.table_base;
        for l in p.start_level..level {
            let da = descriptor_address(&p, l, table, ia);
            match decode_descriptor(p.granule, l, self.mem.read_u64(da), stage) {
                Descriptor::Table { next_table, .. } => table = next_table,
                _ => return None,
            }
        }
        Some(descriptor_address(&p, level, table, ia))
    }

    pub fn finish(self) -> Trace {
        self.trace
    }
}
