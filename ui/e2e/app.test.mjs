// End-to-end: the real Sotto window under Xvfb, driven through tauri-driver and
// WebKitWebDriver, as a person would see it. `cargo xtask test` runs this with
// SOTTO_APP (the app binary) and SOTTO_SCREENSHOTS (where screenshots go) set.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openApp } from "./webdriver.mjs";

const application = process.env.SOTTO_APP;
const shots = process.env.SOTTO_SCREENSHOTS ?? "e2e-screenshots";
if (!application) throw new Error("set SOTTO_APP to the sotto-app binary");

let app;
before(async () => {
  app = await openApp({ application });
});
after(async () => {
  await app?.close();
});

test("the window opens idle and shows every default model installed", async () => {
  const summary = await app.waitForText("#models-summary", (t) => !t.startsWith("Checking"));
  // A frame taken right after rendering can be stale: let the compositor catch up.
  await sleep(500);
  mkdirSync(shots, { recursive: true });
  writeFileSync(join(shots, "main-window.png"), await app.screenshot());

  assert.equal(await app.title(), "Sotto");
  // The rendered text, as a person sees it (the label is styled in capitals).
  assert.equal(await app.text("#state-label"), "IDLE");
  assert.match(summary, /^All \d+ default models are installed and verified\.$/);

  const rows = await app.findAll("li.model");
  assert.ok(rows.length >= 7, `only ${rows.length} model rows`);
  const whisper = await app.find('li.model[data-id="whisper-tiny.en"]');
  assert.equal(await app.attribute(whisper, "data-state"), "installed");
});
