//! The seed corpus of the `decode` target (corpus/decode/), as code: fuzz/tests/seed_corpus.rs
//! checks the committed files against this list and rewrites them when asked, so the seeds stay
//! explainable and reproducible. Each seed uses the input format of [`crate::split_input`].

use smmu_model::command::opcode::ARCHITECTED;
use smmu_model::command::{layout, Command, Opcode, RawCommand};
use smmu_model::profile::{Queue, NAMED_PROFILES};

fn profile_byte(name: &str) -> u8 {
    NAMED_PROFILES
        .iter()
        .position(|p| p.name == name)
        .unwrap_or(0) as u8
}

fn queue_byte(q: Queue) -> u8 {
    match q {
        Queue::NonSecure => 0,
        Queue::Secure => 1,
        Queue::Realm => 2,
    }
}

fn seed(profile: &str, queue: Queue, cmds: &[RawCommand]) -> Vec<u8> {
    let mut v = vec![profile_byte(profile), queue_byte(queue)];
    for c in cmds {
        v.extend_from_slice(&c.to_bytes());
    }
    v
}

/// Every named field of `op` set to a non-trivial value: single bits set, wider fields a fixed
/// irregular pattern (SCALE lands above 39, addresses are unaligned for large TTLs).
fn typical(op: Opcode) -> RawCommand {
    let mut r = RawCommand::default().with(layout::OPCODE, op.value() as u64);
    for f in layout::fields(op).iter().skip(1) {
        let v = if f.width() == 1 {
            1
        } else {
            0x1234_5678_9abc_def1u64 >> (f.lo % 8)
        };
        r = r.with(*f, v);
    }
    r
}

/// The queue a driver would submit `op` on: Secure-only commands on the Secure queue.
fn natural_queue(name: &str) -> Queue {
    if name.contains("_S_") || name.contains("SNH") || name.contains("EL3") {
        Queue::Secure
    } else {
        Queue::NonSecure
    }
}

/// (file name, contents) of every seed.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for &(_, op, name, _) in ARCHITECTED {
        let stem = name.trim_start_matches("CMD_").to_ascii_lowercase();
        let t = typical(op);
        out.push((
            format!("{stem}-fields"),
            seed("smmuv3.4-full", natural_queue(name), &[t]),
        ));
        // The same with every bit the layout leaves undefined set: RES0 for every profile.
        let res0 = RawCommand::from_u128(t.as_u128() | layout::static_res0_mask(op));
        out.push((
            format!("{stem}-res0"),
            seed("qemu-10.0", natural_queue(name), &[res0]),
        ));
    }
    let raw = |w0: u64, w1: u64| RawCommand::new(w0, w1);
    let scale = |c: RawCommand, v: u64| c.with(layout::SCALE, v);
    let nh_va = typical(Opcode::TlbiNhVa);
    let extra: Vec<(&str, Vec<u8>)> = vec![
        (
            "reserved-0x00",
            seed("qemu-10.0", Queue::NonSecure, &[raw(0, 0)]),
        ),
        (
            "reserved-0x0b-payload",
            seed(
                "qemu-10.0",
                Queue::NonSecure,
                &[raw(0xdead_beef_0000_000b, 1)],
            ),
        ),
        (
            "reserved-0xff-all-ones",
            seed("smmuv3.4-full", Queue::Secure, &[raw(u64::MAX, u64::MAX)]),
        ),
        (
            "impdef-0x80",
            seed(
                "qemu-10.0",
                Queue::NonSecure,
                &[raw(0x1234_5678_0000_0080, 0xffff << 48)],
            ),
        ),
        (
            "impdef-0x8f-realm",
            seed("smmuv3.4-full", Queue::Realm, &[raw(0x8f, 0)]),
        ),
        (
            "cfgi_all",
            seed(
                "qemu-10.0",
                Queue::NonSecure,
                &[Command::cfgi_all().encode()],
            ),
        ),
        // SCALE[25] is RES0 without IDR5.DS (qemu) and meaningful with it (full).
        (
            "tlbi_nh_va-scale25-no-ds",
            seed("qemu-10.0", Queue::NonSecure, &[scale(nh_va, 0x20)]),
        ),
        (
            "tlbi_nh_va-scale25-ds",
            seed("smmuv3.4-full", Queue::NonSecure, &[scale(nh_va, 0x27)]),
        ),
        // TTL128 with an address misaligned for it.
        (
            "tlbi_nh_va-ttl128-misaligned",
            seed(
                "smmuv3.4-full",
                Queue::NonSecure,
                &[nh_va.with(layout::TTL128, 1).with(layout::TTL, 1)],
            ),
        ),
        // Range fields on an SMMU without RIL: RES0 there.
        (
            "tlbi_s2_ipa-range-no-ril",
            seed(
                "smmuv3.0-s1-norange",
                Queue::NonSecure,
                &[typical(Opcode::TlbiS2Ipa)],
            ),
        ),
        // 16-bit VMID/ASID values on an SMMU with 8-bit ones.
        (
            "tlbi_nh_asid-narrow-ids",
            seed(
                "qemu-7.2",
                Queue::NonSecure,
                &[typical(Opcode::TlbiNhAsid)
                    .with(layout::VMID, 0xff01)
                    .with(layout::ASID, 0xff02)],
            ),
        ),
        // A queue dump: invalidate, then synchronise.
        (
            "queue-tlbi-then-sync",
            seed(
                "qemu-10.0",
                Queue::NonSecure,
                &[
                    nh_va,
                    Command::cfgi_all().encode(),
                    Command::sync().encode(),
                ],
            ),
        ),
        // Raw registers: every ID register bit set.
        ("regs-all-ones", {
            let mut v = vec![0x80, 0];
            v.extend_from_slice(&[0xff; 36]);
            v.extend_from_slice(&nh_va.to_bytes());
            v.extend_from_slice(&typical(Opcode::Sync).to_bytes());
            v
        }),
        // Raw registers: nothing implemented.
        ("regs-all-zero", {
            let mut v = vec![0x80, 1];
            v.extend_from_slice(&[0; 36]);
            v.extend_from_slice(&typical(Opcode::AtcInv).to_bytes());
            v
        }),
    ];
    out.extend(extra.into_iter().map(|(n, v)| (n.to_string(), v)));
    out
}
