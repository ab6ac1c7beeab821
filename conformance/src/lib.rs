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
//! - [`harness`] runs a trace on a device beside the model and collects findings,
//! - [`case`] is the text case format and its compiler to traces, [`suite`] runs cases and keeps
//!   verdicts, expected divergences and harness errors apart, [`coverage`] maps rules and mutants
//!   to cases, [`open`] names backends,
//! - [`forwarder`] is the reference forwarder, its mutants, and the forwarder suite and fuzzer.

pub mod backend;
pub mod build;
pub mod case;
pub mod coverage;
pub mod emulator;
pub mod error;
pub mod forwarder;
pub mod fuzz;
pub mod gen;
pub mod harness;
pub mod input;
pub mod layout;
pub mod open;
pub mod report;
pub mod suite;
pub mod target;
pub mod trace;

pub use error::Error;
