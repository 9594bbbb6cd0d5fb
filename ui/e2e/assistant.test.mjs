// End-to-end: the live assistant over the local API's WebSocket, with the `ws` client, as
// another program would use it. `sotto serve --assistant` runs the real engines; its
// microphone is a virtual one that speaks the next recorded question each time listening
// starts (SOTTO_TEST_QUESTIONS: a short question, then one with a long answer), and its
// answers play into a WAV file at real-time pace. Two clients watch one spoken turn, a
// second turn is interrupted, and a flood of requests is refused while a turn runs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout, clearTimeout } from "node:timers";
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import { startServe } from "./serve.mjs";

const sotto = process.env.SOTTO_BIN;
const questions = process.env.SOTTO_TEST_QUESTIONS;
const dir = process.env.SOTTO_E2E_DIR;
if (!sotto || !questions || !dir) throw new Error("set SOTTO_BIN, SOTTO_TEST_QUESTIONS and SOTTO_E2E_DIR");

/** Seconds of audio in a PCM WAV file (its data chunk over its byte rate). */
function seconds(file) {
  const wav = readFileSync(file);
  const byteRate = wav.readUInt32LE(28);
  let at = 12;
  while (at + 8 <= wav.length) {
    const id = wav.subarray(at, at + 4).toString();
    const size = wav.readUInt32LE(at + 4);
    if (id === "data") return Math.min(size, wav.length - at - 8) / byteRate;
    at += 8 + size + (size % 2);
  }
  throw new Error(`${file} has no data chunk`);
}

// Spoken in this order, one per start of listening, then again from the first.
const clips = readdirSync(questions)
  .filter((f) => f.endsWith(".wav"))
  .sort()
  .map((f) => seconds(join(questions, f)));
assert.equal(clips.length, 2, "a short question and a long one");
let spoken = 0;

/** @type {import("node:child_process").ChildProcess | undefined} */
let server;
let base = "";
let token = "";

before(async () => {
  const args = ["--port", "0", "--assistant", "--mode", "ptt"];
  args.push("--input", questions, "--out", join(dir, "ws-answers.wav"));
  ({ server, url: base, token } = await startServe(sotto, args));
});

after(() => {
  server?.kill("SIGINT");
});

/** A client of the live assistant: every message it gets, and a way to wait for one. */
async function connect(headers = { Authorization: `Bearer ${token}` }) {
  const socket = new WebSocket(`${base.replace("http", "ws")}/v1/assistant`, { headers });
  const seen = [];
  const waiting = new Set();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data));
    seen.push(message);
    for (const w of waiting) w();
  });
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("unexpected-response", (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    socket.once("error", reject);
  });
  return {
    socket,
    seen,
    send: (command) => socket.send(JSON.stringify(command)),
    /** The first message from index `from` on that `pred` accepts. */
    waitFor(pred, ms = 120_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = seen.slice(from).find(pred);
          if (found) {
            waiting.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiting.delete(check);
          const types = seen.map((m) => m.state ?? m.type).join(" ");
          reject(new Error(`not seen in ${ms} ms; seen: ${types}`));
        }, ms);
        waiting.add(check);
        check();
      });
    },
    close: () => socket.close(),
  };
}

/** Holds the talk key while the next question is spoken into the virtual microphone. */
async function speak(client) {
  const length = clips[spoken % clips.length];
  spoken += 1;
  client.send({ type: "start_listening" });
  await sleep(length * 1000 + 300);
  client.send({ type: "stop_listening" });
}

const states = (seen) =>
  seen.filter((m) => m.type === "state_changed").map((m) => m.state).filter((s, i, all) => s !== all[i - 1]);

/** Voice to voice of the first answered turn: the flood's turn is compared with it. */
let undisturbedV2v = 0;

test("without the token the WebSocket is refused", async () => {
  await assert.rejects(connect({}), /401/);
  await assert.rejects(connect({ Authorization: "Bearer nope" }), /401/);
  await assert.rejects(connect({ Authorization: `Bearer ${token}`, Origin: "https://evil.example" }), /403/);
});

