//! QEMU's trace lines (log backend, on stderr) as the kernel backend needs them: the host
//! SMMU's queue and table base registers, the Command queue entries each consume pass took, and
//! the fences (bytes the guest agent wrote on its virtio-serial port).
//!
//! Formats (QEMU 10.0, hw/arm/trace-events and hw/char/trace-events), with or without the
//! `PID@SECONDS:` prefix the log backend adds when timestamps are on:
//! - `smmuv3_write_mmio addr: 0x90 val:0x... size: 0x8(8)` (addr is the register offset)
//! - `smmuv3_cmdq_consume prod=P cons=C prod.wrap=PW cons.wrap=CW` (before each command of a
//!   pass: the first one of a pass gives where it started)
//! - `smmuv3_cmdq_consume_out prod:P, cons:C, prod_wrap:PW, cons_wrap:CW` (end of a pass)
//! - `smmuv3_cmdq_consume_error Error on NAME command execution: N`
//! - `virtio_console_flush_buf port N, in_len L, out_len R` (R bytes passed to the chardev)

/// SMMU register offsets the backend follows (§6.3).
const STRTAB_BASE: u64 = 0x80;
const STRTAB_BASE_CFG: u64 = 0x88;
const CMDQ_BASE: u64 = 0x90;

/// One trace event the backend cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A register write: (offset, value, size in bytes).
    Mmio { offset: u64, value: u64, size: u32 },
    /// A consume pass starts at this CONS (index, wrap).
    ConsumeStart { cons: u32, wrap: u32 },
    /// A consume pass ended at this CONS (index, wrap).
    ConsumeEnd { cons: u32, wrap: u32 },
    /// The pass stopped at CONS with a command error (CERROR_*, §7.1): the opcode name, the error.
    ConsumeError { what: String },
    /// Bytes of the agent's port passed to the host chardev.
    Flush { bytes: u64 },
}

fn strip_prefix(line: &str) -> &str {
    // `PID@SECONDS.MICROS:name ...`
    if let Some((head, rest)) = line.split_once(':') {
        if head.contains('@')
            && head
                .chars()
                .all(|c| c.is_ascii_digit() || c == '@' || c == '.')
        {
            return rest;
        }
    }
    line
}

