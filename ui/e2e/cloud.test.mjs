// End-to-end: a cloud provider answering through the real app. A local HTTP server speaks
// OpenAI's chat-completions wire protocol (SSE streaming, its error bodies); the test
// chooses it in Settings as a person would, asks a typed question, and sees the streamed
// answer spoken; then a rejected key and a stream cut off mid-answer, each a toast that
// leads to the fix, with the app still usable after. The key comes from OPENAI_API_KEY,
// with the keychain made unreachable so that a developer's stored key is not used.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openApp, saveScreenshot } from "./webdriver.mjs";

const application = process.env.SOTTO_APP;
const scratch = process.env.SOTTO_E2E_DIR;
const shots = process.env.SOTTO_SCREENSHOTS ?? "e2e-screenshots";
if (!application || !scratch) throw new Error("set SOTTO_APP and SOTTO_E2E_DIR");

const KEY = "sk-e2e-not-a-real-key";
const MODEL = "e2e-model";
const PIECES = ["Paris is", " the capital", " of France.", " It lies on the Seine."];
const ANSWER = PIECES.join("");

/** What the server does with the next requests. */
let mode = "answer";
/** Every request the server got: what the app sent, as the provider would see it. */
const requests = [];

const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({
    id: "chatcmpl-e2e",
    object: "chat.completion.chunk",
    created: 0,
    model: MODEL,
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;

async function answer(res) {
  if (mode === "unauthorized") {
    res.writeHead(401, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        error: { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" },
      }),
    );
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.write(chunk({ role: "assistant", content: "" }));
  for (const piece of PIECES) {
    await sleep(40);
    res.write(chunk({ content: piece }));
    if (mode === "cut") {
      // The connection drops after the first words, with no end of stream.
      await sleep(40);
      res.socket?.destroy();
      return;
    }
  }
  res.write(chunk({}, "stop"));
  res.end("data: [DONE]\n\n");
}

const server = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    let json = null;
    try {
      json = JSON.parse(body);
    } catch {
      // recorded as null: the test fails on it
    }
    requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization, body: json });
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    void answer(res);
  });
});

let app;
before(async () => {
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const dir = join(scratch, "cloud");
  rmSync(dir, { recursive: true, force: true });
  app = await openApp({
    application,
    env: {
      SOTTO_DATA_DIR: join(dir, "data"),
      XDG_CONFIG_HOME: join(dir, "config"),
      OPENAI_API_KEY: KEY,
      DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/sotto-e2e-bus",
    },
  });
});
after(async () => {
  await app?.close();
  server.close();
});

const shot = (name) => saveScreenshot(app, shots, name);
const idle = () => app.waitForText("#state-label", (t) => t === "IDLE", 30_000);

/** Types `question` into the question box and sends it. */
async function ask(question) {
  await app.type("#ask-text", `${question}\uE007`);
}

test("a cloud provider chosen in Settings answers a typed question, streamed and spoken", async () => {
  await app.waitForText("#status-line", (t) => t.startsWith("Ready"), 120_000);
  assert.match(await app.text("#status-line"), /Answers from the local model/);

  // Without a microphone or speakers here, start-up left toasts that cover the form.
  await app.execute('document.querySelectorAll(".toast-close").forEach((b) => b.click());');
  // WebKitWebDriver cannot click an <option>: choose it as the keyboard would.
  await app.execute(`
    const select = document.getElementById("setting-provider");
    select.value = "openai";
    select.dispatchEvent(new Event("change", { bubbles: true }));
  `);
  await app.type("#setting-cloud_model", MODEL);
  await app.type("#setting-cloud_base_url", `http://127.0.0.1:${server.address().port}/v1`);
  if (await app.execute('return document.getElementById("setting-fallback_to_local").checked;')) {
    await app.click("#setting-fallback_to_local");
  }
  await app.click("#settings-save");
  const note = await app.waitForText("#settings-note", (t) => t !== "" && t !== "Saving…", 10_000);
  assert.equal(note, "Saved.");
  // Saving restarts the assistant with the provider.
  await app.waitForText("#status-line", (t) => /^Ready\. Answers from OpenAI\./.test(t), 120_000);

  await app.recordStates();
  await ask("What is the capital of France?");
  const answered = await app.waitForText(".turn .answer", (t) => t === ANSWER, 30_000);
  assert.equal(answered, ANSWER);
  await app.waitForText(".turn .turn-source", (t) => t === "Answered by OpenAI", 60_000);
  await idle();
  const seen = await app.statesSeen();
  assert.ok(seen.includes("ROUTING_TO_LLM") && seen.includes("SPEAKING"), `states: ${seen}`);
  await shot("cloud.png");

  const sent = requests.at(-1);
  assert.equal(sent.url, "/v1/chat/completions");
  assert.equal(sent.authorization, `Bearer ${KEY}`);
  assert.equal(sent.body.model, MODEL);
  assert.equal(sent.body.stream, true);
  assert.deepEqual(sent.body.messages.at(-1), { role: "user", content: "What is the capital of France?" });
});

test("a rejected key is a toast that leads to the provider setting", async () => {
  mode = "unauthorized";
  await ask("Are you there?");
  const toast = await app.waitForText('.toast[data-kind="llm"] p', (t) => t.length > 0, 30_000);
  assert.match(toast, /OpenAI rejected the API key \(401\)\. Check the key in Settings\./);
  assert.ok(!toast.includes(KEY), "the key never reaches the window");
  await idle();
  await shot("cloud-401.png");
  await app.click('.toast[data-kind="llm"] .toast-action');
  const focused = await app.execute("return document.activeElement.id;");
  assert.equal(focused, "setting-provider");
});

test("a stream cut off mid-answer fails the turn with a message, and the next question works", async () => {
  mode = "cut";
  const before = (await app.findAll(".turn")).length;
  await ask("Tell me about Paris.");
  const toast = await app.waitForText('.toast[data-kind="llm"] p', (t) => /OpenAI/.test(t), 30_000);
  assert.doesNotMatch(toast, /rejected the API key/);
  await idle();
  const turns = await app.findAll(".turn");
  assert.equal(turns.length, before + 1);
  assert.equal(await app.attribute(turns.at(-1), "data-outcome"), "failed");
  await shot("cloud-cut.png");

  mode = "answer";
  await ask("And the capital of France?");
  await app.waitForText(".turn:last-child .answer", (t) => t === ANSWER, 30_000);
  await idle();
});
