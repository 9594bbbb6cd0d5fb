//! The audio host, opened quietly. On Linux, ALSA's library prints its own diagnostics to
//! stderr ("ALSA lib confmisc.c:855:(parse_card) cannot find card '0'", eight lines on a
//! machine without a sound card) before Sotto can say what is wrong in its own words; its
//! error handler is replaced by one that says nothing. Sotto's own messages (a missing
//! microphone, no speaker) still say what happened and what to do.

/// The default audio host, with ALSA's own error printing off.
pub fn default_host() -> cpal::Host {
    quiet_alsa();
    cpal::default_host()
}

/// Turns ALSA's library error printing off, once per process.
#[cfg(target_os = "linux")]
pub fn quiet_alsa() {
    use std::ffi::{c_char, c_int};
    static ONCE: std::sync::Once = std::sync::Once::new();

    /// Says nothing. ALSA passes the format's arguments after these five; a C callee
    /// that does not read them leaves them alone on every Linux calling convention.
    unsafe extern "C" fn ignore(
        _file: *const c_char,
        _line: c_int,
        _function: *const c_char,
        _err: c_int,
        _fmt: *const c_char,
    ) {
    }

    ONCE.call_once(|| {
        type Plain =
            unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char);
        type Variadic =
            unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char, ...);
        // SAFETY: both are C function pointers of the same size; the handler is only ever
        // called by ALSA with the five fixed arguments first, and `ignore` reads none.
        let handler = unsafe { std::mem::transmute::<Plain, Variadic>(ignore) };
        // SAFETY: sets a process-wide pointer inside libasound; `ignore` lives for the
        // whole program.
        unsafe {
            alsa_sys::snd_lib_error_set_handler(Some(handler));
        }
    });
}

/// Nothing to silence elsewhere.
#[cfg(not(target_os = "linux"))]
pub fn quiet_alsa() {}
