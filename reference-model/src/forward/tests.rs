//! The forwarding oracle in both directions: it rejects each forbidden behaviour with the named
//! rule, and accepts exact forwarding and legal over-invalidation.

use super::*;
use crate::command::Field;
use crate::profile::NAMED_PROFILES;

const VMID: u16 = 5;

fn regs(name: &str) -> IdRegs {
    NAMED_PROFILES.iter().find(|p| p.name == name).unwrap().regs
}

/// A stage-1-only guest (RIL, 16-bit ASIDs) on a nested-capable host.
fn mapping() -> Mapping {
    Mapping::new(
        regs("qemu-10.0-virt-9.1"),
        regs("qemu-10.0"),
        VMID,
        &[(1, 0x21), (2, 0x22)],
    )
}

fn no_ril(mut r: IdRegs) -> IdRegs {
    r.idr3 &= !(1 << 10);
    r
}

fn c(op: u8, fields: &[(Field, u64)]) -> RawCommand {
    let mut r = RawCommand::new(u64::from(op), 0);
    for (f, v) in fields {
        r = if f.shift > 0 {
            r.with_address(*f, *v)
        } else {
            r.with(*f, *v)
        };
    }
    r
}

fn sync() -> RawCommand {
    c(0x46, &[])
}
fn nh_all(vmid: u64) -> RawCommand {
    c(0x10, &[(l::VMID, vmid)])
}
fn nh_va(vmid: u64, asid: u64, va: u64) -> RawCommand {
    c(0x12, &[(l::VMID, vmid), (l::ASID, asid), (l::VA, va)])
}

fn run(
    m: &Mapping,
    guest: &[RawCommand],
    host: &[RawCommand],
    error: Option<usize>,
    handled: usize,
) -> Judgement {
    judge(
        m,
        guest,
        &Forwarded {
            host,
            error,
            handled,
        },
    )
}

fn rules(j: &Judgement) -> Vec<&'static str> {
    let mut v: Vec<_> = j.findings.iter().map(|f| f.rule.id).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn clean(j: &Judgement) {
    assert!(j.findings.is_empty(), "{:#?}", j.findings);
}

#[test]
fn exact_forwarding_is_accepted() {
    let m = mapping();
    let g = [nh_va(0, 1, 0x10_0000)];
    clean(&run(&m, &g, &[nh_va(5, 1, 0x10_0000), sync()], None, 1));
    let j = run(&m, &g, &[nh_va(5, 1, 0x10_0000), sync()], None, 1);
    assert_eq!(j.stats.over_invalidating, 0);
}

#[test]
fn over_invalidation_is_accepted_and_counted() {
    let m = mapping();
    let g = [nh_va(0, 1, 0x10_0000)];
    let j = run(&m, &g, &[nh_all(5), sync()], None, 1);
    clean(&j);
    assert_eq!(j.stats.over_invalidating, 1);
    // Two SYNCs, a TLBI repeated, S12_VMALL of the guest's own VMID: all fine.
    let s12 = c(0x28, &[(l::VMID, 5)]);
    clean(&run(
        &m,
        &g,
        &[nh_va(5, 1, 0x10_0000), sync(), s12, nh_all(5), sync()],
        None,
        1,
    ));
}

