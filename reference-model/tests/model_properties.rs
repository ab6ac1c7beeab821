//! Properties of the oracle (`Model`) over random small stage-1 mappings, remaps, unmaps and
//! table drops, with and without invalidations:
//! 1. with no invalidation ever, a translation observed once stays allowed whatever memory
//!    writes follow (nothing forces an entry out of a TLB, §16.2, §3.21.1);
//! 2. after TLBI_NSNH_ALL + SYNC and CFGI_ALL + SYNC on a stage-1-only SMMU, only the fresh walk
//!    is allowed (§4.4.4.1, §4.3.6, §4.7.3);
//! 3. an extra invalidation + SYNC never grows the allowed set (invalidations only remove);
//! 4. a fresh walk's result is always allowed, and the enumerator finds it on its own.

mod tricky_support;

use proptest::prelude::*;
use smmu_model::command::Command;
use smmu_model::granule::Granule;
use smmu_model::oracle::enumerate::{Enumerator, Outcome};
use smmu_model::oracle::{Accepted, Observation};
use smmu_model::structures::Cd;
use smmu_model::tables::LeafSpec;
use smmu_model::walk::Access;
use std::collections::BTreeSet;
use tricky_support::*;

const SID: u32 = 1;
/// VA slots: two pages sharing an L3 table, a page in another L3 table, a 2 MB-block-sized slot
/// (mapped as a page here), and two pages in another 1 GB region (another L2 table).
const SLOTS: [u64; 6] = [
    0x1000,
    0x2000,
    0x20_1000,
    0x40_0000,
    0x4000_3000,
    0x4020_0000,
];

#[derive(Clone, Copy, Debug)]
enum Op {
    Map {
        slot: usize,
        pa: u64,
        ng: bool,
    },
    Unmap {
        slot: usize,
    },
    /// Invalidate the level-1 descriptor above a slot: its whole subtree becomes stale.
    DropL1 {
        slot: usize,
    },
    Observe {
        slot: usize,
    },
    Tlbi(Tlbi),
    Sync,
}

#[derive(Clone, Copy, Debug)]
enum Tlbi {
    NhAll,
    NhAsid(u16),
    NhVa { asid: u16, slot: usize, leaf: bool },
    NhVaa { slot: usize, leaf: bool },
    Range { slot: usize, num: u8, ttl: u8 },
    NsnhAll,
}

impl Tlbi {
    fn command(self) -> Command {
        match self {
            Tlbi::NhAll => Command::TlbiNhAll { vmid: 0 },
            Tlbi::NhAsid(asid) => Command::TlbiNhAsid { vmid: 0, asid },
            Tlbi::NhVa { asid, slot, leaf } => nh_va(0, asid, SLOTS[slot], leaf, NO_RANGE),
            Tlbi::NhVaa { slot, leaf } => nh_vaa(0, SLOTS[slot], leaf, NO_RANGE),
            // TTL 0 with NUM 0 is Reserved: keep NUM >= 1 then.
            Tlbi::Range { slot, num, ttl } => nh_vaa(
                0,
                SLOTS[slot],
                false,
                range(TG4K, ttl, if ttl == 0 { num.max(1) } else { num }, 0),
            ),
            Tlbi::NsnhAll => Command::TlbiNsnhAll,
        }
    }
}

fn slot() -> impl Strategy<Value = usize> {
    0..SLOTS.len()
}

fn mem_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (slot(), 0u64..4, any::<bool>()).prop_map(|(slot, k, ng)| Op::Map {
            slot,
            pa: 0x8000_0000 + k * 0x1000,
            ng
        }),
        2 => slot().prop_map(|slot| Op::Unmap { slot }),
        1 => slot().prop_map(|slot| Op::DropL1 { slot }),
        3 => slot().prop_map(|slot| Op::Observe { slot }),
    ]
}

fn tlbi() -> impl Strategy<Value = Tlbi> {
    prop_oneof![
        Just(Tlbi::NhAll),
        (1u16..3).prop_map(Tlbi::NhAsid),
        (1u16..3, slot(), any::<bool>()).prop_map(|(asid, slot, leaf)| Tlbi::NhVa {
            asid,
            slot,
            leaf
        }),
        (slot(), any::<bool>()).prop_map(|(slot, leaf)| Tlbi::NhVaa { slot, leaf }),
        (slot(), 0u8..3, 0u8..4).prop_map(|(slot, num, ttl)| Tlbi::Range { slot, num, ttl }),
        Just(Tlbi::NsnhAll),
    ]
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => mem_op(),
        2 => tlbi().prop_map(Op::Tlbi),
        1 => Just(Op::Sync),
    ]
}

fn initial() -> impl Strategy<Value = Vec<(usize, u64, bool)>> {
    prop::collection::vec((slot(), 0u64..4, any::<bool>()), 1..5)
}

/// A stage-1-only (qemu-7.2) stream with ASID 1 and the initial mappings, enabled.
struct World {
    r: Rig,
    t: Tables,
}

impl World {
    fn new(init: &[(usize, u64, bool)]) -> World {
        let mut r = Rig::named("qemu-7.2");
        let (_, _, t) = r.s1_stream(SID, Cd::new(1, 0, 25, Granule::K4), |s| s);
        let mut w = World { r, t };
        for &(slot, k, ng) in init {
            w.apply(Op::Map {
                slot,
                pa: 0x8000_0000 + k * 0x1000,
                ng,
            });
        }
        w.r.enable();
        w
    }

