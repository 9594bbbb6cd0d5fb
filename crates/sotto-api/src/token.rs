//! The API's bearer token: made at first use, kept in a file only the user can read
//! (`<config dir>/sotto/api-token`, mode 0600), with the port the server took written
//! next to it (`api-port`) for scripts to find.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the token could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No configuration folder on this system.
    #[error("no configuration folder for the API token (is $HOME set?)")]
    NoConfigDir,
    /// Reading or writing the file failed.
    #[error("the API token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("cannot make a random API token: {0}")]
    Random(String),
}

/// `<config dir>/sotto/api-token`.
pub fn default_path() -> Result<PathBuf, TokenError> {
    dirs::config_dir()
        .map(|dir| dir.join("sotto").join("api-token"))
        .ok_or(TokenError::NoConfigDir)
}

/// The token in `path`, made (and written, readable by the user alone) when there is
/// none or the file holds no token.
pub fn load_or_create(path: &Path) -> Result<String, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) if valid(text.trim()) => {
            keep_private(path)?;
            Ok(text.trim().to_string())
        }
        Ok(_) => regenerate(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => regenerate(path),
        Err(source) => Err(io(path, source)),
    }
}

/// A new token in `path`, replacing the old one (clients with the old one are refused
/// from now on).
pub fn regenerate(path: &Path) -> Result<String, TokenError> {
    let token = fresh()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    // Written to a private temporary file first, then renamed: the token is never
    // readable by others, and a crash leaves the old one whole.
    let temporary = path.with_extension("new");
    let mut file = private_file(&temporary).map_err(|e| io(&temporary, e))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| io(path, e))?;
    Ok(token)
}

/// Writes the port the server took to `api-port` next to the token.
pub fn write_port(token_path: &Path, port: u16) -> Result<PathBuf, TokenError> {
    let path = token_path.with_file_name("api-port");
    std::fs::write(&path, format!("{port}\n")).map_err(|e| io(&path, e))?;
    Ok(path)
}

/// "sotto-" and 64 hex digits (256 random bits).
fn fresh() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sotto-{hex}"))
}

fn valid(token: &str) -> bool {
    token.len() >= 32 && token.chars().all(|c| c.is_ascii_graphic())
}

fn io(path: &Path, source: std::io::Error) -> TokenError {
    TokenError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|file| {
            // `mode` is only used for a new file; an old one keeps its bits.
            keep_private_file(&file)?;
            Ok(file)
        })
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn keep_private_file(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

/// Takes away what others may do with the token file (it was copied, or made by hand).
fn keep_private(path: &Path) -> Result<(), TokenError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!("the API token file was readable by others: made private");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_kept_private_and_replaced_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sotto").join("api-token");
        let first = load_or_create(&path).unwrap();
        assert!(first.starts_with("sotto-") && first.len() == 70, "{first}");
        assert_eq!(load_or_create(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            // Opened up by hand: closed again when read.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(load_or_create(&path).unwrap(), first);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = regenerate(&path).unwrap();
        assert_ne!(second, first);
        assert_eq!(load_or_create(&path).unwrap(), second);
        // An empty or mangled file gets a new token rather than an unusable one.
        std::fs::write(&path, "\n").unwrap();
        let third = load_or_create(&path).unwrap();
        assert!(third.starts_with("sotto-") && third != second);
        let port = write_port(&path, 4321).unwrap();
        assert_eq!(std::fs::read_to_string(port).unwrap(), "4321\n");
    }
}
