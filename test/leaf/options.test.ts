// The leafnodes block of the config file and the --leafnode_remote / --leafnodes_listen flags.
import { describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultOptions, OptionsError, parseCommandLine, validateOptions } from "../../src/options.ts";
import { loadOptions } from "../../src/config/load.ts";
import { effectiveLeafnodeOptions, parseLeafUrl } from "../../src/leaf/options.ts";
import { configErrorsOf, optionsFromText } from "../harness/config-text.ts";
import { freePort } from "../harness/server.ts";
import { HOST, startProc } from "./spawn.ts";

const apply = (text: string) => optionsFromText(text);
const errorsOf = (text: string) => configErrorsOf(text);

describe("leafnodes {} in the config file", () => {
  test("listen, authorization, reconnect, remotes with urls and credentials", () => {
    const o = apply(`
      leafnodes {
        listen: "127.0.0.1:7423"
        authorization { user: leaf, password: pw, timeout: 1.5 }
        reconnect: 3
        advertise: "edge.example:7423"
        remotes [
          { url: "nats-leaf://u:p@hub1:7422" }
          { urls: ["nats://hub2", "hub3:9000"], user: a, password: b, account: "$G", hub: false, no_randomize: true }
          { url: "ws://hub4:8080/path", token: tok }
        ]
      }
    `);
    expect(o.leafnodes).toMatchObject({
      host: "127.0.0.1",
      port: 7423,
      authorization: { user: "leaf", password: "pw", timeoutMs: 1500 },
      reconnectIntervalMs: 3000,
      advertise: "edge.example:7423",
      remotes: [
        { urls: ["nats-leaf://u:p@hub1:7422"] },
        { urls: ["nats://hub2", "hub3:9000"], user: "a", password: "b", hub: false, noRandomize: true },
        { urls: ["ws://hub4:8080/path"], token: "tok" },
      ],
    });
  });

  test("tls on the listener and in remotes; credentials; tls:// is a TCP URL", () => {
    const o = apply(`
      leafnodes {
        listen: 7422
        tls { cert_file: "s.pem", key_file: "s.key", ca_file: "ca.pem", verify: true, timeout: 3 }
        remotes [
          { url: "tls://hub:7422", credentials: "u.creds", tls { ca_file: "ca.pem", cert_file: "c.pem", key_file: "c.key", timeout: 1 } }
          { url: "nats-leaf://hub2:7422", tls { insecure: true } }
        ]
      }
    `);
    expect(o.leafnodes).toMatchObject({
      tls: { certFile: "s.pem", keyFile: "s.key", caFile: "ca.pem", verify: true, timeoutMs: 3000 },
      remotes: [
        { urls: ["tls://hub:7422"], credentials: "u.creds", tls: { caFile: "ca.pem", certFile: "c.pem", keyFile: "c.key", timeoutMs: 1000 } },
        { urls: ["nats-leaf://hub2:7422"], tls: { insecure: true } },
      ],
    });
    expect(parseLeafUrl("tls://hub:7000")).toMatchObject({ transport: "tcp", host: "hub", port: 7000 });
  });

  test("accounts: a remote's, the authorization's and each user's; an account that does not exist is refused", () => {
    const o = apply(`
      accounts { A { users [ { user: a, password: a } ] }, B {} }
      leafnodes {
        authorization { users [ { user: x, password: x, account: A }, { user: y, password: y } ] }
        remotes [ { url: "nats-leaf://h:1", account: "A" }, { url: "nats-leaf://h:1", account: B }, { url: "nats-leaf://h:2" } ]
      }
    `);
    expect(o.leafnodes!.remotes.map((r) => r.account)).toEqual(["A", "B", undefined]);
    expect(o.leafnodes!.authorization!.users).toEqual([{ user: "x", password: "x", account: "A" }, { user: "y", password: "y" }]);
    expect(() => validateOptions(o)).not.toThrow();
    expect(apply('leafnodes { authorization { user: u, password: p, account: "$SYS" } }').leafnodes!.authorization!.account).toBe("$SYS");
    for (const text of [
      'leafnodes { remotes [ { url: "nats-leaf://h:1", account: "C" } ] }',
      "leafnodes { authorization { user: u, password: p, account: C } }",
      "leafnodes { authorization { users [ { user: u, password: p, account: C } ] } }",
    ]) {
      expect(() => validateOptions(apply(text))).toThrow(/cannot find local account "C" specified in leafnode (remote|authorization)/);
    }
  });

  test("`leaf` is the same block; listen may be a port", () => {
    expect(apply("leaf { port: 7422 }").leafnodes).toMatchObject({ host: "0.0.0.0", port: 7422, remotes: [] });
    expect(apply("leafnodes { listen: 7499 }").leafnodes).toMatchObject({ port: 7499 });
  });

  test.each([
    ['leafnodes { remotes [ { url: "wss://h:1" } ] }', /TLS over WebSocket \(wss:\/\/\) is not supported yet/],
    ['leafnodes { remotes [ { url: "http://h:1" } ] }', /unknown scheme "http"/],
    ['leafnodes { remotes [ { url: "nats-leaf://h:1", tls: { cert_file: x } } ] }', /needs both cert_file and key_file/],
    ['leafnodes { remotes [ { url: "nats-leaf://h:1", tls: { handshake_first: true } } ] }', /"leafnodes\.remotes\.tls\.handshake_first" is not supported yet/],
    ['leafnodes { remotes [ { url: "nats-leaf://h:1", deny_imports: ["x"] } ] }', /"leafnodes\.remotes\.deny_imports" is not supported yet/],
    ['leafnodes { remotes [ { url: "nats-leaf://h:1", colour: red } ] }', /unknown field "colour"/],
    ['leafnodes { remotes [ { hub: true } ] }', /a leafnode remote needs a url/],
    ['leafnodes { remotes [ { urls: ["ws://a:1", "nats-leaf://b:2"] } ] }', /all be WebSocket/],
    ["leafnodes { tls { cert_file: x } }", /missing 'key_file' in TLS configuration/],
    ["leafnodes { tls { cert_file: x, key_file: y, handshake_first: true } }", /"leafnodes\.tls\.handshake_first" is not supported yet/],
    ["leafnodes { bogus: 1 }", /unknown field "bogus"/],
    ["leafnodes { authorization { token: x } }", /leaf nodes authenticate with user and password/],
    ["leafnodes: 7422", /Expected map to define a leafnode/],
    ['leafnodes { min_version: "2.7.9" }', /the minimum version should be at least 2\.8\.0/],
    ['leafnodes { min_version: "latest" }', /invalid leafnode's minimum version: invalid semver/],
  ])("%s is refused", (text, message) => {
    const errors = errorsOf(`${text}\n`);
    expect(errors.length).toBe(1);
    expect(errors[0]).toMatch(message);
  });
});

describe("flags", () => {
  test("--leafnode_remote adds a remote (repeatable); --leafnodes_listen sets the listener", () => {
    const parsed = parseCommandLine(["--leafnode_remote", "nats-leaf://h1:7422", "--leafnode_remote", "nats-leaf://h2:7422,nats-leaf://h3:7422", "--leafnodes_listen", "127.0.0.1:-1"]);
    if (parsed.kind !== "run") throw new Error(parsed.kind);
    const ln = effectiveLeafnodeOptions(parsed.options)!;
    expect(ln.remotes.map((r) => r.urls)).toEqual([["nats-leaf://h1:7422"], ["nats-leaf://h2:7422", "nats-leaf://h3:7422"]]);
    expect(ln).toMatchObject({ host: "127.0.0.1", port: -1 });
    expect(effectiveLeafnodeOptions({ ...defaultOptions })).toBeNull();
  });

  test("bad values are one-line errors", () => {
    expect(() => parseCommandLine(["--leafnode_remote", "http://x:1"])).toThrow(OptionsError);
    expect(() => parseCommandLine(["--leafnodes_listen", "nope"])).toThrow(/expected host:port/);
  });

  test("flags add to the config file's block instead of replacing it", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "natter-leaf-opts-"));
    try {
      const file = path.join(dir, "a.conf");
      writeFileSync(file, 'leafnodes { listen: "127.0.0.1:7500", remotes [ { url: "nats-leaf://a:1" } ] }\n');
      const parsed = parseCommandLine(["-c", file, "--leafnode_remote", "nats-leaf://b:2"]);
      if (parsed.kind !== "run") throw new Error(parsed.kind);
      const loaded = loadOptions(file, parsed.flagged);
      const ln = effectiveLeafnodeOptions(loaded.options)!;
      expect(ln.port).toBe(7500);
      expect(ln.remotes.map((r) => r.urls[0])).toEqual(["nats-leaf://a:1", "nats-leaf://b:2"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the leafnode port may not be another listener's", () => {
    expect(() => parseCommandLine(["-p", "5000", "--leafnodes_listen", "0.0.0.0:5000"])).toThrow(/leafnode port 5000 is already used/);
  });
});

describe("hub URLs", () => {
  test.each([
    ["nats-leaf://u:p%40ss@hub.example:7422", { transport: "tcp", host: "hub.example", port: 7422, user: "u", password: "p@ss" }],
    ["hub.example", { transport: "tcp", host: "hub.example", port: 7422, user: "" }],
    ["nats://10.0.0.1:9999", { transport: "tcp", host: "10.0.0.1", port: 9999 }],
    ["ws://hub:8080", { transport: "ws", host: "hub", port: 8080, path: "" }],
    ["ws://hub/prefix", { transport: "ws", host: "hub", port: 80, path: "/prefix" }],
    ["nats-leaf://[::1]:7422", { transport: "tcp", host: "::1", port: 7422 }],
  ])("%s", (url, expected) => {
    expect(parseLeafUrl(url)).toMatchObject(expected);
  });
});

describe("connect_error_reports", () => {
  test("config: defaults as nats-server's (3600 before the first connect, 1 after); 0 keeps the default", () => {
    expect(apply("debug: false\n")).toMatchObject({ connectErrorReports: 3600, reconnectErrorReports: 1 });
    expect(apply("connect_error_reports: 2\nreconnect_error_reports: 5\n")).toMatchObject({ connectErrorReports: 2, reconnectErrorReports: 5 });
    expect(apply("connect_error_reports: 0\n")).toMatchObject({ connectErrorReports: 3600 });
  });

  // natter only: nats-server's reconnect interval is whole seconds, so its Nth attempt comes much later.
  test("a remote that never connected logs its 1st failed dial and every Nth as errors, the others as debug", async () => {
    const dead = await freePort();
    const errorsOf = (log: string) => log.split("\n").filter((l) => l.includes("[ERR]") && l.includes("Error trying to connect as leafnode")).length;
    const attempts = (log: string) => log.split("\n").filter((l) => l.includes("Error trying to connect as leafnode")).length;
    const every2 = await startProc("natter", { name: "EVERY2", config: `connect_error_reports: 2\nleafnodes { reconnect: 0.05, remotes [ { url: "nats-leaf://${HOST}:${dead}" } ] }\n`, trace: true });
    const dflt = await startProc("natter", { name: "DEFAULT", config: `leafnodes { reconnect: 0.05, remotes [ { url: "nats-leaf://${HOST}:${dead}" } ] }\n`, trace: true });
    const deadline = Date.now() + 15_000;
    while ((attempts(every2.log()) < 4 || attempts(dflt.log()) < 4) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const log = every2.log(); // read once: it keeps growing
    const n = attempts(log);
    expect(n).toBeGreaterThanOrEqual(4);
    expect(errorsOf(log)).toBe(1 + Math.floor(n / 2)); // attempts 1, 2, 4, 6, …
    expect(errorsOf(dflt.log())).toBe(1);
  });
});
