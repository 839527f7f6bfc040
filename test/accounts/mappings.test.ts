// Subject mappings (`mappings` at the top level for the global account, or in an account), as nats-server
// applies them to what clients publish: a plain destination with wildcard references and mapping
// functions, weighted destinations (the rest keeps the original subject), per-account mappings, and
// publish permissions checked on the mapped subject. Each test also runs against nats-server 2.9.10.
import { headers } from "nats";
import { describe, expect, test } from "vitest";
import { connectV2, type Conn } from "../harness/clients.ts";
import { startServer } from "../harness/server.ts";
import { waitFor } from "../harness/raw.ts";
import { configErrorsOf } from "../harness/config-text.ts";

/** Subscribes to `subject` and collects the subjects of what arrives. */
function collect(nc: Conn, subject: string): string[] {
  const got: string[] = [];
  nc.subscribe(subject, { callback: (_e, m) => void got.push(m.subject) });
  return got;
}

describe("mappings", () => {
  test("a mapped subject is published on its destination, not on the original; wildcards and functions", async () => {
    const srv = await startServer({
      config: `mappings {
  "orders.*": "orders.new.{{wildcard(1)}}"
  "swap.*.*": "swapped.$2.$1"
  "part.*": "part.{{partition(3,1)}}.{{wildcard(1)}}"
  "sfl.*": "sfl.{{splitFromLeft(1,2)}}"
  "sfr.*": "sfr.{{sliceFromRight(1,2)}}"
  "spl.*": "spl.{{split(1,-)}}"
  "fixed": "elsewhere"
}
`,
    });
    const nc = await connectV2(srv);
    const all = collect(nc, ">");
    await nc.flush();
    for (const s of ["orders.x", "swap.a.b", "fixed", "sfl.abcdef", "sfr.abcde", "spl.a-b--c", "unmapped.z"]) nc.publish(s);
    for (let k = 0; k < 6; k++) nc.publish(`part.key${k}`);
    await nc.flush();
    await waitFor(() => all.length === 13, 5_000, "13 messages");
    expect(all.slice(0, 7)).toEqual(["orders.new.x", "swapped.b.a", "elsewhere", "sfl.ab.cdef", "sfr.a.bc.de", "spl.a.b.c", "unmapped.z"]);
    // The partition of each key as nats-server's FNV-1a computes it.
    expect(all.slice(7)).toEqual(["part.0.key0", "part.2.key1", "part.1.key2", "part.0.key3", "part.1.key4", "part.0.key5"]);
  });

  test("request-reply and headers through a mapping; no responders on the mapped subject", async () => {
    const srv = await startServer({ config: 'mappings { "ask.*": "service.$1", "void.*": "nothing.$1" }\n' });
    const nc = await connectV2(srv);
    nc.subscribe("service.>", {
      callback: (_e, m) => m.respond(new TextEncoder().encode(`${m.subject}:${m.headers?.get("k") ?? ""}`)),
    });
    await nc.flush();
    const h = headers();
    h.set("k", "v");
    const reply = await nc.request("ask.time", new Uint8Array(), { timeout: 5_000, headers: h });
    expect(new TextDecoder().decode(reply.data)).toBe("service.time:v");
    // A subscriber of the original subject does not count: the request goes to the mapped one, where nobody is.
    nc.subscribe("void.>", { callback: (_e, m) => m.respond(new TextEncoder().encode("original")) });
    await nc.flush();
    const other = await connectV2(srv);
    await expect(other.request("void.x", new Uint8Array(), { timeout: 5_000 })).rejects.toMatchObject({ code: "503" });
  });

  test("weighted destinations: the draw splits the messages, the rest keeps the original subject", async () => {
    const srv = await startServer({
      config: `mappings {
  "w": [ { destination: "w.a", weight: "40%" }, { destination: "w.b", weight: 40 } ]
}
`,
    });
    const nc = await connectV2(srv);
    const [a, b, original] = [collect(nc, "w.a"), collect(nc, "w.b"), collect(nc, "w")];
    await nc.flush();
    for (let k = 0; k < 1000; k++) nc.publish("w");
    await nc.flush();
    await waitFor(() => a.length + b.length + original.length === 1000, 5_000, "1000 messages");
    // 40/40/20 in expectation; generous bounds.
    expect(a.length).toBeGreaterThan(250);
    expect(b.length).toBeGreaterThan(250);
    expect(original.length).toBeGreaterThan(80);
  });

  test("an account's own mappings; publish permissions apply to the mapped subject", async () => {
    const srv = await startServer({
      config: `accounts {
  A: {
    users: [ { user: a, password: a, permissions: { publish: "mapped.>", subscribe: ">" } } ]
    mappings: { "raw.*": "mapped.$1" }
  }
  B: { users: [ { user: b, password: b } ] }
}
`,
    });
    const a = await connectV2(srv, { user: "a", pass: "a" });
    const b = await connectV2(srv, { user: "b", pass: "b" });
    const inA = collect(a, ">");
    const inB = collect(b, ">");
    await Promise.all([a.flush(), b.flush()]);
    a.publish("raw.1"); // allowed: it is published as mapped.1
    b.publish("raw.2"); // B has no mappings
    await Promise.all([a.flush(), b.flush()]);
    await waitFor(() => inA.length === 1 && inB.length === 1, 5_000, "one message in each account");
    expect(inA).toEqual(["mapped.1"]);
    expect(inB).toEqual(["raw.2"]);
  });
});

describe("mappings in the config file (errors as nats-server's)", () => {
  test.each([
    ['mappings { "a.*": "b.$2" }', /Error adding mapping for "a\.\*" to "b\.\$2" : invalid mapping destination: wildcard index out of range in \$2: \[2\]/],
    ['mappings { "a.*": "b.{{nope(1)}}" }', /invalid mapping destination: unknown function in \{\{nope\(1\)\}\}/],
    ['mappings { "a": [ { destination: "b", weight: 60 }, { destination: "c", weight: 50 } ] }', /Error adding mapping for "a" : total weight needs to be <= 100/],
    ['mappings { "a": [ { destination: "b" } ] }', /Missing weight for mapping destination "b"/],
    ['mappings { "a": [ { destination: "b", weight: "150%" } ] }', /Invalid weight 150 for mapping destination/],
    ['mappings { "a.*": "b.*" }', /invalid subject/],
  ])("%s", (text, message) => {
    const errors = configErrorsOf(`${text}\n`);
    expect(errors.length).toBe(1);
    expect(errors[0]).toMatch(message);
  });
});
