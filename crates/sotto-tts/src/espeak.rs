//! Text to IPA phonemes with espeak-ng (linked: libespeak-ng, GPL-3.0, which is why Sotto
//! is GPL). Both voices were trained on its output.
//!
//! espeak-ng keeps global state and is not thread-safe, so every call goes through one
//! lock.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;

use crate::TtsError;

#[link(name = "espeak-ng")]
extern "C" {
    fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_SetVoiceByProperties(voice: *mut EspeakVoice) -> c_int;
    fn espeak_TextToPhonemes(
        textptr: *mut *const c_void,
        textmode: c_int,
        phonememode: c_int,
    ) -> *const c_char;
}

/// `espeak_VOICE` from speak_lib.h, to choose a voice by language.
#[repr(C)]
struct EspeakVoice {
    name: *const c_char,
    languages: *const c_char,
    identifier: *const c_char,
    gender: u8,
    age: u8,
    variant: u8,
    xx1: u8,
    score: c_int,
    spare: *mut c_void,
}

/// `AUDIO_OUTPUT_SYNCHRONOUS`: no audio thread; we only ask for phonemes.
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: return an error instead of exiting the process when the
/// data files are missing.
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
const CHARS_UTF8: c_int = 1;
/// Phoneme mode bit 1: IPA as UTF-8.
const PHONEMES_IPA: c_int = 0x02;

/// One clause of phonemes and the punctuation that ended it in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// IPA phonemes, words separated by spaces.
    pub phonemes: String,
    /// `.`, `,`, `?`, `!`, `;` or `:` if the clause ended with one.
    pub terminator: Option<char>,
}

struct State {
    voice: Option<String>,
}

static ESPEAK: Mutex<Option<State>> = Mutex::new(None);

/// Phonemizes `text` with the espeak-ng voice `voice` (e.g. `en-us`), clause by clause.
pub fn phonemize(text: &str, voice: &str) -> Result<Vec<Clause>, TtsError> {
    let mut guard = ESPEAK
        .lock()
        .map_err(|_| TtsError::Phonemes("espeak-ng failed earlier in this process".into()))?;
    if guard.is_none() {
        // SAFETY: called once, under the lock, with a null path (the default data folder).
        let rate = unsafe {
            espeak_Initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                std::ptr::null(),
                INITIALIZE_DONT_EXIT,
            )
        };
        if rate <= 0 {
            return Err(TtsError::Phonemes(
                "espeak-ng could not start: its data files are missing (Debian: apt-get install espeak-ng-data)".into(),
            ));
        }
        *guard = Some(State { voice: None });
    }
    let Some(state) = guard.as_mut() else {
        return Err(TtsError::Phonemes("espeak-ng is not initialised".into()));
    };
    if state.voice.as_deref() != Some(voice) {
        let name = CString::new(voice)
            .map_err(|_| TtsError::Phonemes(format!("bad espeak-ng voice name {voice:?}")))?;
        // SAFETY: valid C strings and a zeroed voice description, under the lock. A voice
        // file name ("en-us") or else a language ("en-gb", whose file is called "en").
        let found = unsafe {
            espeak_SetVoiceByName(name.as_ptr()) == 0 || {
                let mut wanted = EspeakVoice {
                    name: std::ptr::null(),
                    languages: name.as_ptr(),
                    identifier: std::ptr::null(),
                    gender: 0,
                    age: 0,
                    variant: 0,
                    xx1: 0,
                    score: 0,
                    spare: std::ptr::null_mut(),
                };
                espeak_SetVoiceByProperties(&mut wanted) == 0
            }
        };
        if !found {
            return Err(TtsError::Phonemes(format!(
                "espeak-ng has no voice `{voice}` (Debian: apt-get install espeak-ng-data)"
            )));
        }
        state.voice = Some(voice.to_string());
    }
    let clean: String = text.chars().filter(|&c| c != '\0').collect();
    let input = CString::new(clean.clone())
        .map_err(|_| TtsError::Phonemes("text with a NUL byte".into()))?;
    let base = input.as_ptr() as usize;
    let mut cursor = input.as_ptr() as *const c_void;
    let mut clauses = Vec::new();
    loop {
        let start = cursor as usize - base;
        // SAFETY: `cursor` points into `input`, which outlives the call; espeak-ng advances
        // it within the string or sets it to null at the end. The returned buffer is
        // espeak's own and is copied before the next call.
        let out = unsafe { espeak_TextToPhonemes(&mut cursor, CHARS_UTF8, PHONEMES_IPA) };
        let phonemes = if out.is_null() {
            String::new()
        } else {
            // SAFETY: espeak returns a NUL-terminated string.
            unsafe { CStr::from_ptr(out) }
                .to_string_lossy()
                .trim()
                .to_string()
        };
        let end = if cursor.is_null() {
            clean.len()
        } else {
            (cursor as usize - base).min(clean.len())
        };
        let consumed = clean.get(start.min(end)..end).unwrap_or("");
        // espeak-ng reads one character past the clause (the next clause's first) before
        // it returns; that lookahead is not part of this clause.
        let consumed = if cursor.is_null() {
            consumed
        } else {
            consumed.trim_end_matches(|c: char| !c.is_whitespace() && !is_terminator(c))
        };
        let terminator = consumed
            .trim_end()
            .chars()
            .last()
            .filter(|&c| is_terminator(c));
        if !phonemes.is_empty() {
            clauses.push(Clause {
                phonemes,
                terminator,
            });
        }
        if cursor.is_null() || end >= clean.len() {
            break;
        }
    }
    Ok(clauses)
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | ',' | '?' | '!' | ';' | ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_text_becomes_ipa_clauses_with_their_punctuation() {
        let clauses =
            phonemize("Hello world, this is Sotto. Can you hear me?", "en-us").expect("espeak-ng");
        assert_eq!(clauses.len(), 3, "{clauses:?}");
        assert!(clauses[0].phonemes.contains("həlˈoʊ"), "{clauses:?}");
        let terminators: Vec<_> = clauses.iter().map(|c| c.terminator).collect();
        assert_eq!(terminators, [Some(','), Some('.'), Some('?')]);
    }

    #[test]
    fn an_unknown_voice_is_a_clear_error() {
        let error = phonemize("hi", "xx-nonexistent").expect_err("no such voice");
        assert!(error.to_string().contains("no voice"), "{error}");
    }
}
