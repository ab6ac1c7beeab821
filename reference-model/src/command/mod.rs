//! The SMMUv3 command codec: 16-byte little-endian queue entries (§4.1.1) to and from typed
//! commands.
//!
//! Two forms:
//! - [`RawCommand`] is the two 64-bit words exactly as they sit in the queue. Decoding never loses
//!   information: every analysis (classification, scope) reads fields from the raw words, so
//!   `RawCommand::from_bytes(c.to_bytes()) == c` for every possible input, RES0 bits included.
//! - [`Command`] is a typed view naming each field as the spec does. It drops RES0 bits (which is
//!   exactly what an implementation that ignores them does, §4.1.5); `Command::decode(c.encode())
//!   == c` holds for every typed command whose fields fit their widths.

pub mod layout;
pub mod opcode;

pub use layout::Field;
pub use opcode::Opcode;
use serde::{Deserialize, Serialize};

/// A command as the two little-endian 64-bit words of its queue entry: DW0 = bits [63:0], DW1 =
/// bits [127:64] (§4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RawCommand(pub [u64; 2]);

impl RawCommand {
    pub const fn new(dw0: u64, dw1: u64) -> Self {
        RawCommand([dw0, dw1])
    }
    #[inline]
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&b[..8]);
        hi.copy_from_slice(&b[8..]);
        RawCommand([u64::from_le_bytes(lo), u64::from_le_bytes(hi)])
    }
    #[inline]
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.0[0].to_le_bytes());
        b[8..].copy_from_slice(&self.0[1].to_le_bytes());
        b
    }
    #[inline]
    pub const fn as_u128(self) -> u128 {
        (self.0[0] as u128) | ((self.0[1] as u128) << 64)
    }
    #[inline]
    pub const fn from_u128(v: u128) -> Self {
        RawCommand([v as u64, (v >> 64) as u64])
    }
    #[inline]
    pub const fn opcode_byte(self) -> u8 {
        self.0[0] as u8
    }
    #[inline]
    pub const fn opcode(self) -> Opcode {
        Opcode::from_u8(self.opcode_byte())
    }
    /// A field's raw value.
    #[inline]
    pub const fn get(self, f: Field) -> u64 {
        f.get(self.as_u128())
    }
    /// An address field as an address (Address[63:12] at [127:76] gives bits [63:12]).
    #[inline]
    pub const fn address(self, f: Field) -> u64 {
        self.get(f) << f.shift
    }
    #[must_use]
    pub const fn with(self, f: Field, x: u64) -> Self {
        RawCommand::from_u128(f.set(self.as_u128(), x))
    }
    #[must_use]
    pub const fn with_address(self, f: Field, addr: u64) -> Self {
        self.with(f, addr >> f.shift)
    }
    /// Each named field of this command with its value, in layout order.
    pub fn fields(self) -> impl Iterator<Item = (Field, u64)> {
        layout::fields(self.opcode())
            .iter()
            .map(move |f| (*f, self.get(*f)))
    }
    /// The typed view of this command.
    pub fn decode(self) -> Command {
        Command::decode(self)
    }
}

impl std::fmt::Display for RawCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x} {:016x}", self.0[0], self.0[1])
    }
}

/// The TG/TTL/NUM/SCALE/TTL128 fields of an address-based TLBI (§4.4.1.1), raw. SCALE holds the
/// six bits [25:20]; whether bit 25 counts depends on IDR5.DS and is decided by the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RangeFields {
    pub tg: u8,
    pub ttl: u8,
    pub ttl128: bool,
    pub num: u8,
    pub scale: u8,
}

/// The address-based part shared by NH_VA, NH_VAA, EL2_VA, EL3_VA, S2_IPA and the Secure forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AddrInval {
    /// The address, bits [11:0] zero (§4.1.6).
    pub addr: u64,
    pub leaf: bool,
    pub range: RangeFields,
}

