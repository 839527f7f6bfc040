// `npm run build`: one natter binary per platform, each with the Bun runtime and every entry point
// inside (src/main.ts and the gossip worker), in dist/ with a SHA256SUMS file.
//
//   npm run build                                   # DEFAULT_TARGETS below
//   npm run build -- --target linux-arm64 [--target …] [--outdir DIR] [--force]
//
// Bun cross-compiles: the runtime of another target is fetched from the npm registry once
// (into Bun's install cache) and the bundle is appended to it. A binary is rebuilt only when its
// inputs changed: the hash of the sources, the lock file, Bun's version and the flags is kept
// next to it (dist/.natter-<target>.inputs), so tests can call buildTarget() in beforeAll for free.
//
// Flags chosen (measured with scripts/device-figures.ts --binary; README "Running on a device"):
// --minify --bytecode --format=esm --splitting. Bytecode makes the binary ~3.7 MiB bigger but cuts the time from
// exec to "Server is ready" from ~50 to ~22 ms on x64 and from 1.13 to 0.90 s for arm64 under qemu
// (JavaScriptCore skips parsing and compiling the bundle); --minify takes ~0.5 MiB and ~10 ms off.
// Bytecode needs --format=esm here: main.ts has top-level awaits, which the default cjs cannot hold.
// --splitting keeps what main.ts imports dynamically (JetStream, the cluster, MQTT, the monitor and console,
// the config reader, the benchmark client: src/optional-modules.ts) in chunks of their own, read only when
// a configuration imports them; in one bundle every start paid for all of them (issue 20, idle RSS with
// `bench/idle-rss.ts --against <binary>`: 45.3 → 39.4 MiB, and "Server is ready" 20 → 8.5 ms).
import { spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

export const REPO = path.resolve(import.meta.dirname, "..");
const BUN = path.join(REPO, "node_modules/.bin/bun");

/** natter's platform names → Bun's --target names. */
export const TARGETS = {
  "linux-x64": "bun-linux-x64",
  "linux-arm64": "bun-linux-arm64",
  "linux-x64-musl": "bun-linux-x64-musl",
  "linux-arm64-musl": "bun-linux-arm64-musl",
  // For x86-64 CPUs without AVX2 (before 2013, and many Atom/Celeron gateways): only when asked for.
  "linux-x64-baseline": "bun-linux-x64-baseline",
  "linux-x64-musl-baseline": "bun-linux-x64-musl-baseline",
} as const;
export type Target = keyof typeof TARGETS;
/** What `npm run build` makes without --target. */
export const DEFAULT_TARGETS: Target[] = ["linux-x64", "linux-arm64", "linux-x64-musl", "linux-arm64-musl"];

/** Every module a binary must carry as an entry point (the gossip worker is started by URL, so the bundler cannot find it). */
export const ENTRY_POINTS = ["src/main.ts", "src/cluster/gossip-worker.ts"];
export const BUILD_FLAGS = ["--minify", "--bytecode", "--format=esm", "--splitting"];

/** The target of the machine this runs on (glibc: Bun's own musl build is not what runs this script on Debian). */
export function hostTarget(): Target {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const musl = existsSync(`/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`) && !existsSync("/lib64/ld-linux-x86-64.so.2") && !existsSync("/lib/ld-linux-aarch64.so.1");
  return `linux-${arch}${musl ? "-musl" : ""}` as Target;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

/** A hash of everything that goes into a binary: the sources, the lock file, this script, Bun's version, the flags and the target. */
/** The console's bundled UI, written before each compile (git-ignored; never an input of the hash). */
export const CONSOLE_BUNDLE = path.join(REPO, "src/console/ui-bundle.generated.ts");
const CONSOLE_UI_ENTRY = path.join(REPO, "src/console/ui/main.tsx");

/**
 * Bundles the console's UI (src/console/ui: Preact, uPlot and the pages) with Bun's bundler into one
 * script and one style sheet, and writes them into CONSOLE_BUNDLE as strings, which the compile step
 * then embeds: the binary serves the console with nothing fetched from anywhere (src/console/assets.ts).
 */
export function bundleConsoleUi(): void {
  const outDir = path.join(REPO, "dist", `.console-${process.pid}-${randomUUID()}`);
  try {
    const r = spawnSync(BUN, ["build", CONSOLE_UI_ENTRY, "--target=browser", "--minify", "--format=esm", "--outdir", outDir], { cwd: REPO, encoding: "utf8", timeout: 120_000 });
    if (r.error || r.status !== 0) throw new Error(`bundling the console UI failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`);
    const js = readFileSync(path.join(outDir, "main.js"), "utf8");
    const css = readFileSync(path.join(outDir, "main.css"), "utf8");
    const text = `// Written by scripts/build.ts (bundleConsoleUi) for the compiled binary. Do not edit, do not commit.\nexport const CONSOLE_ASSETS = ${JSON.stringify({ js, css })};\n`;
    // Renamed into place: a build running at the same time never embeds half a file.
    const tmp = `${CONSOLE_BUNDLE}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, CONSOLE_BUNDLE);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

export function inputsHash(target: Target): string {
  const h = createHash("sha256");
  const bunVersion = spawnSync(BUN, ["--version"], { encoding: "utf8" }).stdout.trim();
  h.update(`${target}\0${bunVersion}\0${BUILD_FLAGS.join(" ")}\0${ENTRY_POINTS.join(" ")}\0`);
  const files = [...filesUnder(path.join(REPO, "src")).filter((f) => !f.startsWith(CONSOLE_BUNDLE)), ...["package.json", "package-lock.json", "scripts/build.ts"].map((f) => path.join(REPO, f))].sort();
  for (const f of files) {
    h.update(`${path.relative(REPO, f)}\0`);
    h.update(readFileSync(f));
  }
  return h.digest("hex");
}

export interface Built {
  file: string;
  /** true when the binary already there had the same inputs and was kept. */
  cached: boolean;
  ms: number;
}

/** Builds dist/natter-<target> (or into outDir); keeps an existing binary whose inputs are unchanged unless force. */
export function buildTarget(target: Target, opts: { outDir?: string; force?: boolean } = {}): Built {
  const started = performance.now();
  const outDir = opts.outDir ?? path.join(REPO, "dist");
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `natter-${target}`);
  const stamp = path.join(outDir, `.natter-${target}.inputs`);
  const hash = inputsHash(target);
  if (!opts.force && existsSync(file) && existsSync(stamp) && readFileSync(stamp, "utf8") === hash) {
    return { file, cached: true, ms: performance.now() - started };
  }
  // Written under a temporary name and renamed: a test running the binary never sees it half-written.
  const tmp = path.join(outDir, `.natter-${target}.${process.pid}.${randomUUID()}.tmp`);
  bundleConsoleUi();
  const args = [
    "build", "--compile", `--target=${TARGETS[target]}`, ...BUILD_FLAGS,
    // natter -v names the platform the binary was built for (src/main.ts).
    "--define", `NATTER_BUILD_PLATFORM=${JSON.stringify(target)}`,
    ...ENTRY_POINTS, "--outfile", tmp,
  ];
  const r = spawnSync(BUN, args, { cwd: REPO, encoding: "utf8", timeout: 300_000 });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`bun ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`);
  }
  renameSync(tmp, file);
  writeFileSync(stamp, hash);
  return { file, cached: false, ms: performance.now() - started };
}

/** SHA256SUMS (sha256sum's format, `sha256sum -c SHA256SUMS` checks it) for every natter-* binary in dir. */
export function writeChecksums(dir: string): string {
  const lines = readdirSync(dir)
    .filter((n) => /^natter-linux-[a-z0-9-]+$/.test(n))
    .sort()
    .map((n) => `${createHash("sha256").update(readFileSync(path.join(dir, n))).digest("hex")}  ${n}\n`);
  const file = path.join(dir, "SHA256SUMS");
  writeFileSync(file, lines.join(""));
  return file;
}

function parseArgs(argv: string[]): { targets: Target[]; outDir: string; force: boolean } {
  const targets: Target[] = [];
  let outDir = path.join(REPO, "dist");
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? fail(`${name} needs a value`);
    if (name === "--target") {
      const t = value();
      if (t === "host") targets.push(hostTarget());
      else if (t in TARGETS) targets.push(t as Target);
      else fail(`unknown target ${t} (one of: ${Object.keys(TARGETS).join(", ")}, host)`);
    } else if (name === "--outdir") outDir = path.resolve(value());
    else if (name === "--force") force = true;
    else fail(`unknown argument ${argv[i]}`);
  }
  return { targets: targets.length > 0 ? targets : DEFAULT_TARGETS, outDir, force };
}

function fail(message: string): never {
  process.stderr.write(`build: ${message}\n`);
  process.exit(1);
}

if (import.meta.main) {
  const { targets, outDir, force } = parseArgs(process.argv.slice(2));
  for (const target of targets) {
    const b = buildTarget(target, { outDir, force });
    const mib = (statSync(b.file).size / 1024 / 1024).toFixed(1);
    console.log(`${path.relative(process.cwd(), b.file)}  ${mib} MiB  ${b.cached ? "(unchanged, kept)" : `(${(b.ms / 1000).toFixed(1)} s)`}`);
  }
  // dist/natter: the binary for this machine (when this run built it), where the README's `natter` is.
  const host = path.join(outDir, `natter-${hostTarget()}`);
  if (targets.includes(hostTarget())) {
    const tmp = path.join(outDir, `.natter.${process.pid}.tmp`);
    copyFileSync(host, tmp);
    renameSync(tmp, path.join(outDir, "natter"));
    console.log(`${path.relative(process.cwd(), path.join(outDir, "natter"))}  (copy of natter-${hostTarget()})`);
  }
  console.log(path.relative(process.cwd(), writeChecksums(outDir)));
}
