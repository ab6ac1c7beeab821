//! libFuzzer entry for `forwarder`; the body is `smmu_conform_fuzz::forwarder_target`, which
//! stable `cargo test` also runs. The forwarder is `SMMU_FUZZ_FORWARDER` (default: the reference
//! forwarder), e.g. `SMMU_FUZZ_FORWARDER=fwd-mutant:nsnh-all-raw cargo +nightly fuzz run
//! forwarder corpus/forwarder`, or `SMMU_FUZZ_FORWARDER=kernel` (the Linux iommufd path; its
//! known divergences, corpus/expectations/kernel.toml, are not crashes).
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smmu_conform_fuzz::forwarder_target(data, &smmu_conform_fuzz::forwarder_backend())
});

#[cfg(not(fuzzing))]
fn main() {}
