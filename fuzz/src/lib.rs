//! Fuzz target bodies. They live in a library, not in the cargo-fuzz binaries, so that stable
//! `cargo test` replays the committed corpus and seeded random inputs through exactly the code
//! libFuzzer runs (fuzz/tests/replay.rs), and nightly is needed only to search for new inputs.

use smmu_conform::fuzz::known::Known;
use smmu_conform::input::{Entry, Origin};
use smmu_conform::report::decode::{analyze, render_json, render_text};
use smmu_conform::target::Target;
use smmu_model::classify::{classify, res0_fields, Verdict};
use smmu_model::command::{layout, Command, RawCommand};
use smmu_model::profile::{IdRegs, Profile, Queue, NAMED_PROFILES};

pub mod seeds;

/// Bytes taken from the front of the input when byte 0 asks for raw ID registers: nine u32s.
const REGS_LEN: usize = 9 * 4;

/// How `decode_target` reads its input:
/// - byte 0: the profile. Bit 7 clear: `NAMED_PROFILES[b % len]`. Bit 7 set and enough bytes:
///   the next 36 bytes are raw ID registers (IDR0, IDR1, IDR3, IDR5, AIDR, S_IDR1, S_IDR3,
///   R_IDR0, R_IDR3; little-endian u32s), so the classifier meets register values no named
///   profile has.
/// - byte 1: the queue, `b % 3` (Non-secure, Secure, Realm).
/// - then 16-byte little-endian commands; a short tail is ignored.
///
/// Returns the target and the command bytes, or `None` when there is not even a header.
pub fn split_input(data: &[u8]) -> Option<(Target, &[u8])> {
    let (&sel, rest) = data.split_first()?;
    let (&q, rest) = rest.split_first()?;
    let queue = match q % 3 {
        0 => Queue::NonSecure,
        1 => Queue::Secure,
        _ => Queue::Realm,
    };
    if sel & 0x80 != 0 && rest.len() >= REGS_LEN {
        let w = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&rest[i * 4..i * 4 + 4]);
            u32::from_le_bytes(b)
        };
        let regs = IdRegs {
            idr0: w(0),
            idr1: w(1),
            idr3: w(2),
            idr5: w(3),
            aidr: w(4),
            s_idr1: w(5),
            s_idr3: w(6),
            r_idr0: w(7),
            r_idr3: w(8),
        };
        let t = Target::new("fuzz-regs", Profile::from_regs(regs), queue);
        return Some((t, &rest[REGS_LEN..]));
    }
    let named = &NAMED_PROFILES[sel as usize % NAMED_PROFILES.len()];
    let t = Target::new(named.name, Profile::from_regs(named.regs), queue);
    Some((t, rest))
}

/// The invariants of decoding and classifying one command. Panics (which is what a fuzz target
/// reports) when one breaks.
pub fn check_command(target: &Target, raw: RawCommand) {
    // The raw form is lossless.
    assert_eq!(RawCommand::from_bytes(&raw.to_bytes()), raw);
    assert_eq!(RawCommand::from_u128(raw.as_u128()), raw);

    // The typed form keeps exactly the bits its layout names: for an architected opcode,
    // re-encoding clears every bit outside the layout's defined mask (RES0 bits, §4.1.5) and keeps
    // every bit inside it; Reserved and IMPLEMENTATION DEFINED commands keep their payload whole.
    let op = raw.opcode();
    let cmd = Command::decode(raw);
    assert_eq!(cmd.opcode(), op, "decode changed the opcode of {raw}");
    let back = cmd.encode();
    if op.is_architected() {
        assert_eq!(
            back.as_u128(),
            raw.as_u128() & layout::defined_mask(op),
            "encode(decode({raw})) is not the raw command with undefined bits cleared"
        );
        // Decoding is a function of the defined bits only.
        assert_eq!(Command::decode(back), cmd, "decode of re-encoded {raw}");
    } else {
        assert_eq!(back, raw, "Reserved/IMPDEF {raw} did not re-encode whole");
    }

    // Classification is total and deterministic.
    let (p, q) = (&target.profile, target.queue);
    let c = classify(p, q, raw);
    assert_eq!(
        classify(p, q, raw),
        c,
        "classify is not deterministic on {raw}"
    );

    // RES0 reporting agrees with itself (classify.rs documents each of these).
    assert_eq!(
        c.res0_set & !raw.as_u128(),
        0,
        "res0_set names bits that are clear in {raw}"
    );
    match c.verdict {
        Verdict::Legal => assert_eq!(c.res0_set, 0, "Legal with RES0 bits set: {raw}"),
        Verdict::ReservedFieldSet => {
            assert_ne!(c.res0_set, 0, "ReservedFieldSet with no RES0 bit: {raw}")
        }
        Verdict::Illegal(_) => {}
    }
    let named = res0_fields(p, q, raw);
    assert_eq!(
        named.is_empty(),
        c.res0_set == 0,
        "res0_fields ({} fields) disagrees with res0_set 0x{:x} on {raw}",
        named.len(),
        c.res0_set
    );
    for f in &named {
        assert!(f.lo <= f.hi && f.hi < 128, "bad range in {f:?} for {raw}");
        let width = u32::from(f.hi - f.lo) + 1;
        let mask = if width == 128 {
            u128::MAX
        } else {
            ((1u128 << width) - 1) << f.lo
        };
        assert_ne!(mask & c.res0_set, 0, "{f:?} has no set RES0 bit in {raw}");
    }
    assert_eq!(
        res0_fields(p, q, raw),
        named,
        "res0_fields not deterministic"
    );
}

