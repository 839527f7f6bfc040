// Command-line options of `npm run bench`.
import { ALL_SIZES, SCENARIOS, findScenario, type Scenario } from "./scenarios.ts";
import { SERVER_KINDS, type ServerKind } from "./servers.ts";

export interface BenchOptions {
  rounds: number;
  warmupMs: number;
  durationMs: number; // timed phase of a throughput run
  latencyMs: number; // timed phase of a request-reply run
  scenarios: Scenario[];
  sizes: number[] | null; // null: each scenario's own sizes
  servers: [ServerKind, ServerKind]; // A and B; ratios are A/B
  out: string | null; // JSON path; default bench/results/<timestamp>.json
  dryRun: boolean;
  /** The nats-server references (bench/references.ts): null = the system one and 2.12 when built. */
  against: string[] | null;
  /** natter's side as `--procs N` (src/workers/); 1 = one process, as a user starts it by default. */
  natterProcs: number;
}

export const USAGE = `usage: npm run bench -- [options]

  --quick              1 round, short runs, 128 B only: a smoke test (~30 s)
  --full               8 rounds, longer runs (~20 min)
  --rounds N           rounds per server (default 3); servers alternate A B B A ...
  --scenario a,b       only these scenarios: ${SCENARIOS.map((s) => s.name).join(", ")}
  --size 16,128        only these payload sizes in bytes (default 16,128,1024; req-reply 128)
  --duration SECONDS   timed phase per throughput run (default 2)
  --warmup SECONDS     untimed warm-up per run (default 0.5)
  --against a,b        the nats-servers to compare with, in the same run: 2.9.10 (the system one:
                       NATS_SERVER or nats-server on the PATH), 2.12 (NATS_SERVER_212 or
                       \${TMPDIR:-/tmp}/nats-latest/nats-server-2.12.*), or a path to a binary.
                       Default: 2.9.10, and 2.12 when it is built (else a note says it was skipped)
  --nats-server PATH   compare with this nats-server binary only (= --against PATH)
  --natter-procs N     run natter as --procs N (workers on one port; several publishers are spread
                       over the workers; CPU and RSS count the supervisor and its workers)
  --out FILE           JSON results file (default bench/results/<timestamp>.json)
  --dry-run            print the plan and exit
`;

function fail(msg: string): never {
  console.error(`bench: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function list(v: string | undefined, flag: string): string[] {
  if (!v) fail(`${flag} needs a value`);
  return v.split(",").map((s) => s.trim()).filter(Boolean);
}

function positive(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (!v || !Number.isFinite(n) || n <= 0) fail(`${flag} needs a positive number`);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    rounds: 3,
    warmupMs: 500,
    durationMs: 2000,
    latencyMs: 3000,
    scenarios: SCENARIOS,
    sizes: null,
    servers: ["natter", "nats"],
    out: null,
    dryRun: false,
    against: null,
    natterProcs: 1,
  };
  let explicitRounds = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case "--quick":
        if (!explicitRounds) o.rounds = 1;
        o.warmupMs = 250;
        o.durationMs = 1000;
        o.latencyMs = 1000;
        o.sizes ??= [128];
        break;
      case "--full":
        if (!explicitRounds) o.rounds = 8;
        o.durationMs = 3000;
        o.latencyMs = 4000;
        break;
      case "--rounds":
        o.rounds = Math.round(positive(v, a));
        explicitRounds = true;
        i++;
        break;
      case "--scenario":
      case "--scenarios":
        o.scenarios = list(v, a).map((name) => findScenario(name) ?? fail(`unknown scenario "${name}"`));
        i++;
        break;
      case "--size":
      case "--sizes":
        o.sizes = list(v, a).map((s) => {
          const n = Number(s);
          if (!Number.isInteger(n) || n < 8) fail(`bad size "${s}" (whole bytes, at least 8: the sequence number)`);
          return n;
        });
        i++;
        break;
      case "--duration":
        o.durationMs = o.latencyMs = Math.round(positive(v, a) * 1000);
        i++;
        break;
      case "--warmup":
        o.warmupMs = Math.round(Number(v) * 1000);
        if (!(o.warmupMs >= 0)) fail("--warmup needs a number of seconds");
        i++;
        break;
      case "--against":
        o.against = [...(o.against ?? []), ...list(v, a)];
        i++;
        break;
      case "--nats-server":
        if (!v) fail("--nats-server needs the path of a nats-server binary");
        o.against = [...(o.against ?? []), v.includes("/") ? v : (Bun.which(v) ?? `./${v}`)];
        i++;
        break;
      case "--natter-procs":
        o.natterProcs = Math.round(positive(v, a));
        i++;
        break;
      case "--out":
        if (!v) fail("--out needs a file");
        o.out = v;
        i++;
        break;
      // Not in the usage text: validation of the harness itself, e.g. --servers nats,nats.
      case "--servers": {
        const names = list(v, a);
        if (names.length !== 2) fail("--servers takes two names, A,B");
        for (const n of names) if (!SERVER_KINDS.includes(n as ServerKind)) fail(`unknown server "${n}"`);
        o.servers = names as [ServerKind, ServerKind];
        i++;
        break;
      }
      case "--dry-run":
        o.dryRun = true;
        break;
      case "-h":
      case "--help":
        console.log(USAGE);
        process.exit(0);
      default:
        fail(`unknown option "${a}"`);
    }
  }
  return o;
}

export function sizesFor(o: BenchOptions, s: Scenario): number[] {
  return o.sizes ?? s.sizes ?? ALL_SIZES;
}
