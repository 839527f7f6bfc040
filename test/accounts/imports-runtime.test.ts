// The runtime of stream and service imports (src/accounts/imports.ts, mapping.ts), in process: a
// Server built from options (no config file), internal clients publishing and subscribing in accounts.
// What a client sees on the wire is in imports.test.ts.
import { afterEach, describe, expect, test } from "vitest";
import { InternalClient, type InternalMessage } from "../../src/internal-client.ts";
import { isSubsetSubject, SubjectMapping, streamImportSubject } from "../../src/accounts/mapping.ts";
import { MAX_PENDING_RESPONSES, SERVICE_REPLY_PREFIX } from "../../src/accounts/imports.ts";
import { NO_ACCOUNT_LIMITS, type AccountOptions, type ExportOptions, type ImportOptions } from "../../src/accounts/options.ts";
import { testLogger } from "../harness/failure-log.ts";
import { defaultOptions } from "../../src/options.ts";
import { Server } from "../../src/server.ts";
import { loadOptionalModules } from "../../src/optional-modules.ts";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.shutdown()));
});

function account(name: string, exports: ExportOptions[] = [], imports: ImportOptions[] = []): AccountOptions {
  return { name, users: [], exports, imports, limits: NO_ACCOUNT_LIMITS, jetstream: null };
}

// An in-process server takes its optional modules (imports, with accounts) from what was loaded, as main.ts does.
await loadOptionalModules({ ...defaultOptions, accounts: [account("A")] });

function startServer(accounts: AccountOptions[]): Server {
  const server = new Server({ ...defaultOptions, wsAllowedOrigins: [], host: "127.0.0.1", port: -1, accounts }, testLogger());
  servers.push(server);
  server.start();
  return server;
}

function client(server: Server, name: string): InternalClient {
  return new InternalClient(server, `test-${name}`, server.accounts.get(name)!);
}