/// The libFuzzer target `decode`: every command in the input goes through the codec, the model and
/// both report renderers.
pub fn decode_target(data: &[u8]) {
    let Some((target, cmds)) = split_input(data) else {
        return;
    };
    for (i, chunk) in cmds.chunks_exact(16).enumerate() {
        let mut b = [0u8; 16];
        b.copy_from_slice(chunk);
        let raw = RawCommand::from_bytes(&b);
        check_command(&target, raw);
        // The reports must not panic either, whatever the model says.
        let r = analyze(
            &target,
            i,
            &Entry {
                raw,
                origin: Origin::Offset(i * 16),
            },
        );
        assert!(!render_text(&r).is_empty());
        assert!(render_json(&r).starts_with('{'));
    }
}

/// The backend the `device` target fuzzes: `SMMU_FUZZ_BACKEND`, else the reference emulator.
pub fn device_backend() -> String {
    std::env::var("SMMU_FUZZ_BACKEND")
        .unwrap_or_else(|_| smmu_conform::open::DEFAULT_BACKEND.to_string())
}

/// What one input did on a device (the non-panicking half of [`device_target`]).
#[derive(Debug)]
pub enum DeviceOutcome {
    /// The model accepted everything the device did.
    Clean,
    /// The backend could not be opened: nothing was run.
    Unavailable(String),
    /// The model rejected an observation: (rule id, message, the input as a case).
    Finding(&'static str, String, String),
    /// The harness could not do its job.
    Harness(String),
}

std::thread_local! {
    /// One device per backend per thread: opening is setup work, and `harness::run` resets the
    /// device before every trace anyway.
    static DEVICE: std::cell::RefCell<Option<(String, Box<dyn smmu_conform::backend::Device>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Input format of the `device` target: byte 0 picks the generator mode
/// ([`smmu_conform::gen::Mode::from_byte`]); the rest feeds the generator's `Unstructured`.
pub fn device_run(data: &[u8], backend: &str) -> DeviceOutcome {
    device_run_known(data, backend, &Known::none())
}

/// [`device_run`], where a first finding that matches one of `known` (a backend's triaged
/// divergences, [`smmu_conform::fuzz::known`]) makes the input clean: later findings of that
/// run are consequences (`smmu_conform::fuzz::judge_new` says why).
pub fn device_run_known(data: &[u8], backend: &str, known: &Known) -> DeviceOutcome {
    use smmu_conform::gen::{generate_trace, GenConfig, Mode};
    use smmu_conform::harness::{run, RunOptions};
    let Some((&m, rest)) = data.split_first() else {
        return DeviceOutcome::Clean;
    };
    DEVICE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(b, _)| b != backend) {
            match smmu_conform::open::open_backend(backend) {
                Ok(d) => *slot = Some((backend.to_string(), d)),
                Err(e) => return DeviceOutcome::Unavailable(e.to_string()),
            }
        }
        let Some((_, dev)) = slot.as_mut() else {
            return DeviceOutcome::Unavailable("no device".into());
        };
        let regs = match dev.id_regs() {
            Ok(r) => r,
            Err(e) => {
                *slot = None;
                return DeviceOutcome::Harness(e.to_string());
            }
        };
        let profile = Profile::from_regs(regs);
        let mode = Mode::from_byte(m);
        let Some((prog, trace)) = generate_trace(rest, &profile, mode, &GenConfig::default())
        else {
            return DeviceOutcome::Clean;
        };
        match run(dev.as_mut(), &trace, RunOptions::default()) {
            Ok(r) => match r
                .findings
                .first()
                .filter(|f| known.matches(f.rule.id, &f.message).is_none())
            {
                None => DeviceOutcome::Clean,
                Some(f) => {
                    let (_, text) = smmu_conform::fuzz::finding_case(
                        &prog, backend, f.rule.id, &f.message, 0, 0, mode,
                    );
                    DeviceOutcome::Finding(f.rule.id, f.message.clone(), text)
                }
            },
            Err(e) => {
                // A wedged device is reopened for the next input.
                *slot = None;
                DeviceOutcome::Harness(e.to_string())
            }
        }
    })
}

