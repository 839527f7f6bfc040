// `npm run bench:scale`: how cost grows, natter next to nats-server. Sections (all by default):
//
//   fanout   throughput and server CPU per million messages vs fan-out 1 / 10 / 100 / 1000
//   trie     publish (= match) rate vs subscriptions in the trie 1k..1M, literal and wildcard, every
//            message on a subject never seen before (no cache can hold them)
//   memory   RSS of an idle server, of 10k idle connections, of 1M subscriptions (per unit)
//   soak     60 s at a steady rate: RSS and latency p99 per second must stay flat
//
// Every run starts its server fresh on free ports; servers alternate A B, B A per round; figures are
// medians with min–max. The C load generator counts every message: loss or duplicates fail the run.
// Tables are printed, JSON and an SVG plot are written under bench/results/ (gitignored).
import { writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { killChildrenOnExit } from "../children.ts";
import { buildLoadgen, runLoadgen, type LoadgenResult } from "../loadgen.ts";
import { writeJson, BUSY_OTHER_LOAD } from "../report.ts";
import { fdLimits, logTail, ROOT, serverTitle, serverVersion, startServer, type ServerKind } from "../servers.ts";
import { spread, type Spread } from "../stats.ts";
import { plotSvg } from "./plot.ts";

const SECTIONS = ["fanout", "trie", "memory", "soak"] as const;
type Section = (typeof SECTIONS)[number];

interface ScaleOptions {
  sections: Section[];
  rounds: number;
  durationMs: number;
  warmupMs: number;
  soakSeconds: number;
  soakRate: number;
  soakSubs: number;
  fanouts: number[];
  trieSizes: number[];
  idleConns: number;
  servers: ServerKind[];
}

const USAGE = `usage: npm run bench:scale -- [options]

  --only a,b           sections: ${SECTIONS.join(", ")} (default all, ~10 min)
  --quick              1 round, 1 s runs, trie up to 100k, 2k idle connections, 10 s soak (~2 min)
  --rounds N           rounds per server for fanout and trie (default 3)
  --duration SECONDS   timed phase of each throughput run (default 2)
  --soak SECONDS       soak length (default 60)
  --soak-rate N        soak messages per second (default 20000)
  --conns N            idle connections for the memory section (default 10000)
  --servers a,b        which servers (default natter,nats)
`;

function parse(argv: string[]): ScaleOptions {
  const o: ScaleOptions = {
    sections: [...SECTIONS],
    rounds: 3,
    durationMs: 2000,
    warmupMs: 500,
    soakSeconds: 60,
    soakRate: 20_000,
    soakSubs: 10,
    fanouts: [1, 10, 100, 1000],
    trieSizes: [1_000, 10_000, 100_000, 1_000_000],
    idleConns: 10_000,
    servers: ["natter", "nats"],
  };
  const fail = (m: string): never => {
    console.error(`bench:scale: ${m}\n\n${USAGE}`);
    process.exit(2);
  };
  const num = (v: string | undefined, f: string) => {
    const n = Number(v);
    if (!v || !Number.isFinite(n) || n <= 0) fail(`${f} needs a positive number`);
    return n;
  };
  let explicitRounds = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case "--only":
        o.sections = (v ?? fail("--only needs a list")).split(",").map((s) => (SECTIONS.includes(s as Section) ? (s as Section) : fail(`unknown section ${s}`)));
        i++;
        break;
      case "--quick":
        if (!explicitRounds) o.rounds = 1;
        o.durationMs = 1000;
        o.warmupMs = 250;
        o.soakSeconds = 10;
        o.trieSizes = [1_000, 10_000, 100_000];
        o.idleConns = 2_000;
        break;
      case "--rounds":
        o.rounds = Math.round(num(v, a));
        explicitRounds = true;
        i++;
        break;
      case "--duration":
        o.durationMs = Math.round(num(v, a) * 1000);
        i++;
        break;
      case "--soak":
        o.soakSeconds = Math.round(num(v, a));
        i++;
        break;
      case "--soak-rate":
        o.soakRate = num(v, a);
        i++;
        break;
      case "--conns":
        o.idleConns = Math.round(num(v, a));
        i++;
        break;
      case "--servers":
        o.servers = (v ?? fail("--servers needs a list")).split(",") as ServerKind[];
        i++;
        break;
      case "-h":
      case "--help":
        console.log(USAGE);
        process.exit(0);
      default:
        fail(`unknown option ${a}`);
    }
  }
  return o;
}

