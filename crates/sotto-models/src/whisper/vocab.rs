//! Whisper's vocabulary as CTranslate2 stores it (GPT-2 byte-level strings, one per line
//! in `vocabulary.txt`, or a JSON list in `vocabulary.json`), mapped back to raw bytes.

use std::collections::HashMap;

/// The marker that ends the regular BPE tokens; whisper.cpp creates it and every special
/// token after it by itself.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// GPT-2's reversible byte <-> printable character table, inverted: char -> byte.
fn byte_decoder() -> HashMap<char, u8> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut table = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0u32..256 {
        let ch = if printable(b) {
            b
        } else {
            shifted += 1;
            255 + shifted
        };
        if let Some(ch) = char::from_u32(ch) {
            table.insert(ch, b as u8);
        }
    }
    table
}

/// Parses the vocabulary and returns the regular tokens (before `<|endoftext|>`) as bytes.
pub fn regular_tokens(text: &str, is_json: bool) -> Result<Vec<Vec<u8>>, String> {
    let entries: Vec<String> = if is_json {
        serde_json::from_str(text)
            .map_err(|e| format!("vocabulary.json is not a list of strings ({e})"))?
    } else {
        text.lines().map(str::to_owned).collect()
    };
    let end = entries
        .iter()
        .position(|t| t == END_OF_TEXT)
        .ok_or(format!("the vocabulary has no {END_OF_TEXT} token"))?;
    let decoder = byte_decoder();
    entries[..end]
        .iter()
        .enumerate()
        .map(|(i, token)| {
            token
                .chars()
                .map(|c| decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or(format!("token {i} `{token}` is not GPT-2 byte-level text"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_strings_map_back_to_bytes() {
        // "Ġ" is a space, "Ċ" a newline; "Ã©" is the UTF-8 of "é".
        let vocab = "!\nĠthe\nĊ\nÃ©\n<|endoftext|>\n<|startoftranscript|>\n";
        let tokens = regular_tokens(vocab, false).unwrap();
        assert_eq!(
            tokens,
            vec![
                b"!".to_vec(),
                b" the".to_vec(),
                b"\n".to_vec(),
                "é".as_bytes().to_vec()
            ]
        );
    }

    #[test]
    fn the_table_covers_all_256_bytes_once() {
        let table = byte_decoder();
        assert_eq!(table.len(), 256);
        let mut bytes: Vec<u8> = table.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
    }

    #[test]
    fn a_vocabulary_without_end_of_text_is_refused() {
        assert!(regular_tokens("a\nb\n", false)
            .unwrap_err()
            .contains("endoftext"));
        assert_eq!(
            regular_tokens(r#"["a", "<|endoftext|>"]"#, true).unwrap(),
            vec![b"a".to_vec()]
        );
    }
}
