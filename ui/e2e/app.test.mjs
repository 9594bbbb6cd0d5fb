// End-to-end: the real Sotto window under Xvfb, driven through tauri-driver and
// WebKitWebDriver, as a person would use it. `cargo xtask test` runs this with SOTTO_APP
// (the app binary), SOTTO_SCREENSHOTS (where screenshots go), SOTTO_TEST_INPUT (a spoken
// question, fed to the app's test microphone each time listening starts) and
// SOTTO_DATA_DIR (a fresh history) set.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { setTimeout, clearTimeout } from "node:timers";
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import { latencyChart } from "./chart.mjs";
import { openApp, saveScreenshot } from "./webdriver.mjs";

const application = process.env.SOTTO_APP;
const shots = process.env.SOTTO_SCREENSHOTS ?? "e2e-screenshots";
if (!application) throw new Error("set SOTTO_APP to the sotto-app binary");
if (!process.env.SOTTO_TEST_INPUT) throw new Error("set SOTTO_TEST_INPUT to a spoken question (WAV)");

// The display the app runs on (openApp starts Xvfb on :99 when there is none).
const display = process.env.DISPLAY ?? ":99";
const xdotool = (...args) => execFileSync("xdotool", args, { env: { ...process.env, DISPLAY: display } });

let app;
before(async () => {
  app = await openApp({ application });
});
after(async () => {
  await app?.close();
});

const shot = (name) => saveScreenshot(app, shots, name);

test("the window opens, loads the assistant and shows every default model", async () => {
  const summary = await app.waitForText("#models-summary", (t) => !t.startsWith("Checking"));
  assert.equal(await app.title(), "Sotto");
  assert.match(summary, /^All \d+ default models are installed and verified\.$/);
  const whisper = await app.find('li.model[data-id="whisper-tiny.en"]');
  assert.equal(await app.attribute(whisper, "data-state"), "installed");

  const status = await app.waitForText("#status-line", (t) => t.startsWith("Ready"), 90_000);
  assert.match(status, /Microphone: test input/);
  assert.equal(await app.text("#state-label"), "IDLE");
  await shot("ready.png");
});

test("a spoken question goes through every state, streams its answer and can be interrupted", async () => {
  await app.recordStates();
  await app.click("#talk");
  await app.waitForText("#state-label", (t) => t === "LISTENING", 10_000);
  // The test microphone speaks the question (about 3 s); a partial transcript shows.
  const partial = await app.waitForText(".turn .user", (t) => t.length > 3 && t !== "…", 15_000);
  assert.ok(partial.length > 3, partial);
  await shot("listening.png");
  await sleep(2_500);
  await app.click("#talk"); // Done: the key goes up.

  await app.waitForText("#state-label", (t) => t === "SPEAKING", 60_000);
  const answer = await app.waitForText(".turn .answer", (t) => t.split(" ").length >= 4, 30_000);
  await shot("speaking.png");
  await app.click("#interrupt");
  await app.waitForText("#state-label", (t) => t === "LISTENING", 5_000);

  const seen = await app.statesSeen();
  const order = [
    "LISTENING",
    "ANALYZING_SPEECH",
    "CHECKING_CACHE",
    "ROUTING_TO_LLM",
    "GENERATING_SPEECH",
    "SPEAKING",
    "LISTENING",
  ];
  const firstListening = seen.indexOf("LISTENING");
  assert.deepEqual(seen.slice(firstListening, firstListening + order.length), order, `states: ${seen}`);

  const question = await app.text(".turn .user");
  assert.match(question, /dragon/i);
  const outcome = await app.attribute(await app.find(".turn"), "data-outcome");
  assert.equal(outcome, "interrupted");
  assert.ok(answer.length > 10, answer);

  // The latency chart of the turn.
  const v2v = await app.waitForText("#waterfall .v2v", (t) => t.startsWith("Voice to voice"), 5_000);
  assert.match(v2v, /^Voice to voice: \d/);
  console.log(`app under test, one spoken turn: ${await latencyChart(app)}`);
  const bars = await app.findAll("#waterfall .bar-row");
  assert.ok(bars.length >= 5, `${bars.length} bars`);

  // The history entry.
  const title = await app.waitForText("#history-list .conversation-title", (t) => /dragon/i.test(t), 10_000);
  assert.match(title, /dragon/i);

  // Done listening (nothing said): back to idle.
  await app.click("#talk");
  await app.waitForText("#state-label", (t) => t === "IDLE", 15_000);
  await shot("after-interrupt.png");
});

test("the global hotkey talks while held and cuts in on an answer", async () => {
  await app.waitForText("#state-label", (t) => t === "IDLE", 15_000);
  const before = (await app.findAll(".turn")).length;
  xdotool("keydown", "ctrl+alt+space");
  await app.waitForText("#state-label", (t) => t === "LISTENING", 10_000);
  // The test microphone speaks the question while the key is held.
  await sleep(3_500);
  xdotool("keyup", "ctrl+alt+space");
  await app.waitForText("#state-label", (t) => t === "SPEAKING", 60_000);
  assert.equal((await app.findAll(".turn")).length, before + 1, "the hotkey made one new turn");
  const question = await app.text(".turn:last-child .user");
  assert.match(question, /dragon/i);
  // Pressing the key during the answer interrupts it and listens (barge-in).
  xdotool("keydown", "ctrl+alt+space");
  await app.waitForText("#state-label", (t) => t === "LISTENING", 5_000);
  xdotool("keyup", "ctrl+alt+space");
  await shot("hotkey.png");
});