const opts = parse(process.argv.slice(2));
killChildrenOnExit();

const bin = buildLoadgen();
const started = new Date();
const failures: string[] = [];
const title = (k: ServerKind) => serverTitle(k);

interface Run {
  server: ServerKind;
  round: number;
  ok: boolean;
  error?: string;
  result?: LoadgenResult;
}

/** One fresh server, one load generator run. */
async function runOnce(kind: ServerKind, args: string[], timeoutMs: number, fdLimit?: number): Promise<Run & { round: number }> {
  let server;
  try {
    server = await startServer(kind, false, { fdLimit });
  } catch (e) {
    return { server: kind, round: 0, ok: false, error: (e as Error).message.split("\n")[0] };
  }
  try {
    const result = await runLoadgen(bin, ["--port", String(server.port), "--server-pid", String(server.pid), ...args], timeoutMs);
    if (!result.ok) {
      await server.stop(true);
      return { server: kind, round: 0, ok: false, error: `${result.error} (log: ${server.logFile.slice(ROOT.length + 1)})\n${logTail(server.logFile, 5)}`, result };
    }
    await server.stop();
    return { server: kind, round: 0, ok: true, result };
  } catch (e) {
    await server.stop(true);
    return { server: kind, round: 0, ok: false, error: (e as Error).message };
  }
}

/** Runs every server `rounds` times, alternating the order each round. */
async function alternate(label: string, rounds: number, args: string[], timeoutMs: number, show: (r: LoadgenResult) => string, fdLimit?: number): Promise<Run[]> {
  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? opts.servers : [...opts.servers].reverse();
    for (const kind of order) {
      const run = { ...(await runOnce(kind, args, timeoutMs, fdLimit)), round };
      runs.push(run);
      const busy = (run.result?.cpu?.other ?? 0) > BUSY_OTHER_LOAD ? `  [busy machine: other ${run.result!.cpu!.other.toFixed(0)}%]` : "";
      const text = run.ok ? show(run.result!) + busy : `FAILURE: ${run.error}`;
      if (!run.ok) failures.push(`${label}, ${title(kind)}, round ${round + 1}: ${run.error}`);
      console.log(`  ${label.padEnd(26)} r${round + 1} ${title(kind).padEnd(12)} ${text}`);
    }
  }
  return runs;
}

function stat(runs: Run[], kind: ServerKind, f: (r: LoadgenResult) => number): Spread | null {
  const mine = runs.filter((r) => r.server === kind);
  if (mine.length === 0 || mine.some((r) => !r.ok)) return null;
  return spread(mine.map((r) => f(r.result!)));
}

function busyRuns(runs: Run[]): number {
  return runs.filter((r) => (r.result?.cpu?.other ?? 0) > BUSY_OTHER_LOAD).length;
}