/// A command by name, with its fields as the spec names them. RES0 bits are not represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Command {
    PrefetchConfig {
        ssec: bool,
        ssv: bool,
        ssid: u32,
        sid: u32,
    },
    PrefetchAddr {
        ssec: bool,
        ssv: bool,
        ssid: u32,
        sid: u32,
        size: u8,
        stride: u8,
        addr: u64,
    },
    CfgiSte {
        ssec: bool,
        sid: u32,
        leaf: bool,
    },
    /// Range == 31 is CMD_CFGI_ALL (§4.3.6).
    CfgiSteRange {
        ssec: bool,
        sid: u32,
        range: u8,
    },
    CfgiCd {
        ssec: bool,
        sid: u32,
        ssid: u32,
        leaf: bool,
    },
    CfgiCdAll {
        ssec: bool,
        sid: u32,
    },
    CfgiVmsPidm {
        ssec: bool,
        vmid: u16,
    },
    TlbiNhAll {
        vmid: u16,
    },
    TlbiNhAsid {
        vmid: u16,
        asid: u16,
    },
    TlbiNhVa {
        vmid: u16,
        asid: u16,
        inv: AddrInval,
    },
    TlbiNhVaa {
        vmid: u16,
        inv: AddrInval,
    },
    TlbiEl3All,
    TlbiEl3Va {
        inv: AddrInval,
    },
    TlbiEl2All,
    TlbiEl2Asid {
        asid: u16,
    },
    TlbiEl2Va {
        asid: u16,
        inv: AddrInval,
    },
    TlbiEl2Vaa {
        inv: AddrInval,
    },
    TlbiS12Vmall {
        vmid: u16,
    },
    TlbiS2Ipa {
        vmid: u16,
        inv: AddrInval,
    },
    TlbiNsnhAll,
    AtcInv {
        global: bool,
        ssv: bool,
        ssid: u32,
        sid: u32,
        size: u8,
        addr: u64,
    },
    PriResp {
        ssv: bool,
        ssid: u32,
        sid: u32,
        prg_index: u16,
        resp: u8,
    },
    Resume {
        ssec: bool,
        ac: bool,
        ab: bool,
        sid: u32,
        stag: u16,
    },
    StallTerm {
        ssec: bool,
        sid: u32,
    },
    Sync {
        cs: u8,
        msh: u8,
        msi_attr: u8,
        msi_data: u32,
        msi_addr: u64,
    },
    TlbiSEl2All,
    TlbiSEl2Asid {
        asid: u16,
    },
    TlbiSEl2Va {
        asid: u16,
        inv: AddrInval,
    },
    TlbiSEl2Vaa {
        inv: AddrInval,
    },
    TlbiSS12Vmall {
        vmid: u16,
    },
    TlbiSS2Ipa {
        vmid: u16,
        ns: bool,
        inv: AddrInval,
    },
    TlbiSnhAll,
    DptiAll,
    DptiPa {
        leaf: bool,
        size: u8,
        pa: u64,
    },
    /// 0x80-0x8F: the payload is kept whole, since its meaning is IMPLEMENTATION DEFINED.
    ImplementationDefined {
        raw: RawCommand,
    },
    /// A Reserved opcode: the payload is kept whole so that it re-encodes exactly.
    Reserved {
        raw: RawCommand,
    },
}

use layout as l;

fn range_of(r: RawCommand) -> RangeFields {
    RangeFields {
        tg: r.get(l::TG) as u8,
        ttl: r.get(l::TTL) as u8,
        ttl128: r.get(l::TTL128) != 0,
        num: r.get(l::NUM) as u8,
        scale: r.get(l::SCALE) as u8,
    }
}

fn inv_of(r: RawCommand, addr: Field) -> AddrInval {
    AddrInval {
        addr: r.address(addr),
        leaf: r.get(l::LEAF) != 0,
        range: range_of(r),
    }
}

fn put_inv(r: RawCommand, addr: Field, i: &AddrInval) -> RawCommand {
    r.with_address(addr, i.addr)
        .with(l::LEAF, i.leaf as u64)
        .with(l::TG, i.range.tg as u64)
        .with(l::TTL, i.range.ttl as u64)
        .with(l::TTL128, i.range.ttl128 as u64)
        .with(l::NUM, i.range.num as u64)
        .with(l::SCALE, i.range.scale as u64)
}

