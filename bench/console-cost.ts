// What an open console costs the server: polling at 1 s (what the pages do) against server-sent events
// (one stream per page, pushed once a second). Two ways to run it:
//
//   bun bench/console-cost.ts [--consoles 20] [--seconds 20]
//     starts natter with the console on, opens N consoles of each kind in turn on an idle server and
//     reports the server's CPU time (from /proc/<pid>/stat) per second with none, N polling, N SSE.
//   bun bench/console-cost.ts --attach 18299 --mode poll|sse [--consoles 1]
//     keeps N consoles open on whatever natter listens on monitoring port 18299, signing in again each
//     time the server changes: run next to `NATTER_BENCH_ARGS="-m 18299 -c <console.conf>" npm run bench -- --quick`.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { numberArg, stringArg } from "./args.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const USER = { user: "bench", password: "bench-pw" };
export const CONSOLE_CONF = `console { users: [ { user: ${USER.user}, password: ${USER.password}, role: readonly } ] }\n`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function signIn(base: string): Promise<string> {
  const r = await fetch(`${base}/console/api/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(USER) });
  if (r.status !== 200) throw new Error(`sign-in: ${r.status}`);
  return (r.headers.get("set-cookie") ?? "").split(";")[0]!;
}

/** One console polling like the Overview page: the new samples and /varz, once a second. */
async function pollConsole(base: string, cookie: string, stop: AbortSignal): Promise<void> {
  let since = 0;
  while (!stop.aborted) {
    const started = Date.now();
    const s = (await (await fetch(`${base}/console/api/series?since=${since}`, { headers: { Cookie: cookie }, signal: stop })).json()) as { t: number[] };
    if (s.t.length > 0) since = s.t.at(-1)!;
    await (await fetch(`${base}/varz`, { signal: stop })).text();
    await sleep(Math.max(0, 1000 - (Date.now() - started)));
  }
}

/** One console on the server-sent event stream (which carries the same samples). */
async function sseConsole(base: string, cookie: string, stop: AbortSignal): Promise<void> {
  const r = await fetch(`${base}/console/api/live`, { headers: { Cookie: cookie }, signal: stop });
  const reader = r.body!.getReader();
  while (!stop.aborted) {
    const { done } = await reader.read();
    if (done) return;
  }
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100 Hz)
}

async function measure(pid: number, base: string, mode: "none" | "poll" | "sse", consoles: number, seconds: number): Promise<number> {
  const ctl = new AbortController();
  const cookie = await signIn(base);
  const running = mode === "none" ? [] : Array.from({ length: consoles }, () => (mode === "poll" ? pollConsole : sseConsole)(base, cookie, ctl.signal).catch(() => {}));
  await sleep(2000); // settle
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const used = cpuSeconds(pid) - c0;
  const elapsed = (performance.now() - t0) / 1000;
  ctl.abort();
  await Promise.all(running);
  return (used / elapsed) * 100; // % of one core
}

async function attach(port: number, mode: "poll" | "sse", consoles: number): Promise<never> {
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    try {
      const cookie = await signIn(base);
      const ctl = new AbortController();
      await Promise.race(Array.from({ length: consoles }, () => (mode === "poll" ? pollConsole : sseConsole)(base, cookie, ctl.signal)));
      ctl.abort();
    } catch {
      // no server right now (between bench runs)
    }
    await sleep(100);
  }
}

if (import.meta.main) {
  const consoles = numberArg("consoles", process.argv.includes("--attach") ? 1 : 20);
  if (process.argv.includes("--attach")) {
    await attach(numberArg("attach", 18299), stringArg("mode", "poll") as "poll" | "sse", consoles);
  }
  const seconds = numberArg("seconds", 20);
  const dir = mkdtempSync(path.join(tmpdir(), "natter-console-cost-"));
  writeFileSync(path.join(dir, "console.conf"), CONSOLE_CONF);
  const httpPort = 18000 + Math.floor(Math.random() * 1000);
  const child = spawn(path.join(ROOT, "node_modules/.bin/bun"), [path.join(ROOT, "src/main.ts"), "-a", "127.0.0.1", "-p", "-1", "-m", String(httpPort), "-c", path.join(dir, "console.conf")], { stdio: "ignore" });
  try {
    const base = `http://127.0.0.1:${httpPort}`;
    for (let i = 0; i < 100; i++) {
      if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
      await sleep(100);
    }
    for (const mode of ["none", "poll", "sse", "none", "poll", "sse"] as const) {
      const pct = await measure(child.pid!, base, mode, consoles, seconds);
      console.log(`${mode === "none" ? "no console" : `${consoles} consoles, ${mode === "poll" ? "polling at 1 s" : "server-sent events"}`}: server CPU ${pct.toFixed(2)}% of one core`);
    }
  } finally {
    child.kill("SIGTERM");
  }
}
