//! libFuzzer entry for `decode`; the body is `smmu_conform_fuzz::decode_target`, which stable
//! `cargo test` also runs. Without cfg(fuzzing) this is an empty program so that
//! `cargo test --workspace` builds on stable.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smmu_conform_fuzz::decode_target(data));

#[cfg(not(fuzzing))]
fn main() {}
