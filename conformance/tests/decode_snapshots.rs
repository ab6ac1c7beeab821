//! Snapshots of the `decode` report: one command of every architected opcode, one Reserved and one
//! IMPLEMENTATION DEFINED, under the CLI's defaults (qemu-10.0, Non-secure queue), so each
//! snapshot is exactly what `smmu-conform decode DW0 DW1` prints. Verdicts in these snapshots come
//! from the model's classifier and are reviewed whenever it changes (`cargo insta review`).

use smmu_conform::input::{Entry, Origin};
use smmu_conform::report::decode::{analyze, render_json, render_text, text_header};
use smmu_conform::target::Target;
use smmu_model::command::{AddrInval, Command, Opcode, RangeFields, RawCommand};
use smmu_model::profile::Queue;

fn inv(addr: u64, leaf: bool, tg: u8, ttl: u8, num: u8, scale: u8) -> AddrInval {
    AddrInval {
        addr,
        leaf,
        range: RangeFields {
            tg,
            ttl,
            ttl128: false,
            num,
            scale,
        },
    }
}

/// One command per architected opcode, with fields set to values a driver would send.
fn architected() -> Vec<Command> {
    use Command as C;
    vec![
        C::PrefetchConfig {
            ssec: false,
            ssv: true,
            ssid: 0x5,
            sid: 0x10,
        },
        C::PrefetchAddr {
            ssec: false,
            ssv: false,
            ssid: 0,
            sid: 0x10,
            size: 3,
            stride: 0,
            addr: 0x8000_0000,
        },
        C::CfgiSte {
            ssec: false,
            sid: 0x20,
            leaf: true,
        },
        C::CfgiSteRange {
            ssec: false,
            sid: 0x40,
            range: 4,
        },
        C::CfgiCd {
            ssec: false,
            sid: 0x20,
            ssid: 0x3,
            leaf: true,
        },
        C::CfgiCdAll {
            ssec: false,
            sid: 0x20,
        },
        C::CfgiVmsPidm {
            ssec: false,
            vmid: 0x7,
        },
        C::TlbiNhAll { vmid: 0x7 },
        C::TlbiNhAsid {
            vmid: 0x7,
            asid: 0x2a,
        },
        C::TlbiNhVa {
            vmid: 0x7,
            asid: 0x2a,
            inv: inv(0xffff_8000_1234_5000, true, 1, 3, 0, 0),
        },
        C::TlbiNhVaa {
            vmid: 0x7,
            inv: inv(0x4000_0000, false, 1, 0, 3, 1),
        },
        C::TlbiEl3All,
        C::TlbiEl3Va {
            inv: inv(0x1000, true, 0, 0, 0, 0),
        },
        C::TlbiEl2All,
        C::TlbiEl2Asid { asid: 0x2a },
        C::TlbiEl2Va {
            asid: 0x2a,
            inv: inv(0x20_0000, true, 1, 2, 0, 0),
        },
        C::TlbiEl2Vaa {
            inv: inv(0x20_0000, false, 0, 0, 0, 0),
        },
        C::TlbiS12Vmall { vmid: 0x7 },
        C::TlbiS2Ipa {
            vmid: 0x7,
            inv: inv(0x8000_0000, true, 1, 3, 0, 0),
        },
        C::TlbiNsnhAll,
        C::AtcInv {
            global: false,
            ssv: true,
            ssid: 0x3,
            sid: 0x20,
            size: 0,
            addr: 0x1000,
        },
        C::PriResp {
            ssv: false,
            ssid: 0,
            sid: 0x20,
            prg_index: 0x11,
            resp: 1,
        },
        C::Resume {
            ssec: false,
            ac: false,
            ab: true,
            sid: 0x20,
            stag: 0x33,
        },
        C::StallTerm {
            ssec: false,
            sid: 0x20,
        },
        C::Sync {
            cs: 1,
            msh: 3,
            msi_attr: 0xf,
            msi_data: 0xdead,
            msi_addr: 0x0800_0040,
        },
        C::TlbiSEl2All,
        C::TlbiSEl2Asid { asid: 0x2a },
        C::TlbiSEl2Va {
            asid: 0x2a,
            inv: inv(0x3000, true, 0, 0, 0, 0),
        },
        C::TlbiSEl2Vaa {
            inv: inv(0x3000, false, 0, 0, 0, 0),
        },
        C::TlbiSS12Vmall { vmid: 0x7 },
        C::TlbiSS2Ipa {
            vmid: 0x7,
            ns: true,
            inv: inv(0x8000_0000, true, 1, 3, 0, 0),
        },
        C::TlbiSnhAll,
        C::DptiAll,
        C::DptiPa {
            leaf: true,
            size: 0,
            pa: 0x8_0000_0000,
        },
    ]
}

fn report_text(raw: RawCommand) -> String {
    let t = Target::named("qemu-10.0", Queue::NonSecure).unwrap();
    let e = Entry {
        raw,
        origin: Origin::Args,
    };
    format!("{}\n{}", text_header(&t), render_text(&analyze(&t, 0, &e)))
}

#[test]
fn every_architected_opcode_is_covered() {
    let mut seen: Vec<u8> = architected().iter().map(|c| c.opcode().value()).collect();
    seen.sort_unstable();
    let mut all: Vec<u8> = smmu_model::command::opcode::ARCHITECTED
        .iter()
        .map(|e| e.0)
        .collect();
    all.sort_unstable();
    assert_eq!(seen, all);
}

#[test]
fn decode_text_per_opcode() {
    for c in architected() {
        let raw = c.encode();
        insta::assert_snapshot!(
            format!("text_{}", c.opcode().name()),
            report_text(raw),
            &format!("{c:?}")
        );
    }
    // RES0 bits set in a Reserved opcode's payload, and an IMPLEMENTATION DEFINED payload kept
    // whole: neither has named fields beyond the opcode.
    let reserved = Command::Reserved {
        raw: RawCommand::new(0xdead_beef_0000_000b, 0x1),
    };
    let impdef = Command::ImplementationDefined {
        raw: RawCommand::new(0x1234_5678_0000_0080, 0xffff_0000_0000_0000),
    };
    assert!(matches!(reserved.opcode(), Opcode::Reserved(0x0b)));
    assert!(matches!(
        impdef.opcode(),
        Opcode::ImplementationDefined(0x80)
    ));
    insta::assert_snapshot!("text_Reserved_0x0b", report_text(reserved.encode()));
    insta::assert_snapshot!("text_IMPDEF_0x80", report_text(impdef.encode()));
}

#[test]
fn decode_json_lines() {
    // The full profile on the Secure queue, with a RES0 bit set in DW1 of a CMD_SYNC and SCALE[25]
    // set (RES0 unless IDR5.DS, which this profile has).
    let t = Target::named("smmuv3.4-full", Queue::Secure).unwrap();
    let cmds = [
        Command::TlbiSS2Ipa {
            vmid: 1,
            ns: false,
            inv: inv(0x4000_0000, true, 1, 3, 1, 0x21),
        }
        .encode(),
        Command::sync()
            .encode()
            .with(smmu_model::command::Field::new("bit 127", 127, 127), 1),
    ];
    let lines: Vec<serde_json::Value> = cmds
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let e = Entry {
                raw: *raw,
                origin: Origin::Line(i + 1),
            };
            serde_json::from_str(&render_json(&analyze(&t, i, &e))).unwrap()
        })
        .collect();
    insta::assert_json_snapshot!("json_lines", lines);
}
