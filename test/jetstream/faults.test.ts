// Reliability under faults (issue 18): what a damaged store, a full disk or a kill -9 costs. Real server
// processes, the official clients, real files; the server is killed with SIGKILL through the harness.
import { execFileSync } from "node:child_process";
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, statSync, truncateSync, writeSync, readdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { AckPolicy } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { expect, onTestFinished, test } from "vitest";
import { freePort, serverKind } from "../harness/server.ts";
import { connectJs, dec, enc, startJs, until } from "./helpers.ts";

const natterOnly = test.skipIf(serverKind === "nats-server");

/** natter's segment files of a stream, in order. */
function segments(storeDir: string, stream: string): string[] {
  const dir = path.join(storeDir, "jetstream", "$G", "streams", stream, "msgs");
  return readdirSync(dir).filter((f) => f.endsWith(".seg")).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => path.join(dir, f));
}

// Log format is natter's own: nats-server words its recovery warnings differently.
natterOnly("a store warning is logged once, as a warning", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "WARN", subjects: ["warn.>"] });
  for (let i = 0; i < 3; i++) await c.js.publish("warn.x", enc(`m${i}`));
  await c.nc.close();
  await server.kill9();
  // A torn tail: half a record header after the last record.
  appendFileSync(segments(server.storeDir!, "WARN").at(-1)!, Buffer.from([9, 0, 0]));
  await server.restart();
  const lines = server.log().split("\n").filter((l) => l.includes("torn record header"));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain("[WRN]");
}, 30_000);

/** A tmpfs of `size` mounted on a new directory (unmounted after the test), or null where mounting is not permitted. */
function smallDisk(size: string): string | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), "natter-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "ignore" });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  onTestFinished(() => {
    try {
      execFileSync("umount", ["-l", dir], { stdio: "ignore" });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Writes `file` until the filesystem has no room left. */
function fillUp(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(4096, 7);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full
  } finally {
    closeSync(fd);
  }
}

/** A publish as a raw request: the PubAck's JSON, or null when no answer came. */
async function publishRaw(nc: NatsConnection, subject: string, data: Uint8Array): Promise<Record<string, any> | null> {
  try {
    const m = await nc.request(subject, data, { timeout: 5_000 });
    return JSON.parse(dec(m.data));
  } catch {
    return null;
  }
}

