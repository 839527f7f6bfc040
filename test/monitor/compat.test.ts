// natter's monitoring endpoints against nats-server's, side by side: both servers get the same state
// (test/monitor/workload.ts), then every endpoint is fetched from both. Shapes must match field for
// field (nats-server 2.9.10 is the reference; fields natter deliberately leaves out are listed below),
// and natter's values must be the known workload's.
//
// Deliberately absent (nats-server writes them, natter does not):
// - varz.system_account: natter has no system account.
// - subscriptions_list(_detail) of *closed* connections: Connection.close() clears its subscriptions
//   before calling Server.removeConnection(), where the snapshot is taken.
// Extra (v2.10.0 fields that 2.9.10 does not write): varz.slow_consumer_stats, varz.ocsp_peer_cache,
// routez.server_name.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HAS_NATS_SERVER } from "../harness/reference.ts";
import { shapeDiff } from "./shape.ts";
import { eventually, get, getJson, startMonitored, type Monitored } from "./spawn.ts";
import { EXPECTED, runWorkload, type Workload } from "./workload.ts";

type Json = Record<string, any>;

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
const UPTIME = /^(\d+y)?(\d+d)?(\d+h)?(\d+m)?\d+s$/;
const GO_DURATION = /^(0s|\d+(\.\d+)?(ns|µs|ms|s)|(\d+h)?(\d+m)?\d+(\.\d+)?s)$/;

const VARZ_SHAPE = { absent: ["system_account"], extra: ["slow_consumer_stats", "ocsp_peer_cache"], maps: ["http_req_stats"] };

let ours: Monitored;
let ref: Monitored;
let ourLoad: Workload | undefined;
let refLoad: Workload | undefined;

beforeAll(async () => {
  if (!HAS_NATS_SERVER) return;
  [ours, ref] = await Promise.all([startMonitored("natter"), startMonitored("nats-server")]);
  [ourLoad, refLoad] = await Promise.all([runWorkload(ours), runWorkload(ref)]);
  // nats-server records a closed client asynchronously: wait until both list it.
  for (const s of [ours, ref]) {
    await eventually(`${s.kind} closed connection`, async () => {
      const c = await getJson<Json>(s, "/connz?state=closed");
      return c.num_connections === 1 ? true : undefined;
    });
  }
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([ourLoad?.close(), refLoad?.close()]);
  await Promise.allSettled([ours?.stop(), ref?.stop()]);
});

async function both(path: string): Promise<{ r: Json; o: Json }> {
  const [r, o] = await Promise.all([getJson<Json>(ref, path), getJson<Json>(ours, path)]);
  return { r, o };
}

function byName(connz: Json): Record<string, Json> {
  return Object.fromEntries((connz.connections as Json[]).map((c) => [c.name, c]));
}

const names = (connz: Json) => (connz.connections as Json[]).map((c) => c.name as string);

describe.skipIf(!HAS_NATS_SERVER)("start-up", () => {
  test("logs the monitor address like nats-server", () => {
    expect(ours.log()).toContain(`Starting http monitor on 127.0.0.1:${ours.httpPort}`);
    expect(ref.log()).toContain(`Starting http monitor on 127.0.0.1:${ref.httpPort}`);
  });
});

