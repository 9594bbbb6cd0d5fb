//! The history store on disk: turns survive a reopen and a hard crash, damage is moved
//! aside with what can be read carried over, a store in use is left alone, and turn logs
//! keep only the newest.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use sotto_audio::AudioBuffer;
use sotto_store::turn_log::{TurnLog, TurnLogs};
use sotto_store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Turn {
    user: String,
    heard: String,
}

fn turn(n: usize) -> Turn {
    Turn {
        user: format!("question {n}"),
        heard: format!("answer {n}"),
    }
}

fn open(path: &Path) -> Store {
    let opened = Store::open(path).expect("opens");
    assert!(opened.moved_aside.is_none(), "{:?}", opened.moved_aside);
    opened.store
}

#[test]
fn conversations_and_turns_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history");
    {
        let store = open(&path);
        let first = store.new_conversation("question 1").expect("new");
        for n in 1..=3 {
            assert_eq!(
                store.append_turn(first.id, &turn(n)).expect("append"),
                n as u64
            );
        }
        let second = store.new_conversation("later").expect("new");
        assert!(second.id > first.id);
        store.append_turn(second.id, &turn(9)).expect("append");
    }
    let store = open(&path);
    let list = store.conversations().expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].title, "later", "newest first");
    assert_eq!((list[0].turns, list[1].turns), (1, 3));
    let turns: Vec<Turn> = store.turns(list[1].id).expect("turns");
    assert_eq!(turns, (1..=3).map(turn).collect::<Vec<_>>());
    let one = store.conversation(list[1].id).expect("read one");
    assert_eq!(one.as_ref(), Some(&list[1]));
    assert_eq!(store.conversation(999).expect("read one"), None);

    // A conversation that does not exist takes no turns; a deleted one is gone.
    assert!(store.append_turn(999, &turn(1)).is_err());
    store.delete_conversation(list[1].id).expect("delete");
    assert_eq!(store.conversations().expect("list").len(), 1);
    assert!(store.turns::<Turn>(list[1].id).expect("turns").is_empty());

    // A record of another shape is a clear error, not a panic.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Other {
        price: f64,
    }
    let e = store.turns::<Other>(list[0].id).expect_err("wrong shape");
    assert!(matches!(e, StoreError::Decode(_)), "{e}");
}

/// Not a test: the child process of the crash test, which appends turns and then dies
/// without any cleanup. It runs only when that test starts it.
#[test]
#[ignore = "the child process of every_turn_is_on_disk_before_a_hard_kill"]
fn crash_child() {
    let path = std::env::var_os("SOTTO_STORE_CRASH_CHILD").expect("started by the crash test");
    let store = Store::open(Path::new(&path)).expect("opens").store;
    let conversation = store.new_conversation("question 1").expect("new");
    for n in 1..=5 {
        store
            .append_turn(conversation.id, &turn(n))
            .expect("append");
    }
    // SIGKILL itself: no destructor, no flush on drop, no unwinding.
    let _ = Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    std::thread::sleep(std::time::Duration::from_secs(10));
    unreachable!("still alive after kill -9");
}

#[test]
fn every_turn_is_on_disk_before_a_hard_kill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history");
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env("SOTTO_STORE_CRASH_CHILD", &path)
        .status()
        .expect("child runs");
    assert!(!status.success(), "the child was killed: {status:?}");
    let store = open(&path);
    let list = store.conversations().expect("list");
    assert_eq!(list.len(), 1);
    let turns: Vec<Turn> = store.turns(list[0].id).expect("turns");
    assert_eq!(turns, (1..=5).map(turn).collect::<Vec<_>>());
}

