// End-to-end: the first run. A models folder where one default model (the voice
// detector) is missing: the app shows the setup screen, downloads it with progress when
// asked (from the package registry), then becomes ready. SOTTO_MODELS_SOURCE is the folder
// with every model installed; SOTTO_E2E_DIR a scratch folder.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { openApp, saveScreenshot } from "./webdriver.mjs";

const application = process.env.SOTTO_APP;
const source = process.env.SOTTO_MODELS_SOURCE;
const scratch = process.env.SOTTO_E2E_DIR;
const shots = process.env.SOTTO_SCREENSHOTS ?? "e2e-screenshots";
if (!application || !source || !scratch) throw new Error("set SOTTO_APP, SOTTO_MODELS_SOURCE and SOTTO_E2E_DIR");

const MISSING = "silero-vad-v6";
const dir = join(scratch, "first-run");
const models = join(dir, "models");

let app;
before(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(models, { recursive: true });
  for (const id of readdirSync(source)) {
    if (id !== MISSING) symlinkSync(join(source, id), join(models, id));
  }
  app = await openApp({
    application,
    env: {
      SOTTO_MODELS_DIR: models,
      SOTTO_DATA_DIR: join(dir, "data"),
      XDG_CONFIG_HOME: join(dir, "config"),
    },
  });
});
after(async () => {
  await app?.close();
});

const shot = (name) => saveScreenshot(app, shots, name);

test("a missing model is downloaded with progress from the setup screen, then Sotto is ready", async () => {
  const text = await app.waitForText("#setup-text", (t) => t.includes("1 model"), 30_000);
  assert.match(text, /needs its models first: 1 model, 2\.3 MB/);
  assert.equal(await app.text("#setup-models li"), MISSING);
  assert.match(await app.text("#status-line"), /needs its models/);
  await shot("setup.png");

  await app.execute(`
    window.__setupSeen = [];
    const detail = document.getElementById("setup-detail");
    new MutationObserver(() => window.__setupSeen.push(detail.textContent))
      .observe(detail, { childList: true, characterData: true, subtree: true });
  `);
  await app.click("#setup-download");
  const status = await app.waitForText("#status-line", (t) => t.startsWith("Ready"), 180_000);
  assert.match(status, /^Ready/);
  const seen = await app.execute("return window.__setupSeen;");
  assert.ok(
    seen.some((t) => t.startsWith(`Downloading ${MISSING} (1 of 1)`)),
    `progress shown: ${JSON.stringify(seen)}`,
  );
  assert.ok(seen.includes("The models are installed. Starting…"), JSON.stringify(seen));
  assert.equal(await app.execute('return document.getElementById("setup").hidden;'), true);
  await shot("setup-done.png");
});
