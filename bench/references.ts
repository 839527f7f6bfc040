// The nats-server binaries natter is measured against. `npm run bench` compares natter with each
// reference in the same run (natter's rounds are shared): by default Debian's 2.9.10 (the one on the
// PATH, or NATS_SERVER) and 2.12 when a build of it is found (NATS_SERVER_212, or where
// shared/tools/build-nats-server.sh writes it: ${TMPDIR:-/tmp}/nats-latest/nats-server-2.12.*).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface Reference {
  /** Short name used in tables and the JSON: "2.9.10", "2.12.0", or the binary's file name. */
  name: string;
  bin: string;
  /** The first line of `<bin> --version`. */
  version: string;
}

/** The nats-server a bench uses when nothing is asked for: NATS_SERVER, else the one on the PATH. */
export function defaultNatsServerBin(): string {
  return process.env.NATS_SERVER ?? Bun.which("nats-server") ?? "/usr/sbin/nats-server";
}

/** Where a 2.12 build is looked for: NATS_SERVER_212, then the build script's default output directory. */
export function find212(): string | null {
  const env = process.env.NATS_SERVER_212;
  if (env) return existsSync(env) ? env : null;
  const dir = join(process.env.TMPDIR || "/tmp", "nats-latest");
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => /^nats-server-2\.12\.\d+$/.test(n));
  } catch {
    return null;
  }
  // The newest patch release: 2.12.10 after 2.12.9.
  names.sort((a, b) => Number(a.split(".").pop()) - Number(b.split(".").pop()));
  return names.length ? join(dir, names[names.length - 1]!) : null;
}

function versionOf(bin: string): string | null {
  try {
    const p = Bun.spawnSync([bin, "--version"], { stdout: "pipe", stderr: "pipe" });
    if (p.exitCode !== 0) return null;
    return p.stdout.toString().trim().split("\n")[0] ?? null;
  } catch {
    return null;
  }
}

/** `nats-server: v2.12.0` → `2.12.0`. */
function shortVersion(version: string, bin: string): string {
  return /v?(\d+\.\d+\.\d+\S*)/.exec(version)?.[1] ?? bin.split("/").pop()!;
}

function reference(bin: string): Reference | string {
  const version = versionOf(bin);
  if (version === null) return `${bin} does not run (\`${bin} --version\` failed)`;
  return { name: shortVersion(version, bin), bin, version };
}

/**
 * Resolves `--against` items (or the default when null): "2.9.10" / "system" is the default nats-server,
 * "2.12" the 2.12 build, anything with a slash a path. Returns the references and the notes to print
 * (a default 2.12 that is absent is skipped with a note; one asked for by name is an error).
 */
export function resolveReferences(items: string[] | null): { refs: Reference[]; notes: string[]; errors: string[] } {
  const refs: Reference[] = [];
  const notes: string[] = [];
  const errors: string[] = [];
  const add = (r: Reference | string) => {
    if (typeof r === "string") errors.push(r);
    else if (!refs.some((x) => x.bin === r.bin)) refs.push(r);
  };
  for (const item of items ?? ["system", "2.12?"]) {
    if (item === "system" || item === "2.9.10" || item === "2.9") add(reference(defaultNatsServerBin()));
    else if (item === "2.12" || item === "2.12?") {
      const bin = find212();
      if (bin !== null) add(reference(bin));
      else if (item === "2.12?") {
        notes.push("nats-server 2.12 not found (NATS_SERVER_212, or ${TMPDIR:-/tmp}/nats-latest/nats-server-2.12.*, " +
          "built by shared/tools/build-nats-server.sh v2.12.0): measuring against the system nats-server only");
      } else errors.push("--against 2.12: no build found (set NATS_SERVER_212=/path/to/nats-server-2.12.x)");
    } else if (item.includes("/")) add(existsSync(item) ? reference(item) : `${item}: no such file`);
    else errors.push(`--against ${item}: not a known reference (2.9.10, 2.12, or a path to a nats-server binary)`);
  }
  // Two binaries with the same version (a path given twice under other names): keep the names apart.
  for (const r of refs) if (refs.filter((x) => x.name === r.name).length > 1) r.name = `${r.name} (${r.bin})`;
  return { refs, notes, errors };
}
