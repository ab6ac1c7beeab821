//! The memory map every case and fuzz input uses, chosen to fit QEMU's `virt` machine with
//! `-m 256M` (RAM at 0x4000_0000..0x5000_0000, the DTB at its base) so the same trace runs on
//! every backend unchanged.

/// RAM the harness may use: [RAM_BASE, RAM_END).
pub const RAM_BASE: u64 = 0x4000_0000;
pub const RAM_END: u64 = 0x5000_0000;
/// The first 1 MiB holds QEMU's DTB: never written.
pub const RESERVED_END: u64 = 0x4010_0000;
/// The Command queue (256 entries of 16 bytes).
pub const CMDQ_BASE: u64 = 0x4010_0000;
pub const CMDQ_LOG2SIZE: u8 = 8;
/// Where backends that need scratch memory of their own (DMA engine scripts, event queue) may
/// put it; cases never touch it.
pub const BACKEND_SCRATCH: u64 = 0x4011_0000;
pub const BACKEND_SCRATCH_END: u64 = 0x4020_0000;
/// Stream table, CDs and translation tables are allocated from here.
pub const STRUCT_BASE: u64 = 0x4020_0000;
pub const STRUCT_END: u64 = 0x4800_0000;
/// Output pages that translations point at.
pub const DATA_BASE: u64 = 0x4800_0000;
pub const DATA_END: u64 = 0x5000_0000;
