//! Streaming sha256, so multi-hundred-megabyte models never sit in memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

const CHUNK: usize = 1 << 20;

/// The lowercase hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Copies `reader` into `writer`, feeding every byte to `hasher`; returns the byte count.
pub fn copy_hashing(
    reader: &mut impl Read,
    writer: &mut impl Write,
    hasher: &mut Sha256,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_published_test_vector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_surfaces_as_storage_full() {
        // /dev/full answers every write with ENOSPC: the same error a full disk gives.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut hasher = Sha256::new();
        let err = copy_hashing(&mut &b"model bytes"[..], &mut full, &mut hasher).unwrap_err();
        assert!(crate::error::is_disk_full(&err), "{err:?}");
        let mapped = crate::ModelError::io("writing", Path::new("/tmp/x.part"), err);
        assert!(
            matches!(mapped, crate::ModelError::DiskFull { .. }),
            "{mapped}"
        );
    }
}
