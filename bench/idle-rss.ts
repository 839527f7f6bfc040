// Idle RSS (issue 20): what a natter holds with no configuration, and what each module it may load costs.
//
//   bun bench/idle-rss.ts [--starts N] [--against PATH/src/main.ts|PATH/natter.js|BINARY ...] [--modules]
//
// Starts `bun src/main.ts -a 127.0.0.1 -p <free port>` N times (default 5), reads VmRSS 1 s after the port
// answers, prints the median [min–max]. --against (repeatable): the same for another natter's main.ts (an
// older commit's worktree), a bundle (.js) or a compiled binary (run as is), rounds alternating, same run. --modules: the RSS each optional module (src/optional-modules.ts) and
// the Bun builtins natter uses add when imported on top of what a plain server loads (Bun.gc(true) before
// each reading, a fresh process per module, median of 3): what making one of them lazy would save. A module
// costs less on top of that base than in a bare process (the base already paid for what they share).
import { spawn } from "bun";
// No node:fs or node:path here: the --child processes measure on top of what they import (src/node-builtins.ts).

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

async function rssKiB(pid: number | "self"): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await Bun.file(`/proc/${pid}/status`).text())![1]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (kib: number) => (kib / 1024).toFixed(1);
const spread = (xs: number[]) => `${mib(median(xs))} MiB [${mib(Math.min(...xs))}–${mib(Math.max(...xs))}]`;

// --child: import the modules named and print this process's RSS (one module measured per process).
// Nothing else is imported first (bench/servers.ts would bring node:net and more into the base).
if (args[0] === "--child") {
  for (const m of args.slice(1)) {
    // Two costs that are not modules: Date's local time (ICU's time zones) and the process.stderr stream.
    if (m === "@local-time") new Date().getHours();
    else if (m === "@process.stderr") process.stderr.write("");
    else await import(m);
  }
  Bun.gc(true);
  await Bun.sleep(100);
  Bun.gc(true);
  console.log(await rssKiB("self"));
  process.exit(0);
}

const { freePort, ROOT } = await import("./servers.ts");
const join = (...parts: string[]) => parts.join("/");
const BUN = join(ROOT, "node_modules", ".bin", "bun");

/** One start of `main` with no configuration: VmRSS (KiB) 1 s after its client port answers. */
async function idleStart(main: string): Promise<number> {
  const port = await freePort();
  const command = /\.[cm]?[jt]s$/.test(main) ? [BUN, main] : [main];
  const child = spawn([...command, "-a", "127.0.0.1", "-p", String(port)], { stdout: "ignore", stderr: "ignore" });
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
        socket.end();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`${main} did not listen on ${port} within 20 s`);
        await Bun.sleep(50);
      }
    }
    await Bun.sleep(1000);
    return await rssKiB(child.pid);
  } finally {
    child.kill();
    await child.exited;
  }
}

async function childRss(modules: string[]): Promise<number> {
  const child = spawn([BUN, import.meta.filename, "--child", ...modules], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(child.stdout).text();
  await child.exited;
  return Number(out.trim());
}

const starts = Number(flag("--starts") ?? 5);
const mains: [string, string][] = [["natter", join(ROOT, "src", "main.ts")]];
args.forEach((a, i) => {
  if (a === "--against" && args[i + 1] !== undefined) mains.push([`other${mains.length}`, args[i + 1]!]);
});
const samples = new Map<string, number[]>(mains.map(([name]) => [name, []]));
for (let round = 0; round < starts; round++) {
  for (const [name, main] of round % 2 === 0 ? mains : [...mains].reverse()) samples.get(name)!.push(await idleStart(main));
}
for (const [name, main] of mains) console.log(`idle RSS ${name.padEnd(7)} ${spread(samples.get(name)!)}  (${starts} starts of ${main})`);

if (args.includes("--modules")) {
  // What a plain server loads: the base every module's cost is measured on top of.
  const src = (p: string) => join(ROOT, "src", p);
  const base = [src("options.ts"), src("log.ts"), src("server.ts"), src("config/lifecycle.ts")];
  const candidates: [string, string[]][] = [
    ["cluster (routes, gossip)", [src("cluster/cluster.ts")]],
    ["leaf nodes", [src("leaf/leafnodes.ts")]],
    ["MQTT", [src("mqtt/mqtt.ts")]],
    ["monitor + console", [src("monitor/http.ts")]],
    ["account imports", [src("accounts/imports.ts")]],
    ["allow_non_tls TLS (node:tls)", [src("transport/sniffed-tls.ts")]],
    ["config reloader (+ config file reader)", [src("config/reload.ts")]],
    ["JetStream", [src("jetstream/start.ts")]],
    ["@nats-io/nkeys (+ tweetnacl)", ["@nats-io/nkeys"]],
    ["node:fs, node:os, node:path", ["node:fs", "node:os", "node:path"]],
    ["node:crypto", ["node:crypto"]],
    ["node:net", ["node:net"]],
    ["Date's local time (ICU time zones)", ["@local-time"]],
    ["process.stderr", ["@process.stderr"]],
  ];
  const baseRss = median([await childRss(base), await childRss(base), await childRss(base)]);
  console.log(`\nmodules a plain server loads (${base.length} entry points): ${mib(baseRss)} MiB in a process that imports only them`);
  for (const [what, modules] of candidates) {
    const rss = median([await childRss([...base, ...modules]), await childRss([...base, ...modules]), await childRss([...base, ...modules])]);
    console.log(`  + ${what.padEnd(40)} +${mib(rss - baseRss)} MiB`);
  }
}
