//! Round trips of the command codec (§4.1.1): raw words, queue bytes and typed commands.

use proptest::prelude::*;
use smmu_model::command::layout::{defined_mask, fields};
use smmu_model::command::opcode::ARCHITECTED;
use smmu_model::command::{Command, Opcode, RawCommand};

/// Raw words biased toward architected opcodes (any byte otherwise), every other bit random.
fn raw_words() -> impl Strategy<Value = RawCommand> {
    (any::<u64>(), any::<u64>(), 0usize..ARCHITECTED.len() + 8).prop_map(|(w0, w1, k)| {
        let op = ARCHITECTED.get(k).map(|e| e.0 as u64).unwrap_or(w0 & 0xff);
        RawCommand::new((w0 & !0xff) | op, w1)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Queue bytes -> raw words -> bytes is the identity for every input.
    #[test]
    fn bytes_round_trip(w0 in any::<u64>(), w1 in any::<u64>()) {
        let raw = RawCommand::new(w0, w1);
        prop_assert_eq!(RawCommand::from_bytes(&raw.to_bytes()), raw);
        prop_assert_eq!(raw.to_bytes()[0], w0 as u8, "little-endian, opcode first");
    }

    /// Raw -> typed -> raw keeps exactly the bits some field of the command names: the typed view
    /// drops RES0 bits and nothing else; Reserved and IMPLEMENTATION DEFINED opcodes keep all.
    #[test]
    fn raw_to_typed_to_raw(raw in raw_words()) {
        let back = Command::decode(raw).encode();
        match raw.opcode() {
            Opcode::Reserved(_) | Opcode::ImplementationDefined(_) => prop_assert_eq!(back, raw),
            op => prop_assert_eq!(back.as_u128(), raw.as_u128() & defined_mask(op)),
        }
    }

    /// Typed -> raw -> typed is the identity for every typed command whose fields fit their
    /// widths (every typed command the decoder produces).
    #[test]
    fn typed_to_raw_to_typed(raw in raw_words()) {
        let typed = Command::decode(raw);
        prop_assert_eq!(Command::decode(typed.encode()), typed);
        prop_assert_eq!(typed.opcode(), raw.opcode());
    }

    /// Each field reads back what was written into it, leaving the other bits alone.
    #[test]
    fn field_set_get(raw in raw_words(), v in any::<u64>()) {
        for f in fields(raw.opcode()).iter().skip(1) {
            let w = raw.with(*f, v);
            let mask = if f.width() >= 64 { u64::MAX } else { (1u64 << f.width()) - 1 };
            prop_assert_eq!(w.get(*f), v & mask);
            prop_assert_eq!(w.as_u128() & !f.mask(), raw.as_u128() & !f.mask());
        }
    }
}

#[test]
fn every_byte_is_exactly_one_opcode() {
    for b in 0..=255u8 {
        let op = Opcode::from_u8(b);
        assert_eq!(op.value(), b);
        let architected = ARCHITECTED.iter().any(|e| e.0 == b);
        assert_eq!(op.is_architected(), architected, "{b:#04x}");
        if (0x80..=0x8f).contains(&b) {
            assert_eq!(op, Opcode::ImplementationDefined(b));
        }
    }
}
