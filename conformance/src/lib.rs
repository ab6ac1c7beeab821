//! smmu-conform: the conformance suite and fuzzer for Arm SMMUv3 invalidation semantics, as a
//! library. The `smmu-conform` binary only parses arguments and maps [`Error`]s to exit codes;
//! everything it prints is built here so that tests can check it without a process.
//!
//! - [`input`] reads commands (command-line words, hex text, binary queue dumps),
//! - [`target`] picks the feature profile and queue they are judged against,
//! - [`report`] renders what the golden model (`smmu_model`) says about them,
//! - [`backend`] is the adapter trait every implementation under test is reached through,
//! - [`trace`] is the step list every case and fuzz input reduces to, on the [`layout`] memory map,
//! - [`emulator`] is the reference emulator (a conformant SMMU with finite caches) and its mutants,
//! - [`harness`] runs a trace on a device beside the model and collects findings.

pub mod backend;
pub mod build;
pub mod emulator;
pub mod error;
pub mod harness;
pub mod input;
pub mod layout;
pub mod report;
pub mod target;
pub mod trace;

pub use error::Error;

/// What `smmu-conform run` prints until the suite exists.
pub const RUN_PLACEHOLDER: &str = "smmu-conform run: the conformance suite lands with the adapter \
issue (a backend to drive); nothing to run yet. Meanwhile: `smmu-conform decode`, `profiles`, \
`rules`.";