describe.skipIf(!HAS_NATS_SERVER)("/varz", () => {
  test("same fields and JSON types as nats-server", async () => {
    const { r, o } = await both("/varz");
    expect(shapeDiff(r, o, VARZ_SHAPE)).toEqual([]);
  });

  test("reports the workload's counts, as nats-server does", async () => {
    const { r, o } = await both("/varz");
    for (const k of ["in_msgs", "out_msgs", "in_bytes", "out_bytes", "connections", "total_connections", "slow_consumers"]) {
      expect({ [k]: o[k] }).toEqual({ [k]: r[k] });
    }
    expect(o.connections).toBe(EXPECTED.openConnections);
    expect(o.total_connections).toBe(EXPECTED.totalConnections);
    expect(o.subscriptions).toBe(EXPECTED.subscriptions);
    expect(o.in_msgs).toBe(EXPECTED.inMsgs);
    expect(o.out_msgs).toBe(EXPECTED.outMsgs);
    const hpubIn = o.in_bytes - EXPECTED.inBytesWithoutHpub;
    expect(hpubIn).toBeGreaterThan(EXPECTED.hpubPayload); // header block + payload
    expect(o.out_bytes).toBe(EXPECTED.outBytesWithoutHpub + hpubIn);
    expect(o.slow_consumers).toBe(0);
    expect(o.routes).toBe(0);
    expect(o.leafnodes).toBe(0);
  });

  test("identity, configuration and runtime fields", async () => {
    const { r, o } = await both("/varz");
    expect(o.server_id).toBe(ourLoad!.alpha.info!.server_id);
    expect(o.server_name).toBe(o.server_id);
    expect(o.version).toBe("2.11.0");
    expect(o.proto).toBe(1);
    expect(o.host).toBe("127.0.0.1");
    expect(o.port).toBe(ours.port);
    expect(o.http_host).toBe("127.0.0.1");
    expect(o.http_port).toBe(ours.httpPort);
    for (const k of ["max_connections", "ping_interval", "ping_max", "max_control_line", "max_payload", "max_pending", "write_deadline", "http_base_path", "https_port", "tls_timeout"]) {
      expect({ [k]: o[k] }).toEqual({ [k]: r[k] });
    }
    expect(o.ping_interval).toBe(120_000_000_000); // time.Duration: nanoseconds
    expect(o.write_deadline).toBe(10_000_000_000);
    for (const k of ["cluster", "gateway", "leaf", "mqtt", "websocket", "jetstream"]) expect({ [k]: o[k] }).toEqual({ [k]: r[k] });
    expect(o.start).toMatch(RFC3339);
    expect(o.now).toMatch(RFC3339);
    expect(o.config_load_time).toBe(o.start);
    expect(Date.parse(o.now)).toBeGreaterThanOrEqual(Date.parse(o.start));
    expect(o.uptime).toMatch(UPTIME);
    expect(Number.isInteger(o.mem) && o.mem > 1_000_000).toBe(true);
    expect(o.cores).toBeGreaterThanOrEqual(1);
    expect(o.cpu).toBeGreaterThanOrEqual(0);
    expect(o.http_req_stats["/varz"]).toBeGreaterThanOrEqual(1);
    expect(o.slow_consumer_stats).toEqual({ clients: 0, routes: 0, gateways: 0, leafs: 0 });
  });

  test("http_req_stats counts requests per endpoint", async () => {
    const before = (await getJson<Json>(ours, "/varz")).http_req_stats as Record<string, number>;
    await getJson<Json>(ours, "/connz");
    await getJson<Json>(ours, "/subscriptionsz"); // counted as /subsz, as nats-server does
    const after = (await getJson<Json>(ours, "/varz")).http_req_stats as Record<string, number>;
    expect(after["/varz"]).toBe(before["/varz"]! + 1);
    expect(after["/connz"]).toBe((before["/connz"] ?? 0) + 1);
    expect(after["/subsz"]).toBe((before["/subsz"] ?? 0) + 1);
    expect(Object.keys(after)).toEqual(Object.keys(after).sort()); // a Go map: sorted keys
  });
});