/// The libFuzzer target `device`: generate a trace from `data`, run it on `backend` beside the
/// model, and panic (what libFuzzer records as a crash) on a finding or a harness error. Against
/// the conformant emulator either is a bug in the emulator, the model or the harness; against a
/// `mutant:NAME` backend a finding is the goal, and the crash input is the mutant's witness.
pub fn device_target(data: &[u8], backend: &str) {
    match device_run(data, backend) {
        DeviceOutcome::Clean => {}
        DeviceOutcome::Unavailable(why) => {
            panic!("backend {backend} cannot be opened ({why}): nothing to fuzz")
        }
        DeviceOutcome::Finding(rule, msg, case) => {
            let what = if backend.starts_with("mutant:") {
                "mutant found"
            } else {
                "DIVERGENCE"
            };
            panic!("{what}: {rule} on {backend}: {msg}\n--- case ---\n{case}")
        }
        DeviceOutcome::Harness(e) => panic!("harness error on {backend}: {e}"),
    }
}

pub mod forwarder_seeds;

/// The forwarder the `forwarder` target fuzzes: `SMMU_FUZZ_FORWARDER`, else the reference
/// forwarder (`fwd-mutant:NAME` for a mutant).
pub fn forwarder_backend() -> String {
    std::env::var("SMMU_FUZZ_FORWARDER")
        .unwrap_or_else(|_| smmu_conform::forwarder::REFERENCE.to_string())
}

/// What one input did on a forwarder (the non-panicking half of [`forwarder_target`]).
#[derive(Debug)]
pub enum ForwarderOutcome {
    /// The oracle accepted what the forwarder did (or the forwarder refused the mapping).
    Clean,
    Unavailable(String),
    /// (rule id, message, the input as a forwarder case).
    Finding(&'static str, String, String),
    Harness(String),
}

/// The forwarder of this thread, by spec, with its known divergences (its expectation file:
/// the kernel's are triaged in docs/findings/linux-iommufd.md and are not crashes).
type FwdSlot = (
    String,
    Box<dyn smmu_conform::backend::Forwarder>,
    smmu_conform::fuzz::known::Known,
);

std::thread_local! {
    static FORWARDER: std::cell::RefCell<Option<FwdSlot>> =
        const { std::cell::RefCell::new(None) };
}

/// Input format of the `forwarder` target: byte 0 picks the generator mode
/// ([`smmu_conform::gen::Mode::from_byte`]); the rest feeds
/// [`smmu_conform::forwarder::gen::generate`] (a virtual SMMU and a guest batch aimed at it).
pub fn forwarder_run(data: &[u8], backend: &str) -> ForwarderOutcome {
    use smmu_conform::forwarder::fuzz::{finding_case, judge_new, FwdVerdict};
    use smmu_conform::forwarder::gen::generate;
    let Some((&m, rest)) = data.split_first() else {
        return ForwarderOutcome::Clean;
    };
    let input = generate(rest, smmu_conform::gen::Mode::from_byte(m));
    FORWARDER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(b, _, _)| b != backend) {
            let known = match smmu_conform::fuzz::known::Known::for_forwarder(backend) {
                Ok(k) => k,
                Err(e) => return ForwarderOutcome::Unavailable(e.to_string()),
            };
            match smmu_conform::forwarder::open_forwarder(backend) {
                Ok(f) => *slot = Some((backend.to_string(), f, known)),
                Err(e) => return ForwarderOutcome::Unavailable(e.to_string()),
            }
        }
        let Some((_, fwd, known)) = slot.as_mut() else {
            return ForwarderOutcome::Unavailable("no forwarder".into());
        };
        match judge_new(fwd.as_mut(), &input, known).0 {
            FwdVerdict::Clean | FwdVerdict::Refused => ForwarderOutcome::Clean,
            FwdVerdict::Finding(rule, msg) => {
                let (_, text) = finding_case(&input, backend, rule, &msg, 0, 0);
                ForwarderOutcome::Finding(rule, msg, text)
            }
            FwdVerdict::Harness(e) => {
                *slot = None;
                ForwarderOutcome::Harness(e)
            }
        }
    })
}