/** Lets queued bridges and internal handlers run (they run in microtasks). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("subject mapping", () => {
  test("token-wise, as nats-server's strict transform", () => {
    expect(SubjectMapping.compile("a.>", "b.>").map("a.x.y")).toBe("b.x.y");
    expect(SubjectMapping.compile("a.*.c", "b.*").map("a.x.c")).toBe("b.x");
    expect(SubjectMapping.compile("a.*.*", "b.$2.$1").map("a.x.y")).toBe("b.y.x");
    expect(SubjectMapping.compile("a.*.*", "b.{{wildcard(2)}}.{{wildcard(1)}}").map("a.x.y")).toBe("b.y.x");
    expect(SubjectMapping.compile("a.*.>", "z.*.q.>").map("a.1.2.3")).toBe("z.1.q.2.3");
    expect(SubjectMapping.compile("a.>", "p.a.>").map("a.x")).toBe("p.a.x"); // a prefix
    expect(SubjectMapping.compile("help", "help.local").map("help")).toBe("help.local");
    expect(SubjectMapping.compile("a.>", "a.>").map("a.q")).toBe("a.q");
    expect(() => SubjectMapping.compile("a.*", "b")).toThrow(/every wildcard/);
    expect(() => SubjectMapping.compile("a.>", "b.*")).toThrow();
    expect(() => SubjectMapping.compile("a.*", "b.*.*")).toThrow(/more wildcards/);
    expect(() => SubjectMapping.compile("a", "b.*")).toThrow(/literal/);
  });

  test("subsets and stream import subjects", () => {
    expect(isSubsetSubject("a.b", "a.>")).toBe(true);
    expect(isSubsetSubject("a.*", "a.>")).toBe(true);
    expect(isSubsetSubject("a.>", "a.>")).toBe(true);
    expect(isSubsetSubject("a.>", "a.*")).toBe(false);
    expect(isSubsetSubject("a.*", "a.b")).toBe(false);
    expect(isSubsetSubject("a", "a.>")).toBe(false);
    expect(isSubsetSubject("a.b.c", "a.*")).toBe(false);
    expect(streamImportSubject({ subject: "a.>", prefix: "p" })).toBe("p.a.>");
    expect(streamImportSubject({ subject: "a.>", prefix: "p." })).toBe("p.a.>");
    expect(streamImportSubject({ subject: "a.>", to: "b.>" })).toBe("b.>");
    expect(streamImportSubject({ subject: "a.>" })).toBe("a.>");
  });
});

describe("the runtime", () => {
  test("an import the exports do not allow is never bridged", async () => {
    const server = startServer([
      account("A", [{ kind: "stream", subject: "priv.>", accounts: ["B"] }, { kind: "service", subject: "svc", accounts: ["B"] }]),
      account("B", [], [{ kind: "stream", account: "A", subject: "priv.>" }]),
      account("C", [], [
        { kind: "stream", account: "A", subject: "priv.>" }, // not in the export's accounts
        { kind: "stream", account: "A", subject: "other.>" }, // not exported
        { kind: "service", account: "A", subject: "svc" }, // not in the export's accounts
        { kind: "stream", account: "A", subject: "svc" }, // a service is not a stream
      ]),
    ]);
    expect(server.imports!.size).toBe(1);
    const a = client(server, "A");
    const got: Record<string, string[]> = { B: [], C: [] };
    for (const name of ["B", "C"]) client(server, name).subscribe(">", (m) => got[name]!.push(m.subject));
    a.publish("priv.x", Buffer.from("1"));
    a.publish("other.x", Buffer.from("2"));
    await settle();
    expect(got).toEqual({ B: ["priv.x"], C: [] });
  });

  test("an import loop A->B->A goes one hop each way, no ping-pong", async () => {
    const server = startServer([
      account("A", [{ kind: "stream", subject: "loop.>" }], [{ kind: "stream", account: "B", subject: "loop.>" }]),
      account("B", [{ kind: "stream", subject: "loop.>" }], [{ kind: "stream", account: "A", subject: "loop.>" }]),
    ]);
    const a = client(server, "A");
    const b = client(server, "B");
    const inA: string[] = [];
    const inB: string[] = [];
    client(server, "A").subscribe("loop.>", (m) => inA.push(m.payload.toString()));
    client(server, "B").subscribe("loop.>", (m) => inB.push(m.payload.toString()));
    a.publish("loop.1", Buffer.from("from A"));
    b.publish("loop.2", Buffer.from("from B"));
    await settle();
    await settle();
    expect(inA.sort()).toEqual(["from A", "from B"]);
    expect(inB.sort()).toEqual(["from A", "from B"]);
  });

  test("stream imports of imports stop at one hop (A->B->C does not reach C)", async () => {
    const server = startServer([
      account("A", [{ kind: "stream", subject: "x.>" }]),
      account("B", [{ kind: "stream", subject: "x.>" }], [{ kind: "stream", account: "A", subject: "x.>" }]),
      account("C", [], [{ kind: "stream", account: "B", subject: "x.>" }]),
    ]);
    const inB: string[] = [];
    const inC: string[] = [];
    client(server, "B").subscribe("x.>", (m) => inB.push(m.payload.toString()));
    client(server, "C").subscribe("x.>", (m) => inC.push(m.payload.toString()));
    client(server, "A").publish("x.1", Buffer.from("from A"));
    client(server, "B").publish("x.2", Buffer.from("from B"));
    await settle();
    expect(inB.sort()).toEqual(["from A", "from B"]);
    expect(inC).toEqual(["from B"]);
  });

  test("service import chains work, and a cycle of service imports stops", async () => {
    const server = startServer([
      account("A", [{ kind: "service", subject: "svc" }]),
      account("B", [{ kind: "service", subject: "svc" }], [{ kind: "service", account: "A", subject: "svc" }]),
      account("C", [], [{ kind: "service", account: "B", subject: "svc" }]),
      account("D", [{ kind: "service", subject: "cyc" }], [{ kind: "service", account: "E", subject: "cyc" }]),
      account("E", [{ kind: "service", subject: "cyc" }], [{ kind: "service", account: "D", subject: "cyc" }]),
    ]);
    const a = client(server, "A");
    a.subscribe("svc", (m) => a.publish(m.reply!, Buffer.from(`A answers ${m.payload}`)));
    const c = client(server, "C");
    const answers: string[] = [];
    c.subscribe("inbox", (m) => answers.push(m.payload.toString()));
    c.publish("svc", Buffer.from("hi"), "inbox");
    const d = client(server, "D");
    let seenInE = 0;
    client(server, "E").subscribe("cyc", () => seenInE++);
    d.publish("cyc", Buffer.from("x"));
    for (let k = 0; k < 5; k++) await settle();
    expect(answers).toEqual(["A answers hi"]);
    expect(seenInE).toBe(1);
  });

  test(`response mappings are capped at ${MAX_PENDING_RESPONSES} per exporting account, the oldest dropped first`, async () => {
    const server = startServer([
      account("A", [{ kind: "service", subject: "slow" }]),
      account("B", [], [{ kind: "service", account: "A", subject: "slow" }]),
    ]);
    const requests: InternalMessage[] = [];
    const a = client(server, "A");
    a.subscribe("slow", (m) => requests.push(m)); // answers later
    const b = client(server, "B");
    const answers: string[] = [];
    b.subscribe("inbox.*", (m) => answers.push(m.subject));
    const total = MAX_PENDING_RESPONSES + 100;
    for (let k = 0; k < total; k++) b.publish("slow", Buffer.from("?"), `inbox.${k}`);
    await settle();
    expect(requests.length).toBe(total);
    expect(requests[0]!.reply!.startsWith(SERVICE_REPLY_PREFIX)).toBe(true);
    expect(server.imports!.pendingResponses(server.accounts.get("A")!)).toBe(MAX_PENDING_RESPONSES);
    a.publish(requests[0]!.reply!, Buffer.from("too late")); // evicted
    a.publish(requests[99]!.reply!, Buffer.from("too late")); // evicted
    a.publish(requests[100]!.reply!, Buffer.from("kept"));
    a.publish(requests[total - 1]!.reply!, Buffer.from("kept"));
    a.publish(requests[total - 1]!.reply!, Buffer.from("singleton: only the first"));
    await settle();
    expect(answers).toEqual(["inbox.100", `inbox.${total - 1}`]);
    expect(server.imports!.pendingResponses(server.accounts.get("A")!)).toBe(MAX_PENDING_RESPONSES - 2);
  }, 30_000);

  test("stream responses keep their mapping until response_threshold, then it expires", async () => {
    const server = startServer([
      account("A", [{ kind: "service", subject: "feed", responseType: "stream", responseThresholdMs: 100 }]),
      account("B", [], [{ kind: "service", account: "A", subject: "feed", to: "local.feed" }]),
    ]);
    const a = client(server, "A");
    let reply = "";
    a.subscribe("feed", (m) => {
      reply = m.reply!;
      for (let k = 0; k < 3; k++) a.publish(reply, Buffer.from(`part ${k}`));
    });
    const b = client(server, "B");
    const answers: string[] = [];
    b.subscribe("inbox", (m) => answers.push(m.payload.toString()));
    b.publish("local.feed", Buffer.from("go"), "inbox");
    await settle();
    expect(answers).toEqual(["part 0", "part 1", "part 2"]);
    const A = server.accounts.get("A")!;
    expect(server.imports!.pendingResponses(A)).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.imports!.pendingResponses(A)).toBe(0);
    a.publish(reply, Buffer.from("late"));
    await settle();
    expect(answers).toEqual(["part 0", "part 1", "part 2"]);
  });

  test("chunked responses end with an empty message; a request nobody takes leaves no mapping", async () => {
    const server = startServer([
      account("A", [{ kind: "service", subject: "file", responseType: "chunked" }, { kind: "service", subject: "void" }]),
      account("B", [], [{ kind: "service", account: "A", subject: "file" }, { kind: "service", account: "A", subject: "void" }]),
    ]);
    const a = client(server, "A");
    a.subscribe("file", (m) => {
      a.publish(m.reply!, Buffer.from("chunk"));
      a.publish(m.reply!, Buffer.alloc(0));
      a.publish(m.reply!, Buffer.from("after the end"));
    });
    const b = client(server, "B");
    const answers: string[] = [];
    b.subscribe("inbox", (m) => answers.push(m.payload.toString()));
    b.publish("file", Buffer.from("get"), "inbox");
    b.publish("void", Buffer.from("anyone?"), "inbox");
    await settle();
    expect(answers).toEqual(["chunk", ""]);
    expect(server.imports!.pendingResponses(server.accounts.get("A")!)).toBe(0);
  });

  test("accounts without imports have no bridge in their Sublist", () => {
    const server = startServer([account("A", [{ kind: "stream", subject: "s.>" }]), account("B", [], [{ kind: "stream", account: "A", subject: "s.>" }]), account("Z")]);
    expect(server.accounts.get("Z")!.sublist.count).toBe(0);
    expect(server.accounts.get("B")!.sublist.count).toBe(0);
    expect(server.accounts.get("A")!.sublist.count).toBe(1);
  });
});
