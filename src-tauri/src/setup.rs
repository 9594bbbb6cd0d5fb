//! First run: which default models are missing, and fetching them with progress the
//! setup screen can show.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sotto_models::{FetchEvent, FetchProgress, Fetcher, ModelStore};

use crate::protocol::SetupProgress;

/// Default models that are not installed (or not whole).
pub fn missing_defaults(models: &ModelStore) -> Vec<String> {
    models
        .manifest()
        .models
        .iter()
        .filter(|m| m.default && m.runs_here() && !models.is_installed(&m.id))
        .map(|m| m.id.clone())
        .collect()
}

/// The installed size of `id` per the manifest (0 for an unknown id).
fn size_of(models: &ModelStore, id: &str) -> u64 {
    models.manifest().get(id).map_or(0, |m| m.known_size())
}

/// What the models in `ids` take once installed.
pub fn bytes_to_fetch(models: &ModelStore, ids: &[String]) -> u64 {
    ids.iter().map(|id| size_of(models, id)).sum()
}

/// Fetches every model in `ids` in order; `report` hears about progress at most every
/// 100 ms, and once at the end. The error names the model and says what went wrong.
pub async fn download(
    models: &ModelStore,
    ids: &[String],
    report: impl Fn(SetupProgress) + Send + Sync + 'static,
) -> Result<(), String> {
    let progress = Arc::new(Progress {
        report: Box::new(report),
        shown: Mutex::new(Shown {
            progress: SetupProgress {
                model: String::new(),
                models_done: 0,
                models_total: ids.len() as u32,
                bytes_done: 0,
                bytes_total: bytes_to_fetch(models, ids),
            },
            finished_bytes: 0,
            current_size: 0,
            last: None,
        }),
    });
    let fetcher = Fetcher::new(models.clone(), progress.clone()).map_err(|e| e.to_string())?;
    for id in ids {
        progress.begin(id, size_of(models, id));
        fetcher
            .fetch(id)
            .await
            .map_err(|e| format!("Could not download {id}: {e}"))?;
        progress.finish();
    }
    Ok(())
}

/// Turns the fetcher's per-download events into progress over the whole setup.
struct Progress {
    report: Box<dyn Fn(SetupProgress) + Send + Sync>,
    shown: Mutex<Shown>,
}

struct Shown {
    progress: SetupProgress,
    /// Installed sizes of the models already fetched.
    finished_bytes: u64,
    /// The installed size of the model being fetched.
    current_size: u64,
    /// When progress was last reported.
    last: Option<Instant>,
}

impl Progress {
    fn update(&self, change: impl FnOnce(&mut Shown), force: bool) {
        let Ok(mut shown) = self.shown.lock() else {
            return;
        };
        change(&mut shown);
        let due = shown
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if force || due {
            shown.last = Some(Instant::now());
            (self.report)(shown.progress.clone());
        }
    }

    fn begin(&self, id: &str, size: u64) {
        self.update(
            |s| {
                s.progress.model = id.to_string();
                s.current_size = size;
            },
            true,
        );
    }

    fn finish(&self) {
        self.update(
            |s| {
                s.finished_bytes += s.current_size;
                s.progress.bytes_done = s.finished_bytes;
                s.progress.models_done += 1;
            },
            true,
        );
    }
}

impl FetchProgress for Progress {
    fn on_event(&self, event: FetchEvent) {
        if let FetchEvent::Downloading { done, total, .. } = event {
            self.update(
                |s| {
                    // A download's own size can differ from the installed size (archives):
                    // its fraction scales the model's share of the whole.
                    let fraction = total.map_or(0.0, |t| (done as f64 / t.max(1) as f64).min(1.0));
                    s.progress.bytes_done =
                        s.finished_bytes + (s.current_size as f64 * fraction) as u64;
                },
                false,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_models::Manifest;

    #[test]
    fn an_empty_folder_misses_every_default_and_knows_their_size() {
        let dir = std::env::temp_dir().join(format!("sotto-app-setup-{}", std::process::id()));
        let store = ModelStore::new(&dir, Manifest::builtin().unwrap());
        let missing = missing_defaults(&store);
        assert!(missing.contains(&"whisper-tiny.en".to_string()));
        assert!(missing.contains(&"silero-vad-v6".to_string()));
        assert!(bytes_to_fetch(&store, &missing) > 50_000_000);
    }

    #[test]
    fn progress_is_reported_over_the_whole_setup_and_throttled() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let progress = Progress {
            report: Box::new(move |p| sink.lock().unwrap().push(p)),
            shown: Mutex::new(Shown {
                progress: SetupProgress {
                    model: String::new(),
                    models_done: 0,
                    models_total: 2,
                    bytes_done: 0,
                    bytes_total: 300,
                },
                finished_bytes: 0,
                current_size: 0,
                last: None,
            }),
        };
        let downloading = |done| FetchEvent::Downloading {
            model: "a".into(),
            source: "test".into(),
            done,
            total: Some(1000),
        };
        progress.begin("a", 100);
        progress.on_event(downloading(500)); // within 100 ms of `begin`: not reported
        progress.finish();
        progress.begin("b", 200);
        std::thread::sleep(Duration::from_millis(120));
        progress.on_event(downloading(500));
        progress.finish();
        let seen = seen.lock().unwrap();
        let done: Vec<(String, u32, u64)> = seen
            .iter()
            .map(|p| (p.model.clone(), p.models_done, p.bytes_done))
            .collect();
        assert_eq!(
            done,
            vec![
                ("a".into(), 0, 0),
                ("a".into(), 1, 100),
                ("b".into(), 1, 100),
                ("b".into(), 1, 200),
                ("b".into(), 2, 300),
            ]
        );
    }
}
