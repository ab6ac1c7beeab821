//! The feature profile: what an SMMU implements, read from its raw ID registers (§6.3), plus the
//! command queue a command arrives on. Command legality and RES0-ness depend on it (§4.1, §4.4).

use serde::{Deserialize, Serialize};

/// The Command queue a command was submitted to: each Security state has its own (§3.5, §4.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Queue {
    #[default]
    NonSecure,
    Secure,
    Realm,
}

impl std::str::FromStr for Queue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ns" | "non-secure" | "nonsecure" => Ok(Queue::NonSecure),
            "s" | "secure" => Ok(Queue::Secure),
            "realm" | "r" => Ok(Queue::Realm),
            _ => Err(format!(
                "unknown queue '{s}' (expected non-secure, secure or realm)"
            )),
        }
    }
}

/// Raw ID register values: the profile is always derived from these, never hand-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct IdRegs {
    pub idr0: u32,
    pub idr1: u32,
    pub idr3: u32,
    pub idr5: u32,
    pub aidr: u32,
    /// SMMU_S_IDR1 (§6.3.53): SECURE_IMPL[31], SEL2[29]. Zero when there is no Secure state.
    pub s_idr1: u32,
    /// SMMU_S_IDR3 (§6.3.55): SAMS[6].
    pub s_idr3: u32,
    /// SMMU_R_IDR0 / R_IDR3 for the Realm interface: ATS[10] and DPT[15] are the bits commands
    /// depend on (§4.5.1, §4.6). Zero when RME is not implemented.
    pub r_idr0: u32,
    pub r_idr3: u32,
}