test("two clients watch one spoken turn; a second turn meanwhile is busy", async () => {
  const a = await connect();
  const b = await connect();
  const hello = await a.waitFor((m) => m.type === "hello");
  assert.equal(hello.state, "IDLE");
  const speaking = speak(a);
  // While a holds the talk key, the other client cannot start a turn of its own.
  await b.waitFor((m) => m.type === "state_changed" && m.state === "LISTENING");
  b.send({ type: "start_listening" });
  const busy = await b.waitFor((m) => m.type === "refused");
  assert.equal(busy.code, "busy");
  await speaking;
  const done = await a.waitFor((m) => m.type === "turn_finished");
  // The turn's last state comes just after its end.
  await a.waitFor((m) => m.type === "state_changed" && m.state === "IDLE", 30_000, a.seen.indexOf(done));
  assert.equal(done.outcome, "answered", JSON.stringify(done));
  assert.match(done.user_text.toLowerCase(), /capital/);
  // The states in their order, the streamed text, the timings.
  const order = states(a.seen);
  const at = (s) => order.indexOf(s);
  for (const s of ["LISTENING", "ANALYZING_SPEECH", "SPEAKING"]) assert.ok(at(s) >= 0, `${s} in ${order}`);
  assert.ok(at("LISTENING") < at("ANALYZING_SPEECH"), order.join(" "));
  assert.ok(at("ANALYZING_SPEECH") < at("SPEAKING"), order.join(" "));
  assert.equal(order.at(-1), "IDLE", order.join(" "));
  const text = a.seen.filter((m) => m.type === "llm_text_chunk").map((m) => m.text).join("");
  assert.match(text.toLowerCase(), /paris/);
  assert.ok(a.seen.some((m) => m.type === "transcript_final"));
  assert.equal(typeof done.timings.v2v_ms, "number");
  undisturbedV2v = done.timings.v2v_ms;
  // The other client saw the same turn end.
  const seenByB = await b.waitFor((m) => m.type === "turn_finished");
  assert.equal(seenByB.turn_id, done.turn_id);
  a.close();
  b.close();
});

test("a client interrupts a turn", async () => {
  const c = await connect();
  await c.waitFor((m) => m.type === "hello");
  await speak(c);
  await c.waitFor((m) => m.type === "state_changed" && m.state === "SPEAKING");
  await sleep(1000);
  c.send({ type: "interrupt" });
  // Interrupting opens listening in push-to-talk: the key goes up at once.
  c.send({ type: "stop_listening" });
  const done = await c.waitFor((m) => m.type === "turn_finished" && m.outcome !== "no_speech");
  assert.equal(done.outcome, "interrupted", JSON.stringify(done));
  assert.match(done.user_text.toLowerCase(), /dragon/);
  await c.waitFor((m) => m.type === "state_changed" && m.state === "IDLE", 30_000, c.seen.indexOf(done));
  c.close();
});

test("a flood of requests gets 429s while a voice turn still answers in time", async () => {
  assert.ok(undisturbedV2v > 0, "the first turn measured voice to voice");
  const d = await connect();
  await d.waitFor((m) => m.type === "hello");
  // The same question as the first turn, in a fresh conversation, so the two compare.
  d.send({ type: "new_conversation" });
  const turn = speak(d);
  const floodStarted = Date.now();
  const statuses = [];
  let retryAfter = null;
  const requests = [];
  for (let i = 0; i < 200; i += 1) {
    requests.push(
      fetch(`${base}/v1/models`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => {
        statuses.push(r.status);
        if (r.status === 429) retryAfter ??= r.headers.get("retry-after");
        return r.arrayBuffer();
      }),
    );
    await sleep(10);
  }
  await Promise.all(requests);
  const floodSeconds = (Date.now() - floodStarted) / 1000;
  await turn;
  const done = await d.waitFor((m) => m.type === "turn_finished" && m.outcome !== "no_speech");
  const refused = statuses.filter((s) => s === 429).length;
  const ok = statuses.filter((s) => s === 200).length;
  assert.equal(refused + ok, 200, statuses.join(","));
  assert.ok(refused >= 100, `${refused} of 200 refused`);
  // The bucket: 20 at once, then 10 per second (a little slack for the clock).
  assert.ok(ok >= 20, `${ok} of 200 answered`);
  assert.ok(ok <= 20 + 10 * floodSeconds + 5, `${ok} of 200 answered in ${floodSeconds} s`);
  assert.match(String(retryAfter), /^\d+$/);
  assert.equal(done.outcome, "answered", JSON.stringify(done));
  const v2v = done.timings.v2v_ms;
  console.log(`voice to voice: undisturbed ${undisturbedV2v.toFixed(0)} ms, under the flood ${v2v.toFixed(0)} ms`);
  // The bench measures the 15 % goal over paired turns; one turn each here, so the test
  // only catches a flood that starves the turn. One turn's own spread is large now that
  // answers start early (a turn whose question was read ahead can answer in under 200 ms,
  // the next one in 300), so the bound is 1.5 times the undisturbed turn or 400 ms more,
  // whichever is larger: a starved turn takes seconds.
  const bound = Math.max(undisturbedV2v * 1.5, undisturbedV2v + 400);
  assert.ok(v2v <= bound, `${v2v} ms against ${undisturbedV2v} ms undisturbed`);
  d.close();
});
