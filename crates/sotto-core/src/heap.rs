//! Gives the allocator's free memory back to the system between turns.
//!
//! A turn allocates and frees large buffers on several threads (the recogniser's audio and
//! mel frames, each spoken piece, the answer's text). glibc serves each thread from its own
//! arena and keeps what is freed there for the next allocation, so without a trim the
//! process holds each arena's high-water mark: the soak saw resident memory climb for a few
//! hundred turns before it levelled out. [`release_free_memory`] asks glibc to hand the free
//! pages back (`malloc_trim`), on a thread of its own, so no turn waits for it. Other
//! platforms' allocators return memory by themselves; there it does nothing.

/// Returns the allocator's free pages to the system, in the background.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("sotto-heap-trim".into())
            .spawn(trim);
        if let Err(e) = spawned {
            tracing::debug!("no thread to trim the heap: {e}");
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    extern "C" {
        /// glibc: releases free memory from every arena's heap; returns 1 when some was.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and only walks glibc's own arenas under their
    // locks; it is safe to call from any thread at any time.
    let released = unsafe { malloc_trim(0) };
    tracing::trace!(released, "heap trimmed");
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_is_harmless_while_other_threads_allocate() {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for n in 0..2_000 {
                        kept.push(vec![i as u8; 1 + (n * 37) % 8_192]);
                        if kept.len() > 50 {
                            kept.remove(0);
                        }
                    }
                    kept.iter().map(Vec::len).sum::<usize>()
                })
            })
            .collect();
        for _ in 0..20 {
            super::release_free_memory();
        }
        for worker in workers {
            assert!(worker.join().map(|total| total > 0).unwrap_or(false));
        }
    }
}
