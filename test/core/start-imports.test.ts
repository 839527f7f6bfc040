// What a plain server loads at start (issue 20: idle RSS): the modules main.ts imports statically, followed
// through every static import. Whatever a configuration may not use is imported where it is used
// (src/optional-modules.ts, src/node-builtins.ts, the dynamic imports in main.ts), and stays out of this
// graph: each one loaded costs RSS for the life of the process, used or not.
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, test } from "vitest";

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
