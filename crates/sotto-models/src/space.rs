//! Free-space checks, so a download fails before it starts rather than half-way.

use std::path::Path;

use crate::error::ModelError;

/// Formats a byte count the way people read sizes ("98.4 MB").
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bytes free on the file system that holds `path` (or its nearest existing ancestor).
pub fn available(path: &Path) -> Option<u64> {
    let mut probe = Some(path);
    while let Some(p) = probe {
        if p.exists() {
            return fs4::available_space(p).ok();
        }
        probe = p.parent();
    }
    None
}

/// [`available`] as text for messages.
pub fn available_text(path: &Path) -> String {
    available(path).map_or_else(|| "unknown".into(), human_bytes)
}

/// Fails with [`ModelError::DiskFull`] unless `needed` bytes fit under `dir`.
pub fn ensure_space(dir: &Path, needed: u64) -> Result<(), ModelError> {
    match available(dir) {
        Some(free) if free < needed => Err(ModelError::DiskFull {
            dir: dir.to_path_buf(),
            needed: human_bytes(needed),
            available: human_bytes(free),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(98_362_432), "98.4 MB");
        assert_eq!(human_bytes(1_117_320_768), "1.1 GB");
    }

    #[test]
    fn asking_for_more_than_the_disk_has_is_refused_with_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure_space(dir.path(), u64::MAX / 2).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ModelError::DiskFull { .. }), "{text}");
        assert!(text.contains("SOTTO_MODELS_DIR"), "{text}");
        assert!(ensure_space(dir.path(), 1).is_ok());
    }
}