test("a full disk: publishes answer 10023, core NATS keeps serving, nothing acknowledged is lost, writes resume", async (ctx) => {
  const disk = smallDisk("2m");
  if (disk === null) {
    console.warn("skipped: cannot mount a tmpfs here (needs root)");
    ctx.skip();
    return;
  }
  // Space the test frees later to let writes resume.
  const filler = path.join(disk, "filler");
  writeFileSync(filler, Buffer.alloc(384 * 1024, 1));
  const mport = await freePort();
  const server = await startJs({ storeDir: path.join(disk, "js"), args: ["-m", String(mport)] });
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "FULL", subjects: ["full.>"] });
  await c.jsm.consumers.add("FULL", { durable_name: "reader", ack_policy: AckPolicy.Explicit });
  const body = Buffer.alloc(1000, 120);
  const acked = new Map<number, string>(); // seq → payload id
  let refusal: Record<string, any> | null = null;
  let next = 0;
  // 16 publishers at once until one is refused.
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (refusal === null && next < 10_000) {
      const id = `m${next++}`;
      const a = await publishRaw(c.nc, "full.x", Buffer.concat([Buffer.from(`${id}:`), body]));
      if (a?.error) refusal ??= a;
      else if (a !== null) acked.set(a.seq, id);
    }
  }));
  expect(refusal, "a publish was refused").not.toBeNull();
  expect(refusal!.error).toMatchObject({ code: 503, err_code: 10023, description: "insufficient resources" });
  expect(acked.size).toBeGreaterThan(100);

  // Take the last free bytes too, so that every write fails (consumer state included). (nats-server 2.9.10
  // does not restore the stream after a restart on a disk full to the last byte: natter only.)
  const stuffing = path.join(disk, "stuffing");
  if (serverKind === "natter") fillUp(stuffing);

  // Still full: refused again, the server is up, core pub/sub serves every client.
  for (let i = 0; i < 20; i++) {
    const again = await publishRaw(c.nc, "full.x", body);
    expect(again?.error?.err_code).toBe(10023);
  }
  const other = await connectJs(server);
  const sub = other.nc.subscribe("core.ping", { max: 1 });
  const got = (async () => {
    for await (const m of sub) return dec(m.data);
  })();
  await other.nc.flush();
  c.nc.publish("core.ping", enc("pong"));
  expect(await got).toBe("pong");
  // A consumer reads and acks while full: its state writes fail too, and must not end the process.
  const reader = await c.js.consumers.get("FULL", "reader");
  const batch = await reader.fetch({ max_messages: 20, expires: 2_000 });
  for await (const m of batch) m.ack();
  await c.nc.flush();

  if (serverKind === "natter") {
    // Reported where an operator looks: /healthz, /jsz, /metrics; logged once, however many publishes failed.
    await until(async () => (await fetch(`http://127.0.0.1:${mport}/healthz`)).status === 503, 5_000, "healthz 503");
    const health = await (await fetch(`http://127.0.0.1:${mport}/healthz`)).json();
    expect(health).toMatchObject({ status: "unavailable" });
    expect(health.error).toMatch(/FULL.*no space/i);
    const jsz = await (await fetch(`http://127.0.0.1:${mport}/jsz?accounts=1&streams=1`)).json();
    expect(jsz.account_details[0].stream_detail[0].storage_error).toMatch(/no space/i);
    const metrics = await (await fetch(`http://127.0.0.1:${mport}/metrics`)).text();
    expect(metrics).toMatch(/natter_jetstream_stream_write_failed\{account="\$G",stream="FULL"\} 1/);
    await until(() => /cannot write consumer state/.test(server.log()), 5_000, "consumer state failure logged");
    const logged = server.log().split("\n").filter((l) => /cannot write \(/.test(l));
    expect(logged).toHaveLength(1);
  }

  // kill -9 while full, restart: every acknowledged message is there, under its sequence.
  await c.nc.close();
  await other.nc.close();
  await server.kill9();
  await server.restart();
  const d = await connectJs(server);
  for (const [seq, id] of acked) {
    const m = await d.jsm.streams.getMessage("FULL", { seq });
    expect(m === null ? null : dec(m.data).split(":")[0], `seq ${seq}`).toBe(id);
  }

  // Still full after the restart (the few KB a refused write left free aside).
  let refused: Record<string, any> | null = null;
  for (let i = 0; i < 200 && refused === null; i++) {
    const a = await publishRaw(d.nc, "full.x", body);
    if (a?.error) refused = a;
    else if (a !== null) acked.set(a.seq, "after-restart");
  }
  expect(refused?.error?.err_code).toBe(10023);

  if (serverKind === "natter") {
    // Space returns: writes resume without a restart, and without waiting for a publish (a timer retries).
    unlinkSync(filler);
    unlinkSync(stuffing);
    await until(async () => (await fetch(`http://127.0.0.1:${mport}/healthz`)).status === 200, 10_000, "healthz ok again");
    expect(server.log()).toMatch(/writes resumed/);
    const after = await publishRaw(d.nc, "full.x", enc("after"));
    expect(after?.error).toBeUndefined();
    expect(after?.seq).toBeGreaterThan(Math.max(...acked.keys()));
  }
  await d.nc.close();
  if (process.env.DUMP) console.log(server.log());
}, 90_000);

/** The store files of a stream, whichever server wrote them (natter's .seg, nats-server's .blk). */
function storeFiles(storeDir: string, stream: string): string[] {
  const dir = path.join(storeDir, "jetstream", "$G", "streams", stream, "msgs");
  return readdirSync(dir).filter((f) => /\.(seg|blk)$/.test(f)).map((f) => path.join(dir, f));
}

/** Flips one byte inside `needle` where it is stored; returns the file. */
function flipByteOf(storeDir: string, stream: string, needle: string): string {
  for (const file of storeFiles(storeDir, stream)) {
    const bytes = readFileSync(file);
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    bytes[at + Math.floor(needle.length / 2)] ^= 0x5a;
    writeFileSync(file, bytes);
    return file;
  }
  throw new Error(`${needle} not found in the store files`);
}

// nats-server 2.9.10 does not: side by side it kept 999 of the 2000 (it cuts its block at the damaged record).
natterOnly("one corrupt byte mid-segment costs only the damaged message, which is never served", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "ROT", subjects: ["rot.>"] });
  const n = 2_000;
  const payload = (i: number) => `payload-${String(i).padStart(6, "0")}-${"x".repeat(200)}`;
  const acks: Promise<unknown>[] = [];
  for (let i = 1; i <= n; i++) acks.push(c.js.publish(`rot.${i % 5}`, enc(payload(i))));
  await Promise.all(acks);
  await c.nc.close();
  await server.kill9();
  const damaged = 1_000;
  flipByteOf(server.storeDir!, "ROT", `payload-${String(damaged).padStart(6, "0")}-`);
  await server.restart();

  const d = await connectJs(server);
  const info = await d.jsm.streams.info("ROT", { deleted_details: true });
  expect(info.state).toMatchObject({ messages: n - 1, first_seq: 1, last_seq: n, num_deleted: 1 });
  expect(info.state.deleted).toEqual([damaged]);
  expect(await d.jsm.streams.getMessage("ROT", { seq: damaged })).toBeNull();
  // Everything else comes back, intact.
  const oc = await d.js.consumers.get("ROT");
  const seen: number[] = [];
  const iter = await oc.fetch({ max_messages: n, expires: 10_000 });
  for await (const m of iter) {
    expect(dec(m.data), `seq ${m.seq}`).toBe(payload(m.seq));
    seen.push(m.seq);
    if (m.info.pending === 0) break;
  }
  expect(seen).toHaveLength(n - 1);
  expect(seen).not.toContain(damaged);
  if (serverKind === "natter") expect(server.log()).toMatch(new RegExp(`lost sequence ${damaged}\\b`));
  expect((await d.js.publish("rot.after", enc("after"))).seq).toBe(n + 1);
  await d.nc.close();
}, 60_000);

