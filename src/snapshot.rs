//! Cheap validation of snapshot bytes before the engine sees them, and the
//! few facts the host reads from the header (versions, import and export
//! tables).
//!
//! Layout (microvium 8.0.0, little-endian): u8 bytecodeVersion, u8
//! headerSize, u8 requiredEngineVersion, u8 reserved, u16 bytecodeSize, u16
//! crc (CCITT over everything after it), u32 requiredFeatureFlags, then one
//! u16 offset per section, in section order.

pub const ENGINE_MAJOR: u8 = 8;
pub const ENGINE_MINOR: u8 = 0;
pub const ENGINE_VERSION: &str = "8.0.0";

const SECTION_COUNT: usize = 8;
const HEADER_SIZE: usize = 12 + 2 * SECTION_COUNT;
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

fn crc16_ccitt(data: &[u8]) -> u16 {
    let mut r: u16 = 0xFFFF;
    for &byte in data {
        r = (r >> 8) | (r << 8);
        r ^= byte as u16;
        r ^= (r & 0xff) >> 4;
        r ^= r << 12;
        r ^= (r & 0xff) << 5;
    }
    r
}

/// `major.minor.0` as the snapshot's header states it (bytes 0 and 2).
pub fn required_version(b: &[u8]) -> String {
    format!("{}.{}.0", b.first().copied().unwrap_or(0), b.get(2).copied().unwrap_or(0))
}

pub fn validate(b: &[u8]) -> Result<SnapshotInfo, Invalid> {
    use crate::errors::{E_BYTECODE_CRC_FAIL as CRC, E_INVALID_BYTECODE as BAD, E_WRONG_BYTECODE_VERSION as VERSION};
    if b.is_empty() {
        return Err(Invalid(BAD, "the snapshot is empty".into()));
    }
    if b.len() < HEADER_SIZE {
        return Err(Invalid(BAD, format!("the snapshot is {} bytes, shorter than its {HEADER_SIZE}-byte header", b.len())));
    }
    let (major, minor) = (b[0], b[2]);
    if major != ENGINE_MAJOR || minor > ENGINE_MINOR {
        return Err(Invalid(
            VERSION,
            format!("the snapshot requires engine version {major}.{minor}.0 but this engine is {ENGINE_VERSION}"),
        ));
    }
    if b[1] as usize != HEADER_SIZE {
        return Err(Invalid(BAD, format!("unexpected header size {}", b[1])));
    }
    let size = u16_at(b, 4) as usize;
    if size != b.len() {
        return Err(Invalid(BAD, format!("the header says {size} bytes but the snapshot has {}", b.len())));
    }
    // Every section holds whole 16-bit words; an odd size leaves the heap
    // section (the last) odd, and the engine then starts its next heap
    // bucket at an odd offset, so the pointers it encodes there decode as
    // other kinds of values (found by fuzzing: a write past the snapshot).
    if size % 2 != 0 {
        return Err(Invalid(BAD, format!("the snapshot is {size} bytes, an odd number: its sections hold 16-bit words")));
    }
    if crc16_ccitt(&b[8..]) != u16_at(b, 6) {
        return Err(Invalid(CRC, "the snapshot's checksum does not match its contents".into()));
    }
    let offsets: Vec<usize> = (0..SECTION_COUNT).map(|i| u16_at(b, 12 + 2 * i) as usize).collect();
    let mut previous = HEADER_SIZE;
    for (i, &o) in offsets.iter().enumerate() {
        if o < previous || o > size || o % 2 != 0 {
            return Err(Invalid(BAD, format!("section {i} offset {o} is out of order or out of bounds")));
        }
        previous = o;
    }
    let end_of = |i: usize| if i + 1 < SECTION_COUNT { offsets[i + 1] } else { size };
    let imports = &b[offsets[SECTION_IMPORTS]..end_of(SECTION_IMPORTS)];
    let exports = &b[offsets[SECTION_EXPORTS]..end_of(SECTION_EXPORTS)];
    if exports.len() % 4 != 0 {
        return Err(Invalid(BAD, "malformed export table".into()));
    }
    Ok(SnapshotInfo {
        required_version: required_version(b),
        import_ids: imports.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect(),
        export_ids: exports.chunks_exact(4).map(|c| u16::from_le_bytes([c[0], c[1]])).collect(),
    })
}
