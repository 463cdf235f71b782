//! Format detection by content (magic bytes first, extension only for text formats).

use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Rosbag1,
    Mcap,
    Hdf5,
    LineProtocol,
    Empty,
    Opaque,
}

impl Format {
    /// The name shown in `files.format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Rosbag1 => "rosbag1",
            Format::Mcap => "mcap",
            Format::Hdf5 => "hdf5",
            Format::LineProtocol => "line_protocol",
            Format::Empty => "empty",
            Format::Opaque => "opaque",
        }
    }
}

pub const ROSBAG_MAGIC: &[u8] = b"#ROSBAG V";
pub const MCAP_MAGIC: &[u8] = b"\x89MCAP0\r\n";
pub const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Decides a file's format from its first bytes (at least 16 when the file has them).
pub fn detect(path: &Path, head: &[u8]) -> Format {
    if head.is_empty() {
        return Format::Empty;
    }
    if head.starts_with(ROSBAG_MAGIC) {
        return Format::Rosbag1;
    }
    if head.starts_with(MCAP_MAGIC) {
        return Format::Mcap;
    }
    if head.starts_with(HDF5_MAGIC) {
        return Format::Hdf5;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let texty = std::str::from_utf8(head).is_ok() || head.iter().all(|b| *b >= 0x09);
    if matches!(ext.as_deref(), Some("lp" | "line" | "txt")) && texty {
        return Format::LineProtocol;
    }
    Format::Opaque
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content() {
        let p = Path::new("x.bin");
        assert_eq!(detect(p, b"#ROSBAG V2.0\n"), Format::Rosbag1);
        assert_eq!(detect(p, MCAP_MAGIC), Format::Mcap);
        assert_eq!(
            detect(Path::new("x.bag"), b"\x89HDF\r\n\x1a\n...."),
            Format::Hdf5
        );
        assert_eq!(
            detect(Path::new("m.lp"), b"cpu,host=a v=1 1"),
            Format::LineProtocol
        );
        assert_eq!(
            detect(Path::new("m.bag"), b"cpu,host=a v=1 1"),
            Format::Opaque
        );
        assert_eq!(detect(p, b""), Format::Empty);
    }
}
