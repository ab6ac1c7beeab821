//! Opening backends by name. The reference emulator and its mutants live on another branch
//! (`backend::select::open`, `list_mutants`); until it merges nothing can be opened, and every
//! entry point says so in one line rather than pretending to run.

use crate::backend::{Device, HarnessError};
use crate::coverage::Mutant;

/// The backend `smmu-conform run` uses when none is given.
pub const DEFAULT_BACKEND: &str = "emulator";

/// QEMU 10.0 as scripts/install-qemu.sh installs it, and the unpacked 7.2 beside it.
pub const QEMU_10_BINARY: &str = "/usr/bin/qemu-system-aarch64";
pub const QEMU_72_BINARY: &str = "/opt/smmu-conform/qemu-7.2/usr/bin/qemu-system-aarch64";
/// How long any single qtest exchange may take before QEMU is declared hung and killed.
pub const QEMU_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Open the backend named by `spec`: `qemu[:MACHINE]` (QEMU 10.0) or `qemu-7.2[:MACHINE]`, with
/// MACHINE `virt` (default) or a versioned type such as `virt-9.1`. Other names are wired to
/// `backend::select::open` when the emulator merges.
pub fn open_backend(spec: &str) -> Result<Box<dyn Device>, HarnessError> {
    let (name, machine) = spec.split_once(':').unwrap_or((spec, "virt"));
    let binary = match name {
        "qemu" | "qemu-10.0" => Some(QEMU_10_BINARY),
        "qemu-7.2" => Some(QEMU_72_BINARY),
        _ => None,
    };
    if let Some(b) = binary {
        let path = std::path::Path::new(b);
        if !path.exists() {
            return Err(HarnessError::Setup(format!(
                "backend {spec}: {b} is missing; run scripts/install-qemu.sh (as root)"
            )));
        }
        let d = crate::backend::qemu::QemuDevice::spawn(path, machine, QEMU_TIMEOUT)?;
        return Ok(Box::new(d));
    }
    Err(HarnessError::Setup(format!(
        "backend {spec} is not available"
    )))
}

/// Every mutant, by name, with how to open it. Wired to `backend::select::list_mutants` when the
/// emulator merges; empty until then.
pub fn available_mutants() -> Vec<Mutant<'static>> {
    Vec::new()
}
