//! A simulated room, for tests and benchmarks of echo cancellation: what a laptop's
//! microphone hears while its speakers play. The played audio goes through a room impulse
//! response (a synthetic one with a chosen reverberation time), arrives `delay_ms` later
//! and `echo_gain` as loud, with room noise and, when asked, a person's real speech on
//! top.
//!
//! [`Room`] is clock-free (fed what was played, it returns what the microphone hears over
//! the same span); [`RoomMicrophone`] runs one at the pace of a real player, taking the
//! player's own output from an [`EchoReference`], and delivers it as a microphone would.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

use crate::capture::CaptureEvent;
use crate::echo::EchoReference;
use crate::resample::StreamResampler;
use crate::{AudioBuffer, AudioError, SPEECH_RATE};

/// What the room is like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomConfig {
    /// Reverberation time: seconds for the echo's tail to fall by 60 dB.
    pub rt60_s: f32,
    /// Direct-to-reverberant ratio, dB (see [`impulse_response`]).
    pub drr_db: f32,
    /// From playing a sample to its direct sound reaching the microphone (the output's
    /// and input's buffers and the way through the air), ms.
    pub delay_ms: u32,
    /// How loud the direct sound is at the microphone, as a factor of what was played.
    pub echo_gain: f32,
    /// Room noise (fan, street), dBFS RMS.
    pub noise_dbfs: f32,
    /// Seed of the impulse response's reflections and of the noise.
    pub seed: u64,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            rt60_s: 0.3,
            drr_db: 6.0,
            delay_ms: 60,
            echo_gain: 0.5,
            noise_dbfs: -60.0,
            seed: 1,
        }
    }
}

/// A small office, laptop speakers 15 cm from the microphone: short delay, short tail,
/// the direct sound well above the reverberation.
pub const OFFICE: RoomConfig = RoomConfig {
    rt60_s: 0.25,
    drr_db: 10.0,
    delay_ms: 40,
    echo_gain: 0.5,
    noise_dbfs: -60.0,
    seed: 11,
};

/// A living room, speakers on the desk and long device buffers: long delay, a longer tail
/// as loud as the direct sound.
pub const LIVING_ROOM: RoomConfig = RoomConfig {
    rt60_s: 0.5,
    drr_db: 0.0,
    delay_ms: 180,
    echo_gain: 0.3,
    noise_dbfs: -65.0,
    seed: 29,
};

/// A reproducible stream of numbers in [-1, 1) (xorshift).
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Noise {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> f32 {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    }
}

/// A synthetic room impulse response at 16 kHz: the direct sound (1.0), a few early
/// reflections in the first 20 ms, and a diffuse tail that decays by 60 dB in `rt60_s`
/// (cut where it is 60 dB down, at most 600 ms), `drr_db` under the direct sound and
/// early reflections together (the direct-to-reverberant ratio: about +10 dB with a
/// laptop's speakers 15 cm from its microphone, 0 dB at the room's critical distance).
pub fn impulse_response(rt60_s: f32, drr_db: f32, seed: u64) -> Vec<f32> {
    let rate = SPEECH_RATE as f32;
    let rt60 = rt60_s.clamp(0.05, 2.0);
    let len = ((rt60.min(0.6)) * rate) as usize;
    let mut random = Noise::new(seed);
    let mut ir = vec![0.0f32; len.max(1)];
    ir[0] = 1.0;
    // Early reflections: walls, the desk, the screen.
    for _ in 0..6 {
        let at = (0.002 + 0.018 * (random.next() * 0.5 + 0.5)) * rate;
        let amplitude = 0.2 + 0.3 * (random.next() * 0.5 + 0.5);
        let sign = if random.next() < 0.0 { -1.0 } else { 1.0 };
        if let Some(slot) = ir.get_mut(at as usize) {
            *slot += sign * amplitude;
        }
    }
    let direct: f32 = ir.iter().map(|x| x * x).sum();
    // The diffuse tail: noise under an exponential decay of 60 dB over rt60, scaled to
    // the ratio asked for.
    let start = (0.005 * rate) as usize;
    let tail: Vec<f32> = (start..ir.len())
        .map(|i| random.next() * (-6.908 * i as f32 / rate / rt60).exp())
        .collect();
    let tail_energy: f32 = tail.iter().map(|x| x * x).sum();
    if tail_energy > 0.0 {
        let scale = (direct / 10f32.powf(drr_db / 10.0) / tail_energy).sqrt();
        for (slot, t) in ir[start..].iter_mut().zip(tail) {
            *slot += t * scale;
        }
    }
    ir
}

