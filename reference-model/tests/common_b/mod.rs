//! Shared helpers for the `tricky_*` tests: a [`Model`] plus a shadow copy of its memory, so that
//! page tables can be built with [`PageTableBuilder`] and written into the model word by word
//! (every word a separate single-copy-atomic write, as software would do it).
#![allow(dead_code)]

use smmu_model::command::{Command, RawCommand};
use smmu_model::granule::Granule;
use smmu_model::memory::{MemRead, Memory};
use smmu_model::oracle::{Accepted, Model, Observation, Probe, Violation};
use smmu_model::profile::Profile;
use smmu_model::structures::{Cd, Ste, StreamTableConfig};
use smmu_model::tables::{leaf_descriptor, LeafSpec, PageTableBuilder};
use smmu_model::walk::{s1_start_level, Stage, WalkParams};

/// Where the bump allocator starts handing out structure and table memory.
const ALLOC_BASE: u64 = 0x4000_0000;

/// Stage-1 leaf spec used by most tests: non-global (nG = 1), so entries are ASID-tagged and a
/// changed ASID really hides them (§3.17.1).
pub const NG: LeafSpec = LeafSpec {
    ng: true,
    ..LeafSpec::S1
};

/// One translation regime's tables.
pub struct Space {
    pub b: PageTableBuilder,
    pub root: u64,
    pub g: Granule,
}

pub struct Rig {
    pub m: Model,
    pub shadow: Memory,
    next: u64,
}

impl Rig {
    pub fn new(profile: &str) -> Rig {
        Rig {
            m: Model::new(Profile::named(profile).expect("named profile")),
            shadow: Memory::new(),
            next: ALLOC_BASE,
        }
    }

    /// `bytes` of zeroed memory, aligned to max(bytes, 4KB).
    pub fn alloc(&mut self, bytes: u64) -> u64 {
        let align = bytes.max(0x1000).next_power_of_two();
        let pa = self.next.div_ceil(align) * align;
        self.next = pa + bytes.max(0x1000);
        pa
    }

    pub fn write(&mut self, pa: u64, v: u64) {
        self.shadow.write_u64(pa, v);
        self.m.write_u64(pa, v);
    }

    pub fn read(&self, pa: u64) -> u64 {
        self.shadow.read_u64(pa)
    }

    /// A 64-byte structure published the way software does it: words 1..7 first, then word 0
    /// (which holds V), so that a reader never sees V=1 with a half-written body (§3.21.3).
    pub fn put_struct(&mut self, pa: u64, words: [u64; 8]) {
        for (i, w) in words.iter().enumerate().skip(1) {
            self.write(pa + 8 * i as u64, *w);
        }
        self.write(pa, words[0]);
    }

    /// A linear Stream table of 2^log2 STEs.
    pub fn linear_st(&mut self, log2: u8) -> u64 {
        let base = self.alloc(64 << log2);
        self.m
            .set_stream_table(StreamTableConfig::linear(base, log2));
        base
    }

    /// A fresh 4KB-granule, 39-bit stage-1 regime (start level 1).
    pub fn s1_space(&mut self) -> Space {
        self.s1_space_g(Granule::K4)
    }

    /// A fresh 39-bit stage-1 regime (T0SZ = 25) with granule `g`.
    pub fn s1_space_g(&mut self, g: Granule) -> Space {
        let root = self.alloc(g.size());
        let pool = self.alloc(0x20_0000);
        let start = s1_start_level(g, 39).expect("start level");
        Space {
            b: PageTableBuilder::new(WalkParams::new(Stage::S1, g, 39, start, root), pool),
            root,
            g,
        }
    }

    /// A fresh 4KB-granule stage-2 regime with a 40-bit IPA (S2T0SZ = 24), start level 1.
    pub fn s2_space(&mut self) -> Space {
        let root = self.alloc(0x1000);
        let pool = self.alloc(0x10_0000);
        Space {
            b: PageTableBuilder::new(WalkParams::new(Stage::S2, Granule::K4, 40, 1, root), pool),
            root,
            g: Granule::K4,
        }
    }

