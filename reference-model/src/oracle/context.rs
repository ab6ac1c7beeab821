//! Translation contexts: what an STE and CD say about how a stream's entries are tagged (§3.17,
//! §5.2, §5.4) and how its walks are parameterised.

use crate::granule::Granule;
use crate::profile::Profile;
use crate::structures::{Cd, SmmuProfile, Ste, StreamWorld as WalkWorld};
use crate::tlb::StreamWorld;
use crate::walk::{Stage, WalkParams};

/// The walker's view of the profile (only the fields translation depends on).
pub fn smmu_profile(p: &Profile, e2h: bool) -> SmmuProfile {
    SmmuProfile {
        s1p: p.s1p,
        s2p: p.s2p,
        hyp: p.hyp,
        e2h,
        cd2l: p.cd2l,
        st_level_2: p.st_level == 0b01,
        asid16: p.asid16,
        vmid16: p.vmid16,
        sid_bits: p.sidsize,
        ssid_bits: p.ssidsize,
        stt: false,
        oas_bits: p.oas_bits,
        gran4k: p.gran4k,
        gran16k: p.gran16k,
        gran64k: p.gran64k,
    }
}

pub fn tlb_world(w: WalkWorld) -> StreamWorld {
    match w {
        WalkWorld::NsEl1 => StreamWorld::NsEl1,
        WalkWorld::NsEl2 => StreamWorld::NsEl2,
        WalkWorld::NsEl2E2h => StreamWorld::NsEl2E2h,
    }
}

/// How entries built for one (STE, CD) pair are tagged and walked.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub sid: u32,
    pub walk_world: WalkWorld,
    pub world: StreamWorld,
    /// STE.S2VMID when stage 2 is implemented, else 0 (§3.17, §5.2 S2VMID).
    pub vmid: u16,
    pub asid: u16,
    pub aset: bool,
    pub cd: Option<Cd>,
    /// Stage 2 walk parameters when the STE enables stage 2 (S2-only or nested).
    pub s2: Option<WalkParams>,
    pub wxn: bool,
}

impl Ctx {
    pub fn new(sid: u32, ste: &Ste, cd: Option<&Cd>, sp: &SmmuProfile) -> Option<Ctx> {
        let walk_world = ste.stream_world(sp)?;
        let s2 = if ste.config().s2_enabled() {
            Some(WalkParams::stage2(ste, sp)?)
        } else {
            None
        };
        let (asid, aset, wxn) = match cd {
            // EL2 (non-E2H) has no ASIDs (§3.17.5): entries are untagged.
            Some(cd) if walk_world.has_asid() => (cd.asid, cd.aset, cd.wxn),
            Some(cd) => (0, cd.aset, cd.wxn),
            None => (0, false, false),
        };
        let vmid = match walk_world {
            WalkWorld::NsEl1 => ste.tlb_vmid(sp),
            // EL2 entries carry no VMID (§3.17 table).
            _ => 0,
        };
        Some(Ctx {
            sid,
            walk_world,
            world: tlb_world(walk_world),
            vmid,
            asid,
            aset,
            cd: cd.copied(),
            s2,
            wxn,
        })
    }

    pub fn nested(&self) -> bool {
        self.cd.is_some() && self.s2.is_some()
    }
}

/// Parameters for walking the subtree below a cached table descriptor at `level` (the table it
/// points to is at `level + 1`, indexed with a full table's worth of bits).
pub fn subtree_params(stage: Stage, granule: Granule, level: u8, table: u64) -> Option<WalkParams> {
    if level >= 3 {
        return None;
    }
    let next = level + 1;
    let input_bits = (granule.level_shift(next) + granule.bits_per_level()) as u8;
    Some(WalkParams::new(stage, granule, input_bits, next, table))
}