/// Convolution with one impulse response, by FFT, in pieces of any length.
struct Convolver {
    ir: Vec<f32>,
    planner: RealFftPlanner<f32>,
    /// The impulse response's spectrum for each FFT length used.
    spectra: HashMap<usize, Vec<Complex<f32>>>,
}

impl Convolver {
    fn new(ir: Vec<f32>) -> Convolver {
        Convolver {
            ir,
            planner: RealFftPlanner::new(),
            spectra: HashMap::new(),
        }
    }

    /// `input` convolved with the impulse response (`input.len() + ir.len() - 1` long).
    fn convolve(&mut self, input: &[f32]) -> Result<Vec<f32>, AudioError> {
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let out_len = input.len() + self.ir.len() - 1;
        let n = out_len.next_power_of_two();
        let forward = self.planner.plan_fft_forward(n);
        let inverse = self.planner.plan_fft_inverse(n);
        let fail = |e: realfft::FftError| AudioError::Resample(format!("room convolution: {e}"));
        if !self.spectra.contains_key(&n) {
            let mut padded = vec![0.0; n];
            padded[..self.ir.len()].copy_from_slice(&self.ir);
            let mut spectrum = forward.make_output_vec();
            forward.process(&mut padded, &mut spectrum).map_err(fail)?;
            self.spectra.insert(n, spectrum);
        }
        let Some(ir_spectrum) = self.spectra.get(&n) else {
            return Ok(Vec::new());
        };
        let mut padded = vec![0.0; n];
        padded[..input.len()].copy_from_slice(input);
        let mut spectrum = forward.make_output_vec();
        forward.process(&mut padded, &mut spectrum).map_err(fail)?;
        for (x, h) in spectrum.iter_mut().zip(ir_spectrum) {
            *x *= h;
        }
        let mut out = inverse.make_output_vec();
        inverse.process(&mut spectrum, &mut out).map_err(fail)?;
        let scale = 1.0 / n as f32;
        out.truncate(out_len);
        out.iter_mut().for_each(|s| *s *= scale);
        Ok(out)
    }
}

/// The room, fed what the speakers play (16 kHz), returning what the microphone hears.
pub struct Room {
    config: RoomConfig,
    convolver: Convolver,
    /// The echo still to be heard; index 0 is the next sample out.
    echo: VecDeque<f32>,
    /// A person's speech still to be heard; index 0 is the next sample out.
    person: VecDeque<f32>,
    noise: Noise,
    noise_amplitude: f32,
    /// Samples heard so far.
    position: u64,
}

impl Room {
    /// A room with a synthetic impulse response made from `config`.
    pub fn new(config: RoomConfig) -> Room {
        Room::with_impulse_response(
            config,
            impulse_response(config.rt60_s, config.drr_db, config.seed),
        )
    }

    /// A room with the impulse response `ir` (16 kHz; `config.rt60_s` and `drr_db` are
    /// not used).
    pub fn with_impulse_response(config: RoomConfig, ir: Vec<f32>) -> Room {
        let delay = (config.delay_ms as usize) * SPEECH_RATE as usize / 1000;
        Room {
            convolver: Convolver::new(if ir.is_empty() { vec![1.0] } else { ir }),
            echo: std::iter::repeat_n(0.0, delay).collect(),
            person: VecDeque::new(),
            noise: Noise::new(config.seed ^ 0xA5A5),
            // Uniform noise in [-a, a] has an RMS of a / sqrt(3).
            noise_amplitude: 10f32.powf(config.noise_dbfs / 20.0) * 3f32.sqrt(),
            config,
            position: 0,
        }
    }

    /// A person starts saying `speech` (16 kHz) now, after what they were saying.
    /// Returns the sample (from the room's start) where it begins.
    pub fn say(&mut self, speech: &[f32]) -> u64 {
        let at = self.position + self.person.len() as u64;
        self.person.extend(speech);
        at
    }

    /// Samples heard so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// What the microphone hears while `played` (16 kHz) comes out of the speakers: as
    /// many samples, made of the echo, the person and the noise.
    pub fn hear(&mut self, played: &[f32]) -> Result<Vec<f32>, AudioError> {
        Ok(self.hear_parts(played)?.mix())
    }