    /// Map `ia` -> `oa` at `level` in `sp`, writing every new or changed word into the model.
    /// Returns the PA of the leaf descriptor.
    pub fn map(&mut self, sp: &mut Space, ia: u64, oa: u64, level: u8, spec: &LeafSpec) -> u64 {
        let mut tmp = self.shadow.clone();
        let leaf = sp.b.map(&mut tmp, ia, oa, level, spec).expect("map");
        let mut diff: Vec<(u64, u64)> = tmp
            .iter()
            .filter(|(pa, v)| self.shadow.read_u64(*pa) != *v)
            .collect();
        diff.sort();
        for (pa, v) in diff {
            self.write(pa, v);
        }
        leaf
    }

    /// Rewrite an existing stage-1 leaf descriptor of `sp` (at `level`) to point at `oa`.
    pub fn remap_s1(&mut self, sp: &Space, leaf_pa: u64, level: u8, oa: u64, spec: &LeafSpec) {
        self.write(leaf_pa, leaf_descriptor(sp.g, level, oa, spec, Stage::S1));
    }

    pub fn remap_s2(&mut self, leaf_pa: u64, level: u8, oa: u64) {
        self.write(
            leaf_pa,
            leaf_descriptor(Granule::K4, level, oa, &LeafSpec::S2, Stage::S2),
        );
    }

    /// A CD (ASID `asid`, 39-bit VA, 4KB) for `sp`, written at a new address. Returns its PA.
    pub fn new_cd(&mut self, asid: u16, sp: &Space) -> u64 {
        let pa = self.alloc(64);
        self.put_struct(pa, cd(asid, sp).encode());
        pa
    }

    /// Consume a command that must be legal.
    #[track_caller]
    pub fn cmd(&mut self, c: Command) -> usize {
        self.raw(c.encode())
    }

    #[track_caller]
    pub fn raw(&mut self, r: RawCommand) -> usize {
        match self.m.consume(r) {
            Ok(n) => n,
            Err(rule) => panic!("{r} unexpectedly ILLEGAL: {} {}", rule.id, rule.section),
        }
    }

    pub fn sync(&mut self) {
        self.cmd(Command::sync());
    }

    /// `obs` for a probe by (sid, ssid) of `va`.
    pub fn check(
        &self,
        sid: u32,
        ssid: Option<u32>,
        va: u64,
        obs: Observation,
    ) -> Result<Accepted, Box<Violation>> {
        self.m.check(
            &Probe {
                sid,
                ssid,
                addr: va,
                write: false,
            },
            &obs,
        )
    }

    /// The observation must be accepted as the fresh result.
    #[track_caller]
    pub fn fresh(&self, sid: u32, ssid: Option<u32>, va: u64, obs: Observation) {
        match self.check(sid, ssid, va, obs) {
            Ok(Accepted::Fresh) => {}
            other => panic!("SID {sid:#x} VA {va:#x} {obs:?}: expected Fresh, got {other:?}"),
        }
    }

    /// The observation must be accepted, and only because stale entries may remain (MAY-keep).
    #[track_caller]
    pub fn stale_ok(&self, sid: u32, ssid: Option<u32>, va: u64, obs: Observation) {
        match self.check(sid, ssid, va, obs) {
            Ok(Accepted::Stale) => {}
            other => panic!("SID {sid:#x} VA {va:#x} {obs:?}: expected Stale, got {other:?}"),
        }
    }

    /// The observation must be rejected (MUST-remove); returns the violation.
    #[track_caller]
    pub fn rejected(&self, sid: u32, ssid: Option<u32>, va: u64, obs: Observation) -> Violation {
        match self.check(sid, ssid, va, obs) {
            Err(v) => {
                assert!(v.rule.section.starts_with('§'), "{v}");
                *v
            }
            Ok(a) => panic!("SID {sid:#x} VA {va:#x} {obs:?}: expected a violation, got {a:?}"),
        }
    }
}

/// A valid CD for `sp` (ASID `asid`, T0SZ 25, the regime's granule, TTB0 only).
pub fn cd(asid: u16, sp: &Space) -> Cd {
    Cd::new(asid, sp.root, 25, sp.g)
}

/// A stage-2-only STE for `sp` (VMID `vmid`).
pub fn s2_ste(vmid: u16, sp: &Space) -> Ste {
    Ste::stage2(vmid, sp.root, Granule::K4, 24, 1)
}

pub fn pa(pa: u64) -> Observation {
    Observation::Translated { pa }
}

pub fn fault(event: u8) -> Observation {
    Observation::Fault { event: Some(event) }
}