describe.skipIf(!HAS_NATS_SERVER)("/connz", () => {
  test("same fields and JSON types as nats-server (plain, subs=1, subs=detail)", async () => {
    for (const q of ["", "?subs=1", "?subs=detail"]) {
      const { r, o } = await both(`/connz${q}`);
      expect({ q, problems: shapeDiff(r, o) }).toEqual({ q, problems: [] });
    }
  });

  test("per-connection counters match nats-server's and the workload", async () => {
    const { r, o } = await both("/connz");
    expect(o.num_connections).toBe(3);
    expect(o.total).toBe(3);
    expect(o.offset).toBe(0);
    expect(o.limit).toBe(1024);
    expect(o.server_id).toBe(ourLoad!.alpha.info!.server_id);
    expect(o.now).toMatch(RFC3339);
    const rs = byName(r);
    const os = byName(o);
    expect(Object.keys(os).sort()).toEqual(["alpha", "beta", "delta"]);
    for (const name of Object.keys(os)) {
      for (const k of ["in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions", "pending_bytes", "lang", "version", "kind", "type", "ip"]) {
        expect({ name, k, v: os[name]![k] }).toEqual({ name, k, v: rs[name]![k] });
      }
      const c = os[name]!;
      expect(c.start).toMatch(RFC3339);
      expect(c.last_activity).toMatch(RFC3339);
      expect(c.uptime).toMatch(UPTIME);
      expect(c.idle).toMatch(UPTIME);
      expect(c.rtt).toMatch(GO_DURATION);
      expect(c.stop).toBeUndefined();
      expect(c.reason).toBeUndefined();
      expect(Number.isInteger(c.port) && c.port > 0).toBe(true);
    }
    expect(os.alpha).toMatchObject({ in_msgs: 0, out_msgs: 15, subscriptions: 3, kind: "Client", type: "nats", lang: "nats.js" });
    expect(os.beta).toMatchObject({ in_msgs: 16, out_msgs: 10, subscriptions: 1 });
    expect(os.delta).toMatchObject({ in_msgs: 1, in_bytes: 1000, out_msgs: 0, subscriptions: 0 });
  });

  test("subs=1 lists subjects; subs=detail lists SubDetail without account", async () => {
    const { r, o } = await both("/connz?subs=1");
    for (const name of ["alpha", "beta"]) {
      expect(byName(o)[name]!.subscriptions_list.sort()).toEqual(byName(r)[name]!.subscriptions_list.sort());
    }
    expect(byName(o).alpha!.subscriptions_list.sort()).toEqual(["bar", "baz", "foo.>"]);
    expect(byName(o).delta!.subscriptions_list).toBeUndefined(); // omitempty
    const d = await both("/connz?subs=detail");
    const strip = (c: Json) => (c.subscriptions_list_detail as Json[]).map(({ cid: _cid, ...rest }) => rest).sort((a, b) => a.subject.localeCompare(b.subject));
    expect(strip(byName(d.o).alpha!)).toEqual(strip(byName(d.r).alpha!));
    expect(strip(byName(d.o).alpha!)).toEqual([
      { subject: "bar", qgroup: "workers", sid: "2", msgs: 3 },
      { subject: "baz", sid: "3", msgs: 0, max: 5 },
      { subject: "foo.>", sid: "1", msgs: 12 },
    ]);
    for (const sd of byName(d.o).alpha!.subscriptions_list_detail as Json[]) expect(sd.cid).toBe(byName(d.o).alpha!.cid);
  });

  test("sorts as nats-server does", async () => {
    for (const sort of ["cid", "start", "subs", "msgs_to", "msgs_from", "bytes_to", "bytes_from"]) {
      const { r, o } = await both(`/connz?sort=${sort}`);
      expect({ sort, order: names(o) }).toEqual({ sort, order: names(r) });
    }
    expect(names(await getJson<Json>(ours, "/connz?sort=cid"))).toEqual(["alpha", "beta", "delta"]);
    expect(names(await getJson<Json>(ours, "/connz?sort=msgs_from"))).toEqual(["beta", "delta", "alpha"]);
    expect(names(await getJson<Json>(ours, "/connz?sort=bytes_from"))).toEqual(["delta", "beta", "alpha"]);
    expect(names(await getJson<Json>(ours, "/connz?sort=msgs_to"))).toEqual(["alpha", "beta", "delta"]);
    expect(names(await getJson<Json>(ours, "/connz?sort=subs"))).toEqual(["alpha", "beta", "delta"]);
    // Orders by time, checked against the reported values (pings move last_activity on both servers).
    for (const s of [ours, ref]) {
      const kind = s.kind;
      const last = (await getJson<Json>(s, "/connz?sort=last")).connections as Json[];
      const lastTimes = last.map((c) => Date.parse(c.last_activity));
      expect({ kind, lastTimes }).toEqual({ kind, lastTimes: [...lastTimes].sort((a, b) => b - a) });
      const up = (await getJson<Json>(s, "/connz?sort=uptime")).connections as Json[];
      const starts = up.map((c) => Date.parse(c.start));
      expect({ kind, starts }).toEqual({ kind, starts: [...starts].sort((a, b) => b - a) }); // shortest uptime first
      expect((await getJson<Json>(s, "/connz?sort=pending")).num_connections).toBe(3);
    }
    // sort=rtt is new in nats-server 2.10.0 (2.9.10 refuses it): ours only, descending.
    const rtt = await getJson<Json>(ours, "/connz?sort=rtt");
    expect(rtt.num_connections).toBe(3);
    // Most idle first. nats-server 2.9.10 sorts idle by last_activity - start (fixed in 2.10.0 to
    // now - last_activity, which natter follows), so only ours is checked.
    const idle = (await getJson<Json>(ours, "/connz?sort=idle")).connections as Json[];
    const idleTimes = idle.map((c) => Date.parse(c.last_activity));
    expect(idleTimes).toEqual([...idleTimes].sort((a, b) => a - b));
  });

  test("limit and offset page the sorted list", async () => {
    for (const q of ["?limit=1&offset=1", "?limit=2", "?offset=2", "?offset=5", "?limit=-3", "?sort=msgs_from&limit=2&offset=1"]) {
      const { r, o } = await both(`/connz${q}`);
      expect({ q, names: names(o), n: o.num_connections, total: o.total, offset: o.offset, limit: o.limit }).toEqual({
        q, names: names(r), n: r.num_connections, total: r.total, offset: r.offset, limit: r.limit,
      });
    }
    const page = await getJson<Json>(ours, "/connz?limit=1&offset=1");
    expect(page).toMatchObject({ num_connections: 1, total: 3, offset: 1, limit: 1 });
    expect(names(page)).toEqual(["beta"]);
    const beyond = await getJson<Json>(ours, "/connz?offset=5");
    expect(beyond).toMatchObject({ num_connections: 0, total: 3, connections: [] });
  });

  test("cid selects one connection (open or closed)", async () => {
    for (const s of [ours, ref]) {
      const all = byName(await getJson<Json>(s, "/connz"));
      const one = await getJson<Json>(s, `/connz?cid=${all.beta!.cid}`);
      expect(names(one)).toEqual(["beta"]);
      expect(one).toMatchObject({ num_connections: 1, total: 3, limit: 1 });
      const closed = (await getJson<Json>(s, "/connz?state=closed")).connections[0] as Json;
      const c = await getJson<Json>(s, `/connz?state=closed&cid=${closed.cid}`);
      expect(names(c)).toEqual(["gamma"]);
      const none = await getJson<Json>(s, "/connz?cid=999999");
      expect(none).toMatchObject({ num_connections: 0, connections: [] });
    }
  });

  test("state=closed keeps the closed connection with stop and reason", async () => {
    const { r, o } = await both("/connz?state=closed");
    expect(shapeDiff(r, o)).toEqual([]);
    const rs = await getJson<Json>(ref, "/connz?state=closed&subs=1");
    const os = await getJson<Json>(ours, "/connz?state=closed&subs=1");
    expect(shapeDiff(rs, os, { absent: ["connections[].subscriptions_list"] })).toEqual([]);
    const c = o.connections[0] as Json;
    expect(c).toMatchObject({ name: "gamma", reason: "Client Closed", in_msgs: 0, out_msgs: 0, pending_bytes: 0 });
    expect(c.reason).toBe(r.connections[0].reason);
    expect(c.stop).toMatch(RFC3339);
    expect(Date.parse(c.stop)).toBeGreaterThanOrEqual(Date.parse(c.start));
    expect(c.uptime).toMatch(UPTIME);
    expect(o).toMatchObject({ num_connections: 1, total: 1 });
    // Snapshotted subscriptions, once Connection.close() hands them over (see the header comment).
    if (c.subscriptions > 0) expect(os.connections[0].subscriptions_list.sort()).toEqual(["yyy", "zzz"]);
  });

  test("state=all lists open and closed; sort=stop/reason need state=closed", async () => {
    const { r, o } = await both("/connz?state=all");
    expect(names(o)).toEqual(["alpha", "beta", "delta", "gamma"]);
    expect(names(o)).toEqual(names(r));
    expect(o.total).toBe(4);
    for (const q of ["?state=closed&sort=stop", "?state=closed&sort=reason", "?state=any"]) {
      const x = await both(`/connz${q}`);
      expect({ q, names: names(x.o) }).toEqual({ q, names: names(x.r) });
    }
  });

  test("bad queries answer 400 with nats-server's text", async () => {
    for (const q of ["sort=stop", "sort=reason", "sort=bogus", "limit=x", "offset=1.5", "cid=-1", "state=x", "subs=x", "auth=maybe"]) {
      const [r, o] = await Promise.all([get(ref, `/connz?${q}`), get(ours, `/connz?${q}`)]);
      expect({ q, status: o.status, text: o.text }).toEqual({ q, status: r.status, text: r.text });
      expect(o.status).toBe(400);
    }
  });
});

