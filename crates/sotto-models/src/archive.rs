//! Takes one member out of a downloaded archive: Python wheels are zip files, npm packages
//! are gzip-compressed tar files.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use sha2::Sha256;

use crate::hash::copy_hashing;

/// Why a member could not be taken out of an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive does not hold that member.
    #[error("the archive has no member `{0}`")]
    NoMember(String),
    /// The archive is damaged or of an unknown kind.
    #[error("the archive is unreadable: {0}")]
    Unreadable(String),
    /// Writing the member failed (a full disk included).
    #[error(transparent)]
    Write(io::Error),
}

/// Streams `member` of the archive at `archive` into `out`, hashing it; returns its size.
pub fn extract_member(
    archive: &Path,
    member: &str,
    out: &mut impl Write,
    hasher: &mut Sha256,
) -> Result<u64, ArchiveError> {
    let unreadable = |e: &dyn std::fmt::Display| ArchiveError::Unreadable(e.to_string());
    let mut file = File::open(archive).map_err(|e| unreadable(&e))?;
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic).map_err(|e| unreadable(&e))?;
    file.rewind().map_err(|e| unreadable(&e))?;
    match magic {
        [b'P', b'K'] => {
            let mut zip = zip::ZipArchive::new(file).map_err(|e| unreadable(&e))?;
            let mut entry = match zip.by_name(member) {
                Ok(entry) => entry,
                Err(zip::result::ZipError::FileNotFound) => {
                    return Err(ArchiveError::NoMember(member.into()))
                }
                Err(e) => return Err(unreadable(&e)),
            };
            copy_member(&mut entry, out, hasher)
        }
        [0x1f, 0x8b] => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            for entry in tar.entries().map_err(|e| unreadable(&e))? {
                let mut entry = entry.map_err(|e| unreadable(&e))?;
                let path = entry.path().map_err(|e| unreadable(&e))?;
                if path.to_str() == Some(member) {
                    return copy_member(&mut entry, out, hasher);
                }
            }
            Err(ArchiveError::NoMember(member.into()))
        }
        _ => Err(ArchiveError::Unreadable(
            "neither a zip (.whl) nor a gzip tar (.tgz)".into(),
        )),
    }
}

/// Copies a member; a read error is the archive's fault, a write error the disk's.
fn copy_member(
    entry: &mut impl Read,
    out: &mut impl Write,
    hasher: &mut Sha256,
) -> Result<u64, ArchiveError> {
    let mut reader = ReadFault {
        inner: entry,
        failed: false,
    };
    copy_hashing(&mut reader, out, hasher).map_err(|e| {
        if reader.failed {
            ArchiveError::Unreadable(e.to_string())
        } else {
            ArchiveError::Write(e)
        }
    })
}

/// Remembers whether an error came from reading, to tell a damaged archive from a full disk.
struct ReadFault<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for ReadFault<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed = true)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::Digest;

    /// A zip archive holding the given members, as a wheel would.
    pub(crate) fn zip_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (name, data) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        buf.into_inner()
    }

    /// A gzip tar archive holding the given members, as an npm package would.
    pub(crate) fn tgz_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn extract(archive: &[u8], member: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(archive).unwrap();
        let mut out = Vec::new();
        extract_member(f.path(), member, &mut out, &mut Sha256::new())?;
        Ok(out)
    }

    #[test]
    fn members_come_out_of_wheels_and_npm_tarballs() {
        let members: &[(&str, &[u8])] = &[("pkg/a.bin", b"alpha"), ("pkg/b.bin", b"beta")];
        assert_eq!(extract(&zip_bytes(members), "pkg/b.bin").unwrap(), b"beta");
        assert_eq!(extract(&tgz_bytes(members), "pkg/a.bin").unwrap(), b"alpha");
    }

    #[test]
    fn a_missing_member_and_a_damaged_archive_are_told_apart() {
        let zip = zip_bytes(&[("x", b"1")]);
        assert!(matches!(extract(&zip, "y"), Err(ArchiveError::NoMember(_))));
        assert!(matches!(
            extract(&zip[..zip.len() / 2], "x"),
            Err(ArchiveError::Unreadable(_))
        ));
        assert!(matches!(
            extract(b"plain text", "x"),
            Err(ArchiveError::Unreadable(_))
        ));
    }

    #[test]
    fn the_hash_covers_exactly_the_member() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&tgz_bytes(&[("m", b"abc")])).unwrap();
        let mut hasher = Sha256::new();
        extract_member(f.path(), "m", &mut io::sink(), &mut hasher).unwrap();
        assert_eq!(
            hex::encode(hasher.finalize()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
