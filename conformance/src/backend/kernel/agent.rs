//! The guest agent's line protocol (docs/kernel.md, "Agent protocol"): ASCII lines over the
//! virtio-serial port `smmu-conform.agent`. This module only formats and parses lines; the
//! socket, its timeouts and the fences are [`super::guest`]'s.

use smmu_model::command::RawCommand;
use smmu_model::profile::IdRegs;

/// The protocol version this harness speaks (`hello 1`).
pub const VERSION: u32 = 1;

/// IOMMU_GET_HW_INFO's ARM data (struct iommu_hw_info_arm_smmuv3): the host SMMU's raw ID
/// registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwInfo {
    pub idr: [u32; 6],
    pub iidr: u32,
    pub aidr: u32,
}

impl HwInfo {
    /// The host's registers as the model reads them.
    pub fn regs(&self) -> IdRegs {
        IdRegs {
            idr0: self.idr[0],
            idr1: self.idr[1],
            idr3: self.idr[3],
            idr5: self.idr[5],
            aidr: self.aidr,
            ..IdRegs::default()
        }
    }
}

/// `key=value` pairs of a line's words after the first `skip`.
fn pairs<'a>(words: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    words.iter().filter_map(|w| w.split_once('=')).collect()
}

fn hex32(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("'{s}': {e}"))
}

/// `hwinfo idr0=0x.. idr1=0x.. idr2=0x.. idr3=0x.. idr4=0x.. idr5=0x.. iidr=0x.. aidr=0x..`
pub fn parse_hwinfo(line: &str) -> Result<HwInfo, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first() != Some(&"hwinfo") {
        return Err(format!("expected `hwinfo ...`, got '{line}'"));
    }
    let mut h = HwInfo::default();
    let mut seen = 0u32;
    for (k, v) in pairs(&words[1..]) {
        let v = hex32(v)?;
        match k {
            "iidr" => h.iidr = v,
            "aidr" => h.aidr = v,
            _ => {
                let i = k
                    .strip_prefix("idr")
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&i| i < 6)
                    .ok_or_else(|| format!("unknown hwinfo field '{k}'"))?;
                h.idr[i] = v;
                seen |= 1 << i;
            }
        }
    }
    if seen & 0b10_1011 != 0b10_1011 {
        return Err(format!("hwinfo lacks idr0, idr1, idr3 or idr5: '{line}'"));
    }
    Ok(h)
}

/// `device <i> bdf=DDDD:BB:DD.F` -> (index, the PCI requester ID bus<<8 | dev<<3 | fn, which is
/// the StreamID on QEMU's virt board).
pub fn parse_device(line: &str) -> Result<(usize, u32), String> {
    let bad = || format!("expected `device <i> bdf=DDDD:BB:DD.F`, got '{line}'");
    let words: Vec<&str> = line.split_whitespace().collect();
    let ["device", i, bdf, ..] = words.as_slice() else {
        return Err(bad());
    };
    let i: usize = i.parse().map_err(|_| bad())?;
    let bdf = bdf.strip_prefix("bdf=").ok_or_else(bad)?;
    let parts: Vec<&str> = bdf.split([':', '.']).collect();
    let [_, bus, dev, func] = parts.as_slice() else {
        return Err(bad());
    };
    let h = |s: &str| u32::from_str_radix(s, 16).map_err(|_| bad());
    let (bus, dev, func) = (h(bus)?, h(dev)?, h(func)?);
    if bus > 0xff || dev > 0x1f || func > 7 {
        return Err(bad());
    }
    Ok((i, bus << 8 | dev << 3 | func))
}

/// `setup vsid=1,2`
pub fn setup_line(vsids: &[u32]) -> String {
    let v: Vec<String> = vsids.iter().map(|s| format!("{s:x}")).collect();
    format!("setup vsid={}", v.join(","))
}

