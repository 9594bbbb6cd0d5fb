// `cargo xtask bench app`: the release app, as a person uses it, against the headless
// engine on the same spoken questions, in one run.
//
// The app runs in its real window under Xvfb (tauri-driver starts it); each question is
// asked with the real global hotkey (xdotool holds Ctrl+Alt+Space while the question
// plays through the virtual microphone and lets go at its end) and nothing else touches
// the window while a turn runs. The turns' own timings come from the app's event stream
// (SOTTO_EVENTS_FILE); CPU per process and phase from /proc. Then `sotto converse` asks
// the same clips headless, with the same settings, and the two are compared.
//
// Environment (xtask sets it): SOTTO_APP (the release app), SOTTO_CLI (the release
// `sotto`), BENCH_DIR (a scratch folder), BENCH_QUESTIONS (a folder of WAV questions,
// with an optional manifest.json: [{ "file", "speech_end_s" }]), BENCH_JSON (optional:
// where the figures go as JSON).
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { setInterval, clearInterval } from "node:timers";
import { setTimeout as sleep } from "node:timers/promises";
import { openApp } from "./webdriver.mjs";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};
const application = need("SOTTO_APP");
const cli = need("SOTTO_CLI");
const dir = need("BENCH_DIR");
const questionsDir = need("BENCH_QUESTIONS");
const jsonOut = process.env.BENCH_JSON;
const display = process.env.DISPLAY ?? ":99";
/** The key goes up this long after the end of the speech (as the stream bench releases
 * it): where the manifest says, else where the clip's sound ends (a synthesized question
 * ends with about half a second of silence a person would not hold the key through). */
const RELEASE_AFTER_S = 0.25;
const TURN_TIMEOUT_MS = 90_000;

// ---------------------------------------------------------------------------- the clips

/** The PCM parts of a WAV file: format chunk, data offset and length. */
function parseWav(bytes) {
  if (bytes.toString("ascii", 0, 4) !== "RIFF" || bytes.toString("ascii", 8, 12) !== "WAVE") {
    throw new Error("not a WAV file");
  }
  let at = 12;
  let fmt = null;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString("ascii", at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    if (id === "fmt ") {
      fmt = {
        channels: bytes.readUInt16LE(at + 10),
        rate: bytes.readUInt32LE(at + 12),
        blockAlign: bytes.readUInt16LE(at + 20),
      };
    } else if (id === "data") {
      if (!fmt) throw new Error("WAV data before its format");
      return { ...fmt, dataAt: at + 8, dataLen: Math.min(size, bytes.length - at - 8) };
    }
    at += 8 + size + (size % 2);
  }
  throw new Error("a WAV file without data");
}

/** `bytes` (a WAV file) cut to its first `seconds`, as a new WAV file. */
function cutWav(bytes, wav, seconds) {
  const frames = Math.floor(seconds * wav.rate);
  const len = Math.min(wav.dataLen, frames * wav.blockAlign);
  const header = Buffer.from(bytes.subarray(0, wav.dataAt));
  header.writeUInt32LE(len, wav.dataAt - 4);
  header.writeUInt32LE(header.length - 8 + len, 4);
  return Buffer.concat([header, bytes.subarray(wav.dataAt, wav.dataAt + len)]);
}

/**
 * Where a clip's sound ends, in seconds: after the last 10 ms louder than -40 dBFS (RMS),
 * the rule of the Rust benches (`sotto_audio::analysis::speech_span_ms` with `SOUND_DBFS`);
 * null for silence or a format other than 16-bit.
 */
function soundEnd(bytes, wav) {
  const width = wav.blockAlign / wav.channels;
  if (width !== 2) return null;
  const frames = Math.floor(wav.dataLen / wav.blockAlign);
  const frame = Math.max(1, Math.floor(wav.rate / 100));
  const floor = 10 ** (-40 / 10); // mean square of -40 dBFS
  let end = null;
  for (let start = 0; start < frames; start += frame) {
    const stop = Math.min(start + frame, frames);
    let sum = 0;
    for (let f = start; f < stop; f += 1) {
      const s = bytes.readInt16LE(wav.dataAt + f * wav.blockAlign) / 32768;
      sum += s * s;
    }
    if (sum / (stop - start) > floor) end = stop;
  }
  return end === null ? null : end / wav.rate;
}

