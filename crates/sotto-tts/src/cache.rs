//! Synthesized speech kept on disk (sled): (voice, speed, text) -> audio, so a phrase the
//! assistant says often ("Sorry, I did not catch that.") is ready at once.

use std::path::Path;

use crate::{AudioChunk, TtsError};

/// The most phrases kept; the oldest go first.
pub const DEFAULT_MAX_ENTRIES: usize = 2000;

/// Where the speech cache lives: `$SOTTO_CACHE_DIR/tts`, else the platform cache folder
/// (`~/.cache/sotto/tts` on Linux).
pub fn default_dir() -> Result<std::path::PathBuf, TtsError> {
    if let Some(dir) = std::env::var_os("SOTTO_CACHE_DIR") {
        return Ok(std::path::PathBuf::from(dir).join("tts"));
    }
    dirs::cache_dir()
        .map(|d| d.join("sotto").join("tts"))
        .ok_or_else(|| {
            TtsError::Cache("this system has no cache folder; set SOTTO_CACHE_DIR".into())
        })
}

/// The speech cache.
pub struct TtsCache {
    audio: sled::Tree,
    order: sled::Tree,
    db: sled::Db,
    max_entries: usize,
}

fn failed(e: impl std::fmt::Display) -> TtsError {
    TtsError::Cache(e.to_string())
}

fn key(voice: &str, speed: f32, text: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(voice.len() + text.len() + 6);
    key.extend_from_slice(voice.as_bytes());
    key.push(0);
    key.extend_from_slice(&speed.to_bits().to_le_bytes());
    key.push(0);
    key.extend_from_slice(text.trim().as_bytes());
    key
}

impl TtsCache {
    /// Opens (or creates) the cache in `dir`.
    pub fn open(dir: &Path, max_entries: usize) -> Result<TtsCache, TtsError> {
        let db = sled::open(dir).map_err(|e| {
            TtsError::Cache(format!(
                "cannot open the speech cache in {} ({e})",
                dir.display()
            ))
        })?;
        Ok(TtsCache {
            audio: db.open_tree("audio").map_err(failed)?,
            order: db.open_tree("order").map_err(failed)?,
            db,
            max_entries: max_entries.max(1),
        })
    }

    /// The audio for `text` in `voice` at `speed`, if it was made before.
    pub fn get(&self, voice: &str, speed: f32, text: &str) -> Result<Option<AudioChunk>, TtsError> {
        let Some(value) = self.audio.get(key(voice, speed, text)).map_err(failed)? else {
            return Ok(None);
        };
        if value.len() < 4 || (value.len() - 4) % 4 != 0 {
            // A damaged entry is a miss, and goes.
            self.audio.remove(key(voice, speed, text)).map_err(failed)?;
            return Ok(None);
        }
        let sample_rate = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
        let samples = value[4..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Some(AudioChunk {
            samples,
            sample_rate,
        }))
    }

    /// Keeps `audio` for `text` in `voice` at `speed`.
    pub fn put(
        &self,
        voice: &str,
        speed: f32,
        text: &str,
        audio: &AudioChunk,
    ) -> Result<(), TtsError> {
        let key = key(voice, speed, text);
        let mut value = Vec::with_capacity(4 + audio.samples.len() * 4);
        value.extend_from_slice(&audio.sample_rate.to_le_bytes());
        for s in &audio.samples {
            value.extend_from_slice(&s.to_le_bytes());
        }
        let seq = self.db.generate_id().map_err(failed)?;
        self.audio.insert(&key, value).map_err(failed)?;
        self.order.insert(seq.to_be_bytes(), key).map_err(failed)?;
        while self.audio.len() > self.max_entries {
            let Some((seq, old)) = self.order.pop_min().map_err(failed)? else {
                break;
            };
            // An older position of a phrase stored again later is only a stale pointer.
            let newest = self.order.iter().values().flatten().any(|k| k == old);
            if !newest {
                self.audio.remove(&old).map_err(failed)?;
            }
            let _ = seq;
        }
        Ok(())
    }

    /// How many phrases are cached.
    pub fn len(&self) -> usize {
        self.audio.len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.audio.is_empty()
    }

    /// Writes everything to disk now.
    pub fn flush(&self) -> Result<(), TtsError> {
        self.db.flush().map(|_| ()).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> AudioChunk {
        AudioChunk {
            samples: (0..n).map(|i| i as f32 / n as f32).collect(),
            sample_rate: 22050,
        }
    }

    #[test]
    fn phrases_come_back_exactly_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let cache = TtsCache::open(dir.path(), 10).expect("open");
            assert_eq!(cache.get("joe", 1.0, "Hello.").expect("get"), None);
            cache.put("joe", 1.0, "Hello.", &chunk(100)).expect("put");
            cache.flush().expect("flush");
        }
        let cache = TtsCache::open(dir.path(), 10).expect("reopen");
        assert_eq!(
            cache.get("joe", 1.0, " Hello. ").expect("get"),
            Some(chunk(100))
        );
        assert_eq!(
            cache.get("joe", 1.2, "Hello.").expect("get"),
            None,
            "speed is part of the key"
        );
        assert_eq!(
            cache.get("amy", 1.0, "Hello.").expect("get"),
            None,
            "voice is part of the key"
        );
    }

    #[test]
    fn the_oldest_phrases_go_when_the_cache_is_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = TtsCache::open(dir.path(), 3).expect("open");
        for i in 0..5 {
            cache
                .put("joe", 1.0, &format!("phrase {i}"), &chunk(10))
                .expect("put");
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("joe", 1.0, "phrase 0").expect("get"), None);
        assert!(cache.get("joe", 1.0, "phrase 4").expect("get").is_some());
    }
}
