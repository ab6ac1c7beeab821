//! Stable-toolchain fuzzing: the `decode` target body over every committed corpus file and over a
//! fixed set of seeded pseudo-random inputs, so `cargo test` catches what a campaign would catch
//! first, without nightly.

use smmu_conform_fuzz::decode_target;
use smmu_model::command::opcode::ARCHITECTED;
use std::path::PathBuf;

#[test]
fn corpus_replays_clean() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/decode"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus/decode exists") {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            // Name the file if it panics.
            let r = std::panic::catch_unwind(|| decode_target(&data));
            assert!(r.is_ok(), "corpus input {} fails", path.display());
            n += 1;
        }
    }
    assert!(n >= 40, "only {n} corpus files in {}", dir.display());
}

/// xorshift64*: small, deterministic, good enough to spread bits; no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const RANDOM_INPUTS: usize = 20_000;

#[test]
fn seeded_random_inputs() {
    let mut rng = Rng(0x5eed_5a11_c0de_0001);
    for i in 0..RANDOM_INPUTS {
        let len = (rng.next() % 120) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Uniform bytes hit an architected opcode only 34 times in 256; steer most commands onto
        // one so the field layouts and the classifier see real work. Also keep bit 7 of the
        // profile byte (raw registers) as likely as not.
        let start = if data.first().is_some_and(|b| b & 0x80 != 0) {
            38
        } else {
            2
        };
        let mut at = start;
        while at + 16 <= data.len() {
            if rng.next() & 3 != 0 {
                data[at] = ARCHITECTED[(rng.next() % ARCHITECTED.len() as u64) as usize].0;
            }
            at += 16;
        }
        let r = std::panic::catch_unwind(|| decode_target(&data));
        assert!(r.is_ok(), "random input {i} fails: {data:02x?}");
    }
}