/** The questions, each cut to its speech end plus the release delay. */
function prepareQuestions() {
  const manifestPath = join(questionsDir, "manifest.json");
  const listed = existsSync(manifestPath)
    ? JSON.parse(readFileSync(manifestPath, "utf8"))
    : readdirSync(questionsDir)
        .filter((f) => f.toLowerCase().endsWith(".wav"))
        .sort()
        .map((file) => ({ file }));
  if (listed.length === 0) throw new Error(`no WAV questions in ${questionsDir}`);
  const out = join(dir, "questions");
  mkdirSync(out, { recursive: true });
  return listed.map((q, i) => {
    const bytes = readFileSync(join(questionsDir, q.file));
    const wav = parseWav(bytes);
    const whole = wav.dataLen / wav.blockAlign / wav.rate;
    const speechEnd = typeof q.speech_end_s === "number" ? q.speech_end_s : soundEnd(bytes, wav);
    const end = speechEnd === null ? whole : Math.min(whole, speechEnd + RELEASE_AFTER_S);
    const path = join(out, `q${String(i).padStart(2, "0")}.wav`);
    writeFileSync(path, cutWav(bytes, wav, end));
    return { name: basename(q.file), path, ms: Math.round(end * 1000) };
  });
}

// ------------------------------------------------------------------------- CPU sampling

const TICK_S = 0.01; // USER_HZ is 100 on Linux

/** CPU ticks (user + system) of every process whose name matches, by name. */
function cpuTicks(names) {
  const ticks = {};
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      // The kernel keeps the first 15 characters of a name: the names are given so.
      const name = names.find((n) => comm === n);
      if (!name) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks[name] = (ticks[name] ?? 0) + Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended
    }
  }
  return ticks;
}

/** CPU per process and phase: `phase` is read at every sample. */
function cpuMeter(names) {
  const seconds = {};
  const busy = {};
  let last = cpuTicks(names);
  let lastAt = Date.now();
  let phase = "idle";
  const timer = setInterval(() => {
    const now = cpuTicks(names);
    const at = Date.now();
    seconds[phase] = (seconds[phase] ?? 0) + (at - lastAt) / 1000;
    busy[phase] ??= {};
    for (const name of names) {
      const used = Math.max(0, (now[name] ?? 0) - (last[name] ?? 0)) * TICK_S;
      busy[phase][name] = (busy[phase][name] ?? 0) + used;
    }
    last = now;
    lastAt = at;
  }, 100);
  return {
    set: (p) => {
      phase = p;
    },
    stop: () => clearInterval(timer),
    /** CPU seconds of the process `name` over the phases `phases`. */
    cpuSeconds: (name, phases) => phases.reduce((sum, p) => sum + (busy[p]?.[name] ?? 0), 0),
    /** Percent of one core, per phase and process. */
    report: () =>
      Object.fromEntries(
        Object.entries(busy).map(([p, procs]) => [
          p,
          Object.fromEntries(Object.entries(procs).map(([n, s]) => [n, Math.round((100 * s) / Math.max(seconds[p], 0.001))])),
        ]),
      ),
  };
}

// ------------------------------------------------------------------------------ events

/** Follows a JSON-lines events file as it grows. */
function follow(path) {
  let offset = 0;
  let pending = "";
  return () => {
    if (!existsSync(path)) return [];
    const bytes = readFileSync(path);
    if (bytes.length <= offset) return [];
    pending += bytes.subarray(offset).toString("utf8");
    offset = bytes.length;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    return lines.filter((l) => l.trim()).map((l) => JSON.parse(l));
  };
}

/** The event itself, whether the line wraps it with a time stamp or not. */
const eventOf = (line) => line.event ?? line;

/** The phase a state belongs to. */
function phaseOf(event) {
  if (event.type === "turn_finished") return "idle";
  if (event.type !== "state_changed") return null;
  if (event.state === "LISTENING") return "listening";
  if (event.state === "IDLE") return "idle";
  return event.state === "SPEAKING" ? "speaking" : "thinking";
}

/** Waits for an event matching `wanted`, passing every event to `seen`. */
async function waitFor(next, wanted, seen, timeoutMs = TURN_TIMEOUT_MS) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    for (const line of next()) {
      const event = eventOf(line);
      seen(event, line);
      if (wanted(event)) return { event, line };
    }
    await sleep(5);
  }
  throw new Error("no such event in time");
}

// ------------------------------------------------------------------------------- stats

function quantile(values, q) {
  const sorted = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Math.round(sorted[at]);
}

const STAGES = {
  "release -> transcript": (t) => diff(t.stt_final_ms, t.speech_end_ms),
  "transcript -> first token": (t) => diff(t.first_token_ms, t.stt_final_ms),
  "first token -> first sentence": (t) => diff(t.first_sentence_ms, t.first_token_ms),
  "first sentence -> first audio": (t) => diff(t.first_audio_ms, t.first_sentence_ms),
};
function diff(a, b) {
  return typeof a === "number" && typeof b === "number" ? a - b : null;
}

