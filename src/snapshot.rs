//! Validation of snapshot bytes before the engine sees them (the checks
//! themselves are in C, c/verifier.c, shared with the fuzzer and the bench
//! floor), and the few facts the host reads from the header (versions,
//! import and export tables).
//!
//! Layout (microvium 8.0.0, little-endian): u8 bytecodeVersion, u8
//! headerSize, u8 requiredEngineVersion, u8 reserved, u16 bytecodeSize, u16
//! crc (CCITT over everything after it), u32 requiredFeatureFlags, then one
//! u16 offset per section, in section order.

pub const ENGINE_VERSION: &str = "8.0.0";

const SECTION_COUNT: usize = 8;
const SECTION_IMPORTS: usize = 0;
const SECTION_EXPORTS: usize = 1;

/// Why a snapshot was rejected: an engine error number and a detail.
pub struct Invalid(pub i32, pub String);

pub struct SnapshotInfo {
    pub required_version: String,
    pub import_ids: Vec<u16>,
    pub export_ids: Vec<u16>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// `major.minor.0` as the snapshot's header states it (bytes 0 and 2).
pub fn required_version(b: &[u8]) -> String {
    format!("{}.{}.0", b.first().copied().unwrap_or(0), b.get(2).copied().unwrap_or(0))
}

pub fn validate(b: &[u8]) -> Result<SnapshotInfo, Invalid> {
    // The checks (sizes, version, checksum, section table) are C's
    // (c/verifier.c, verifier_check_header): the same code guards the
    // restore itself, the fuzzer and the bench floor, which have no Rust.
    if let Err((code, detail)) = crate::engine::check_header(b) {
        return Err(Invalid(code, detail));
    }
    let offsets: Vec<usize> = (0..SECTION_COUNT).map(|i| u16_at(b, 12 + 2 * i) as usize).collect();
    let end_of = |i: usize| if i + 1 < SECTION_COUNT { offsets[i + 1] } else { b.len() };
    let imports = &b[offsets[SECTION_IMPORTS]..end_of(SECTION_IMPORTS)];
    let exports = &b[offsets[SECTION_EXPORTS]..end_of(SECTION_EXPORTS)];
    Ok(SnapshotInfo {
        required_version: required_version(b),
        import_ids: imports.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect(),
        export_ids: exports.chunks_exact(4).map(|c| u16::from_le_bytes([c[0], c[1]])).collect(),
    })
}

// c/verifier.c reports a bad checksum with the engine's own number, which
// the host's error names map (src/errors.rs).
const _: () = assert!(crate::errors::E_BYTECODE_CRC_FAIL == 27);

/// Snapshot bytes as the engine reads them, shared by the VMs of this
/// thread restored from the same bytes.
///
/// The engine reads its bytecode and ROM in place for the VM's whole life,
/// and never writes them (a write to a buffer in ROM is the non-fatal
/// MVM_E_ATTEMPT_TO_WRITE_TO_ROM), so one copy serves every VM made from
/// it: a server that restores thousands of small VMs from one snapshot
/// keeps one copy, not thousands. `padding` zero bytes follow the snapshot
/// (see vm::restore).
pub fn shared_copy(bytes: &[u8], padding: usize) -> std::rc::Rc<[u8]> {
    use std::rc::Rc;
    let key = (bytes.len(), u16_at(bytes, 6));
    SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        let same = |c: &Rc<[u8]>| c.len() == bytes.len() + padding && &c[..bytes.len()] == bytes;
        if let Some(copy) = shared.map.get(&key).and_then(|list| list.iter().filter_map(|w| w.upgrade()).find(same)) {
            return copy;
        }
        let mut v = Vec::with_capacity(bytes.len() + padding);
        v.extend_from_slice(bytes);
        v.resize(bytes.len() + padding, 0);
        let copy: Rc<[u8]> = v.into();
        shared.map.entry(key).or_default().push(Rc::downgrade(&copy));
        // Copies of snapshots no VM uses any more leave dead entries: drop
        // them whenever the table has doubled since the last time.
        shared.inserted += 1;
        if shared.inserted >= shared.purge_at {
            shared.map.retain(|_, list| {
                list.retain(|w| w.strong_count() > 0);
                !list.is_empty()
            });
            shared.inserted = 0;
            shared.purge_at = (shared.map.values().map(Vec::len).sum::<usize>() * 2).max(64);
        }
        copy
    })
}

/// Keyed by length and checksum; equal keys are compared byte for byte.
#[derive(Default)]
struct SharedSnapshots {
    map: std::collections::HashMap<(usize, u16), Vec<std::rc::Weak<[u8]>>>,
    inserted: usize,
    purge_at: usize,
}

thread_local! {
    static SHARED: std::cell::RefCell<SharedSnapshots> = std::cell::RefCell::new(SharedSnapshots::default());
}
