//! libFuzzer entry for `qemu`; the body is `smmu_conform_fuzz::qemu_target`, which stable
//! `cargo test` also runs (fuzz/tests/qemu_replay.rs). The backend is `SMMU_FUZZ_QEMU` (default
//! `qemu`: QEMU on PATH, machine virt), e.g.
//! `SMMU_FUZZ_QEMU=qemu-7.2 cargo +nightly fuzz run qemu corpus/qemu`. Known divergences of that
//! backend (its expectation file) are not crashes.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smmu_conform_fuzz::qemu_target(data, &smmu_conform_fuzz::qemu_backend())
});

#[cfg(not(fuzzing))]
fn main() {}