describe.skipIf(!HAS_NATS_SERVER)("/subsz", () => {
  test("without subs: SublistStats alone, same fields as nats-server", async () => {
    for (const path of ["/subsz", "/subscriptionsz"]) {
      const { r, o } = await both(path);
      expect(shapeDiff(r, o)).toEqual([]);
      expect(o).toMatchObject({ num_subscriptions: 4, num_inserts: 6, num_removes: 2 });
      expect(o.num_matches).toBeGreaterThanOrEqual(1);
    }
  });

  test("subs=1 lists subscriptions with account, like nats-server", async () => {
    const { r, o } = await both("/subsz?subs=1&acc=$G");
    expect(shapeDiff(r, o)).toEqual([]);
    const key = (s: Json) => `${s.account} ${s.subject} ${s.qgroup ?? ""} ${s.sid} ${s.msgs} ${s.max ?? ""}`;
    const mine = (o.subscriptions_list as Json[]).map(key).sort();
    // nats-server's $G account also holds a few internal $SYS.REQ.* subscriptions.
    const theirs = (r.subscriptions_list as Json[]).filter((x) => !x.subject.startsWith("$SYS.")).map(key).sort();
    expect(mine).toEqual(theirs);
    expect(mine).toHaveLength(4);
    expect(o).toMatchObject({ total: 4, offset: 0, limit: 1024, server_id: ourLoad!.alpha.info!.server_id });
    expect(o.now).toMatch(RFC3339);
  });

  test("test=<subject> keeps what would receive it; paging; bad test subject", async () => {
    const { r, o } = await both("/subsz?subs=1&acc=$G&test=foo.x");
    const subjects = (x: Json) => (x.subscriptions_list as Json[]).map((s) => s.subject).sort();
    expect(subjects(o)).toEqual(["foo.>", "foo.x"]);
    expect(subjects(o)).toEqual(subjects(r));
    const page = await getJson<Json>(ours, "/subsz?subs=1&limit=1&offset=1");
    expect(page).toMatchObject({ total: 1, offset: 1, limit: 1 });
    const [rb, ob] = await Promise.all([get(ref, "/subsz?subs=1&test=foo.*"), get(ours, "/subsz?subs=1&test=foo.*")]);
    expect({ status: ob.status, text: ob.text }).toEqual({ status: rb.status, text: rb.text });
  });
});

