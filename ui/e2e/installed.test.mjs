// The installed package: `cargo xtask bundle --check` installs the .deb, then this starts
// /usr/bin/sotto-app (SOTTO_APP) as the menu entry would, waits until the assistant is
// ready (which needs the packaged LLM worker beside it), and, with SOTTO_TEST_INPUT set,
// has one spoken turn with the release build and prints its timings.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { latencyChart } from "./chart.mjs";
import { openApp, saveScreenshot } from "./webdriver.mjs";

const application = process.env.SOTTO_APP;
const question = process.env.SOTTO_TEST_INPUT;
const shots = process.env.SOTTO_SCREENSHOTS ?? "e2e-screenshots";
if (!application) throw new Error("set SOTTO_APP to the installed app");

let app;
before(async () => {
  app = await openApp({ application });
});
after(async () => {
  await app?.close();
});

test("the installed app opens its window and gets ready", async () => {
  assert.equal(await app.title(), "Sotto");
  // Wait for the end of start-up, whichever way it goes, then say what it was.
  const until = Date.now() + 120_000;
  let kind = "starting";
  while (kind === "starting" && Date.now() < until) {
    await sleep(250);
    kind = await app.execute('return document.getElementById("status-line").dataset.status;');
  }
  const status = await app.text("#status-line");
  assert.equal(kind, "ready", status);
  await saveScreenshot(app, shots, "installed.png");
});

test("the installed app answers a spoken question", { skip: !question && "no SOTTO_TEST_INPUT" }, async () => {
  await app.click("#talk");
  await app.waitForText("#state-label", (t) => t === "LISTENING", 10_000);
  // Done as soon as the whole question is on screen, as a person lets go of the key.
  await app.waitForText(".turn .user", (t) => /france/i.test(t), 20_000);
  await app.click("#talk");
  const answer = await app.waitForText(".turn .answer", (t) => /paris/i.test(t), 60_000);
  await app.waitForText("#state-label", (t) => t === "IDLE", 60_000);
  await app.waitForText("#waterfall .v2v", (t) => t.startsWith("Voice to voice"), 5_000);
  console.log(`installed app, one spoken turn: ${await latencyChart(app)}`);
  assert.match(answer, /paris/i);
  await saveScreenshot(app, shots, "installed-turn.png");
});