impl Command {
    pub fn opcode(&self) -> Opcode {
        use Command::*;
        match self {
            PrefetchConfig { .. } => Opcode::PrefetchConfig,
            PrefetchAddr { .. } => Opcode::PrefetchAddr,
            CfgiSte { .. } => Opcode::CfgiSte,
            CfgiSteRange { .. } => Opcode::CfgiSteRange,
            CfgiCd { .. } => Opcode::CfgiCd,
            CfgiCdAll { .. } => Opcode::CfgiCdAll,
            CfgiVmsPidm { .. } => Opcode::CfgiVmsPidm,
            TlbiNhAll { .. } => Opcode::TlbiNhAll,
            TlbiNhAsid { .. } => Opcode::TlbiNhAsid,
            TlbiNhVa { .. } => Opcode::TlbiNhVa,
            TlbiNhVaa { .. } => Opcode::TlbiNhVaa,
            TlbiEl3All => Opcode::TlbiEl3All,
            TlbiEl3Va { .. } => Opcode::TlbiEl3Va,
            TlbiEl2All => Opcode::TlbiEl2All,
            TlbiEl2Asid { .. } => Opcode::TlbiEl2Asid,
            TlbiEl2Va { .. } => Opcode::TlbiEl2Va,
            TlbiEl2Vaa { .. } => Opcode::TlbiEl2Vaa,
            TlbiS12Vmall { .. } => Opcode::TlbiS12Vmall,
            TlbiS2Ipa { .. } => Opcode::TlbiS2Ipa,
            TlbiNsnhAll => Opcode::TlbiNsnhAll,
            AtcInv { .. } => Opcode::AtcInv,
            PriResp { .. } => Opcode::PriResp,
            Resume { .. } => Opcode::Resume,
            StallTerm { .. } => Opcode::StallTerm,
            Sync { .. } => Opcode::Sync,
            TlbiSEl2All => Opcode::TlbiSEl2All,
            TlbiSEl2Asid { .. } => Opcode::TlbiSEl2Asid,
            TlbiSEl2Va { .. } => Opcode::TlbiSEl2Va,
            TlbiSEl2Vaa { .. } => Opcode::TlbiSEl2Vaa,
            TlbiSS12Vmall { .. } => Opcode::TlbiSS12Vmall,
            TlbiSS2Ipa { .. } => Opcode::TlbiSS2Ipa,
            TlbiSnhAll => Opcode::TlbiSnhAll,
            DptiAll => Opcode::DptiAll,
            DptiPa { .. } => Opcode::DptiPa,
            ImplementationDefined { raw } | Reserved { raw } => raw.opcode(),
        }
    }

    /// The typed view of raw words. Total: every input decodes. RES0 bits are dropped.
    pub fn decode(r: RawCommand) -> Command {
        use Command as C;
        let b = |f: Field| r.get(f) != 0;
        let sid = r.get(l::SID) as u32;
        let ssid = r.get(l::SSID) as u32;
        let vmid = r.get(l::VMID) as u16;
        let asid = r.get(l::ASID) as u16;
        match r.opcode() {
            Opcode::PrefetchConfig => C::PrefetchConfig {
                ssec: b(l::SSEC),
                ssv: b(l::SSV),
                ssid,
                sid,
            },
            Opcode::PrefetchAddr => C::PrefetchAddr {
                ssec: b(l::SSEC),
                ssv: b(l::SSV),
                ssid,
                sid,
                size: r.get(l::PF_SIZE) as u8,
                stride: r.get(l::PF_STRIDE) as u8,
                addr: r.address(l::VA),
            },
            Opcode::CfgiSte => C::CfgiSte {
                ssec: b(l::SSEC),
                sid,
                leaf: b(l::LEAF),
            },
            Opcode::CfgiSteRange => C::CfgiSteRange {
                ssec: b(l::SSEC),
                sid,
                range: r.get(l::RANGE) as u8,
            },
            Opcode::CfgiCd => C::CfgiCd {
                ssec: b(l::SSEC),
                sid,
                ssid,
                leaf: b(l::LEAF),
            },
            Opcode::CfgiCdAll => C::CfgiCdAll {
                ssec: b(l::SSEC),
                sid,
            },
            Opcode::CfgiVmsPidm => C::CfgiVmsPidm {
                ssec: b(l::SSEC),
                vmid,
            },
            Opcode::TlbiNhAll => C::TlbiNhAll { vmid },
            Opcode::TlbiNhAsid => C::TlbiNhAsid { vmid, asid },
            Opcode::TlbiNhVa => C::TlbiNhVa {
                vmid,
                asid,
                inv: inv_of(r, l::VA),
            },
            Opcode::TlbiNhVaa => C::TlbiNhVaa {
                vmid,
                inv: inv_of(r, l::VA),
            },
            Opcode::TlbiEl3All => C::TlbiEl3All,
            Opcode::TlbiEl3Va => C::TlbiEl3Va {
                inv: inv_of(r, l::VA),
            },
            Opcode::TlbiEl2All => C::TlbiEl2All,
            Opcode::TlbiEl2Asid => C::TlbiEl2Asid { asid },
            Opcode::TlbiEl2Va => C::TlbiEl2Va {
                asid,
                inv: inv_of(r, l::VA),
            },
            Opcode::TlbiEl2Vaa => C::TlbiEl2Vaa {
                inv: inv_of(r, l::VA),
            },
            Opcode::TlbiS12Vmall => C::TlbiS12Vmall { vmid },
            Opcode::TlbiS2Ipa => C::TlbiS2Ipa {
                vmid,
                inv: inv_of(r, l::IPA),
            },
            Opcode::TlbiNsnhAll => C::TlbiNsnhAll,
            Opcode::AtcInv => C::AtcInv {
                global: b(l::GLOBAL),
                ssv: b(l::SSV),
                ssid,
                sid,
                size: r.get(l::ATC_SIZE) as u8,
                addr: r.address(l::VA),
            },
            Opcode::PriResp => C::PriResp {
                ssv: b(l::SSV),
                ssid,
                sid,
                prg_index: r.get(l::PRGINDEX) as u16,
                resp: r.get(l::RESP) as u8,
            },
            Opcode::Resume => C::Resume {
                ssec: b(l::SSEC),
                ac: b(l::AC),
                ab: b(l::AB),
                sid,
                stag: r.get(l::STAG) as u16,
            },
            Opcode::StallTerm => C::StallTerm {
                ssec: b(l::SSEC),
                sid,
            },
            Opcode::Sync => C::Sync {
                cs: r.get(l::CS) as u8,
                msh: r.get(l::MSH) as u8,
                msi_attr: r.get(l::MSIATTR) as u8,
                msi_data: r.get(l::MSIDATA) as u32,
                msi_addr: r.address(l::MSIADDR),
            },
            Opcode::TlbiSEl2All => C::TlbiSEl2All,
            Opcode::TlbiSEl2Asid => C::TlbiSEl2Asid { asid },
            Opcode::TlbiSEl2Va => C::TlbiSEl2Va {
                asid,
                inv: inv_of(r, l::VA),
            },
            Opcode::TlbiSEl2Vaa => C::TlbiSEl2Vaa {
                inv: inv_of(r, l::VA),
            },
            Opcode::TlbiSS12Vmall => C::TlbiSS12Vmall { vmid },
            Opcode::TlbiSS2Ipa => C::TlbiSS2Ipa {
                vmid,
                ns: b(l::S_S2_IPA_NS),
                inv: inv_of(r, l::IPA),
            },
            Opcode::TlbiSnhAll => C::TlbiSnhAll,
            Opcode::DptiAll => C::DptiAll,
            Opcode::DptiPa => C::DptiPa {
                leaf: b(l::LEAF),
                size: r.get(l::DPTI_SIZE) as u8,
                pa: r.address(l::IPA),
            },
            Opcode::ImplementationDefined(_) => C::ImplementationDefined { raw: r },
            Opcode::Reserved(_) => C::Reserved { raw: r },
        }
    }