#[test]
fn a_database_with_unreadable_records_is_moved_aside_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history");
    {
        let store = open(&path);
        let c = store.new_conversation("question 1").expect("new");
        store.append_turn(c.id, &turn(1)).expect("append");
        store.append_turn(c.id, &turn(2)).expect("append");
    }
    {
        // Damage one record behind the store's back.
        let db = sled::open(&path).expect("raw open");
        let turns = db.open_tree("turns").expect("tree");
        let (key, _) = turns.last().expect("read").expect("a turn");
        turns.insert(key, &b"\x00\xffnot json"[..]).expect("write");
        db.flush().expect("flush");
    }
    let opened = Store::open(&path).expect("opens anyway");
    let moved = opened.moved_aside.expect("reported");
    assert_eq!((moved.kept, moved.lost), (2, 1), "{moved}");
    assert!(
        moved.to.exists(),
        "the damaged copy is kept at {:?}",
        moved.to
    );
    assert!(path.exists());
    let message = moved.to_string();
    assert!(message.contains("damaged") && message.contains(&moved.to.display().to_string()));
    assert!(message.contains("Nothing was deleted"), "{message}");
    let store = opened.store;
    let list = store.conversations().expect("list");
    let turns: Vec<Turn> = store.turns(list[0].id).expect("turns");
    assert_eq!(turns, vec![turn(1)]);
    // The fresh store works and stays healthy.
    store.append_turn(list[0].id, &turn(3)).expect("append");
    drop(store);
    let store = open(&path);
    assert_eq!(store.conversations().expect("list")[0].turns, 2);
}

#[test]
fn a_database_sled_cannot_open_is_moved_aside_and_a_fresh_one_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history");
    {
        let store = open(&path);
        let c = store.new_conversation("question 1").expect("new");
        store.append_turn(c.id, &turn(1)).expect("append");
    }
    // Overwrite every file of the database with garbage.
    for entry in std::fs::read_dir(&path).expect("read dir").flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let len = entry.metadata().map_or(4096, |m| m.len().max(64)) as usize;
            let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
            std::fs::write(entry.path(), garbage).expect("write garbage");
        }
    }
    let opened = Store::open(&path).expect("opens anyway");
    let moved = opened.moved_aside.expect("reported");
    assert!(moved.to.exists());
    assert!(moved.to.join("db").exists() || moved.to.join("conf").exists());
    let store = opened.store;
    let c = store.new_conversation("fresh").expect("new");
    store.append_turn(c.id, &turn(1)).expect("append");
}

#[test]
fn a_database_in_use_is_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history");
    let _first = open(&path);
    let e = Store::open(&path).err().expect("in use");
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
    assert!(e.to_string().contains("another Sotto"), "{e}");
    let siblings = std::fs::read_dir(dir.path()).expect("read dir").count();
    assert_eq!(siblings, 1, "nothing was moved aside");
}

#[test]
fn turn_logs_keep_only_the_newest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = TurnLogs::new(dir.path().join("logs"), 3);
    let input = AudioBuffer {
        samples: vec![0.25; 16_000],
        channels: 1,
        sample_rate: 16_000,
    };
    let output = AudioBuffer {
        samples: vec![-0.5; 22_050],
        channels: 1,
        sample_rate: 22_050,
    };
    for n in 1..=5 {
        let log = TurnLog {
            input: Some(&input),
            output: (n != 2).then_some(&output),
            record: &turn(n),
        };
        logs.write(&format!("t{n}"), &log).expect("written");
    }
    let kept = logs.list();
    let names: Vec<String> = kept
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(kept.len(), 3, "{names:?}");
    assert!(
        names[0].ends_with("-t3") && names[2].ends_with("-t5"),
        "{names:?}"
    );
    let newest = &kept[2];
    let heard = sotto_audio::wav::read(&newest.join("input.wav")).expect("input.wav");
    assert_eq!((heard.sample_rate, heard.samples.len()), (16_000, 16_000));
    let said = sotto_audio::wav::read(&newest.join("output.wav")).expect("output.wav");
    assert_eq!(said.sample_rate, 22_050);
    assert!((said.samples[100] + 0.5).abs() < 1e-3);
    let record: Turn =
        serde_json::from_slice(&std::fs::read(newest.join("turn.json")).expect("json"))
            .expect("parses");
    assert_eq!(record, turn(5));
    // No half-written folders are left behind.
    let hidden = std::fs::read_dir(logs.dir())
        .expect("read dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(hidden, 0);
}
