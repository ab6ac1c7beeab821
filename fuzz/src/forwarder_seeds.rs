//! The seed corpus of the `forwarder` target (the `seed-*` files of corpus/forwarder/, beside
//! the forwarder cases), as code: fuzz/tests/forwarder_replay.rs checks the committed files
//! against this list and rewrites them when asked (SMMU_BLESS_CORPUS=1).
//!
//! One seed per forwarder mutant: the first input of a fixed pseudo-random sequence (the
//! campaign's input format: mode byte, then generator bytes) on which the forwarding oracle
//! rejects that mutant. So the corpus starts with a witness of every bug class, and each seed
//! is clean on the reference forwarder.

use smmu_conform::forwarder::fuzz::{run_input, FwdVerdict};
use smmu_conform::forwarder::gen::generate;
use smmu_conform::forwarder::{FwdMutant, ReferenceForwarder};
use smmu_conform::fuzz::Rng;
use smmu_conform::gen::Mode;

/// Inputs tried per mutant before giving up (a mutant no input finds has no seed, and the
/// replay test fails saying so).
pub const SEARCH_LIMIT: u64 = 20_000;

/// The input the campaign would draw from `rng` (length 8..264, byte 0 the mode).
pub fn next_input(rng: &mut Rng) -> Vec<u8> {
    let len = 8 + (rng.next_u64() % 256) as usize;
    rng.bytes(len)
}

/// Whether `data` makes the oracle reject `m`.
pub fn finds(m: FwdMutant, data: &[u8]) -> bool {
    let Some((&b, rest)) = data.split_first() else {
        return false;
    };
    let input = generate(rest, Mode::from_byte(b));
    matches!(
        run_input(&mut ReferenceForwarder::new(Some(m)), &input),
        FwdVerdict::Finding(..)
    )
}

/// (file name, bytes) of every seed.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for &m in FwdMutant::ALL {
        let mut rng = Rng::new(0xf0d0_5eed);
        for _ in 0..SEARCH_LIMIT {
            let data = next_input(&mut rng);
            if finds(m, &data) {
                out.push((format!("seed-{}", m.name()), data));
                break;
            }
        }
    }
    out
}
