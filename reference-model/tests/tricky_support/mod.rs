//! A small rig for oracle tests at model level: a linear stream table, STEs, CDs and page
//! tables built in a shadow memory and copied into the [`Model`] as ordinary memory writes, plus
//! one-line probes that assert in both directions through `Model::check`.
#![allow(dead_code)]

use smmu_model::command::{AddrInval, Command, RangeFields};
use smmu_model::granule::Granule;
use smmu_model::memory::{MemRead, Memory};
use smmu_model::oracle::{Accepted, Model, Observation, Probe, Violation};
use smmu_model::profile::{IdRegs, Profile};
use smmu_model::structures::cd::TtbRegion;
use smmu_model::structures::{Cd, Ste, StreamTableConfig, StreamWorld};
use smmu_model::tables::{LeafSpec, PageTableBuilder};
use smmu_model::walk::WalkParams;

pub const ST_BASE: u64 = 0x1000_0000;
/// Structures and tables are allocated from here (below 1 GB, so one identity stage-2 block
/// maps them all for nested streams).
pub const ALLOC_BASE: u64 = 0x1010_0000;

pub fn profile(name: &str) -> Profile {
    Profile::named(name).unwrap_or_else(|| panic!("no profile {name}"))
}

/// A named profile with ID register bits changed (`set`/`clear` masks on IDR0).
pub fn profile_idr0(name: &str, set: u32, clear: u32) -> Profile {
    let regs: IdRegs = profile(name).regs;
    Profile::from_regs(IdRegs {
        idr0: (regs.idr0 | set) & !clear,
        ..regs
    })
}

/// One translation table tree (a stage-1 region or a stage 2).
#[derive(Clone, Debug)]
pub struct Tables {
    pub b: PageTableBuilder,
}

pub struct Rig {
    pub m: Model,
    pub shadow: Memory,
    next: u64,
}

impl Rig {
    /// A model with a 64-entry linear stream table; SMMUEN is still 0.
    pub fn new(p: Profile) -> Rig {
        let mut m = Model::new(p);
        m.set_stream_table(StreamTableConfig::linear(ST_BASE, 6));
        Rig {
            m,
            shadow: Memory::new(),
            next: ALLOC_BASE,
        }
    }

    pub fn named(name: &str) -> Rig {
        Rig::new(profile(name))
    }

    /// 64 KB-aligned scratch space (enough for any granule's table).
    pub fn alloc(&mut self) -> u64 {
        let a = self.next;
        self.next += 0x1_0000;
        a
    }

    pub fn write(&mut self, pa: u64, v: u64) {
        self.shadow.write_u64(pa, v);
        self.m.write_u64(pa, v);
    }

    pub fn write_words(&mut self, pa: u64, w: &[u64]) {
        for (i, v) in w.iter().enumerate() {
            self.write(pa + 8 * i as u64, *v);
        }
    }

    /// Copy every shadow word the builder wrote into the model (unchanged words are no-ops).
    fn flush(&mut self) {
        let words: Vec<(u64, u64)> = self.shadow.iter().collect();
        for (pa, v) in words {
            self.m.write_u64(pa, v);
        }
    }

    pub fn set_ste(&mut self, sid: u32, ste: &Ste) {
        self.write_words(ST_BASE + 64 * sid as u64, &ste.encode());
    }

    /// The eight words of a structure as last written.
    pub fn shadow_words(&self, pa: u64) -> [u64; 8] {
        let mut w = [0u64; 8];
        for (i, x) in w.iter_mut().enumerate() {
            *x = self.shadow.read_u64(pa + 8 * i as u64);
        }
        w
    }

    pub fn set_cd(&mut self, cd_pa: u64, cd: &Cd) {
        self.write_words(cd_pa, &cd.encode());
    }

    /// Tables for one region of a CD (root table at the CD's TTB).
    pub fn s1_tables(&mut self, cd: &Cd, region: TtbRegion) -> Tables {
        let p = WalkParams::stage1_region(cd, StreamWorld::NsEl1, self.m.smmu_profile(), region)
            .expect("CD region walkable");
        let next = self.alloc();
        // Large 64 KB tables: leave room for a few of them.
        self.next += 0x10_0000;
        Tables {
            b: PageTableBuilder::new(p, next),
        }
    }

    pub fn s2_tables(&mut self, ste: &Ste) -> Tables {
        let p = WalkParams::stage2(ste, self.m.smmu_profile()).expect("S2 walkable");
        let next = self.alloc();
        self.next += 0x10_0000;
        Tables {
            b: PageTableBuilder::new(p, next),
        }
    }

    /// Map (or remap) `ia` at `level` to `oa`; returns the descriptor's address.
    pub fn map(&mut self, t: &mut Tables, ia: u64, oa: u64, level: u8, spec: LeafSpec) -> u64 {
        let da =
            t.b.map(&mut self.shadow, ia, oa, level, &spec)
                .expect("map");
        self.flush();
        da
    }

    /// Invalidate the leaf for `ia` at `level` (a plain memory write of 0).
    pub fn unmap(&mut self, t: &Tables, ia: u64, level: u8) {
        let da = t.b.leaf_address(&self.shadow, ia, level).expect("mapped");
        self.write(da, 0);
    }

    /// A stage-1-only stream: CD with `asid` (4 KB granule unless `cd` says otherwise) at SID
    /// `sid`, STE changed by `ste`; returns (CD address, CD, TTB0 tables).
    pub fn s1_stream(&mut self, sid: u32, cd: Cd, ste: impl Fn(Ste) -> Ste) -> (u64, Cd, Tables) {
        let cd_pa = self.alloc();
        let mut cd = cd;
        cd.ttb0 = self.alloc();
        if !cd.epd1 {
            cd.ttb1 = self.alloc();
        }
        self.set_cd(cd_pa, &cd);
        self.set_ste(sid, &ste(Ste::stage1(cd_pa)));
        let t = self.s1_tables(&cd, TtbRegion::Ttb0);
        (cd_pa, cd, t)
    }

