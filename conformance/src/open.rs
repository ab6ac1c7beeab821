//! Opening backends by name. The reference emulator and its mutants live on another branch
//! (`backend::select::open`, `list_mutants`); until it merges nothing can be opened, and every
//! entry point says so in one line rather than pretending to run.

use crate::backend::{Device, HarnessError};
use crate::coverage::Mutant;

/// The backend `smmu-conform run` uses when none is given.
pub const DEFAULT_BACKEND: &str = "emulator";

/// Open the backend named by `spec`. Wired to `backend::select::open` when the emulator merges.
pub fn open_backend(spec: &str) -> Result<Box<dyn Device>, HarnessError> {
    Err(HarnessError::Setup(format!(
        "backend {spec} is not available"
    )))
}

/// Every mutant, by name, with how to open it. Wired to `backend::select::list_mutants` when the
/// emulator merges; empty until then.
pub fn available_mutants() -> Vec<Mutant<'static>> {
    Vec::new()
}