const fn bit(v: u32, n: u32) -> bool {
    (v >> n) & 1 != 0
}
const fn bits(v: u32, hi: u32, lo: u32) -> u32 {
    (v >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

/// Every feature command handling depends on, decoded from [`IdRegs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Profile {
    pub regs: IdRegs,
    // SMMU_IDR0 (§6.3.1)
    pub s2p: bool,
    pub s1p: bool,
    pub ttf: u8,
    pub cohacc: bool,
    pub btm: bool,
    pub httu: u8,
    pub hyp: bool,
    pub ats: bool,
    pub ns1ats: bool,
    pub asid16: bool,
    pub msi: bool,
    pub sev: bool,
    pub atos: bool,
    pub pri: bool,
    pub vmw: bool,
    pub vmid16: bool,
    pub cd2l: bool,
    pub stall_model: u8,
    pub term_model: bool,
    pub st_level: u8,
    pub rme_impl: bool,
    // SMMU_IDR1 (§6.3.2)
    pub sidsize: u8,
    pub ssidsize: u8,
    pub eventqs: u8,
    pub cmdqs: u8,
    pub ecmdq: bool,
    // SMMU_IDR3 (§6.3.4)
    pub had: bool,
    pub mpam: bool,
    pub fwb: bool,
    pub ril: bool,
    pub bbml: u8,
    pub dpt: bool,
    // SMMU_IDR5 (§6.3.6)
    /// Output address size in bits (OAS encoding 0b000 = 32 ... 0b110 = 52, 0b111 = 56).
    pub oas_bits: u8,
    pub gran4k: bool,
    pub gran16k: bool,
    pub gran64k: bool,
    pub ds: bool,
    pub d128: bool,
    pub vax: u8,
    // SMMU_AIDR (§6.3.8): ArchMinorRev [3:0], ArchMajorRev [7:4]; 0x00 = v3.0 ... 0x04 = v3.4.
    pub arch_minor: u8,
    // Secure and Realm interfaces
    pub secure_impl: bool,
    pub sel2: bool,
    pub sams: bool,
    pub r_ats: bool,
    pub r_dpt: bool,
}

impl Profile {
    pub fn from_regs(regs: IdRegs) -> Profile {
        let (i0, i1, i3, i5) = (regs.idr0, regs.idr1, regs.idr3, regs.idr5);
        let oas_bits = match bits(i5, 2, 0) {
            0 => 32,
            1 => 36,
            2 => 40,
            3 => 42,
            4 => 44,
            5 => 48,
            6 => 52,
            _ => 56,
        };
        Profile {
            regs,
            s2p: bit(i0, 0),
            s1p: bit(i0, 1),
            ttf: bits(i0, 3, 2) as u8,
            cohacc: bit(i0, 4),
            btm: bit(i0, 5),
            httu: bits(i0, 7, 6) as u8,
            hyp: bit(i0, 9),
            ats: bit(i0, 10),
            ns1ats: bit(i0, 11),
            asid16: bit(i0, 12),
            msi: bit(i0, 13),
            sev: bit(i0, 14),
            atos: bit(i0, 15),
            pri: bit(i0, 16),
            vmw: bit(i0, 17),
            vmid16: bit(i0, 18),
            cd2l: bit(i0, 19),
            stall_model: bits(i0, 25, 24) as u8,
            term_model: bit(i0, 26),
            st_level: bits(i0, 28, 27) as u8,
            rme_impl: bit(i0, 30),
            sidsize: bits(i1, 5, 0) as u8,
            ssidsize: bits(i1, 10, 6) as u8,
            eventqs: bits(i1, 20, 16) as u8,
            cmdqs: bits(i1, 25, 21) as u8,
            ecmdq: bit(i1, 31),
            had: bit(i3, 2),
            mpam: bit(i3, 7),
            fwb: bit(i3, 8),
            ril: bit(i3, 10),
            bbml: bits(i3, 12, 11) as u8,
            dpt: bit(i3, 15),
            oas_bits,
            gran4k: bit(i5, 4),
            gran16k: bit(i5, 5),
            gran64k: bit(i5, 6),
            ds: bit(i5, 7),
            d128: bit(i5, 8),
            vax: bits(i5, 11, 10) as u8,
            arch_minor: bits(regs.aidr, 3, 0) as u8,
            secure_impl: bit(regs.s_idr1, 31),
            sel2: bit(regs.s_idr1, 29),
            sams: bit(regs.s_idr3, 6),
            r_ats: bit(regs.r_idr0, 10),
            r_dpt: bit(regs.r_idr3, 15),
        }
    }

    /// A named profile from [`NAMED_PROFILES`].
    pub fn named(name: &str) -> Option<Profile> {
        NAMED_PROFILES
            .iter()
            .find(|p| p.name == name)
            .map(|p| Profile::from_regs(p.regs))
    }

    /// VA size for the out-of-range check on VA parameters (§3.4.1: VAX 0b00 = 48, 0b01 = 52,
    /// 0b10 = 56 bits).
    /// The lowest bit of the VA that must equal all bits above it for a VA parameter to be in
    /// range (§3.4.1, §4.4.2): VA[63:48], VA[63:52] or VA[63:55] for VAX 0b00, 0b01, 0b10 (the
    /// digest's "bits [63:VAS-1]" with VAS = 49, 53, 56).
    pub fn va_sign_bit(&self) -> u8 {
        match self.vax {
            0 => 48,
            1 => 52,
            _ => 55,
        }
    }

    pub fn vas_bits(&self) -> u8 {
        match self.vax {
            0 => 48,
            1 => 52,
            _ => 56,
        }
    }
}

/// A profile given as data: the raw registers of an implementation we test.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NamedProfile {
    pub name: &'static str,
    pub description: &'static str,
    pub regs: IdRegs,
}

const fn regs(idr0: u32, idr1: u32, idr3: u32, idr5: u32, aidr: u32) -> IdRegs {
    IdRegs {
        idr0,
        idr1,
        idr3,
        idr5,
        aidr,
        s_idr1: 0,
        s_idr3: 0,
        r_idr0: 0,
        r_idr3: 0,
    }
}

