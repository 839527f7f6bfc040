// Micro-benchmark of the publish path with and without permissions, in process (no sockets): a
// publisher connection is fed reads of 1000 PUBs and one subscriber receives every message.
//
//   bun test/auth/perf/publish-path.ts [repo-root]      (default: this checkout)
//
// Variants: no authentication at all; a user with permissions publishing one subject (the last-subject
// memo answers); the same user cycling through 100 subjects (the bounded decision cache answers);
// a subscriber whose wildcard overlaps a subscribe deny (every delivery checked, cached).
// Not part of `npm test` (not a *.test.ts file). Prints msgs/s per variant, best of several runs.
import path from "node:path";

const root = path.resolve(process.argv[2] ?? path.join(import.meta.dir, "../../.."));
const { Server } = await import(path.join(root, "src/server.ts"));
const { defaultOptions } = await import(path.join(root, "src/options.ts"));
const { Logger } = await import(path.join(root, "src/log.ts"));

class NullTransport {
  readonly kind = "tcp";
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 1;
  blocked = false;
  write(_buf: Buffer, start: number, end: number): number {
    return end - start;
  }
  pauseReading(): void {}
  resumeReading(): void {}
  close(): void {}
}

/** Five allow patterns and two denies for publish; the subscribe deny is given per variant. */
function perms(subscribeDeny: string) {
  return {
    publish: { allow: ["orders.*", "bench.>", "audit.*.log", "a.b.c", "x.*.y.>"], deny: ["bench.secret", "orders.admin"] },
    subscribe: { allow: [">"], deny: [subscribeDeny] },
  };
}

function makeServer(subscribeDeny: string | null) {
  const options = { ...defaultOptions, wsAllowedOrigins: [], routes: [] };
  if (subscribeDeny !== null) {
    options.authorization = { users: [{ user: "u", password: "p", permissions: perms(subscribeDeny) }], noAuthUser: "u" };
  }
  return new Server(options, new Logger(false, false));
}

function connect(server: any, cid: number, subs: string) {
  const conn = server.accept(new NullTransport());
  conn.onRead(Buffer.from(`CONNECT {"verbose":false,"pedantic":false}\r\n${subs}PING\r\n`));
  return conn;
}

function pubs(subjects: string[], n: number): Buffer {
  const payload = "0123456789abcdef";
  let s = "";
  for (let i = 0; i < n; i++) s += `PUB ${subjects[i % subjects.length]} ${payload.length}\r\n${payload}\r\n`;
  return Buffer.from(s);
}

function run(label: string, subscribeDeny: string | null, subjects: string[], subSubject: string): void {
  const server = makeServer(subscribeDeny);
  connect(server, 1, `SUB ${subSubject} 1\r\n`);
  const pub = connect(server, 2, "");
  const batch = pubs(subjects, 1000);
  const reads = 2000; // 2M messages per run
  let best = 0;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < reads; i++) pub.onRead(batch);
    const secs = (performance.now() - t0) / 1000;
    best = Math.max(best, (reads * 1000) / secs);
  }
  const delivered = server.stats.outMsgs;
  console.log(`${label.padEnd(58)} ${(best / 1e6).toFixed(2)}M msgs/s   (delivered ${delivered})`);
  clearInterval((server as any).sweepTimer);
}

const many = Array.from({ length: 100 }, (_, i) => `bench.s${i}`);
console.log(`root: ${root}`);
run("no auth, 1 subject", null, ["bench.x"], "bench.x");
run("no auth, 100 subjects", null, many, "bench.*");
run("permissions, 1 subject (memo)", "audit.hidden", ["bench.x"], "bench.x");
run("permissions, 100 subjects (cache)", "audit.hidden", many, "bench.*");
run("permissions, 100 subjects, sub overlapping a deny (filter)", "bench.hidden", many, "bench.*");
process.exit(0);
