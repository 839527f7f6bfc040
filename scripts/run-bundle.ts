// bin/natter runs natter from a bundle of the sources rather than from the ~80 TypeScript modules a start
// loads (issue 20: idle RSS). Every module Bun transpiles and links costs RSS for the life of the process
// (its record, its transpiled text, the transpiler's own code paged in): `bun bench/idle-rss.ts --against
// <bundle>/main.js` measured 38.4 → 36.3 MiB idle. The bundle is split (--splitting) so that what a
// configuration may not use (src/optional-modules.ts, JetStream, the config reader…) stays in chunks
// read only when imported, as from the sources; packages stay in node_modules (--packages=external).
//
//   bun scripts/run-bundle.ts OUTDIR     (bin/natter calls it when OUTDIR/main.js is missing)
//
// OUTDIR is named by bin/natter after the sources' names, sizes and times: an edit makes a new bundle at
// the next start, and a bundle is never rewritten in place (a server running from it may still import
// one of its chunks, at a reload or a first use). Written under a temporary name and renamed: two starts
// at once never run a half-written bundle. The console's UI and the gossip worker run from the sources
// (NATTER_SOURCE_ROOT). Tests and `npx bun src/main.ts` run the sources directly.
import { existsSync, renameSync, rmSync } from "node:fs";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "..");
const SRC = path.join(REPO, "src");

export async function bundleSources(outDir: string): Promise<void> {
  if (existsSync(path.join(outDir, "main.js"))) return;
  const tmp = `${outDir}.${process.pid}.tmp`;
  const result = await Bun.build({
    entrypoints: [path.join(SRC, "main.ts")],
    outdir: tmp,
    target: "bun",
    format: "esm",
    splitting: true,
    packages: "external",
    define: { NATTER_SOURCE_ROOT: JSON.stringify(SRC) },
    plugins: [{
      // The compiled binary's embedded console UI (scripts/build.ts writes it); never read here (see UI_ENTRY).
      name: "no-embedded-console",
      setup(build) {
        build.onResolve({ filter: /ui-bundle\.generated\.ts$/ }, (args) => ({ path: args.path, external: true }));
      },
    }],
  });
  if (!result.success) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(result.logs.map(String).join("\n"));
  }
  try {
    renameSync(tmp, outDir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(path.join(outDir, "main.js"))) throw error; // another start made it first: fine
  }
}

if (import.meta.main) {
  const outDir = process.argv[2];
  if (!outDir) {
    process.stderr.write("usage: bun scripts/run-bundle.ts OUTDIR\n");
    process.exit(2);
  }
  try {
    await bundleSources(path.resolve(outDir));
  } catch (error) {
    process.stderr.write(`natter: bundling the sources failed: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
