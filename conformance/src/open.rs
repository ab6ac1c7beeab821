//! Opening backends by name, through `backend::select`.

use crate::backend::{Device, HarnessError};
use crate::coverage::Mutant;

/// The backend `smmu-conform run` uses when none is given.
pub const DEFAULT_BACKEND: &str = "emulator";

/// Open the backend named by `spec`. Wired to `backend::select::open` when the emulator merges.
pub fn open_backend(spec: &str) -> Result<Box<dyn Device>, HarnessError> {
    crate::backend::select::open(spec).map_err(|e| HarnessError::Setup(e.to_string()))
}

/// Every mutant, by name, with how to open it. Wired to `backend::select::list_mutants` when the
/// emulator merges; empty until then.
pub fn available_mutants() -> Vec<Mutant<'static>> {
    crate::backend::select::list_mutants()
        .into_iter()
        .map(|(name, _, _)| {
            let spec = format!("mutant:{name}");
            Mutant {
                name: name.to_string(),
                open: Box::new(move || open_backend(&spec)),
            }
        })
        .collect()
}
