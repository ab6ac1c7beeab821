//! What commands are judged against: a feature profile (a named one, optionally with raw ID
//! registers overriding its values) and the command queue they were submitted to.

use crate::error::Error;
use crate::input::parse_register;
use smmu_model::profile::{Profile, Queue, NAMED_PROFILES};

/// The profile `decode` uses when none is named: the QEMU the suite runs against by default.
pub const DEFAULT_PROFILE: &str = "qemu-10.0";

/// Raw ID register values from the command line, as typed (hex). Each one that is given replaces
/// the named profile's value, so `--profile qemu-10.0 --idr3 0` is "QEMU 10.0 without RIL/BBML".
#[derive(Clone, Debug, Default)]
pub struct RegOverrides {
    pub idr0: Option<String>,
    pub idr1: Option<String>,
    pub idr3: Option<String>,
    pub idr5: Option<String>,
    pub aidr: Option<String>,
}

/// A profile and queue, with a label for reports.
#[derive(Clone, Debug)]
pub struct Target {
    /// The profile name, plus any overridden registers, e.g. "qemu-10.0 + IDR3=0x00000000".
    pub label: String,
    pub profile: Profile,
    pub queue: Queue,
}

impl Target {
    pub fn new(label: impl Into<String>, profile: Profile, queue: Queue) -> Target {
        Target {
            label: label.into(),
            profile,
            queue,
        }
    }

    /// A named profile on a queue; `None` for an unknown name.
    pub fn named(name: &str, queue: Queue) -> Option<Target> {
        Profile::named(name).map(|p| Target::new(name, p, queue))
    }

    /// The target the command-line options describe.
    pub fn from_options(
        profile: &str,
        overrides: &RegOverrides,
        queue: &str,
    ) -> Result<Target, Error> {
        let named = NAMED_PROFILES
            .iter()
            .find(|p| p.name == profile)
            .ok_or_else(|| Error::UnknownProfile {
                name: profile.to_string(),
                known: NAMED_PROFILES
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let queue: Queue = queue.parse().map_err(Error::UnknownQueue)?;
        let mut regs = named.regs;
        let mut label = named.name.to_string();
        let slots: [(&'static str, &Option<String>, &mut u32); 5] = [
            ("--idr0", &overrides.idr0, &mut regs.idr0),
            ("--idr1", &overrides.idr1, &mut regs.idr1),
            ("--idr3", &overrides.idr3, &mut regs.idr3),
            ("--idr5", &overrides.idr5, &mut regs.idr5),
            ("--aidr", &overrides.aidr, &mut regs.aidr),
        ];
        for (flag, given, slot) in slots {
            if let Some(tok) = given {
                *slot = parse_register(flag, tok)?;
                label.push_str(&format!(
                    " + {}=0x{:08x}",
                    flag.trim_start_matches('-').to_ascii_uppercase(),
                    *slot
                ));
            }
        }
        Ok(Target::new(label, Profile::from_regs(regs), queue))
    }
}

/// The queue's name as the command line spells it.
pub fn queue_name(q: Queue) -> &'static str {
    match q {
        Queue::NonSecure => "non-secure",
        Queue::Secure => "secure",
        Queue::Realm => "realm",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_named_registers() {
        let o = RegOverrides {
            idr3: Some("0".into()),
            ..Default::default()
        };
        let t = Target::from_options("qemu-10.0", &o, "secure").unwrap();
        assert!(!t.profile.ril);
        assert!(t.profile.s2p);
        assert_eq!(t.queue, Queue::Secure);
        assert_eq!(t.label, "qemu-10.0 + IDR3=0x00000000");
    }

    #[test]
    fn bad_names() {
        let o = RegOverrides::default();
        let e = Target::from_options("qemu-1", &o, "ns").unwrap_err();
        assert!(e.to_string().contains("known: qemu-10.0"), "{e}");
        assert!(Target::from_options("qemu-10.0", &o, "el3").is_err());
        let o = RegOverrides {
            idr0: Some("0x1_0000_0000".into()),
            ..Default::default()
        };
        let e = Target::from_options("qemu-10.0", &o, "ns").unwrap_err();
        assert!(e.to_string().contains("wider than 32 bits"), "{e}");
    }
}
