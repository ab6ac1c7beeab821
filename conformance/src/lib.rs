//! smmu-conform: the conformance suite and fuzzer for Arm SMMUv3 invalidation semantics, as a
//! library. The `smmu-conform` binary only parses arguments and maps [`Error`]s to exit codes;
//! everything it prints is built here so that tests can check it without a process.
//!
//! - [`input`] reads commands (command-line words, hex text, binary queue dumps),
//! - [`target`] picks the feature profile and queue they are judged against,
//! - [`report`] renders what the golden model (`smmu_model`) says about them.

pub mod error;
pub mod input;
pub mod report;
pub mod target;

pub use error::Error;

/// What `smmu-conform run` prints until the suite exists.
pub const RUN_PLACEHOLDER: &str = "smmu-conform run: the conformance suite lands with the adapter \
issue (a backend to drive); nothing to run yet. Meanwhile: `smmu-conform decode`, `profiles`, \
`rules`.";