/// The libFuzzer target `forwarder`: generate a virtual SMMU and a guest batch from `data`,
/// forward it, judge it with the forwarding oracle, and panic on a finding or a harness error.
/// Against the reference forwarder either is a bug in it, the oracle or the generator; against
/// `fwd-mutant:NAME` a finding is the goal.
pub fn forwarder_target(data: &[u8], backend: &str) {
    match forwarder_run(data, backend) {
        ForwarderOutcome::Clean => {}
        ForwarderOutcome::Unavailable(why) => {
            panic!("forwarder {backend} cannot be opened ({why}): nothing to fuzz")
        }
        ForwarderOutcome::Finding(rule, msg, case) => {
            let what = if backend.starts_with(smmu_conform::forwarder::MUTANT_PREFIX) {
                "mutant found"
            } else {
                "DIVERGENCE"
            };
            panic!("{what}: {rule} on {backend}: {msg}\n--- case ---\n{case}")
        }
        ForwarderOutcome::Harness(e) => panic!("harness error on {backend}: {e}"),
    }
}

/// The backend the `qemu` target fuzzes: `SMMU_FUZZ_QEMU` (e.g. `qemu-7.2`, `qemu:virt-9.1`,
/// `qemu:/path/to/qemu-system-aarch64`), else `qemu` (QEMU on PATH, machine `virt`).
pub fn qemu_backend() -> String {
    std::env::var("SMMU_FUZZ_QEMU").unwrap_or_else(|_| "qemu".to_string())
}

std::thread_local! {
    /// The known divergences of the last QEMU backend fuzzed on this thread.
    static KNOWN: std::cell::RefCell<Option<(String, Known)>> = const { std::cell::RefCell::new(None) };
}

/// The non-panicking half of [`qemu_target`]: [`device_run_known`] on a QEMU backend with its
/// known divergences (corpus/expectations/BACKEND.toml, triaged in docs/findings/qemu.md), so
/// only a new divergence is a finding.
pub fn qemu_run(data: &[u8], backend: &str) -> DeviceOutcome {
    KNOWN.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(b, _)| b != backend) {
            match Known::for_backend(backend) {
                Ok(k) => *slot = Some((backend.to_string(), k)),
                Err(e) => return DeviceOutcome::Unavailable(e.to_string()),
            }
        }
        let known = slot.as_ref().map(|(_, k)| k.clone()).unwrap_or_default();
        device_run_known(data, backend, &known)
    })
}

/// The libFuzzer target `qemu`: the `device` target's input format and checks, on QEMU's
/// SMMUv3 ([`qemu_backend`]), panicking only on a divergence that is not already known.
pub fn qemu_target(data: &[u8], backend: &str) {
    match qemu_run(data, backend) {
        DeviceOutcome::Clean => {}
        DeviceOutcome::Unavailable(why) => {
            panic!("backend {backend} cannot be opened ({why}): nothing to fuzz")
        }
        DeviceOutcome::Finding(rule, msg, case) => {
            panic!("NEW DIVERGENCE: {rule} on {backend}: {msg}\n--- case ---\n{case}")
        }
        DeviceOutcome::Harness(e) => panic!("harness error on {backend}: {e}"),
    }
}