    /// The queue entry for this command. Fields wider than their slot are truncated to it;
    /// Reserved and IMPLEMENTATION DEFINED commands re-encode their raw words unchanged.
    pub fn encode(&self) -> RawCommand {
        use Command as C;
        let base = RawCommand::default().with(l::OPCODE, self.opcode().value() as u64);
        let bit = |x: bool| x as u64;
        match *self {
            C::PrefetchConfig {
                ssec,
                ssv,
                ssid,
                sid,
            } => base
                .with(l::SSEC, bit(ssec))
                .with(l::SSV, bit(ssv))
                .with(l::SSID, ssid as u64)
                .with(l::SID, sid as u64),
            C::PrefetchAddr {
                ssec,
                ssv,
                ssid,
                sid,
                size,
                stride,
                addr,
            } => base
                .with(l::SSEC, bit(ssec))
                .with(l::SSV, bit(ssv))
                .with(l::SSID, ssid as u64)
                .with(l::SID, sid as u64)
                .with(l::PF_SIZE, size as u64)
                .with(l::PF_STRIDE, stride as u64)
                .with_address(l::VA, addr),
            C::CfgiSte { ssec, sid, leaf } => base
                .with(l::SSEC, bit(ssec))
                .with(l::SID, sid as u64)
                .with(l::LEAF, bit(leaf)),
            C::CfgiSteRange { ssec, sid, range } => base
                .with(l::SSEC, bit(ssec))
                .with(l::SID, sid as u64)
                .with(l::RANGE, range as u64),
            C::CfgiCd {
                ssec,
                sid,
                ssid,
                leaf,
            } => base
                .with(l::SSEC, bit(ssec))
                .with(l::SID, sid as u64)
                .with(l::SSID, ssid as u64)
                .with(l::LEAF, bit(leaf)),
            C::CfgiCdAll { ssec, sid } => base.with(l::SSEC, bit(ssec)).with(l::SID, sid as u64),
            C::CfgiVmsPidm { ssec, vmid } => {
                base.with(l::SSEC, bit(ssec)).with(l::VMID, vmid as u64)
            }
            C::TlbiNhAll { vmid } | C::TlbiS12Vmall { vmid } | C::TlbiSS12Vmall { vmid } => {
                base.with(l::VMID, vmid as u64)
            }
            C::TlbiNhAsid { vmid, asid } => {
                base.with(l::VMID, vmid as u64).with(l::ASID, asid as u64)
            }
            C::TlbiNhVa {
                vmid,
                asid,
                ref inv,
            } => put_inv(
                base.with(l::VMID, vmid as u64).with(l::ASID, asid as u64),
                l::VA,
                inv,
            ),
            C::TlbiNhVaa { vmid, ref inv } => put_inv(base.with(l::VMID, vmid as u64), l::VA, inv),
            C::TlbiEl3All
            | C::TlbiEl2All
            | C::TlbiNsnhAll
            | C::TlbiSEl2All
            | C::TlbiSnhAll
            | C::DptiAll => base,
            C::TlbiEl3Va { ref inv } | C::TlbiEl2Vaa { ref inv } | C::TlbiSEl2Vaa { ref inv } => {
                put_inv(base, l::VA, inv)
            }
            C::TlbiEl2Asid { asid } | C::TlbiSEl2Asid { asid } => base.with(l::ASID, asid as u64),
            C::TlbiEl2Va { asid, ref inv } | C::TlbiSEl2Va { asid, ref inv } => {
                put_inv(base.with(l::ASID, asid as u64), l::VA, inv)
            }
            C::TlbiS2Ipa { vmid, ref inv } => put_inv(base.with(l::VMID, vmid as u64), l::IPA, inv),
            C::TlbiSS2Ipa { vmid, ns, ref inv } => put_inv(
                base.with(l::VMID, vmid as u64)
                    .with(l::S_S2_IPA_NS, bit(ns)),
                l::IPA,
                inv,
            ),
            C::AtcInv {
                global,
                ssv,
                ssid,
                sid,
                size,
                addr,
            } => base
                .with(l::GLOBAL, bit(global))
                .with(l::SSV, bit(ssv))
                .with(l::SSID, ssid as u64)
                .with(l::SID, sid as u64)
                .with(l::ATC_SIZE, size as u64)
                .with_address(l::VA, addr),
            C::PriResp {
                ssv,
                ssid,
                sid,
                prg_index,
                resp,
            } => base
                .with(l::SSV, bit(ssv))
                .with(l::SSID, ssid as u64)
                .with(l::SID, sid as u64)
                .with(l::PRGINDEX, prg_index as u64)
                .with(l::RESP, resp as u64),
            C::Resume {
                ssec,
                ac,
                ab,
                sid,
                stag,
            } => base
                .with(l::SSEC, bit(ssec))
                .with(l::AC, bit(ac))
                .with(l::AB, bit(ab))
                .with(l::SID, sid as u64)
                .with(l::STAG, stag as u64),
            C::StallTerm { ssec, sid } => base.with(l::SSEC, bit(ssec)).with(l::SID, sid as u64),
            C::Sync {
                cs,
                msh,
                msi_attr,
                msi_data,
                msi_addr,
            } => base
                .with(l::CS, cs as u64)
                .with(l::MSH, msh as u64)
                .with(l::MSIATTR, msi_attr as u64)
                .with(l::MSIDATA, msi_data as u64)
                .with_address(l::MSIADDR, msi_addr),
            C::DptiPa { leaf, size, pa } => base
                .with(l::LEAF, bit(leaf))
                .with(l::DPTI_SIZE, size as u64)
                .with_address(l::IPA, pa),
            C::ImplementationDefined { raw } | C::Reserved { raw } => raw,
        }
    }

    /// The address-based invalidation fields, for commands that have them.
    pub fn addr_inval(&self) -> Option<&AddrInval> {
        use Command as C;
        match self {
            C::TlbiNhVa { inv, .. }
            | C::TlbiNhVaa { inv, .. }
            | C::TlbiEl3Va { inv }
            | C::TlbiEl2Va { inv, .. }
            | C::TlbiEl2Vaa { inv }
            | C::TlbiS2Ipa { inv, .. }
            | C::TlbiSEl2Va { inv, .. }
            | C::TlbiSEl2Vaa { inv }
            | C::TlbiSS2Ipa { inv, .. } => Some(inv),
            _ => None,
        }
    }
}

/// Convenience constructors for tests, cases and generators.
impl Command {
    pub fn sync() -> Command {
        Command::Sync {
            cs: 0,
            msh: 0,
            msi_attr: 0,
            msi_data: 0,
            msi_addr: 0,
        }
    }
    pub fn cfgi_all() -> Command {
        Command::CfgiSteRange {
            ssec: false,
            sid: 0,
            range: 31,
        }
    }
}