/// `setup ok viommu=<id>` -> Ok(id); `setup err <step> errno=<n> <strerror>` -> Err(the rest).
pub fn parse_setup(line: &str) -> Result<Result<u32, String>, String> {
    if let Some(rest) = line.strip_prefix("setup ok") {
        let id = pairs(&rest.split_whitespace().collect::<Vec<_>>())
            .into_iter()
            .find(|(k, _)| *k == "viommu")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        return Ok(Ok(id));
    }
    if let Some(rest) = line.strip_prefix("setup err") {
        return Ok(Err(rest.trim().to_string()));
    }
    Err(format!("expected `setup ok` or `setup err`, got '{line}'"))
}

/// `batch <n> <lo>:<hi> ...`: each command as its two 64-bit words, 16 hex digits, word 0 first.
pub fn batch_line(cmds: &[RawCommand]) -> String {
    let mut s = format!("batch {}", cmds.len());
    for c in cmds {
        s.push_str(&format!(" {:016x}:{:016x}", c.0[0], c.0[1]));
    }
    s
}

/// `raw <entry_len> <entry_num> <hexbytes>`: a malformed uAPI call for interface checks.
pub fn raw_line(entry_len: u32, entry_num: u32, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("raw {entry_len} {entry_num} {hex}")
}

/// What one IOMMU_HWPT_INVALIDATE returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlResult {
    pub rc: i64,
    pub errno: i64,
    /// entry_num on return.
    pub entry_num: u64,
}

/// `result rc=<int> errno=<n> entry_num=<out>`
pub fn parse_result(line: &str) -> Result<IoctlResult, String> {
    let bad = || format!("expected `result rc=.. errno=.. entry_num=..`, got '{line}'");
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first() != Some(&"result") {
        return Err(bad());
    }
    let mut r = (None, None, None);
    for (k, v) in pairs(&words[1..]) {
        match k {
            "rc" => r.0 = v.parse().ok(),
            "errno" => r.1 = v.parse().ok(),
            "entry_num" => r.2 = v.parse().ok(),
            _ => {}
        }
    }
    match r {
        (Some(rc), Some(errno), Some(entry_num)) => Ok(IoctlResult {
            rc,
            errno,
            entry_num,
        }),
        _ => Err(bad()),
    }
}

/// The symbolic name of the errno values the interface uses (Linux asm-generic numbers).
pub fn errno_name(e: i64) -> &'static str {
    match e {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        7 => "E2BIG",
        12 => "ENOMEM",
        14 => "EFAULT",
        16 => "EBUSY",
        22 => "EINVAL",
        34 => "ERANGE",
        38 => "ENOSYS",
        61 => "ENODATA",
        75 => "EOVERFLOW",
        95 => "EOPNOTSUPP",
        110 => "ETIMEDOUT",
        0 => "-",
        _ => "errno",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let h = parse_hwinfo(
            "hwinfo idr0=0x0d44101b idr1=0x02730010 idr2=0x0 idr3=0x00001404 idr4=0x0 idr5=0x74 iidr=0x0 aidr=0x1",
        )
        .unwrap();
        assert_eq!(h.regs().idr0, 0x0d44101b);
        assert_eq!(h.regs().idr5, 0x74);
        assert!(parse_hwinfo("hwinfo idr0=0x1").is_err());
        assert_eq!(
            parse_device("device 1 bdf=0000:00:03.0").unwrap(),
            (1, 0x18)
        );
        assert!(parse_device("device x").is_err());
        assert_eq!(setup_line(&[1, 0x3f]), "setup vsid=1,3f");
        assert_eq!(parse_setup("setup ok viommu=7").unwrap(), Ok(7));
        assert_eq!(
            parse_setup("setup err viommu_alloc errno=95 Operation not supported").unwrap(),
            Err("viommu_alloc errno=95 Operation not supported".into())
        );
        assert_eq!(
            batch_line(&[RawCommand([0x12, 0x1000])]),
            "batch 1 0000000000000012:0000000000001000"
        );
        assert_eq!(batch_line(&[]), "batch 0");
        assert_eq!(
            parse_result("result rc=-1 errno=5 entry_num=2").unwrap(),
            IoctlResult {
                rc: -1,
                errno: 5,
                entry_num: 2
            }
        );
        assert!(parse_result("result rc=0").is_err());
        assert_eq!(raw_line(8, 1, &[1, 0xab]), "raw 8 1 01ab");
    }
}