/// Profiles of the implementations we test. The QEMU values are what those versions' ID registers
/// read (the QEMU backend re-reads them live and never relies on these); the full profile is a
/// made-up SMMUv3.4 with every command-relevant feature, for exercising every legal path.
pub const NAMED_PROFILES: &[NamedProfile] = &[
    NamedProfile {
        name: "qemu-10.0",
        description: "QEMU 10.0 virt, nested stage 1+2 (S1P, S2P, ASID16, VMID16, RIL; no Hyp/ATS/PRI/MSI)",
        regs: regs(0x0d44_101b, 0x0273_0010, 0x0000_1404, 0x0000_0074, 0x0000_0001),
    },
    NamedProfile {
        name: "qemu-10.0-virt-9.1",
        description: "QEMU 10.0 with -M virt-9.1: stage-1 only, 8-bit VMID",
        regs: regs(0x0d40_101a, 0x0273_0010, 0x0000_1404, 0x0000_0074, 0x0000_0001),
    },
    NamedProfile {
        name: "qemu-7.2",
        description: "QEMU 7.2 virt: stage-1 only, RIL, no BBML",
        regs: regs(0x0d40_101a, 0x0273_0010, 0x0000_0404, 0x0000_0074, 0x0000_0001),
    },
    NamedProfile {
        name: "smmuv3.4-full",
        description: "A fully featured SMMUv3.4: S1+S2, Hyp, ATS, PRI, MSI, SEV, VMW, stall, RIL, MPAM, DPT, DS, Secure with SEL2",
        regs: IdRegs {
            // S2P S1P TTF=0b10 COHACC BTM HTTU=0b10 Hyp ATS NS1ATS ASID16 MSI SEV ATOS PRI VMW
            // VMID16 CD2L TTENDIAN=0b00 STALL_MODEL=0b00 TERM_MODEL=0 ST_LEVEL=0b01
            idr0: 0x080F_FEBB,
            // SIDSIZE=32 SSIDSIZE=20 EVENTQS=19 CMDQS=19
            idr1: 0x0273_0520,
            // HAD MPAM FWB RIL BBML=0b10 DPT
            idr3: 0x0000_9584,
            // OAS=52 bits, GRAN4K/16K/64K, DS, VAX=0b01
            idr5: 0x0000_04F6,
            aidr: 0x0000_0004,
            s_idr1: 0xA000_0000,
            s_idr3: 0,
            r_idr0: 0,
            r_idr3: 0,
        },
    },
    NamedProfile {
        name: "smmuv3.0-s1-norange",
        description: "A minimal SMMUv3.0: stage 1 only, 8-bit ASID, no RIL (range fields RES0)",
        regs: regs(0x0100_000a, 0x0273_0010, 0x0000_0000, 0x0000_0074, 0x0000_0000),
    },
    NamedProfile {
        name: "emulator-default",
        description: "The reference emulator's default: smmuv3.4-full without ATS, PRI, DPT or Secure state",
        // smmuv3.4-full with IDR0.ATS[10], IDR0.PRI[16] and IDR3.DPT[15] cleared and no Secure
        // state, so ATC_INV/PRI_RESP are unimplemented-consumed (ILLEGAL) on this profile.
        regs: regs(0x080E_FABB, 0x0273_0520, 0x0000_1584, 0x0000_04F6, 0x0000_0004),
    },
];

impl Default for Profile {
    fn default() -> Self {
        Profile::named("qemu-10.0").expect("built-in profile")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_10_idr0_parses_as_documented() {
        let p = Profile::named("qemu-10.0").unwrap();
        assert!(p.s1p && p.s2p && p.asid16 && p.vmid16);
        assert!(!p.hyp && !p.ats && !p.pri && !p.msi && !p.sev);
        assert_eq!(p.ttf, 0b10);
        assert_eq!(p.stall_model, 0b01);
        assert_eq!(p.st_level, 0b01);
        assert!(p.ril);
        assert_eq!(p.sidsize, 16);
        assert_eq!(p.cmdqs, 19);
        assert!(p.gran4k && p.gran16k && p.gran64k && !p.ds);
        assert_eq!(p.oas_bits, 44);
    }

    #[test]
    fn full_profile_has_every_command_feature() {
        let p = Profile::named("smmuv3.4-full").unwrap();
        assert!(p.s1p && p.s2p && p.hyp && p.ats && p.pri && p.msi && p.sev && p.vmw);
        assert!(p.asid16 && p.vmid16 && p.ril && p.mpam && p.dpt && p.ds);
        assert_eq!(p.stall_model, 0);
        assert_eq!(p.arch_minor, 4);
        assert_eq!(p.sidsize, 32);
        assert_eq!(p.ssidsize, 20);
        assert!(p.secure_impl && p.sel2);
        assert_eq!(p.oas_bits, 52);
    }

    #[test]
    fn stage1_only_profiles() {
        for n in ["qemu-10.0-virt-9.1", "qemu-7.2", "smmuv3.0-s1-norange"] {
            let p = Profile::named(n).unwrap();
            assert!(p.s1p && !p.s2p && !p.vmid16, "{n}");
        }
        assert!(!Profile::named("smmuv3.0-s1-norange").unwrap().ril);
    }
}
