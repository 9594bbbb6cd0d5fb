// `sotto serve` for the end-to-end tests: started with its own arguments, ready once it
// prints its address (the models load before it does).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout, clearTimeout } from "node:timers";

/**
 * Starts `sotto serve` with `args`; resolves with the process, its address
 * (`http://127.0.0.1:PORT`) and the API token.
 * @param {string} sotto the `sotto` binary
 * @param {string[]} args what follows `sotto serve`
 */
export async function startServe(sotto, args) {
  const token = execFileSync(sotto, ["serve", "--print-token"], { encoding: "utf8" }).trim();
  const server = spawn(sotto, ["serve", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: server.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("sotto serve printed no address in 180 s")), 180_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    server.once("exit", (code) => reject(new Error(`sotto serve exited (${code})`)));
  });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  return { server, url, token };
}
