// The installed package: `cargo xtask bundle --check` installs the .deb, then this starts
// /usr/bin/sotto-app (SOTTO_APP) as the menu entry would and waits until the assistant is
// ready, which needs the packaged LLM worker beside it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { openApp, saveScreenshot } from "./webdriver.mjs";

const application = process.env.SOTTO_APP;
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
