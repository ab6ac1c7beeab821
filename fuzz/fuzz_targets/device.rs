//! libFuzzer entry for `device`; the body is `smmu_conform_fuzz::device_target`, which stable
//! `cargo test` also runs. The backend is `SMMU_FUZZ_BACKEND` (default: the reference emulator),
//! e.g. `SMMU_FUZZ_BACKEND=mutant:tg0-noop cargo +nightly fuzz run device corpus/device`.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smmu_conform_fuzz::device_target(data, &smmu_conform_fuzz::device_backend())
});

#[cfg(not(fuzzing))]
fn main() {}
