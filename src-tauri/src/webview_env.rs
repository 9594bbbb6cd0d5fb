//! WebKitGTK settings made before the first window opens.
//!
//! WebKitGTK composites the page through OpenGL. Without a GPU (a VM, a remote desktop,
//! Xvfb, a driver it does not trust) that GL is Mesa's software rasteriser, and every
//! animation frame then re-composites the whole window on the CPU: measured under Xvfb on
//! two cores, the orb's animation kept WebKit at 110-140% CPU, taken straight from speech
//! recognition, the language model and the voice. Without compositing, WebKit paints only
//! what changed, with cairo: 20% for the same animation, and nothing while idle. Sotto's
//! page has nothing that needs GPU compositing, so it is turned off unless the user has
//! chosen for themselves.

/// The variable WebKitGTK reads.
pub const DISABLE_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// The environment variables to set, given what is set already: a user's own choice of
/// `WEBKIT_DISABLE_COMPOSITING_MODE` (any value, even empty) is kept.
pub fn variables(already_set: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    if already_set(DISABLE_COMPOSITING) {
        Vec::new()
    } else {
        vec![(DISABLE_COMPOSITING, "1")]
    }
}

/// Sets them in this process, for WebKit to read when the first webview starts. Call it
/// first thing in `main`, before any thread exists.
pub fn apply() {
    if !cfg!(target_os = "linux") {
        return;
    }
    for (name, value) in variables(|name| std::env::var_os(name).is_some()) {
        std::env::set_var(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compositing_is_turned_off_unless_the_user_chose() {
        assert_eq!(variables(|_| false), vec![(DISABLE_COMPOSITING, "1")]);
        assert!(variables(|name| name == DISABLE_COMPOSITING).is_empty());
    }
}