/** p50/p95 of v2v and each stage over `turns` (their timings). */
function figures(turns) {
  const answered = turns.filter((t) => typeof t.timings.v2v_ms === "number");
  const stages = Object.fromEntries(
    Object.entries(STAGES).map(([name, f]) => {
      const values = answered.map((t) => f(t.timings));
      return [name, { p50_ms: quantile(values, 0.5), p95_ms: quantile(values, 0.95) }];
    }),
  );
  // Answers started early on the pause's words: kept, or started again on the final.
  const tried = answered.filter((t) => t.timings.early_start !== null && t.timings.early_start !== undefined);
  const kept = tried.filter((t) => t.timings.early_start === true);
  const ahead = kept.map((t) => diff(t.timings.stt_final_ms, t.timings.llm_start_ms));
  return {
    v2v_p50_ms: quantile(answered.map((t) => t.timings.v2v_ms), 0.5),
    v2v_p95_ms: quantile(answered.map((t) => t.timings.v2v_ms), 0.95),
    turns: turns.length,
    answered: answered.length,
    stages,
    early: { tried: tried.length, kept: kept.length, ahead_of_transcript_p50_ms: quantile(ahead, 0.5) },
  };
}

// ---------------------------------------------------------------------------- the app

const APP_PROCESSES = ["sotto-app", "sotto-llm-worke", "WebKitWebProces", "WebKitNetworkPr", "Xvfb"];
const HEADLESS_PROCESSES = ["sotto", "sotto-llm-worke"];

function xdotool(...args) {
  execFileSync("xdotool", args, { env: { ...process.env, DISPLAY: display } });
}

/** Asks every clip through the app; returns its finished turns. */
async function benchApp(sequence) {
  const clips = join(dir, "app-clips");
  mkdirSync(clips, { recursive: true });
  sequence.forEach((q, i) => copyFileSync(q.path, join(clips, `${String(i).padStart(3, "0")}.wav`)));
  const eventsFile = join(dir, "app-events.jsonl");
  const app = await openApp({
    application,
    display,
    env: { SOTTO_TEST_INPUT: clips, SOTTO_EVENTS_FILE: eventsFile },
  });
  const meter = cpuMeter(APP_PROCESSES);
  const turns = [];
  // Streamed pieces of answer text the window was sent (about one per token).
  let chunks = 0;
  try {
    const until = Date.now() + 180_000;
    let status = "starting";
    while (status === "starting" && Date.now() < until) {
      await sleep(250);
      status = await app.execute('return document.getElementById("status-line").dataset.status;');
    }
    if (status !== "ready") throw new Error(`the app did not get ready: ${await app.text("#status-line")}`);
    const next = follow(eventsFile);
    const seen = (event) => {
      const phase = phaseOf(event);
      if (phase) meter.set(phase);
      if (event.type === "llm_text_chunk") chunks += 1;
    };
    next().forEach((line) => seen(eventOf(line)));
    await sleep(1000);
    for (const [i, q] of sequence.entries()) {
      xdotool("keydown", "ctrl+alt+space");
      // The clip starts playing when the app starts listening: the key stays down for
      // as long as it plays.
      const { line } = await waitFor(next, (e) => e.type === "state_changed" && e.state === "LISTENING", seen, 10_000);
      const startedAt = line.unix_ms ?? Date.now();
      await sleep(Math.max(0, startedAt + q.ms - Date.now()));
      xdotool("keyup", "ctrl+alt+space");
      const { event } = await waitFor(next, (e) => e.type === "turn_finished", seen);
      turns.push({ question: q.name, outcome: event.outcome, heard: event.user_text, answer: event.heard_text, timings: event.timings });
      console.log(`app ${i + 1}/${sequence.length} ${q.name}: ${event.outcome}, v2v ${event.timings.v2v_ms?.toFixed(0) ?? "-"} ms, heard ${JSON.stringify(event.user_text)}`);
      await sleep(1000);
    }
  } finally {
    meter.stop();
    await app.close();
  }
  // The window's CPU from the question's end to the turn's end, per streamed piece: an
  // upper bound on its work per token (the orb's motion is in it too).
  const webkitSeconds = meter.cpuSeconds("WebKitWebProces", ["thinking", "speaking"]);
  const windowCost = { chunks, webkit_cpu_s: webkitSeconds, webkit_cpu_ms_per_chunk: chunks ? (1000 * webkitSeconds) / chunks : null };
  return { turns, cpu: meter.report(), window: windowCost };
}