describe.skipIf(!HAS_NATS_SERVER)("/routez, /healthz, /, 404", () => {
  test("/routez: no routes, same shape", async () => {
    const { r, o } = await both("/routez");
    expect(shapeDiff(r, o, { extra: ["server_name"] })).toEqual([]);
    expect(o).toMatchObject({ server_id: ourLoad!.alpha.info!.server_id, num_routes: 0, routes: [] });
    expect(o.now).toMatch(RFC3339);
  });

  test("/healthz answers exactly as nats-server", async () => {
    for (const q of ["", "?js-enabled-only=true", "?callback=cb"]) {
      const [r, o] = await Promise.all([get(ref, `/healthz${q}`), get(ours, `/healthz${q}`)]);
      expect({ q, status: o.status, type: o.contentType, text: o.text }).toEqual({ q, status: r.status, type: r.contentType, text: r.text });
    }
    const ok = await get(ours, "/healthz");
    expect(ok).toMatchObject({ status: 200, text: '{"status":"ok"}' });
  });

  test("JSON content type, JSONP callback, Go's 404", async () => {
    const v = await get(ours, "/varz");
    expect(v.contentType).toBe("application/json");
    const jp = await get(ours, "/routez?callback=cb");
    expect(jp.contentType).toBe("application/javascript");
    expect(jp.text.startsWith("cb({")).toBe(true);
    for (const p of ["/nothing", "/varz/", "/connzz"]) {
      const [r, o] = await Promise.all([get(ref, p), get(ours, p)]);
      expect({ p, status: o.status, text: o.text }).toEqual({ p, status: r.status, text: r.text });
    }
    const root = await get(ours, "/");
    expect(root.status).toBe(200);
    expect(root.contentType).toContain("text/html");
    for (const link of ["varz", "connz", "subsz", "routez", "healthz", "metrics"]) expect(root.text).toContain(`href=./${link}`);
  });
});