    /// Like [`Room::hear`], with the parts kept apart (to measure what a canceller took
    /// out of which).
    pub fn hear_parts(&mut self, played: &[f32]) -> Result<Heard, AudioError> {
        let n = played.len();
        if played.iter().any(|s| *s != 0.0) {
            let wet = self.convolver.convolve(played)?;
            let delay = (self.config.delay_ms as usize) * SPEECH_RATE as usize / 1000;
            // Everything past the delay line is a tail still to come.
            let need = delay + wet.len();
            if self.echo.len() < need {
                self.echo.resize(need, 0.0);
            }
            for (slot, s) in self.echo.iter_mut().skip(delay).zip(wet) {
                *slot += s * self.config.echo_gain;
            }
        }
        if self.echo.len() < n {
            self.echo.resize(n, 0.0);
        }
        let echo: Vec<f32> = self.echo.drain(..n).collect();
        let take = n.min(self.person.len());
        let mut person: Vec<f32> = self.person.drain(..take).collect();
        person.resize(n, 0.0);
        let noise = (0..n)
            .map(|_| self.noise.next() * self.noise_amplitude)
            .collect();
        self.position += n as u64;
        Ok(Heard {
            echo,
            person,
            noise,
        })
    }
}

/// What the microphone heard over one span, by where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    /// The speakers' sound through the room.
    pub echo: Vec<f32>,
    /// The person.
    pub person: Vec<f32>,
    /// The room's noise.
    pub noise: Vec<f32>,
}

impl Heard {
    /// All of it, as the microphone gives it.
    pub fn mix(&self) -> Vec<f32> {
        self.echo
            .iter()
            .zip(&self.person)
            .zip(&self.noise)
            .map(|((e, p), n)| (e + p + n).clamp(-1.0, 1.0))
            .collect()
    }
}

/// What a [`RoomMicrophone`] saw, for measurements.
#[derive(Debug, Default)]
pub struct RoomLog {
    /// When each clip handed to [`RoomMicrophone::say`] starts to be heard.
    pub said_at: Vec<Instant>,
    /// When the speakers' last sound (other than silence) ended.
    pub last_sound: Option<Instant>,
    /// Blocks heard, and of those the listener was not ready for (dropped, as a sound
    /// card drops them).
    pub blocks: u64,
    /// See `blocks`.
    pub dropped: u64,
}

/// A microphone in a simulated room: a thread takes what the player plays, as it plays
/// it, and sends what the room makes of it (with a person's speech when asked) as 16 kHz
/// blocks, at the player's pace. Times in its [`RoomLog`] are on the player's clock
/// (counted in samples from its first block), exact when the player plays at 16 kHz; at
/// another rate the conversion's latency (tens of milliseconds) is not counted.
pub struct RoomMicrophone {
    clips: Sender<Vec<f32>>,
    log: Arc<Mutex<RoomLog>>,
    /// The thread ends with the player or the listener; it is not waited for.
    _thread: JoinHandle<()>,
}

impl RoomMicrophone {
    /// Starts the microphone: `played` is the player's output, `out` the listener's input.
    /// It stops when the player is gone or nobody listens.
    pub fn spawn(
        played: EchoReference,
        room: Room,
        out: SyncSender<CaptureEvent>,
    ) -> std::io::Result<RoomMicrophone> {
        let (clips, clips_rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(RoomLog::default()));
        let thread = {
            let log = Arc::clone(&log);
            std::thread::Builder::new()
                .name("sotto-room-mic".into())
                .spawn(move || {
                    if let Err(e) = run_room(played, room, &clips_rx, &out, &log) {
                        tracing::warn!("the simulated room stopped: {e}");
                    }
                })?
        };
        Ok(RoomMicrophone {
            clips,
            log,
            _thread: thread,
        })
    }

    /// A person starts saying `speech` (16 kHz mono) into the room at the next block.
    pub fn say(&self, speech: Vec<f32>) {
        let _ = self.clips.send(speech);
    }