function num(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return (n / 1e6).toPrecision(3) + "M";
  if (abs >= 1e4) return (n / 1e3).toPrecision(3) + "k";
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function cell(s: Spread | null, f: (n: number) => string = num): string {
  if (!s) return "FAILURE";
  return s.n > 1 ? `${f(s.median)} [${f(s.min)}–${f(s.max)}]` : f(s.median);
}

function table(header: string[], rows: string[][]): string {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join("  ").trimEnd();
  return [fmt(header), width.map((w) => "-".repeat(w)).join("  "), ...rows.map(fmt)].join("\n");
}

const ratio = (a: Spread | null, b: Spread | null) => (a && b && b.median > 0 ? (a.median / b.median).toFixed(2) : "-");
const [A, B] = [opts.servers[0]!, opts.servers[1] ?? opts.servers[0]!];
const out: Record<string, unknown> = {};
const report: string[] = [];

// ---- fan-out ------------------------------------------------------------------------------------
// Server CPU per million delivered messages: CPU seconds the server used in the timed phase / millions delivered.
const cpuPerM = (r: LoadgenResult) => ((r.cpu!.server / 100) * (r.seconds as number)) / ((r.delivered as number) / 1e6);

async function fanoutSection(): Promise<void> {
  console.log(`\n== fan-out: one publisher, 1..1000 subscribers, 128 B, ${opts.rounds} round(s)`);
  const rows: Record<string, unknown>[] = [];
  for (const subs of opts.fanouts) {
    const args = ["--mode", "throughput", "--subs", String(subs), "--size", "128", "--warmup-ms", String(opts.warmupMs), "--duration-ms", String(opts.durationMs)];
    const runs = await alternate(`fan-out ${subs}`, opts.rounds, args, opts.durationMs + 120_000,
      (r) => `${num(r.msgs_per_sec as number)} msgs/s delivered, server ${r.cpu!.server.toFixed(0)}% CPU, ${cpuPerM(r).toFixed(3)} CPU s per M msgs`, subs + 200);
    rows.push({
      subs,
      msgs_per_sec: { [A]: stat(runs, A, (r) => r.msgs_per_sec as number), [B]: stat(runs, B, (r) => r.msgs_per_sec as number) },
      cpu_s_per_million: { [A]: stat(runs, A, cpuPerM), [B]: stat(runs, B, cpuPerM) },
      server_cpu_pct: { [A]: stat(runs, A, (r) => r.cpu!.server), [B]: stat(runs, B, (r) => r.cpu!.server) },
      busy_runs: busyRuns(runs),
      runs,
    });
  }
  out.fanout = rows;
  type S = Record<string, Spread | null>;
  report.push(`\nThroughput vs fan-out (128 B, one publisher; msgs/s = deliveries, all subscribers together; CPU s/M = server CPU seconds per million deliveries)`);
  report.push(table(
    ["fan-out", `${title(A)} msgs/s`, `${title(B)} msgs/s`, "ratio", `${title(A)} CPU s/M`, `${title(B)} CPU s/M`, `${title(A)} CPU %`, `${title(B)} CPU %`, "busy runs"],
    rows.map((r) => {
      const m = r.msgs_per_sec as S, c = r.cpu_s_per_million as S, p = r.server_cpu_pct as S;
      const f3 = (n: number) => n.toFixed(3);
      const f0 = (n: number) => n.toFixed(0);
      return [`1:${r.subs}`, cell(m[A]!), cell(m[B]!), ratio(m[A]!, m[B]!), cell(c[A]!, f3), cell(c[B]!, f3), cell(p[A]!, f0), cell(p[B]!, f0), String(r.busy_runs)];
    }),
  ));
}

// ---- trie ---------------------------------------------------------------------------------------
async function trieSection(): Promise<void> {
  console.log(`\n== trie: publish/match rate vs subscriptions (16 B, every subject new), ${opts.rounds} round(s)`);
  const rows: Record<string, unknown>[] = [];
  for (const kind of ["literal", "wildcard"]) {
    for (const n of opts.trieSizes) {
      const args = ["--mode", "trie", "--trie-subs", String(n), "--trie-kind", kind, "--size", "16", "--warmup-ms", String(opts.warmupMs), "--duration-ms", String(opts.durationMs)];
      const runs = await alternate(`trie ${kind} ${num(n)}`, opts.rounds, args, opts.durationMs + 180_000,
        (r) => `${num(r.matches_per_sec as number)} matches/s, subscribed in ${(r.subscribe_seconds as number).toFixed(2)} s, RSS +${(((r.rss_subscribed_kb as number) - (r.rss_before_kb as number)) / 1024).toFixed(0)} MiB`);
      const perSub = (r: LoadgenResult) => (((r.rss_subscribed_kb as number) - (r.rss_before_kb as number)) * 1024) / n;
      rows.push({
        kind,
        subs: n,
        matches_per_sec: { [A]: stat(runs, A, (r) => r.matches_per_sec as number), [B]: stat(runs, B, (r) => r.matches_per_sec as number) },
        subs_per_sec: { [A]: stat(runs, A, (r) => r.subs_per_sec as number), [B]: stat(runs, B, (r) => r.subs_per_sec as number) },
        bytes_per_sub: { [A]: stat(runs, A, perSub), [B]: stat(runs, B, perSub) },
        cpu_s_per_million: { [A]: stat(runs, A, cpuPerM), [B]: stat(runs, B, cpuPerM) },
        busy_runs: busyRuns(runs),
        runs,
      });
    }
  }
  out.trie = rows;
  type S = Record<string, Spread | null>;
  report.push(`\nPublish rate vs subscriptions in the trie (16 B; every message on a new subject m.<hi>.<lo>.<seq>, each matching exactly one`);
  report.push(`subscription: literal = N x m.<hi>.<lo>.x plus one m.> ; wildcard = N x m.<hi>.<lo>.*). matches/s = messages published and routed per second.`);
  report.push(table(
    ["trie", `${title(A)} matches/s`, `${title(B)} matches/s`, "ratio", `${title(A)} SUBs/s`, `${title(B)} SUBs/s`, `${title(A)} B/sub`, `${title(B)} B/sub`, "busy runs"],
    rows.map((r) => {
      const m = r.matches_per_sec as S, s = r.subs_per_sec as S, b = r.bytes_per_sub as S;
      const f0 = (n: number) => n.toFixed(0);
      return [`${r.kind} ${num(r.subs as number)}`, cell(m[A]!), cell(m[B]!), ratio(m[A]!, m[B]!), cell(s[A]!), cell(s[B]!), cell(b[A]!, f0), cell(b[B]!, f0), String(r.busy_runs)];
    }),
  ));
}

// ---- memory -------------------------------------------------------------------------------------
async function memorySection(): Promise<void> {
  const limits = fdLimits();
  let conns = opts.idleConns;
  const need = conns + 200;
  // The generator raises its own soft limit to the hard one; servers are started with a raised soft limit.
  if (limits.hard < need) {
    conns = Math.max(100, Math.floor(limits.hard) - 200);
    console.log(`  open-file hard limit is ${limits.hard}: measuring ${conns} idle connections instead of ${opts.idleConns}`);
  }
  console.log(`\n== memory: idle server, ${conns} idle connections (fd limit soft ${limits.soft} / hard ${limits.hard}), 1M subscriptions`);
  const idle = await alternate(`${num(conns)} idle connections`, 1, ["--mode", "conns", "--conns", String(conns), "--hold-ms", "2000"], 300_000,
    (r) => `idle ${((r.rss_before_kb as number) / 1024).toFixed(1)} MiB, connected ${((r.rss_connected_kb as number) / 1024).toFixed(1)} MiB, held (min) ${((r.rss_held_min_kb as number) / 1024).toFixed(1)} MiB`,
    conns + 200);
  // Subscriptions: reuse the trie's 1M literal runs when that section ran; else one run here.
  const trieRows = (out.trie as { kind: string; subs: number; runs: Run[] }[] | undefined) ?? [];
  const biggest = Math.max(...opts.trieSizes);
  let subRuns = trieRows.find((r) => r.kind === "literal" && r.subs === biggest)?.runs;
  if (!subRuns) {
    subRuns = await alternate(`${num(biggest)} subscriptions`, 1, ["--mode", "trie", "--trie-subs", String(biggest), "--size", "16", "--warmup-ms", "0", "--duration-ms", "200"], 300_000,
      (r) => `RSS ${((r.rss_before_kb as number) / 1024).toFixed(1)} → ${((r.rss_subscribed_kb as number) / 1024).toFixed(1)} MiB`);
  }
  const perConn = (r: LoadgenResult) => (((r.rss_held_min_kb as number) - (r.rss_before_kb as number)) * 1024) / conns;
  const perSub = (r: LoadgenResult) => (((r.rss_subscribed_kb as number) - (r.rss_before_kb as number)) * 1024) / biggest;
  const rows = opts.servers.map((k) => ({
    server: k,
    idle_rss_mib: stat(idle, k, (r) => (r.rss_before_kb as number) / 1024),
    conns,
    conns_rss_mib: stat(idle, k, (r) => (r.rss_held_min_kb as number) / 1024),
    bytes_per_conn: stat(idle, k, perConn),
    subs: biggest,
    subs_rss_mib: stat(subRuns!, k, (r) => (r.rss_subscribed_kb as number) / 1024),
    bytes_per_sub: stat(subRuns!, k, perSub),
  }));
  out.memory = { rows, idle_runs: idle, targets: { bytes_per_conn: 20 * 1024, bytes_per_sub: 300 } };
  const f0 = (n: number) => n.toFixed(0);
  const f1 = (n: number) => n.toFixed(1);
  const kib = (n: number) => (n / 1024).toFixed(1);
  report.push(`\nMemory (RSS of the server process; per unit = growth / count; targets: <= 20 KiB per idle connection, <= 300 B per subscription)`);
  report.push(table(
    ["server", "idle MiB", `${num(conns)} conns MiB`, "KiB per conn", "target", `${num(biggest)} subs MiB`, "B per sub", "target"],
    rows.map((r) => [
      title(r.server),
      cell(r.idle_rss_mib, f1),
      cell(r.conns_rss_mib, f1),
      cell(r.bytes_per_conn, kib),
      r.bytes_per_conn ? (r.bytes_per_conn.median <= 20 * 1024 ? "met" : "not met") : "-",
      cell(r.subs_rss_mib, f1),
      cell(r.bytes_per_sub, f0),
      r.bytes_per_sub ? (r.bytes_per_sub.median <= 300 ? "met" : "not met") : "-",
    ]),
  ));
  report.push(`(subscriptions: literal m.<hi>.<lo>.x on one connection, each with its own trie leaf; idle connections: CONNECT + PING/PONG, held 2 s, lowest RSS sample)`);
}

// ---- soak ---------------------------------------------------------------------------------------
interface Interval {
  t_s: number;
  rss_kb: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
}

/** Least-squares slope of ys over xs. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

const median = (xs: number[]) => spread(xs)?.median ?? 0;

async function soakSection(): Promise<void> {
  const secs = opts.soakSeconds;
  console.log(`\n== soak: ${secs} s at ${num(opts.soakRate)} msgs/s to ${opts.soakSubs} subscribers (128 B), per-second RSS and latency`);
  const args = ["--mode", "oneway", "--subs", String(opts.soakSubs), "--size", "128", "--rate", String(opts.soakRate), "--warmup-ms", "2000",
    "--duration-ms", String(secs * 1000), "--interval-ms", "1000"];
  const runs = await alternate("soak", 1, args, secs * 1000 + 120_000,
    (r) => `p50 ${(r.p50_us as number).toFixed(0)} µs, p99 ${(r.p99_us as number).toFixed(0)} µs, p99.9 ${(r.p999_us as number).toFixed(0)} µs, RSS ${((r.server_rss_kb as number) / 1024).toFixed(1)} MiB, max send lag ${(r.max_send_lag_us as number).toFixed(0)} µs`);
  const rows = runs.filter((r) => r.ok).map((r) => {
    const iv = r.result!.intervals as Interval[];
    const t = iv.map((i) => i.t_s);
    const rss = iv.map((i) => i.rss_kb / 1024);
    const p99 = iv.map((i) => i.p99_us);
    const tenth = Math.max(1, Math.floor(iv.length / 6));
    return {
      server: r.server,
      p50_us: r.result!.p50_us as number,
      p99_us: r.result!.p99_us as number,
      p999_us: r.result!.p999_us as number,
      max_us: r.result!.max_us as number,
      p90_us: r.result!.p90_us as number,
      rss_first_mib: median(rss.slice(0, tenth)),
      rss_last_mib: median(rss.slice(-tenth)),
      rss_slope_mib_per_min: slope(t, rss) * 60,
      p99_first_us: median(p99.slice(0, tenth)),
      p99_last_us: median(p99.slice(-tenth)),
      p99_slope_us_per_min: slope(t, p99) * 60,
      other_cpu_pct: r.result!.cpu!.other,
      intervals: iv,
    };
  });
  out.soak = { seconds: secs, rate: opts.soakRate, subs: opts.soakSubs, rows, runs: runs.map((r) => ({ ...r, result: r.result && { ...r.result, intervals: undefined } })) };
  const f0 = (n: number) => n.toFixed(0);
  const f1 = (n: number) => n.toFixed(1);
  report.push(`\nSoak: ${secs} s at ${num(opts.soakRate)} msgs/s to ${opts.soakSubs} subscribers, 128 B (first / last = median over the first / last sixth of the run, per-second figures)`);
  report.push(table(
    ["server", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "RSS first→last MiB", "RSS slope MiB/min", "p99 first→last µs", "p99 slope µs/min", "other CPU %"],
    rows.map((r) => [title(r.server), f0(r.p50_us), f0(r.p99_us), f0(r.p999_us), f0(r.max_us), `${f1(r.rss_first_mib)} → ${f1(r.rss_last_mib)}`, r.rss_slope_mib_per_min.toFixed(2), `${f0(r.p99_first_us)} → ${f0(r.p99_last_us)}`, r.p99_slope_us_per_min.toFixed(1), f0(r.other_cpu_pct)]),
  ));
  const every = Math.max(1, Math.round(secs / 12));
  for (const r of rows) {
    const sampled = r.intervals.filter((_, i) => (i + 1) % every === 0);
    report.push(`  ${title(r.server)} per ${every} s: RSS MiB ${sampled.map((i) => (i.rss_kb / 1024).toFixed(0)).join(" ")} | p99 µs ${sampled.map((i) => i.p99_us.toFixed(0)).join(" ")}`);
  }
}

// ---- main ---------------------------------------------------------------------------------------
const versions = Object.fromEntries(await Promise.all(opts.servers.map(async (k) => [k, await serverVersion(k)])));
console.log(`natter bench:scale: ${opts.servers.map(title).join(" vs ")}; sections ${opts.sections.join(", ")}; ${opts.rounds} round(s)`);
if (opts.sections.includes("fanout")) await fanoutSection();
if (opts.sections.includes("trie")) await trieSection();
if (opts.sections.includes("memory")) await memorySection();
if (opts.sections.includes("soak")) await soakSection();

console.log(`\n${opts.servers.map((k) => `${title(k)}: ${versions[k]}`).join("    ")}`);
console.log(`Figures: median [min–max] over rounds; each run on a freshly started server; "busy runs": other work on the machine used > ${BUSY_OTHER_LOAD}% of a core.`);
console.log(report.join("\n"));
if (failures.length) {
  console.log("\nFAILURES (no figure is reported for a side with a failed run):");
  for (const f of failures) console.log(`  ${f.replaceAll("\n", "\n    ")}`);
}

const stamp = started.toISOString().replace(/[:.]/g, "-");
const dir = join(ROOT, "bench", "results");
const jsonFile = join(dir, `scale-${stamp}.json`);
writeJson(jsonFile, {
  started: started.toISOString(),
  finished: new Date().toISOString(),
  host: { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), bun: Bun.version, fd_limits: fdLimits() },
  servers: versions,
  options: opts,
  ...out,
});
const svg = plotSvg(out, opts.servers.map((k) => ({ kind: k, label: title(k) })));
const svgFile = join(dir, `scale-${stamp}.svg`);
writeFileSync(svgFile, svg);
writeFileSync(join(dir, "scale-latest.svg"), svg);
console.log(`\nResults: ${jsonFile.slice(ROOT.length + 1)}\nPlot: ${svgFile.slice(ROOT.length + 1)} (also bench/results/scale-latest.svg)`);
process.exit(failures.length ? 1 : 0);