#[test]
fn guest_vmid_forwarded_misses_and_leaks() {
    let m = mapping();
    let g = [nh_va(0, 1, 0x10_0000)];
    let j = run(&m, &g, &[nh_va(0, 1, 0x10_0000), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-VMID", "FWD-SCOPE"], "{j:#?}");
}

#[test]
fn nsnh_all_must_become_nh_all_of_the_vmid() {
    let m = mapping();
    let g = [c(0x30, &[])];
    clean(&run(&m, &g, &[nh_all(5), sync()], None, 1));
    let j = run(&m, &g, &[c(0x30, &[]), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-VMID"], "{j:#?}");
    // NH_ASID is not enough for NSNH_ALL (global entries, other ASIDs).
    let j = run(
        &m,
        &g,
        &[c(0x11, &[(l::VMID, 5), (l::ASID, 1)]), sync()],
        None,
        1,
    );
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
}

#[test]
fn host_sync_must_complete_before_handled() {
    let m = mapping();
    let g = [nh_all(0)];
    let j = run(&m, &g, &[nh_all(5)], None, 1);
    assert_eq!(rules(&j), ["FWD-SYNC"], "{j:#?}");
    let j = run(&m, &g, &[sync(), nh_all(5)], None, 1);
    assert_eq!(rules(&j), ["FWD-SYNC"], "{j:#?}");
    // An ILLEGAL host command before the SYNC stops the queue: the SYNC never completes.
    let j = run(&m, &g, &[nh_all(5), c(0x00, &[]), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-HOST-ILL", "FWD-SYNC"], "{j:#?}");
    // An unhandled entry needs nothing.
    clean(&run(&m, &g, &[], Some(0), 0));
}

#[test]
fn handled_counts_entries_before_the_failing_one() {
    let m = mapping();
    let g = [nh_all(0), c(0x20, &[]), nh_all(0)];
    clean(&run(&m, &g, &[nh_all(5), sync()], Some(1), 1));
    let j = run(&m, &g, &[nh_all(5), sync()], Some(1), 2);
    assert!(rules(&j).contains(&"FWD-HANDLED-COUNT"), "{j:#?}");
    let j = run(&m, &g, &[nh_all(5), sync()], Some(1), 0);
    assert_eq!(rules(&j), ["FWD-HANDLED-COUNT"], "{j:#?}");
    let j = run(&m, &g, &[nh_all(5), sync()], Some(7), 1);
    assert_eq!(rules(&j), ["FWD-HANDLED-COUNT"], "{j:#?}");
    let j = run(&m, &[nh_all(0)], &[nh_all(5), sync()], None, 0);
    assert_eq!(rules(&j), ["FWD-HANDLED-COUNT"], "{j:#?}");
}

#[test]
fn guest_illegal_commands_must_be_errors() {
    let m = mapping();
    // EL2_ALL on a guest without Hyp (§4.4.2.7), dropped and counted handled.
    let g = [c(0x20, &[])];
    let j = run(&m, &g, &[], None, 1);
    assert_eq!(rules(&j), ["FWD-GUEST-ILLEGAL"], "{j:#?}");
    clean(&run(&m, &g, &[], Some(0), 0));
    // Rejecting a legal command is allowed, and counted.
    let j = run(&m, &[nh_all(0)], &[], Some(0), 0);
    clean(&j);
    assert_eq!(j.stats.rejected_legal, 1);
}

#[test]
fn res0_bits_on_the_host_are_findings() {
    let m = mapping();
    // DW1 bit 0 is RES0 in NH_ALL (§4.1.5).
    let g = [nh_all(0).with(l::LEAF, 1)];
    clean(&run(&m, &g, &[nh_all(5), sync()], None, 1));
    let j = run(&m, &g, &[nh_all(5).with(l::LEAF, 1), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-HOST-RES0"], "{j:#?}");
    assert!(j.findings[0].message.contains("guest's own bits"), "{j:#?}");
}

#[test]
fn range_emulation_without_ril() {
    let m = Mapping::new(
        regs("qemu-10.0-virt-9.1"),
        no_ril(regs("qemu-10.0")),
        VMID,
        &[(1, 0x21)],
    );
    // Two 4K pages from 0x100000 (TG=4K, NUM=1, SCALE=0).
    let g = [nh_va(0, 1, 0x10_0000).with(l::TG, 1).with(l::NUM, 1)];
    let pages = [nh_va(5, 1, 0x10_0000), nh_va(5, 1, 0x10_1000), sync()];
    clean(&run(&m, &g, &pages, None, 1));
    let j = run(&m, &g, &[nh_va(5, 1, 0x10_0000), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
    // Range fields kept for a host without RIL: RES0 there, and only the first page is removed.
    let kept = g[0].with(l::VMID, 5);
    let j = run(&m, &g, &[kept, sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-HOST-RES0", "FWD-SCOPE"], "{j:#?}");
}

#[test]
fn ttl_tg_and_leaf_must_not_narrow() {
    let m = mapping();
    // TG=0: any level. A host TTL=3 (level-3 pages only) misses a 2MB block.
    let g = [nh_va(0, 1, 0x20_0000)];
    let ttl3 = nh_va(5, 1, 0x20_0000).with(l::TG, 1).with(l::TTL, 3);
    let j = run(&m, &g, &[ttl3, sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
    // A 64K-granule range forwarded as 4K.
    let g = [nh_va(0, 1, 0x10_0000).with(l::TG, 3).with(l::NUM, 1)];
    clean(&run(&m, &g, &[g[0].with(l::VMID, 5), sync()], None, 1));
    let j = run(
        &m,
        &g,
        &[g[0].with(l::VMID, 5).with(l::TG, 1), sync()],
        None,
        1,
    );
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
    // Leaf=1 where the guest said Leaf=0: walk-cache entries stay.
    let g = [nh_va(0, 1, 0x10_0000)];
    let j = run(
        &m,
        &g,
        &[nh_va(5, 1, 0x10_0000).with(l::LEAF, 1), sync()],
        None,
        1,
    );
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
    // The guest's Leaf=1 kept: fine.
    let g = [nh_va(0, 1, 0x10_0000).with(l::LEAF, 1)];
    clean(&run(&m, &g, &[g[0].with(l::VMID, 5), sync()], None, 1));
}

#[test]
fn asid_truncated_misses() {
    let m = mapping();
    let g = [c(0x11, &[(l::ASID, 0x1234)])];
    clean(&run(&m, &g, &[g[0].with(l::VMID, 5), sync()], None, 1));
    let h = c(0x11, &[(l::ASID, 0x34), (l::VMID, 5)]);
    let j = run(&m, &g, &[h, sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
}

#[test]
fn streamids_are_translated_and_confined() {
    // SubstreamIDs need SSIDSIZE != 0: the fully featured profile on both sides.
    let full = regs("smmuv3.4-full");
    let m = Mapping::new(full, full, VMID, &[(1, 0x21), (2, 0x22)]);
    let cd = |sid: u64| c(0x05, &[(l::SID, sid), (l::SSID, 3)]);
    clean(&run(&m, &[cd(2)], &[cd(0x22), sync()], None, 1));
    // Not translated: another device's CD, and the guest's stays.
    let j = run(&m, &[cd(2)], &[cd(2), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-SID", "FWD-SCOPE"], "{j:#?}");
    // Through the wrong device: still the guest's, but the wrong one.
    let j = run(&m, &[cd(2)], &[cd(0x21), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
    // CD_ALL emulated by one CD: other SSIDs stay.
    let all = c(0x06, &[(l::SID, 2)]);
    let j = run(&m, &[all], &[cd(0x22), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
    clean(&run(
        &m,
        &[all],
        &[c(0x06, &[(l::SID, 0x22)]), sync()],
        None,
        1,
    ));
    // CFGI_STE_RANGE over vSIDs 0-3 as per-device CFGI_STEs; kept as a range on the host it
    // reaches StreamIDs 0x20 and 0x23.
    let range = c(0x04, &[(l::SID, 0), (l::RANGE, 1)]);
    let ste = |s: u64| c(0x03, &[(l::SID, s)]);
    clean(&run(&m, &[range], &[ste(0x21), ste(0x22), sync()], None, 1));
    let j = run(&m, &[range], &[range.with(l::SID, 0x21), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-SID"], "{j:#?}");
    // CFGI_ALL on the host.
    let j = run(&m, &[range], &[c(0x04, &[(l::RANGE, 31)]), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-SID"], "{j:#?}");
    // A guest CFGI_ALL dropped silently misses every device of the guest.
    let j = run(&m, &[c(0x04, &[(l::RANGE, 31)])], &[], None, 1);
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
}

#[test]
fn atc_inv_is_translated() {
    let full = regs("smmuv3.4-full");
    let m = Mapping::new(full, full, VMID, &[(1, 0x21)]);
    let g = [c(
        0x40,
        &[(l::SID, 1), (l::VA, 0x10_0000), (l::ATC_SIZE, 1)],
    )];
    clean(&run(&m, &g, &[g[0].with(l::SID, 0x21), sync()], None, 1));
    let j = run(
        &m,
        &g,
        &[g[0].with(l::SID, 0x21).with(l::ATC_SIZE, 0), sync()],
        None,
        1,
    );
    assert_eq!(rules(&j), ["FWD-SCOPE"], "{j:#?}");
    let j = run(&m, &g, &[g[0], sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-SID", "FWD-SCOPE"], "{j:#?}");
}

#[test]
fn pri_resp_must_reach_the_host() {
    let full = regs("smmuv3.4-full");
    let m = Mapping::new(full, full, VMID, &[(1, 0x21)]);
    let g = [c(0x41, &[(l::SID, 1), (l::PRGINDEX, 3)])];
    clean(&run(&m, &g, &[g[0].with(l::SID, 0x21), sync()], None, 1));
    let j = run(&m, &g, &[], None, 1);
    assert_eq!(rules(&j), ["FWD-SILENT-DROP"], "{j:#?}");
    let j = run(&m, &g, &[g[0], sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-SID", "FWD-SILENT-DROP"], "{j:#?}");
}

#[test]
fn el2_and_other_worlds_are_outside_the_domain() {
    let full = regs("smmuv3.4-full");
    let m = Mapping::new(full, full, VMID, &[(1, 0x21)]);
    let g = [nh_all(0)];
    let j = run(&m, &g, &[nh_all(5), c(0x20, &[]), sync()], None, 1);
    assert_eq!(rules(&j), ["FWD-CONFINE-VMID"], "{j:#?}");
}

/// Whatever a forwarder returns (a kernel's host queue can hold anything), judging is total.
#[test]
fn judging_arbitrary_results_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ops: Vec<u8> = crate::command::opcode::ARCHITECTED
        .iter()
        .map(|e| e.0)
        .collect();
    for _ in 0..400 {
        let g = NAMED_PROFILES[(next() % NAMED_PROFILES.len() as u64) as usize].regs;
        let h = NAMED_PROFILES[(next() % NAMED_PROFILES.len() as u64) as usize].regs;
        let m = Mapping::new(g, h, next() as u16, &[(next() as u32 & 7, next() as u32)]);
        let cmd = |next: &mut dyn FnMut() -> u64| {
            let op = ops[(next() % ops.len() as u64) as usize];
            RawCommand::new((next() & !0xFF) | u64::from(op), next())
        };
        let guest: Vec<RawCommand> = (0..next() % 4).map(|_| cmd(&mut next)).collect();
        let host: Vec<RawCommand> = (0..next() % 6).map(|_| cmd(&mut next)).collect();
        let error = (next() & 1 == 0).then(|| (next() % 6) as usize);
        let j = run(&m, &guest, &host, error, (next() % 6) as usize);
        assert!(j.findings.iter().all(|f| !f.message.is_empty()));
    }
}
