// What a plain server loads at start (issue 20: idle RSS): the modules main.ts imports statically, followed
// through every static import. Whatever a configuration may not use is imported where it is used
// (src/optional-modules.ts, src/node-builtins.ts, the dynamic imports in main.ts), and stays out of this
// graph: each one loaded costs RSS for the life of the process, used or not.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, test } from "vitest";
import { freePort } from "../harness/free-port.ts";

const SRC = path.resolve(import.meta.dirname, "../../src");

/** Every module reached from `entry` by static imports (type-only imports are dropped, as at run time). */
function staticGraph(entry: string): Set<string> {
  const transpiler = new Bun.Transpiler({ loader: "ts" });
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!file.startsWith("/")) return; // a builtin or a package: a leaf here
    for (const i of transpiler.scanImports(readFileSync(file, "utf8").replace(/^#!.*/, ""))) {
      if (i.kind !== "import-statement") continue;
      visit(i.path.startsWith(".") ? path.resolve(path.dirname(file), i.path) : i.path);
    }
  };
  visit(entry);
  return seen;
}

/**
 * Starts natter (`bun --preload <fixture> src/main.ts ...args`), waits for "Server is ready" (20 s at most),
 * stops it with SIGTERM and returns what it wrote: the fixture reports on stdout at exit.
 */
async function runToReady(fixture: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const REPO = path.resolve(SRC, "..");
  const child = Bun.spawn([path.join(REPO, "node_modules/.bin/bun"), "--preload", path.join(import.meta.dirname, "fixtures", fixture), path.join(SRC, "main.ts"), ...args], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    let stderr = "";
    const reader = child.stderr.getReader();
    const deadline = Date.now() + 20_000;
    while (!stderr.includes("Server is ready")) {
      const next = await Promise.race([reader.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
      if (next === null || next.done) throw new Error(`natter did not start:\n${stderr}`);
      stderr += new TextDecoder().decode(next.value);
    }
    child.kill("SIGTERM");
    const stdout = await new Response(child.stdout).text();
    for (let next = await reader.read(); !next.done; next = await reader.read()) stderr += new TextDecoder().decode(next.value);
    return { stdout, stderr };
  } finally {
    child.kill("SIGKILL");
    await child.exited;
  }
}

test("a plain server's start imports none of what a configuration may not use", () => {
  const graph = staticGraph(path.join(SRC, "main.ts"));
  const names = [...graph].map((m) => (m.startsWith(SRC) ? path.relative(SRC, m) : m));
  // Node's fs, os and path: ~3.4 MiB together (src/node-builtins.ts loads them at first use).
  for (const builtin of ["fs", "os", "path", "crypto", "net", "tls", "stream", "zlib", "child_process", "worker_threads", "dgram", "http", "https"]) {
    expect(names, builtin).not.toContain(`node:${builtin}`);
    expect(names, builtin).not.toContain(builtin);
  }
  for (const pkg of ["@nats-io/nkeys", "hdr-histogram-js", "@msgpack/msgpack"]) expect(names, pkg).not.toContain(pkg);
  // The subsystems of src/optional-modules.ts, JetStream, the config reloader, the benchmark client.
  for (const dir of ["cluster/cluster.ts", "leaf/leafnodes.ts", "mqtt/mqtt.ts", "monitor/http.ts", "console/routes.ts", "accounts/imports.ts", "jetstream/start.ts", "config/reload.ts", "bench/cli.ts"]) {
    expect(names, dir).not.toContain(dir);
  }
});

// Two engine paths cost RSS the first time anything takes them (~1.5 and ~0.4 MiB here, mostly pages of Bun's
// executable): the DFG JIT compiler and the regular expression compiler. A start that is only loops over
// a few short strings takes neither; the first clients' traffic does, as it should. Guarded here because
// one hot loop or one regex at start brings them back unnoticed. BUN_JSC_useConcurrentJIT=0 makes every
// compile happen, and get reported, on the main thread before the next line runs.
test("a plain start (flags only) runs no regular expression and compiles nothing with the DFG JIT", async () => {
  const port = await freePort();
  const { stdout, stderr } = await runToReady("count-regexps.ts", ["-a", "127.0.0.1", "-p", String(port), "-m", "0", "--ws_port", "0"], {
    BUN_JSC_reportDFGCompileTimes: "1",
    BUN_JSC_useConcurrentJIT: "0",
  });
  const beforeReady = stderr.slice(0, stderr.indexOf("Server is ready"));
  expect(beforeReady.split("\n").filter((l) => l.includes("using DFG") || l.includes("using FTL"))).toEqual([]);
  expect(stdout, stderr).toContain("regexp runs: []");
});

// node:fs and node:path cost 2.8 MiB of RSS once loaded (src/node-builtins.ts). A config file that names no
// other kind of file (log, pid, TLS) needs neither: it is read and its includes found by
// src/config/config-file.ts.
test("a server started with a config file and an include loads neither node:fs nor node:path", async () => {
  const port = await freePort();
  const wsPort = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "natter-conf-"));
  try {
    mkdirSync(path.join(dir, "more"));
    writeFileSync(path.join(dir, "main.conf"), `listen: "127.0.0.1:${port}"\ninclude "more/ws.conf"\n`);
    writeFileSync(path.join(dir, "more", "ws.conf"), `websocket {\n  host: "127.0.0.1"\n  port: ${wsPort}\n  no_tls: true\n}\ninclude "../limits.conf"\n`);
    writeFileSync(path.join(dir, "limits.conf"), "max_payload: 65536\n");
    const { stdout, stderr } = await runToReady("count-builtins.ts", ["-c", path.join(dir, "main.conf")]);
    expect(stderr).toContain("Listening for websocket clients"); // the included file was read
    const loaded = JSON.parse(stdout.split("builtins loaded: ")[1] ?? "null") as string[] | null;
    expect(loaded, stdout).not.toBeNull();
    expect(loaded!.filter((id) => id === "node:fs" || id === "node:path" || id === "fs" || id === "path")).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