// nats-server 2.9.10 reuses the lost sequence (issue 18): natter only.
natterOnly("a torn tail never hands out an acknowledged sequence again; the lost range is reported", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "TORN", subjects: ["torn.>"] });
  await c.jsm.consumers.add("TORN", { durable_name: "all", ack_policy: AckPolicy.Explicit });
  const n = 50;
  for (let i = 1; i <= n; i++) expect((await c.js.publish("torn.x", enc(`m${i}`))).seq).toBe(i);
  // The consumer reads and acknowledges everything: its ack floor is n.
  const reader = await c.js.consumers.get("TORN", "all");
  const batch = await reader.fetch({ max_messages: n, expires: 5_000 });
  for await (const m of batch) {
    await m.ackAck();
    if (m.seq === n) break;
  }
  await until(async () => (await c.jsm.consumers.info("TORN", "all")).ack_floor.stream_seq === n, 5_000, "ack floor n");
  // …and on disk (durable state is written every 250 ms).
  const stateFile = path.join(server.storeDir!, "jetstream", "$G", "streams", "TORN", "obs", "all", "state.json");
  await until(() => {
    try {
      return JSON.parse(readFileSync(stateFile, "utf8")).ack_floor.stream_seq === n;
    } catch {
      return false;
    }
  }, 5_000, "ack floor on disk");
  await c.nc.close();
  await server.kill9();
  // The last few bytes of the last segment are lost: message n is torn.
  const last = segments(server.storeDir!, "TORN").at(-1)!;
  truncateSync(last, statSync(last).size - 3);
  await server.restart();

  const d = await connectJs(server);
  const info = await d.jsm.streams.info("TORN", { deleted_details: true });
  expect(info.state).toMatchObject({ messages: n - 1, last_seq: n, num_deleted: 1 });
  expect(info.state.deleted).toEqual([n]);
  expect(server.log()).toMatch(new RegExp(`lost sequence ${n}\\b`));
  // The next publish gets a sequence no one has seen, and the consumer past n receives it.
  expect((await d.js.publish("torn.x", enc("new"))).seq).toBe(n + 1);
  const m = await (await d.js.consumers.get("TORN", "all")).next({ expires: 5_000 });
  expect(m?.seq).toBe(n + 1);
  expect(m === null ? null : dec(m.data)).toBe("new");
  await d.nc.close();
}, 60_000);

test("the dedupe window survives kill -9 for its whole duration, however many messages came after", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "DUP", subjects: ["dup.>"] }); // duplicate_window: the default 2 minutes
  const first = await c.js.publish("dup.x", enc("once"), { msgID: "early" });
  expect(first.duplicate).toBe(false);
  // More messages after it than the last 100,000 that used to be scanned at start.
  const more = 100_050;
  const body = enc("x");
  for (let i = 0; i < more; i++) {
    c.nc.publish("dup.y", body);
    if (i % 5_000 === 4_999) await c.nc.flush();
  }
  await c.nc.flush();
  await until(async () => (await c.jsm.streams.info("DUP")).state.messages === more + 1, 30_000, "all stored");
  await c.nc.close();
  await server.kill9();
  await server.restart();

  const d = await connectJs(server);
  const again = await d.js.publish("dup.x", enc("once"), { msgID: "early" });
  expect(again.duplicate).toBe(true);
  expect(again.seq).toBe(first.seq);
  expect((await d.jsm.streams.info("DUP")).state.messages).toBe(more + 1);
  await d.nc.close();
}, 90_000);

/** The state a restart must reproduce exactly: counts, first/last, subjects, what is deleted. */
async function streamState(c: Awaited<ReturnType<typeof connectJs>>, name: string) {
  const info = await c.jsm.streams.info(name, { subjects_filter: ">", deleted_details: true });
  const { messages, bytes, first_seq, last_seq, num_subjects, num_deleted, deleted, subjects } = info.state;
  return { messages, bytes, first_seq, last_seq, num_subjects, num_deleted, deleted, subjects };
}

