// The figures in README "Running on a device": for each binary in dist/ that runs here (scripts/foreign.ts),
// the time from exec to "Server is ready" and the resident memory once ready, without and with JetStream
// (-js -sd), the median of --runs starts.
//
//   npm run build && bun scripts/device-figures.ts [--runs 5] [--binary FILE …]
//
// --binary [TARGET:]FILE measures given binaries instead (how the build flags were chosen: scripts/build.ts).
// Under qemu the memory is qemu's process (the emulator and its translated code), not a device's figure.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_TARGETS, REPO, hostTarget, type Target } from "./build.ts";
import { runnerFor } from "./foreign.ts";

interface Start {
  readyMs: number;
  rssKiB: number;
}

/** Starts the command on port 0, waits for "Server is ready", reads VmRSS, stops it with SIGTERM. */
function startOnce(command: string[], extra: string[]): Promise<Start> {
  const store = mkdtempSync(path.join(os.tmpdir(), "natter-figures-"));
  const args = [...command.slice(1), "-a", "127.0.0.1", "-p", "-1", ...extra.map((a) => a.replace("$STORE", store))];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command[0]!, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let readyMs = -1;
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (readyMs < 0 && out.includes("Server is ready")) {
        readyMs = performance.now() - t0;
        const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        child.kill("SIGTERM");
        child.once("exit", (code) => {
          clearTimeout(timer);
          rmSync(store, { recursive: true, force: true });
          if (code !== 0) reject(new Error(`exit ${code}:\n${out}`));
          else resolve({ readyMs, rssKiB: Number(rss?.[1] ?? 0) });
        });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code, signal) => {
      if (readyMs < 0) {
        clearTimeout(timer);
        reject(new Error(`exited (${code ?? signal}) before ready:\n${out}`));
      }
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(command: string[], extra: string[], runs: number): Promise<Start> {
  const starts: Start[] = [];
  for (let i = 0; i < runs; i++) starts.push(await startOnce(command, extra));
  return { readyMs: median(starts.map((s) => s.readyMs)), rssKiB: median(starts.map((s) => s.rssKiB)) };
}

const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf("--runs") + 1] ?? 5) || 5;
const given = argv.flatMap((a, i) => (argv[i - 1] === "--binary" ? [a] : []));
const rows: { name: string; size: number; how: string; command: string[] }[] = [];
if (given.length > 0) {
  for (const g of given) {
    const [target, file] = g.includes(":") ? (g.split(":", 2) as [Target, string]) : [hostTarget(), g];
    const runner = runnerFor(target, path.resolve(file));
    if ("skip" in runner) throw new Error(`${file}: ${runner.skip}`);
    rows.push({ name: path.basename(file), size: statSync(file).size, how: runner.how, command: runner.command });
  }
} else {
  for (const target of DEFAULT_TARGETS) {
    const file = path.join(REPO, "dist", `natter-${target}`);
    const runner = runnerFor(target, file);
    if ("skip" in runner) {
      console.log(`natter-${target}: not run (${runner.skip})`);
      continue;
    }
    rows.push({ name: `natter-${target}`, size: statSync(file).size, how: runner.how, command: runner.command });
  }
}

console.log(`| binary | size | run here | ready (core) | RSS (core) | ready (-js -sd) | RSS (-js -sd) |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const r of rows) {
  const core = await measure(r.command, [], runs);
  const js = await measure(r.command, ["-js", "-sd", "$STORE"], runs);
  const mib = (n: number) => `${(n / 1024).toFixed(0)} MiB`;
  console.log(
    `| ${r.name} | ${(r.size / 1024 / 1024).toFixed(1)} MiB | ${r.how} | ${core.readyMs.toFixed(0)} ms | ${mib(core.rssKiB)} | ${js.readyMs.toFixed(0)} ms | ${mib(js.rssKiB)} |`,
  );
}