/** Asks every clip headless with `sotto converse`; returns its finished turns. */
async function benchHeadless(sequence) {
  const eventsFile = join(dir, "headless-events.jsonl");
  const meter = cpuMeter(HEADLESS_PROCESSES);
  const child = spawn(cli, ["converse", "--out", join(dir, "headless-answers.wav"), "--events", eventsFile, ...sequence.map((q) => q.path)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const next = follow(eventsFile);
  const turns = [];
  let done = false;
  void exited.then(() => {
    done = true;
  });
  while (!done || turns.length < sequence.length) {
    for (const line of next()) {
      const event = eventOf(line);
      const phase = phaseOf(event);
      if (phase) meter.set(phase);
      if (event.type === "turn_finished" && event.outcome !== "no_speech") {
        const q = sequence[turns.length];
        turns.push({ question: q?.name, outcome: event.outcome, heard: event.user_text, answer: event.heard_text, timings: event.timings });
      }
    }
    if (done) break;
    await sleep(20);
  }
  meter.stop();
  const code = await exited;
  if (code !== 0) console.log(`sotto converse exited with ${code}`);
  return { turns, cpu: meter.report() };
}

// ------------------------------------------------------------------------------ report

function row(name, f) {
  const cell = (v) => (v === null ? "-" : `${v} ms`);
  return `| ${name} | ${cell(f.v2v_p50_ms)} | ${cell(f.v2v_p95_ms)} | ${Object.values(f.stages)
    .map((s) => `${cell(s.p50_ms)} / ${cell(s.p95_ms)}`)
    .join(" | ")} | ${f.answered}/${f.turns} |`;
}

function cpuTable(name, cpu) {
  const lines = [];
  for (const [phase, procs] of Object.entries(cpu)) {
    lines.push(`| ${name} | ${phase} | ${Object.entries(procs).map(([p, v]) => `${p} ${v} %`).join(", ")} |`);
  }
  return lines;
}

async function main() {
  mkdirSync(dir, { recursive: true });
  const questions = prepareQuestions();
  // One fresh turn (the first after start), then the warm session: every question.
  const sequence = [questions[0], ...questions];
  console.log(`${questions.length} questions, ${sequence.length} turns per side`);
  const app = await benchApp(sequence);
  const headless = await benchHeadless(sequence);
  const warm = (r) => figures(r.turns.slice(1));
  const fresh = (r) => figures(r.turns.slice(0, 1));
  const result = {
    app: { ...warm(app), fresh: fresh(app), cpu: app.cpu, window: app.window, answers: app.turns },
    headless: { ...warm(headless), fresh: fresh(headless), cpu: headless.cpu, answers: headless.turns },
  };
  const ratio = (a, b) => (a && b ? Math.round((100 * a) / b) / 100 : null);
  result.ratio = {
    v2v_p50: ratio(result.app.v2v_p50_ms, result.headless.v2v_p50_ms),
    stages: Object.fromEntries(
      Object.keys(STAGES).map((s) => [s, ratio(result.app.stages[s].p50_ms, result.headless.stages[s].p50_ms)]),
    ),
  };
  const header = `| run | v2v p50 | v2v p95 | ${Object.keys(STAGES).map((s) => `${s} p50 / p95`).join(" | ")} | answered |`;
  console.log(`\n### The app against the headless engine (${questions.length} questions, push-to-talk)\n`);
  console.log(header);
  console.log(`|${"---|".repeat(header.split("|").length - 2)}`);
  console.log(row("app, warm", result.app));
  console.log(row("headless, warm", result.headless));
  console.log(row("app, first turn", result.app.fresh));
  console.log(row("headless, first turn", result.headless.fresh));
  console.log(
    `\nratio app / headless (p50): v2v ${result.ratio.v2v_p50}, ${Object.entries(result.ratio.stages)
      .map(([s, r]) => `${s} ${r}`)
      .join(", ")}`,
  );
  for (const [name, r] of [["app", result.app], ["headless", result.headless]]) {
    const e = r.early;
    console.log(
      `${name}: the answer started early in ${e.tried} of ${r.answered} turns, kept ${e.kept}; ` +
        `asked ${e.ahead_of_transcript_p50_ms ?? "-"} ms (p50) before the final transcript`,
    );
  }
  console.log("\n| run | phase | CPU, percent of one core |\n|---|---|---|");
  for (const line of [...cpuTable("app", app.cpu), ...cpuTable("headless", headless.cpu)]) console.log(line);
  const w = app.window;
  console.log(
    `\nThe window (WebKit) while answering: ${w.webkit_cpu_s.toFixed(2)} CPU s over ${w.chunks} streamed pieces, ` +
      `${w.webkit_cpu_ms_per_chunk?.toFixed(1) ?? "-"} ms per piece (its motion included)`,
  );
  if (jsonOut) {
    writeFileSync(jsonOut, JSON.stringify(result, null, 2));
    console.log(`\nfigures written to ${jsonOut}`);
  }
}

await main();