    /// What was seen so far.
    pub fn log(&self) -> std::sync::MutexGuard<'_, RoomLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn run_room(
    played: EchoReference,
    mut room: Room,
    clips: &Receiver<Vec<f32>>,
    out: &SyncSender<CaptureEvent>,
    log: &Mutex<RoomLog>,
) -> Result<(), AudioError> {
    let mut to_speech_rate = if played.rate() == SPEECH_RATE {
        None
    } else {
        Some(StreamResampler::new(played.rate(), SPEECH_RATE)?)
    };
    // The player's own clock: its blocks are taken at a sound card's pace, so a sample's
    // time is counted from when the first was taken, not read when this thread gets to
    // it. A block arrives at the earliest when it is taken: the earliest start its
    // arrival allows is the clock's start.
    let mut clock: Option<Instant> = None;
    let mut played_samples: u64 = 0;
    loop {
        let block = match played.blocks.recv_timeout(Duration::from_millis(200)) {
            Ok(block) => block,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let taken_from = played_samples;
        played_samples += block.len() as u64;
        let now = Instant::now();
        let allowed = now
            .checked_sub(samples_at(taken_from, played.rate()))
            .unwrap_or(now);
        let start = *clock.insert(clock.map_or(allowed, |c| c.min(allowed)));
        let sounding = block.iter().any(|s| s.abs() > 1e-4);
        let block = match to_speech_rate.as_mut() {
            Some(resampler) => resampler.push(&block)?,
            None => block,
        };
        let mut starts = Vec::new();
        while let Ok(clip) = clips.try_recv() {
            starts.push(room.say(&clip));
        }
        let heard = room.hear(&block)?;
        {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            if sounding {
                log.last_sound = Some(start + samples_at(played_samples, played.rate()));
            }
            for at in starts {
                log.said_at.push(start + samples_at(at, SPEECH_RATE));
            }
        }
        if heard.is_empty() {
            continue;
        }
        let audio = AudioBuffer {
            samples: heard,
            channels: 1,
            sample_rate: SPEECH_RATE,
        };
        // As a sound card's callback: never wait for the listener (a listener not
        // started yet, or behind, loses blocks), so the player's copies never back up.
        let sent = out.try_send(CaptureEvent::Audio(audio));
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        log.blocks += 1;
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => log.dropped += 1,
            Err(TrySendError::Disconnected(_)) => return Ok(()),
        }
    }
}

/// How long `samples` at `rate` last.
fn samples_at(samples: u64, rate: u32) -> Duration {
    Duration::from_micros(samples * 1_000_000 / u64::from(rate.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::rms_dbfs;

    #[test]
    fn the_impulse_response_decays_as_its_reverberation_time_says() {
        for rt60 in [0.2f32, 0.5] {
            let ir = impulse_response(rt60, 0.0, 7);
            assert_eq!(ir[0], 1.0, "the direct sound first");
            // At a 0 dB ratio, a good part of the energy comes after the first 20 ms.
            let split = 320;
            let early: f32 = ir[..split].iter().map(|x| x * x).sum();
            let tail: f32 = ir[split..].iter().map(|x| x * x).sum();
            assert!(tail > 0.1 * early && tail < early, "{early} {tail}");
            let at = |s: f32| (s * 16_000.0) as usize;
            // Energy in 10 ms windows, 20 ms and 20 ms + rt60/2 in: 30 dB apart.
            let energy = |from: usize| ir[from..from + 160].iter().map(|x| x * x).sum::<f32>();
            let early = energy(at(0.02));
            let late = energy(at(0.02 + rt60 / 2.0) - 160);
            let drop_db = 10.0 * (early / late).log10();
            assert!((20.0..40.0).contains(&drop_db), "rt60 {rt60}: {drop_db} dB");
        }
    }

    #[test]
    fn the_room_delays_the_sound_and_adds_a_person_and_noise() {
        let config = RoomConfig {
            delay_ms: 50,
            echo_gain: 0.5,
            noise_dbfs: -70.0,
            ..RoomConfig::default()
        };
        let mut room = Room::with_impulse_response(config, vec![1.0]);
        // A click at 0, heard in 10 ms pieces: it comes out 50 ms (800 samples) later.
        let mut played = vec![0.0f32; 1_600];
        played[0] = 1.0;
        let mut echo = Vec::new();
        for piece in played.chunks(160) {
            echo.extend(room.hear_parts(piece).expect("hears").echo);
        }
        let peak = echo
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        assert_eq!(peak, Some(800));
        assert!((echo[800] - 0.5).abs() < 1e-4);
        // The person is heard from the next sample, the noise at its level.
        let at = room.say(&[0.25; 320]);
        assert_eq!(at, 1_600);
        let heard = room.hear_parts(&[0.0; 480]).expect("hears");
        assert_eq!(&heard.person[..320], &[0.25; 320]);
        assert_eq!(heard.person[320], 0.0);
        assert!((rms_dbfs(&heard.noise) + 70.0).abs() < 1.0);
    }
}