    /// Applies `op`; returns the observed translation for `Observe`.
    fn apply(&mut self, op: Op) -> Option<(u64, u64)> {
        match op {
            Op::Map { slot, pa, ng } => {
                let spec = LeafSpec::S1.ng(ng);
                let mut t = self.t.clone();
                self.r.map(&mut t, SLOTS[slot], pa, 3, spec);
                self.t = t;
            }
            Op::Unmap { slot } => {
                if let Some(da) = self.t.b.leaf_address(&self.r.shadow, SLOTS[slot], 3) {
                    self.r.write(da, 0);
                }
            }
            Op::DropL1 { slot } => {
                let da = self
                    .t
                    .b
                    .leaf_address(&self.r.shadow, SLOTS[slot], 1)
                    .unwrap();
                self.r.write(da, 0);
            }
            Op::Observe { slot } => {
                let va = SLOTS[slot];
                if let Some(Outcome::Translated { pa }) = self.r.m.fresh(&Rig::probe(SID, va)) {
                    return Some((va, pa));
                }
            }
            Op::Tlbi(t) => {
                self.r.cmd(t.command());
            }
            Op::Sync => self.r.sync(),
        }
        None
    }

    /// Every probe of interest: each slot and a page next to it.
    fn probes() -> impl Iterator<Item = u64> {
        SLOTS.iter().flat_map(|&va| [va, va + 0x1000])
    }

    fn allowed(&self, va: u64) -> BTreeSet<Outcome> {
        self.r.m.allowed(&Rig::probe(SID, va)).outcomes
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Property 1 (§16.2, §3.21.1): without invalidations an SMMU may keep every entry it ever
    /// cached, so a translation once observed stays allowed after any memory writes.
    #[test]
    fn observed_translations_stay_allowed_without_invalidation(
        init in initial(),
        ops in prop::collection::vec(mem_op(), 1..20),
    ) {
        let mut w = World::new(&init);
        let mut seen: Vec<(u64, u64)> = Vec::new();
        for va in SLOTS {
            if let Some(o) = w.apply(Op::Observe { slot: SLOTS.iter().position(|&s| s == va).unwrap() }) {
                seen.push(o);
            }
        }
        for op in ops {
            if let Some(o) = w.apply(op) {
                seen.push(o);
            }
            for &(va, pa) in &seen {
                let r = w.r.check(SID, va, pa);
                prop_assert!(r.is_ok(), "{va:#x} -> {pa:#x} rejected after {op:?}: {r:?}");
            }
        }
    }

    /// Property 2 (§4.4.4.1, §4.3.6, §4.7.3): TLBI_NSNH_ALL + SYNC and CFGI_ALL + SYNC leave a
    /// stage-1-only SMMU with nothing but the fresh walk.
    #[test]
    fn nsnh_all_and_cfgi_all_leave_only_fresh(
        init in initial(),
        ops in prop::collection::vec(any_op(), 1..20),
    ) {
        let mut w = World::new(&init);
        for op in ops {
            w.apply(op);
        }
        w.r.cmd(Command::cfgi_all());
        w.r.sync();
        w.r.cmd(Command::TlbiNsnhAll);
        w.r.sync();
        for va in World::probes() {
            let a = w.r.m.allowed(&Rig::probe(SID, va));
            let fresh = w.r.m.fresh(&Rig::probe(SID, va)).unwrap();
            prop_assert_eq!(a.outcomes, BTreeSet::from([fresh]), "probe {:#x}", va);
        }
    }

    /// Property 3: the same history with an extra TLBI + SYNC inserted never allows more.
    #[test]
    fn extra_invalidation_never_grows_allowed_set(
        init in initial(),
        ops in prop::collection::vec(any_op(), 1..20),
        at in any::<prop::sample::Index>(),
        extra in tlbi(),
    ) {
        let mut a = World::new(&init);
        let mut b = World::new(&init);
        let at = at.index(ops.len() + 1);
        for (i, op) in ops.iter().enumerate() {
            if i == at {
                b.apply(Op::Tlbi(extra));
                b.apply(Op::Sync);
            }
            a.apply(*op);
            b.apply(*op);
        }
        if at == ops.len() {
            b.apply(Op::Tlbi(extra));
            b.apply(Op::Sync);
        }
        for va in World::probes() {
            let (sa, sb) = (a.allowed(va), b.allowed(va));
            prop_assert!(sb.is_subset(&sa), "probe {:#x}: with {:?} at {}: {:?} not within {:?}", va, extra, at, sb, sa);
        }
    }

    /// Property 4: the fresh walk is always allowed (as `Fresh`), and the enumerator of cached
    /// alternatives finds it by itself (a cross-check of the two walkers).
    #[test]
    fn fresh_walk_always_allowed(
        init in initial(),
        ops in prop::collection::vec(any_op(), 1..20),
    ) {
        let mut w = World::new(&init);
        for op in ops {
            w.apply(op);
            for va in World::probes() {
                let p = Rig::probe(SID, va);
                let fresh = w.r.m.fresh(&p).unwrap();
                let obs = match fresh {
                    Outcome::Translated { pa } => Observation::Translated { pa },
                    Outcome::Fault { event } => Observation::Fault { event: Some(event) },
                    Outcome::Abort => Observation::Abort,
                };
                prop_assert_eq!(w.r.m.check(&p, &obs).unwrap(), Accepted::Fresh);
                let m = &w.r.m;
                let mut en = Enumerator::new(m.memory(), m.smmu_profile(), m.stream_table(), m.stale(), Access::read());
                let own = en.probe(SID, None, va);
                prop_assert!(own.outcomes.contains(&fresh), "probe {:#x}: walker {:?}, enumerator {:?}", va, fresh, own.outcomes);
            }
        }
    }
}