test("the overlay shows the state on top, and a second start brings the first forward", async () => {
  const handles = await app.windows();
  assert.equal(handles.length, 2, `windows: ${handles}`);
  let overlay = null;
  for (const handle of handles) {
    await app.switchTo(handle);
    if ((await app.title()) === "Sotto overlay") overlay = handle;
  }
  assert.ok(overlay, "an overlay window");
  await app.switchTo(overlay);
  const label = await app.waitForText("#state-label", (t) => t.length > 0, 5_000);
  assert.match(label, /^(idle|listening|analyzing speech|checking cache|routing to llm|generating speech|speaking)$/i);
  await shot("overlay.png");
  await app.switchTo(handles.find((h) => h !== overlay));
  assert.equal(await app.title(), "Sotto");

  const second = spawnSync(application, [], {
    env: { ...process.env, DISPLAY: display },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(second.status, 0, `second instance: ${second.stderr}`);
  assert.match(second.stderr, /already running/);
});

test("the local API, switched on in Settings, drives the assistant the window shows", async () => {
  await app.waitForText("#state-label", (t) => t === "IDLE", 30_000);
  await app.execute('document.querySelectorAll(".toast-close").forEach((b) => b.click());');
  assert.match(await app.text("#local-api-status"), /^Off/);
  await app.execute(`
    document.getElementById("setting-api").checked = true;
    document.getElementById("setting-api_port").value = "0";
    document.getElementById("settings-note").textContent = "";
  `);
  await app.click("#settings-save");
  // The form shows what was saved (it once showed the settings still in use for a moment
  // after a save, and the next save put them back).
  await app.waitForText("#settings-note", (t) => t === "Saved.", 30_000);
  assert.equal(await app.execute('return document.getElementById("setting-api").checked;'), true);
  assert.equal(await app.execute('return document.getElementById("setting-api_port").value;'), "0");
  const status = await app.waitForText("#local-api-status", (t) => t.startsWith("Listening at"), 60_000);
  const url = /http:\/\/127\.0\.0\.1:\d+/.exec(status)?.[0];
  assert.ok(url, status);
  const token = await app.execute('return document.getElementById("local-api-token").value;');
  assert.match(token, /^\S{20,}$/);
  await shot("settings-api.png");

  // Another program asks through the WebSocket; the window shows the same turn.
  const socket = new WebSocket(`${url.replace("http", "ws")}/v1/assistant`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const seen = [];
  let finished;
  const turnFinished = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no turn_finished on the socket in 90 s")), 90_000);
    finished = (m) => {
      clearTimeout(timer);
      resolve(m);
    };
  });
  socket.on("message", (data) => {
    const message = JSON.parse(String(data));
    seen.push(message);
    if (message.type === "turn_finished") finished(message);
  });
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  const before = (await app.findAll(".turn")).length;
  socket.send(JSON.stringify({ type: "send_text", text: "What is the capital of France?" }));
  const question = await app.waitForText(".turn:last-child .user", (t) => /capital of France/.test(t), 30_000);
  assert.match(question, /capital of France/);
  assert.equal((await app.findAll(".turn")).length, before + 1);
  const done = await turnFinished;
  assert.equal(done.user_text, "What is the capital of France?");
  await app.waitForText("#state-label", (t) => t === "IDLE", 30_000);
  const streamed = seen.filter((m) => m.type === "llm_text_chunk").map((m) => m.text).join("");
  const shown = await app.text(".turn:last-child .answer");
  assert.ok(streamed.trim().length > 0, "streamed text");
  assert.ok(shown.startsWith(streamed.trim().slice(0, 10)), `window: ${shown}; streamed: ${streamed}`);
  socket.close();

  // A new token: the old one is refused from then on.
  await app.click("#local-api-regenerate");
  await app.waitForText("#local-api-status", (t) => t.includes("old token no longer works"), 20_000);
  const renewed = await app.execute('return document.getElementById("local-api-token").value;');
  assert.notEqual(renewed, token);
  const newUrl = /http:\/\/127\.0\.0\.1:\d+/.exec(await app.text("#local-api-status"))?.[0];
  const old = await fetch(`${newUrl}/v1/models`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(old.status, 401);
  const fresh = await fetch(`${newUrl}/v1/models`, { headers: { Authorization: `Bearer ${renewed}` } });
  assert.equal(fresh.status, 200);

  // Off again: nothing listens.
  await app.click("#setting-api");
  await app.click("#settings-save");
  await app.waitForText("#local-api-status", (t) => t.startsWith("Off"), 30_000);
  await assert.rejects(fetch(`${newUrl}/v1/models`));
});

test("a typed sum is worked out, not guessed, and a follow-up goes on from it", async () => {
  await app.waitForText("#state-label", (t) => t === "IDLE", 30_000);
  await app.type("#ask-text", "What is 7 times 8?\uE007");
  const answer = await app.waitForText(".turn:last-child .answer", (t) => t === "7 times 8 is 56.", 30_000);
  assert.equal(answer, "7 times 8 is 56.");
  const source = await app.waitForText(".turn:last-child .turn-source", (t) => t.startsWith("Answered by"), 30_000);
  assert.equal(source, "Answered by Sotto's own calculator and clock");
  await app.waitForText("#state-label", (t) => t === "IDLE", 30_000);

  await app.type("#ask-text", "Now divide it by 4.\uE007");
  const next = await app.waitForText(".turn:last-child .answer", (t) => t.includes("divided by"), 30_000);
  assert.equal(next, "56 divided by 4 is 14.");
  await app.waitForText("#state-label", (t) => t === "IDLE", 30_000);
  await shot("exact.png");
});
