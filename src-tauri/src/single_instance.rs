//! One Sotto per user: the first instance listens on a Unix socket in the runtime folder;
//! a second one connects, asks it to show its window, and exits. A socket left behind by
//! a crashed instance refuses connections, so it is replaced rather than obeyed.
//!
//! On platforms without Unix sockets every start is a first instance (the guard is a
//! no-op there; the Windows and macOS builds are not tested on these machines).

use std::path::{Path, PathBuf};

/// What the second instance asks of the first.
const SHOW: &[u8] = b"show\n";

/// The result of trying to become the only instance.
pub enum Instance {
    /// No other instance runs; this one serves requests until dropped.
    First(Guard),
    /// Another instance runs and was asked to show its window.
    Second,
}

/// Held by the first instance; removes its socket when dropped.
pub struct Guard {
    path: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The socket for this user: `$XDG_RUNTIME_DIR/sotto/app.sock`, else the temp folder
/// with the user id in the name (`SOTTO_DATA_DIR`, when set, gives tests their own).
pub fn default_socket() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOTTO_DATA_DIR") {
        return PathBuf::from(dir).join("app.sock");
    }
    let base = dirs::runtime_dir().unwrap_or_else(std::env::temp_dir);
    base.join(format!("sotto-{}", user_tag())).join("app.sock")
}

#[cfg(unix)]
fn user_tag() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dirs::home_dir().unwrap_or_default())
        .map(|m| m.uid().to_string())
        .unwrap_or_else(|_| "user".into())
}

#[cfg(not(unix))]
fn user_tag() -> String {
    "user".into()
}

/// Becomes the first instance at `socket` (calling `on_show` each time a later instance
/// starts), or tells the running one to show itself.
#[cfg(unix)]
pub fn acquire(
    socket: &Path,
    on_show: impl Fn() + Send + 'static,
) -> Result<Instance, std::io::Error> {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    if let Ok(mut running) = UnixStream::connect(socket) {
        running.write_all(SHOW)?;
        return Ok(Instance::Second);
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Nothing answered: whatever is at the path is a leftover of a crashed instance.
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::thread::Builder::new()
        .name("sotto-single-instance".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 16];
                let n = stream.read(&mut request).unwrap_or(0);
                if request[..n].starts_with(SHOW) {
                    on_show();
                }
            }
        })?;
    Ok(Instance::First(Guard {
        path: Some(socket.to_path_buf()),
    }))
}

/// Without Unix sockets every start is a first instance.
#[cfg(not(unix))]
pub fn acquire(
    _socket: &Path,
    _on_show: impl Fn() + Send + 'static,
) -> Result<Instance, std::io::Error> {
    Ok(Instance::First(Guard { path: None }))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn socket(name: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("sotto-single-{}-{name}", std::process::id()))
            .join("app.sock")
    }

    #[test]
    fn a_second_start_shows_the_first_and_gives_way() {
        let path = socket("second");
        let (shown_tx, shown) = mpsc::channel();
        let first = acquire(&path, move || {
            let _ = shown_tx.send(());
        })
        .unwrap();
        assert!(matches!(first, Instance::First(_)));
        let second = acquire(&path, || panic!("the second instance must not serve")).unwrap();
        assert!(matches!(second, Instance::Second));
        shown
            .recv_timeout(Duration::from_secs(5))
            .expect("the first instance was asked to show itself");
        drop(first);
        assert!(!path.exists(), "the socket is removed on exit");
    }

    #[test]
    fn a_socket_left_by_a_crash_is_replaced() {
        let path = socket("stale");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A bound-then-dropped listener leaves a socket file nobody answers on.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let instance = acquire(&path, || {}).unwrap();
        assert!(matches!(instance, Instance::First(_)));
    }
}
