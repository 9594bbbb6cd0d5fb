// A minimal W3C WebDriver client over fetch, plus the processes an end-to-end run needs:
// Xvfb (when there is no display) and tauri-driver, which starts WebKitWebDriver and the app.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

async function call(base, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    // A WebDriver call that hangs fails the test in two minutes, not undici's five.
    signal: AbortSignal.timeout(120_000),
  });
  const json = await res.json();
  if (!res.ok) {
    throw new Error(`WebDriver ${method} ${path}: ${res.status} ${JSON.stringify(json.value)}`);
  }
  return json.value;
}

/** Starts `cmd args` and returns the child; its output goes to ours with a prefix. */
function start(name, cmd, args, env) {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const log = (chunk) => process.stderr.write(`[${name}] ${chunk}`);
  child.stdout.on("data", log);
  child.stderr.on("data", log);
  return child;
}

async function waitForPort(url, deadlineMs) {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    try {
      await fetch(`${url}/status`);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`nothing answered at ${url} within ${deadlineMs} ms`);
}

/** Everything an end-to-end test needs, torn down by `close()`. */
export async function openApp({ application, port = 4444, display = ":99", env: extra = {} }) {
  const children = [];
  const env = { ...process.env, ...extra };
  if (!env.DISPLAY) {
    env.DISPLAY = display;
    children.push(start("xvfb", "Xvfb", [display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"], env));
    await sleep(500);
  }
  const driver = start("tauri-driver", "tauri-driver", ["--port", String(port)], env);
  children.push(driver);
  const base = `http://127.0.0.1:${port}`;
  const close = async () => {
    // SIGTERM, not SIGKILL: tauri-driver then stops WebKitWebDriver too.
    for (const child of children.reverse()) child.kill("SIGTERM");
    await sleep(300);
  };
  try {
    await waitForPort(base, 15_000);
    const session = await call(base, "POST", "/session", {
      capabilities: { alwaysMatch: { "tauri:options": { application } } },
    });
    const id = session.sessionId;
    const s = (path) => `/session/${id}${path}`;
    const find = async (css) => (await call(base, "POST", s("/element"), { using: "css selector", value: css }))[ELEMENT];
    const app = {
      find,
      async findAll(css) {
        const found = await call(base, "POST", s("/elements"), { using: "css selector", value: css });
        return found.map((e) => e[ELEMENT]);
      },
      /** The text of the first element matching `css`. The page redraws lists on every
       * event, so an element found a moment ago may be gone: then it is found again. */
      async text(css) {
        for (let attempt = 1; ; attempt++) {
          try {
            return await call(base, "GET", s(`/element/${await find(css)}/text`));
          } catch (e) {
            if (attempt >= 5 || !String(e).includes("stale element reference")) throw e;
          }
        }
      },
      attribute: async (elementId, name) => call(base, "GET", s(`/element/${elementId}/attribute/${name}`)),
      title: () => call(base, "GET", s("/title")),
      /** Clicks the element matching `css`, first scrolled to the middle of the window:
       * WebDriver's own scrolling stops at the window's bottom edge, and under Xvfb that
       * edge can lie off the screen, where the click is lost without an error. */
      async click(css) {
        const element = await find(css);
        await call(base, "POST", s("/execute/sync"), {
          script: 'arguments[0].scrollIntoView({ block: "center" });',
          args: [{ [ELEMENT]: element }],
        });
        return call(base, "POST", s(`/element/${element}/click`), {});
      },
      /** Replaces what the input matching `css` holds with `text`, typed as keys. */
      async type(css, text) {
        const element = await find(css);
        await call(base, "POST", s(`/element/${element}/clear`), {});
        await call(base, "POST", s(`/element/${element}/value`), { text });
      },
      /** Runs `script` (a function body) in the page and returns its result. */
      execute: (script, args = []) => call(base, "POST", s("/execute/sync"), { script, args }),
      screenshot: async () => Buffer.from(await call(base, "GET", s("/screenshot")), "base64"),
      /** Handles of every window of the app. */
      windows: () => call(base, "GET", s("/window/handles")),
      /** Makes the window with `handle` the one later calls act on. */
      switchTo: (handle) => call(base, "POST", s("/window"), { handle }),
      /** From now on, records each state the label shows, in the page itself: some last
       * only milliseconds, too short to see by polling. */
      recordStates: () =>
        app.execute(`
          window.__statesSeen = [];
          const label = document.getElementById("state-label");
          new MutationObserver(() => window.__statesSeen.push(label.dataset.state))
            .observe(label, { attributes: true, attributeFilter: ["data-state"] });
        `),
      /** The states shown since `recordStates()`, each change once (the label is redrawn
       * on every event). */
      async statesSeen() {
        const all = await app.execute("return window.__statesSeen;");
        return all.filter((state, i) => i === 0 || all[i - 1] !== state);
      },
      async waitForText(css, predicate, timeoutMs = 20_000) {
        const until = Date.now() + timeoutMs;
        let last = "";
        while (Date.now() < until) {
          try {
            last = await app.text(css);
            if (predicate(last)) return last;
          } catch {
            // not rendered yet
          }
          await sleep(200);
        }
        throw new Error(`${css} never matched; last text: ${JSON.stringify(last)}`);
      },
      async close() {
        await call(base, "DELETE", s("")).catch(() => {});
        await close();
      },
    };
    return app;
  } catch (e) {
    await close();
    throw e;
  }
}

/** Saves a screenshot of `app` as `dir/name`. WebKitWebDriver's snapshot waits for the
 * page's next paint, and a still page (the idle orb does not move; the app paints without
 * compositing) may not paint again: a tiny invisible animation runs while it is taken. */
export async function saveScreenshot(app, dir, name) {
  await app.execute(`
    const style = document.createElement("style");
    style.id = "__e2e_paint";
    style.textContent = "@keyframes __e2e_tick { to { transform: translateX(1px); } }" +
      "#__e2e_paint_dot { position: fixed; left: 0; top: 0; width: 1px; height: 1px; opacity: 0.01;" +
      " animation: __e2e_tick 0.1s linear infinite; }";
    const dot = document.createElement("div");
    dot.id = "__e2e_paint_dot";
    document.head.append(style);
    document.body.append(dot);
  `);
  try {
    await sleep(400);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, name), await app.screenshot());
  } finally {
    await app.execute(`
      document.getElementById("__e2e_paint")?.remove();
      document.getElementById("__e2e_paint_dot")?.remove();
    `);
  }
}
