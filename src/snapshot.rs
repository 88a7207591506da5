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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::errors::{E_BYTECODE_CRC_FAIL, E_INVALID_BYTECODE, E_WRONG_BYTECODE_VERSION};

    /// A snapshot of `source`, compiled by the pinned microvium compiler
    /// (node and node_modules, as for the rest of the test suite).
    pub(crate) fn compile(source: &str) -> Vec<u8> {
        let script = "const mv = require('microvium'); const vm = mv.Microvium.create(); \
                      mv.addDefaultGlobals(vm); vm.evaluateModule({ sourceText: process.argv[1] }); \
                      process.stdout.write(Buffer.from(vm.createSnapshot().data));";
        let out = std::process::Command::new("node")
            .args(["-e", script, source])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("node runs");
        assert!(out.status.success(), "compiling failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// CRC-16-CCITT as the engine computes it (fuzz/crc.js).
    fn crc16(bytes: &[u8]) -> u16 {
        let mut r: u16 = 0xffff;
        for &b in bytes {
            r = r.rotate_left(8);
            r ^= b as u16;
            r ^= (r & 0xff) >> 4;
            r ^= r << 12;
            r ^= (r & 0xff) << 5;
        }
        r
    }

    fn fix_crc(b: &mut [u8]) {
        let c = crc16(&b[8..]);
        b[6..8].copy_from_slice(&c.to_le_bytes());
    }

    /// A snapshot made by hand: a header, an import table, an export table
    /// (id, value) and empty other sections, with a correct size and CRC.
    fn synthetic(imports: &[u16], exports: &[(u16, u16)]) -> Vec<u8> {
        let header = 12 + 2 * SECTION_COUNT;
        let exports_at = header + 2 * imports.len();
        let end = exports_at + 4 * exports.len();
        let mut b = vec![0u8; header];
        b[0] = 8;
        b[1] = header as u8;
        b[4..6].copy_from_slice(&(end as u16).to_le_bytes());
        let offsets = [header, exports_at].into_iter().chain(std::iter::repeat(end)).take(SECTION_COUNT);
        for (i, o) in offsets.enumerate() {
            b[12 + 2 * i..14 + 2 * i].copy_from_slice(&(o as u16).to_le_bytes());
        }
        for id in imports {
            b.extend_from_slice(&id.to_le_bytes());
        }
        for (id, value) in exports {
            b.extend_from_slice(&id.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        fix_crc(&mut b);
        b
    }

    fn rejected(b: &[u8]) -> (i32, String) {
        match validate(b) {
            Ok(_) => panic!("accepted"),
            Err(Invalid(code, detail)) => (code, detail),
        }
    }

    #[test]
    fn a_compiled_snapshot_is_valid_and_its_tables_read() {
        let b = compile("const f = vmImport(7); const g = vmImport(300); vmExport(3, () => f() + g()); vmExport(5, { a: 1 });");
        let info = validate(&b).unwrap_or_else(|Invalid(c, d)| panic!("rejected: {c} {d}"));
        assert_eq!(info.required_version, "8.0.0");
        let mut imports = info.import_ids.clone();
        imports.sort();
        assert_eq!(imports, [7, 300]);
        let mut exports = info.export_ids.clone();
        exports.sort();
        assert_eq!(exports, [3, 5]);
    }

    #[test]
    fn a_hand_made_header_is_read_as_written() {
        let info = validate(&synthetic(&[1, 2, 65535], &[(9, 0x01), (4, 0x05)])).unwrap_or_else(|Invalid(c, d)| panic!("{c} {d}"));
        assert_eq!(info.import_ids, [1, 2, 65535]);
        assert_eq!(info.export_ids, [9, 4]);
    }

    #[test]
    fn empty_and_truncated_snapshots_are_refused() {
        let good = compile("vmExport(1, 1);");
        assert_eq!(rejected(&[]).0, E_INVALID_BYTECODE);
        // Shorter than the header.
        let (code, detail) = rejected(&good[..20]);
        assert_eq!(code, E_INVALID_BYTECODE);
        assert!(detail.contains("shorter than its 28-byte header"), "{detail}");
        // Cut anywhere after the header: the size it states no longer fits.
        assert!(good.len() > 32);
        for cut in [28, (28 + good.len()) / 2, good.len() - 2] {
            let (code, detail) = rejected(&good[..cut]);
            assert_eq!(code, E_INVALID_BYTECODE, "cut at {cut}");
            assert!(detail.contains("the header says"), "{detail}");
        }
    }

    #[test]
    fn a_wrong_checksum_is_refused() {
        let mut b = compile("vmExport(1, 'hello');");
        let last = b.len() - 1;
        b[last] ^= 0x40;
        let (code, _) = rejected(&b);
        assert_eq!(code, E_BYTECODE_CRC_FAIL);
        // The same change with the checksum written for it passes the
        // header checks (what the engine makes of it is the verifier's).
        fix_crc(&mut b);
        assert!(validate(&b).is_ok());
        // A wrong checksum field.
        let mut b = compile("vmExport(1, 'hello');");
        b[6] ^= 1;
        assert_eq!(rejected(&b).0, E_BYTECODE_CRC_FAIL);
    }

    #[test]
    fn another_engine_version_is_refused() {
        for (major, minor) in [(7u8, 0u8), (9, 0), (8, 1)] {
            let mut b = compile("vmExport(1, 1);");
            b[0] = major;
            b[2] = minor;
            fix_crc(&mut b);
            let (code, detail) = rejected(&b);
            assert_eq!(code, E_WRONG_BYTECODE_VERSION, "{major}.{minor}");
            assert!(detail.contains(&format!("requires engine version {major}.{minor}.0")), "{detail}");
            assert_eq!(required_version(&b), format!("{major}.{minor}.0"));
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        // Header size field.
        let mut b = synthetic(&[1], &[(2, 1)]);
        b[1] = 26;
        fix_crc(&mut b);
        assert_eq!(rejected(&b).0, E_INVALID_BYTECODE);
        // An odd size.
        let mut b = synthetic(&[1], &[(2, 1)]);
        b.push(0);
        let n = b.len() as u16;
        b[4..6].copy_from_slice(&n.to_le_bytes());
        fix_crc(&mut b);
        assert!(rejected(&b).1.contains("odd"));
        // Sections out of order.
        let mut b = synthetic(&[1], &[(2, 1)]);
        b[14..16].copy_from_slice(&27u16.to_le_bytes());
        fix_crc(&mut b);
        assert!(rejected(&b).1.contains("out of order"));
        // An export table that is not whole entries.
        let mut b = synthetic(&[1, 2], &[(2, 1)]);
        b[14..16].copy_from_slice(&30u16.to_le_bytes());
        fix_crc(&mut b);
        assert!(rejected(&b).1.contains("export table"));
    }
}
