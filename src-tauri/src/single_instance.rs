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

/// The socket for this user: in `$XDG_RUNTIME_DIR`, else in the user's own state folder
/// (`~/.local/state`), never in a folder other users share, where one of them could take
/// the name first and keep Sotto from starting (`SOTTO_DATA_DIR`, when set, gives tests
/// their own).
pub fn default_socket() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOTTO_DATA_DIR") {
        return PathBuf::from(dir).join("app.sock");
    }
    let base = dirs::runtime_dir()
        .or_else(dirs::state_dir)
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("sotto-{}", user_tag())).join("app.sock")
}

/// Makes `dir` a folder private to this user (0700): created so if missing, closed to
/// others if it is this user's (a folder made by an older Sotto), refused if it belongs
/// to someone else or is not a folder (a link planted there).
#[cfg(unix)]
fn private_dir(dir: &Path) -> Result<(), std::io::Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let mode = meta.permissions().mode() & 0o7777;
    match folder_use(meta.is_dir(), meta.uid(), my_uid(), mode) {
        FolderUse::Private => Ok(()),
        FolderUse::Close => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        FolderUse::Refuse => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a folder of yours (owner {}, mode {mode:o}); remove it, or set XDG_RUNTIME_DIR",
                dir.display(),
                meta.uid(),
            ),
        )),
    }
}

/// What to do with the socket's folder.
#[derive(Debug, PartialEq, Eq)]
enum FolderUse {
    /// Use it.
    Private,
    /// Ours but open to others: close it, then use it.
    Close,
    /// Someone else's, or not a folder.
    Refuse,
}

fn folder_use(is_dir: bool, owner: u32, me: Option<u32>, mode: u32) -> FolderUse {
    if !is_dir || me.is_some_and(|me| me != owner) {
        FolderUse::Refuse
    } else if mode & 0o077 != 0 {
        FolderUse::Close
    } else {
        FolderUse::Private
    }
}

/// This process's user id: the owner of `/proc/self` on Linux, else of the home folder.
#[cfg(unix)]
fn my_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .ok()
        .or_else(|| std::fs::metadata(dirs::home_dir()?).ok())
        .map(|m| m.uid())
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
        private_dir(dir)?;
    }
    // Nothing answered: whatever is at the path is a leftover of a crashed instance.
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::thread::Builder::new()
        .name("sotto-single-instance".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                // A client that connects and says nothing must not hold up the next one.
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(1)));
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
    fn a_client_that_says_nothing_does_not_hold_up_the_next_start() {
        let path = socket("silent");
        let (shown_tx, shown) = mpsc::channel();
        let _first = acquire(&path, move || {
            let _ = shown_tx.send(());
        })
        .unwrap();
        let _silent = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let second = acquire(&path, || panic!("the second instance must not serve")).unwrap();
        assert!(matches!(second, Instance::Second));
        shown
            .recv_timeout(Duration::from_secs(3))
            .expect("the first instance was asked to show itself despite the silent client");
    }

    #[test]
    fn the_socket_folder_is_private_and_one_of_someone_else_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| {
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        // Made by Sotto: private.
        let fresh = socket("fresh");
        let _first = acquire(&fresh, || {}).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        // Ours but open to all (an older Sotto made it so): closed, then used.
        let open = socket("open");
        std::fs::create_dir_all(open.parent().unwrap()).unwrap();
        std::fs::set_permissions(
            open.parent().unwrap(),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let _second = acquire(&open, || {}).unwrap();
        assert_eq!(mode(&open), 0o700);
        // A link planted where the folder goes: refused.
        let planted = socket("planted");
        std::os::unix::fs::symlink(std::env::temp_dir(), planted.parent().unwrap()).unwrap();
        let error = acquire(&planted, || {}).err().expect("refused");
        assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(
            error.to_string().contains("not a folder of yours"),
            "{error}"
        );
        // Someone else's folder, whatever its mode.
        assert_eq!(folder_use(true, 1001, Some(1000), 0o700), FolderUse::Refuse);
        assert_eq!(folder_use(true, 1000, Some(1000), 0o755), FolderUse::Close);
        assert_eq!(
            folder_use(true, 1000, Some(1000), 0o700),
            FolderUse::Private
        );
        assert_eq!(
            folder_use(false, 1000, Some(1000), 0o700),
            FolderUse::Refuse
        );
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
