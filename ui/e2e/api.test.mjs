// End-to-end: the local API through OpenAI's official Node SDK, as another program would
// use it. `sotto serve --port 0` runs with its own config folder (a fresh token); the SDK
// lists the models, transcribes the spoken question the other tests use, streams a chat
// answer and fetches speech; a wrong key is refused the way the SDK reports it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import OpenAI from "openai";
import { startServe } from "./serve.mjs";

const sotto = process.env.SOTTO_BIN;
const question = process.env.SOTTO_TEST_INPUT;
if (!sotto || !question) throw new Error("set SOTTO_BIN and SOTTO_TEST_INPUT");

/** @type {import("node:child_process").ChildProcess | undefined} */
let server;
let baseURL = "";
let token = "";

before(async () => {
  let url;
  ({ server, url, token } = await startServe(sotto, ["--port", "0"]));
  baseURL = `${url}/v1`;
});

after(() => {
  server?.kill("SIGINT");
});

const client = () => new OpenAI({ apiKey: token, baseURL, maxRetries: 0, timeout: 120_000 });

test("the SDK lists the models", async () => {
  const page = await client().models.list();
  const ids = page.data.map((m) => m.id);
  assert.ok(ids.some((id) => id.startsWith("whisper")), ids.join(", "));
  assert.ok(ids.some((id) => id.startsWith("piper")), ids.join(", "));
});

test("the SDK transcribes a WAV file", async () => {
  const result = await client().audio.transcriptions.create({
    file: createReadStream(question),
    model: "whisper-1",
  });
  assert.match(result.text.toLowerCase(), /dragon/);
  const verbose = await client().audio.transcriptions.create({
    file: createReadStream(question),
    model: "whisper-1",
    response_format: "verbose_json",
  });
  assert.ok(verbose.segments.length > 0);
  assert.ok(verbose.duration > 1);
});

test("the SDK streams a chat answer", async () => {
  const stream = await client().chat.completions.create({
    model: "sotto",
    stream: true,
    max_tokens: 32,
    temperature: 0,
    messages: [{ role: "user", content: "What is the capital of France?" }],
  });
  let text = "";
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks += 1;
    text += chunk.choices[0]?.delta?.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.ok(text.trim().length > 0);
  assert.ok(finish === "stop" || finish === "length", String(finish));
});

test("the SDK fetches speech", async () => {
  const response = await client().audio.speech.create({
    model: "tts-1",
    voice: "alloy",
    input: "The capital of France is Paris.",
    response_format: "wav",
  });
  const audio = Buffer.from(await response.arrayBuffer());
  assert.equal(audio.subarray(0, 4).toString(), "RIFF");
  const rate = audio.readUInt32LE(24);
  // More than a second of 16-bit audio.
  assert.ok(audio.length - 44 > rate * 2, `${audio.length} bytes at ${rate} Hz`);
});

test("a wrong key is refused as the SDK expects", async () => {
  const wrong = new OpenAI({ apiKey: "sotto-wrong-key", baseURL, maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
    assert.equal(e.status, 401);
    assert.match(e.message, /token/i);
    return true;
  });
});
