//! Backend selection by a one-word spec, as the command line and case files name backends:
//! `emulator`, `emulator:OPTIONS`, `mutant:NAME` (QEMU and `exec:` are opened in `crate::open`);
//! forwarder backends (`kernel`) are recognised and refused with a pointer to the forwarder
//! suite.

use super::Device;
use crate::emulator::{Emulator, EmulatorConfig, Mutant};
use smmu_model::profile::NAMED_PROFILES;
use smmu_model::queue::Res0Policy;

/// Why a backend spec could not be opened. One line each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("unknown backend '{0}' (expected emulator, emulator:OPTIONS, mutant:NAME, qemu[:MACHINE], qemu:PATH or exec:COMMAND)")]
    UnknownBackend(String),
    #[error("unknown emulator option '{0}' (expected tlb=N, walk-cache=on|off, res0=ignore|ill, profile=NAME)")]
    UnknownOption(String),
    #[error("bad value '{value}' for emulator option {option}: {expected}")]
    BadValue {
        option: &'static str,
        value: String,
        expected: String,
    },
    #[error("unknown mutant '{0}' (`smmu-conform mutants --list` lists them)")]
    UnknownMutant(String),
    #[error("backend '{name}' is a forwarder, not an SMMU device: `smmu-conform run --backend {name}` runs the forwarder suite on it")]
    Forwarder { name: String },
}

/// Forwarder backends opened elsewhere (`crate::forwarder::open_forwarder`).
const FORWARDERS: &[&str] = &["kernel"];

/// Open a backend by spec: `emulator`, `emulator:tlb=1,walk-cache=off,res0=ill,profile=qemu-10.0`,
/// `mutant:NAME`.
pub fn open(spec: &str) -> Result<Box<dyn Device>, SelectError> {
    Ok(Box::new(Emulator::new(config(spec)?)))
}

/// The emulator configuration a spec names (what [`open`] builds).
pub fn config(spec: &str) -> Result<EmulatorConfig, SelectError> {
    let spec = spec.trim();
    let (kind, rest) = match spec.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (spec, None),
    };
    match kind {
        "emulator" => emulator_options(rest.unwrap_or("")),
        "mutant" => {
            let name = rest.unwrap_or("");
            Mutant::from_name(name)
                .map(EmulatorConfig::mutant)
                .ok_or_else(|| SelectError::UnknownMutant(name.to_string()))
        }
        k => match FORWARDERS.iter().find(|n| **n == k) {
            Some(n) => Err(SelectError::Forwarder {
                name: n.to_string(),
            }),
            None => Err(SelectError::UnknownBackend(spec.to_string())),
        },
    }
}

fn emulator_options(opts: &str) -> Result<EmulatorConfig, SelectError> {
    let mut cfg = EmulatorConfig::default();
    for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| SelectError::UnknownOption(opt.to_string()))?;
        let bad = |option: &'static str, expected: &str| SelectError::BadValue {
            option,
            value: value.to_string(),
            expected: expected.to_string(),
        };
        match key {
            "tlb" => {
                cfg.tlb_capacity = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 1 << 20)
                    .ok_or_else(|| bad("tlb", "an entry count from 0 to 1048576"))?;
            }
            "walk-cache" => {
                cfg.walk_cache = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad("walk-cache", "on or off")),
                }
            }
            "res0" => {
                cfg.res0 = match value {
                    "ignore" => Res0Policy::Ignore,
                    "ill" => Res0Policy::Ill,
                    _ => return Err(bad("res0", "ignore or ill")),
                }
            }
            "profile" => {
                let names: Vec<&str> = NAMED_PROFILES.iter().map(|p| p.name).collect();
                cfg.regs = NAMED_PROFILES
                    .iter()
                    .find(|p| p.name == value)
                    .map(|p| p.regs)
                    .ok_or_else(|| bad("profile", &format!("one of {}", names.join(", "))))?;
            }
            _ => return Err(SelectError::UnknownOption(key.to_string())),
        }
    }
    Ok(cfg)
}

/// Every mutant: (name, class, description), in [`Mutant::ALL`] order.
pub fn list_mutants() -> Vec<(&'static str, &'static str, &'static str)> {
    Mutant::ALL
        .iter()
        .map(|m| (m.name(), m.class().name(), m.description()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(config("emulator").unwrap(), EmulatorConfig::default());
        let c = config("emulator:tlb=1,walk-cache=off,res0=ill,profile=qemu-10.0").unwrap();
        assert_eq!(c.tlb_capacity, 1);
        assert!(!c.walk_cache);
        assert_eq!(c.res0, Res0Policy::Ill);
        assert_eq!(
            c.regs,
            smmu_model::profile::Profile::named("qemu-10.0")
                .unwrap()
                .regs
        );
        assert!(matches!(
            config("emulator:tlb=x"),
            Err(SelectError::BadValue { .. })
        ));
        assert!(matches!(
            config("emulator:color=red"),
            Err(SelectError::UnknownOption(_))
        ));
        assert!(matches!(
            config("emulator:profile=nope"),
            Err(SelectError::BadValue { .. })
        ));
        assert_eq!(
            config("mutant:sync-no-msi").unwrap().mutant,
            Some(Mutant::SyncNoMsi)
        );
        let e = config("mutant:nope").unwrap_err().to_string();
        assert!(e.contains("smmu-conform mutants --list"), "{e}");
        // QEMU and exec: are opened by crate::open before select is asked.
        let e = config("kernel").unwrap_err();
        assert!(matches!(e, SelectError::Forwarder { .. }), "kernel");
        assert!(e.to_string().contains("forwarder suite"), "{e}");
        assert!(matches!(
            config("bogus"),
            Err(SelectError::UnknownBackend(_))
        ));
        assert!(open("emulator").is_ok());
        assert_eq!(list_mutants().len(), Mutant::ALL.len());
    }
}