// The saved segment indexes are natter's own files.
natterOnly("saved segment indexes: a clean stop saves them and a restart uses them; damaged, stale or foreign ones cost no message", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "IDX", subjects: ["idx.>"] });
  // ~19 MB: two sealed 8 MiB segments and the active one.
  const total = 140_000;
  const payload = new Uint8Array(100).fill(97);
  for (let i = 0; i < total; i++) {
    c.nc.publish(`idx.${i % 13}`, payload);
    if (i % 10_000 === 9_999) await c.nc.flush();
  }
  await c.nc.flush();
  await until(async () => (await c.jsm.streams.info("IDX")).state.messages === total, 30_000, "every message stored");
  for (const seq of [1, 777, 100_000]) await c.jsm.streams.deleteMessage("IDX", seq);
  const expected = await streamState(c, "IDX");
  expect(expected).toMatchObject({ messages: total - 3, first_seq: 2, last_seq: total, num_subjects: 13, deleted: [777, 100_000] });
  await c.nc.close();
  // The n-th start's line about the stream (streams are restored after the server is ready).
  const restoredLine = async (n: number) => {
    const lines = () => server.log().split("\n").filter((l) => l.includes("messages for stream '$G > IDX'"));
    await until(() => lines().length >= n, 30_000, `restart ${n}'s restore`);
    return lines()[n - 1]!;
  };

  // A clean stop saves every segment's index; the restart reads no record.
  await server.restart();
  expect(await restoredLine(1)).toMatch(/Restored 139,997 messages .* \(segments: 3 from their saved index, 0 from it and the records after it, 0 read record by record\)/);
  const d = await connectJs(server);
  expect(await streamState(d, "IDX")).toEqual(expected);
  await d.nc.close();

  // Damaged (a byte of the first segment's) and foreign (the second's replaced by the first's): those two
  // segments are read record by record, the active one comes from its index.
  await server.kill9();
  const dir = path.dirname(segments(server.storeDir!, "IDX")[0]!);
  const idx = (n: number) => path.join(dir, `${n}.idx`);
  const saved = [readFileSync(idx(1)), readFileSync(idx(2))];
  const damaged = Buffer.from(saved[0]!);
  damaged[damaged.length >> 1] ^= 0x10;
  writeFileSync(idx(1), damaged);
  writeFileSync(idx(2), saved[0]!);
  await server.restart();
  expect(await restoredLine(2)).toMatch(/Restored 139,997 messages .* \(segments: 1 from their saved index, 0 from it and the records after it, 2 read record by record\)/);
  const e = await connectJs(server);
  expect(await streamState(e, "IDX")).toEqual(expected);
  // Rebuilt after the load: the same bytes as the ones saved before.
  await until(() => readFileSync(idx(1)).equals(saved[0]!) && readFileSync(idx(2)).equals(saved[1]!), 30_000, "the indexes saved again");
  // The active segment grew after its index was saved, as kill -9 leaves it: the index is used for what
  // it covers, the records after it are read one by one.
  await e.js.publish("idx.late", enc("late"));
  await e.nc.close();
  await server.kill9();
  await server.restart();
  expect(await restoredLine(3)).toMatch(/Restored 139,998 messages .* \(segments: 2 from their saved index, 1 from it and the records after it, 0 read record by record\)/);
  const f = await connectJs(server);
  const late = (await f.jsm.streams.getMessage("IDX", { seq: total + 1 }))!;
  expect(dec(late.data)).toBe("late");
  expect(await streamState(f, "IDX")).toEqual({
    ...expected,
    messages: expected.messages + 1,
    bytes: expected.bytes + 22 + "idx.late".length + late.data.length + 8,
    last_seq: total + 1,
    num_subjects: 14,
    subjects: { ...expected.subjects, "idx.late": 1 },
  });
  const final = await streamState(f, "IDX");
  await f.nc.close();
  // The clean stop saves the active segment's index again.
  await server.restart();
  expect(await restoredLine(4)).toMatch(/Restored 139,998 messages .* \(segments: 3 from their saved index, 0 from it and the records after it, 0 read record by record\)/);

  // An index of the format before this one (NIX1) is not read, nor taken for a damaged one: its segment
  // is read record by record and its index saved again, in this format.
  await server.kill9();
  const current = readFileSync(idx(1));
  writeFileSync(idx(1), Buffer.concat([Buffer.from("NIX1"), current.subarray(4)]));
  const logged = server.log().length;
  await server.restart();
  expect(await restoredLine(5)).toMatch(/Restored 139,998 messages .* \(segments: 2 from their saved index, 0 from it and the records after it, 1 read record by record\)/);
  expect(server.log().slice(logged)).not.toMatch(/idx: damaged/);
  const g = await connectJs(server);
  expect(await streamState(g, "IDX")).toEqual(final);
  await g.nc.close();
  await until(() => readFileSync(idx(1)).equals(current), 30_000, "the index saved again");
}, 90_000);
