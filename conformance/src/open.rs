//! Opening backends by name, through `backend::select`.

use crate::backend::{Device, Forwarder, HarnessError};
use crate::coverage::Mutant;

/// The backend `smmu-conform run` uses when none is given.
pub const DEFAULT_BACKEND: &str = "emulator";

/// QEMU 10.0 as scripts/install-qemu.sh installs it, and the unpacked 7.2 beside it.
pub const QEMU_10_BINARY: &str = "/usr/bin/qemu-system-aarch64";
pub const QEMU_72_BINARY: &str = "/opt/smmu-conform/qemu-7.2/usr/bin/qemu-system-aarch64";
/// How long any single qtest exchange may take before QEMU is declared hung and killed.
pub const QEMU_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The QEMU 10.0 binary: `qemu-system-aarch64` on PATH, else where scripts/install-qemu.sh puts it.
pub(crate) fn qemu_on_path() -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("qemu-system-aarch64"))
                .find(|b| b.is_file())
        })
        .unwrap_or_else(|| QEMU_10_BINARY.into())
}

/// Open the backend named by `spec`:
/// - `qemu[:MACHINE]` (QEMU found on PATH, default machine `virt`; e.g. `qemu:virt-9.1`),
///   `qemu:PATH[,MACHINE]` (a binary of your own, e.g. a QEMU under review),
///   `qemu-7.2[:MACHINE]` (the 7.2 unpacked by scripts/install-qemu.sh);
/// - `exec[,OPTIONS]:COMMAND ARGS`, any program speaking the protocol of docs/protocol.md;
/// - `emulator[:OPTIONS]`, `mutant:NAME` through `backend::select`.
pub fn open_backend(spec: &str) -> Result<Box<dyn Device>, HarnessError> {
    if let Some(device) = crate::backend::exec::open_device(spec) {
        return device;
    }
    let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let qemu = match name {
        "qemu" | "qemu-10.0" => {
            if rest.contains('/') {
                let (bin, machine) = rest.split_once(',').unwrap_or((rest, "virt"));
                Some((std::path::PathBuf::from(bin), machine))
            } else {
                Some((qemu_on_path(), if rest.is_empty() { "virt" } else { rest }))
            }
        }
        "qemu-7.2" => Some((
            std::path::PathBuf::from(QEMU_72_BINARY),
            if rest.is_empty() { "virt" } else { rest },
        )),
        _ => None,
    };
    if let Some((path, machine)) = qemu {
        if !path.exists() {
            return Err(HarnessError::Setup(format!(
                "backend {spec}: {} is missing; run scripts/install-qemu.sh (as root)",
                path.display()
            )));
        }
        let d = crate::backend::qemu::QemuDevice::spawn(&path, machine, QEMU_TIMEOUT)?;
        return Ok(Box::new(d));
    }
    crate::backend::select::open(spec).map_err(|e| HarnessError::Setup(e.to_string()))
}

/// Open a forwarder backend by spec: `forwarder`, `fwd-mutant:NAME`,
/// `exec-forwarder[,OPTIONS]:COMMAND ARGS` (docs/protocol.md); see `crate::forwarder`.
pub fn open_forwarder(spec: &str) -> Result<Box<dyn Forwarder>, HarnessError> {
    crate::forwarder::open_forwarder(spec)
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
