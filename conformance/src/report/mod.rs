//! Everything the binary prints, as functions of data, so that tests can snapshot it without
//! running a process.

pub mod decode;
pub mod profiles;
pub mod rules;
pub mod suite;