    /// Stage-2-only stream with a 4 KB granule, 39-bit IPA, start level 1.
    pub fn s2_stream(&mut self, sid: u32, vmid: u16) -> Tables {
        let ttb = self.alloc();
        let ste = Ste::stage2(vmid, ttb, Granule::K4, 25, 1);
        self.set_ste(sid, &ste);
        self.s2_tables(&ste)
    }

    /// Nested stream (Config 0b111): 4 KB granules, stage 2 39-bit IPA with an identity 1 GB
    /// block over the structure area so CD and stage-1 tables (IPAs) sit where they are written.
    /// Returns (stage-1 tables, stage-2 tables).
    pub fn nested_stream(&mut self, sid: u32, vmid: u16, asid: u16) -> (Tables, Tables) {
        let s2ttb = self.alloc();
        let cd_pa = self.alloc();
        let cd = Cd::new(asid, self.alloc(), 25, Granule::K4);
        self.set_cd(cd_pa, &cd);
        let ste = Ste::nested(cd_pa, vmid, s2ttb, Granule::K4, 25, 1);
        self.set_ste(sid, &ste);
        let mut s2 = self.s2_tables(&ste);
        self.map(&mut s2, 0, 0, 1, LeafSpec::S2);
        let s1 = self.s1_tables(&cd, TtbRegion::Ttb0);
        (s1, s2)
    }

    pub fn enable(&mut self) {
        self.m.set_smmuen(true);
    }

    pub fn cmd(&mut self, c: Command) -> usize {
        self.m
            .consume(c.encode())
            .unwrap_or_else(|r| panic!("{c:?} unexpectedly ILLEGAL: {} {}", r.id, r.section))
    }

    pub fn sync(&mut self) {
        self.m
            .consume(Command::sync().encode())
            .expect("CMD_SYNC is legal");
    }

    pub fn probe(sid: u32, va: u64) -> Probe {
        Probe {
            sid,
            ssid: None,
            addr: va,
            write: false,
        }
    }

    pub fn check(&self, sid: u32, va: u64, pa: u64) -> Result<Accepted, Box<Violation>> {
        self.m
            .check(&Rig::probe(sid, va), &Observation::Translated { pa })
    }

    /// `va` -> `pa` must be the fresh result.
    #[track_caller]
    pub fn fresh(&self, sid: u32, va: u64, pa: u64) {
        match self.check(sid, va, pa) {
            Ok(Accepted::Fresh) => {}
            other => panic!("SID {sid} {va:#x} -> {pa:#x}: expected Fresh, got {other:?}"),
        }
    }

    /// `va` -> `pa` must be accepted as a stale (still cacheable) result.
    #[track_caller]
    pub fn stale(&self, sid: u32, va: u64, pa: u64) {
        match self.check(sid, va, pa) {
            Ok(Accepted::Stale) => {}
            other => panic!("SID {sid} {va:#x} -> {pa:#x}: expected Stale, got {other:?}"),
        }
    }

    /// `va` -> `pa` must be rejected; returns the violation for rule checks.
    #[track_caller]
    pub fn forbidden(&self, sid: u32, va: u64, pa: u64) -> Box<Violation> {
        match self.check(sid, va, pa) {
            Err(v) => {
                assert!(v.rule.section.starts_with('§'), "{v}");
                v
            }
            Ok(a) => panic!("SID {sid} {va:#x} -> {pa:#x}: expected a violation, got {a:?}"),
        }
    }

    /// Forbidden, and the violation names `rule_id` (the invalidation that removed it).
    #[track_caller]
    pub fn forbidden_by(&self, sid: u32, va: u64, pa: u64, rule_id: &str) {
        let v = self.forbidden(sid, va, pa);
        assert_eq!(v.rule.id, rule_id, "{v}");
    }

    /// A translation fault must be an allowed outcome (or not, with `allowed == false`).
    #[track_caller]
    pub fn fault_allowed(&self, sid: u32, va: u64, allowed: bool) {
        let r = self
            .m
            .check(&Rig::probe(sid, va), &Observation::Fault { event: None });
        assert_eq!(r.is_ok(), allowed, "SID {sid} {va:#x} fault: {r:?}");
    }
}

pub fn range(tg: u8, ttl: u8, num: u8, scale: u8) -> RangeFields {
    RangeFields {
        tg,
        ttl,
        ttl128: false,
        num,
        scale,
    }
}

pub fn inv(addr: u64, leaf: bool, range: RangeFields) -> AddrInval {
    AddrInval { addr, leaf, range }
}

pub fn nh_va(vmid: u16, asid: u16, addr: u64, leaf: bool, r: RangeFields) -> Command {
    Command::TlbiNhVa {
        vmid,
        asid,
        inv: inv(addr, leaf, r),
    }
}

pub fn nh_vaa(vmid: u16, addr: u64, leaf: bool, r: RangeFields) -> Command {
    Command::TlbiNhVaa {
        vmid,
        inv: inv(addr, leaf, r),
    }
}

pub fn s2_ipa(vmid: u16, addr: u64, leaf: bool, r: RangeFields) -> Command {
    Command::TlbiS2Ipa {
        vmid,
        inv: inv(addr, leaf, r),
    }
}

pub const NO_RANGE: RangeFields = RangeFields {
    tg: 0,
    ttl: 0,
    ttl128: false,
    num: 0,
    scale: 0,
};
pub const TG4K: u8 = 1;
pub const TG16K: u8 = 2;
pub const TG64K: u8 = 3;