/// Every number in `s`, in order: `0x` hex or decimal (a `-` sign kept).
fn numbers(s: &str) -> Vec<i128> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let neg = i > 0 && b[i - 1] == b'-';
            let (radix, start) = if b[i] == b'0' && i + 1 < b.len() && (b[i + 1] | 0x20) == b'x' {
                (16, i + 2)
            } else {
                (10, i)
            };
            let mut j = start;
            while j < b.len() && (b[j] as char).is_digit(radix) {
                j += 1;
            }
            if let Ok(v) = i128::from_str_radix(&s[start..j], radix) {
                out.push(if neg { -v } else { v });
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Parse one stderr line; `None` for anything else (other trace events, QEMU messages).
pub fn parse(line: &str) -> Option<Event> {
    let l = strip_prefix(line.trim());
    let (name, args) = l.split_once(' ').unwrap_or((l, ""));
    let n = || numbers(args);
    match name {
        "smmuv3_write_mmio" => {
            let v = n();
            (v.len() >= 3).then(|| Event::Mmio {
                offset: v[0] as u64,
                value: v[1] as u64,
                size: v[2] as u32,
            })
        }
        "smmuv3_cmdq_consume" | "smmuv3_cmdq_consume_out" => {
            let v = n();
            if v.len() < 4 {
                return None;
            }
            let (cons, wrap) = (v[1] as u32, v[3] as u32);
            Some(if name == "smmuv3_cmdq_consume" {
                Event::ConsumeStart { cons, wrap }
            } else {
                Event::ConsumeEnd { cons, wrap }
            })
        }
        "smmuv3_cmdq_consume_error" => Some(Event::ConsumeError {
            what: args.trim().to_string(),
        }),
        "virtio_console_flush_buf" => {
            let v = n();
            (v.len() >= 3).then(|| Event::Flush {
                bytes: v[2].max(0) as u64,
            })
        }
        _ => None,
    }
}

/// What the trace says about the host SMMU, accumulated from boot on.
#[derive(Clone, Debug, Default)]
pub struct HostState {
    pub cmdq_base: u64,
    pub strtab_base: u64,
    pub strtab_cfg: u64,
    /// Bytes of the agent port the host chardev received, as QEMU reports them.
    pub flushed: u64,
    /// The current window: consumed entry ranges (start index with wrap, count) and errors.
    pub consumed: Vec<(u32, u32)>,
    pub errors: Vec<String>,
    open: Option<u32>,
}

impl HostState {
    /// log2 of the Command queue's entry count (CMDQ_BASE.LOG2SIZE, §6.3.26).
    pub fn cmdq_log2size(&self) -> u32 {
        (self.cmdq_base & 0x1f) as u32
    }

    /// The queue's base address (CMDQ_BASE.ADDR[51:5]).
    pub fn cmdq_addr(&self) -> u64 {
        self.cmdq_base & 0x000f_ffff_ffff_ffe0
    }

    fn set(reg: &mut u64, offset_in_reg: u64, value: u64, size: u32) {
        match (offset_in_reg, size) {
            (0, 8) => *reg = value,
            (0, 4) => *reg = (*reg & !0xffff_ffff) | (value & 0xffff_ffff),
            (4, 4) => *reg = (*reg & 0xffff_ffff) | (value << 32),
            _ => {}
        }
    }

    /// Apply one event.
    pub fn apply(&mut self, e: Event) {
        match e {
            Event::Mmio {
                offset,
                value,
                size,
            } => {
                for (base, reg) in [
                    (STRTAB_BASE, &mut self.strtab_base),
                    (STRTAB_BASE_CFG, &mut self.strtab_cfg),
                    (CMDQ_BASE, &mut self.cmdq_base),
                ] {
                    if (base..base + 8).contains(&offset) {
                        Self::set(reg, offset - base, value, size);
                    }
                }
            }
            Event::ConsumeStart { cons, wrap } => {
                if self.open.is_none() {
                    self.open = Some(self.pos(cons, wrap));
                }
            }
            Event::ConsumeEnd { cons, wrap } => {
                let end = self.pos(cons, wrap);
                if let Some(start) = self.open.take() {
                    let modulus = 2u32 << self.cmdq_log2size();
                    let count = end.wrapping_sub(start) & (modulus - 1);
                    if count > 0 {
                        self.consumed.push((start, count));
                    }
                }
            }
            Event::ConsumeError { what } => {
                // The failing entry stays at CONS: it was read, so it counts as issued.
                self.errors.push(what);
            }
            Event::Flush { bytes } => self.flushed += bytes,
        }
    }

    /// Index with the wrap bit above it, as PROD/CONS hold them (§3.5).
    fn pos(&self, index: u32, wrap: u32) -> u32 {
        index | (wrap & 1) << self.cmdq_log2size()
    }

    /// The queue slots consumed in the current window, in order, and the window's errors; the
    /// window is emptied.
    pub fn take_window(&mut self) -> (Vec<u32>, Vec<String>) {
        let mask = (1u32 << self.cmdq_log2size()) - 1;
        let mut slots = Vec::new();
        for (start, count) in self.consumed.drain(..) {
            for k in 0..count {
                slots.push(start.wrapping_add(k) & mask);
            }
        }
        (slots, std::mem::take(&mut self.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_events() {
        assert_eq!(
            parse("smmuv3_write_mmio addr: 0x90 val:0x400000004123000a size: 0x8(8)"),
            Some(Event::Mmio {
                offset: 0x90,
                value: 0x4000_0000_4123_000a,
                size: 8
            })
        );
        assert_eq!(
            parse(
                "1234@1700000000.123456:smmuv3_cmdq_consume prod=5 cons=3 prod.wrap=1 cons.wrap=0"
            ),
            Some(Event::ConsumeStart { cons: 3, wrap: 0 })
        );
        assert_eq!(
            parse("smmuv3_cmdq_consume_out prod:5, cons:5, prod_wrap:1, cons_wrap:1 "),
            Some(Event::ConsumeEnd { cons: 5, wrap: 1 })
        );
        assert_eq!(
            parse("virtio_console_flush_buf port 1, in_len 27, out_len 27"),
            Some(Event::Flush { bytes: 27 })
        );
        assert_eq!(
            parse("virtio_console_flush_buf port 1, in_len 27, out_len -1"),
            Some(Event::Flush { bytes: 0 })
        );
        assert_eq!(parse("smmuv3_cmdq_opcode <--- CMD_SYNC"), None);
        assert_eq!(parse("qemu-system-aarch64: warning: x"), None);
    }

    #[test]
    fn windows_follow_the_queue_across_the_wrap() {
        let mut h = HostState::default();
        h.apply(Event::Mmio {
            offset: 0x90,
            value: 0x4100_0000 | 3,
            size: 8,
        });
        assert_eq!(h.cmdq_addr(), 0x4100_0000);
        h.apply(Event::ConsumeStart { cons: 6, wrap: 0 });
        h.apply(Event::ConsumeStart { cons: 7, wrap: 0 });
        h.apply(Event::ConsumeEnd { cons: 1, wrap: 1 });
        let (slots, errs) = h.take_window();
        assert_eq!(slots, vec![6, 7, 0]);
        assert!(errs.is_empty());
        h.apply(Event::Mmio {
            offset: 0x94,
            value: 1,
            size: 4,
        });
        assert_eq!(h.cmdq_base >> 32, 1);
    }
}
