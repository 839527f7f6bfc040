// The accounts block, system_account and no_system_account: what a config file becomes (Options.accounts),
// and every error nats-server gives for it, at the offending key; a bad file ends natter with that one
// line and exit code 1.
import { afterAll, describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createAccount, createUser } from "@nats-io/nkeys";
import { configErrorsOf, optionsFromText } from "../harness/config-text.ts";
import { unlimitedJetStream } from "../../src/accounts/options.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const bun = path.resolve(repo, "node_modules/.bin/bun");
const tmp = mkdtempSync(path.join(os.tmpdir(), "natter-accounts-conf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const apply = (text: string) => optionsFromText(text, true);
/** The messages of a file's errors (ConfigErrors), or of the whole-options error (OptionsError). */
const errorsOf = (text: string) => configErrorsOf(text, true);

/** Runs `natter -t -c <file>` and waits (with a deadline) for it to exit. */
function checkConfig(text: string, name: string): Promise<{ code: number | null; stderr: string }> {
  const file = path.join(tmp, `${name}.conf`);
  writeFileSync(file, text);
  return new Promise((done, fail) => {
    const child = spawn(bun, [path.join(repo, "src/main.ts"), "-t", "-c", file], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`natter -t did not exit; stderr: ${stderr}`));
    }, 15_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    });
  });
}

describe("accounts block", () => {
  test("the map form: users, default_permissions, limits, jetstream, exports, imports", () => {
    const o = apply(`
      accounts {
        A: {
          users: [ { user: a1, password: p1 }, { user: a2, password: p2, permissions: { publish: "a2.>" } } ]
          default_permissions: { publish: { deny: "secret.>" } }
          limits: { max_connections: 5, max_subs: 10, max_payload: 1KB, max_leafs: 2 }
          jetstream: { max_mem: 1MB, max_store: 2MB, max_streams: 3, max_consumers: 4 }
          exports: [
            { stream: "a.events.>" }
            { stream: "a.private.>", accounts: [B] }
            { service: "a.help", response_type: stream, response_threshold: "5s", accounts: [B] }
          ]
        }
        B: {
          users: [ { user: b1, password: p1 } ]
          imports: [
            { stream: { account: A, subject: "a.events.>" }, prefix: "from_a" }
            { stream: { account: A, subject: "a.private.>" }, to: "priv.>" }
            { service: { account: A, subject: "a.help" }, to: "help" }
          ]
        }
      }
    `);
    expect(o.accounts.map((a) => a.name)).toEqual(["A", "B"]);
    const [a, b] = o.accounts;
    expect(a!.users.map((u) => u.user)).toEqual(["a1", "a2"]);
    // default_permissions go to users without their own.
    expect(a!.users[0]!.permissions).toEqual({ publish: { deny: ["secret.>"] } });
    expect(a!.users[1]!.permissions).toEqual({ publish: { allow: ["a2.>"] } });
    expect(a!.limits).toEqual({ maxConnections: 5, maxSubscriptions: 10, maxPayload: 1024, maxLeafnodes: 2 });
    expect(a!.jetstream).toEqual({ ...unlimitedJetStream(), maxMemory: 1024 * 1024, maxFile: 2 * 1024 * 1024, maxStreams: 3, maxConsumers: 4 });
    expect(a!.exports).toEqual([
      { kind: "stream", subject: "a.events.>", accounts: null },
      { kind: "stream", subject: "a.private.>", accounts: ["B"] },
      { kind: "service", subject: "a.help", accounts: ["B"], responseType: "stream", responseThresholdMs: 5000 },
    ]);
    expect(b!.imports).toEqual([
      { kind: "stream", account: "A", subject: "a.events.>", prefix: "from_a" },
      { kind: "stream", account: "A", subject: "a.private.>", to: "priv.>" },
      { kind: "service", account: "A", subject: "a.help", to: "help" },
    ]);
    expect(b!.limits).toEqual({ maxConnections: -1, maxSubscriptions: -1, maxPayload: -1, maxLeafnodes: -1 });
    expect(b!.jetstream).toBeNull();
  });

  test("the simple form: an array of names", () => {
    const o = apply("accounts: [A, B]\n");
    expect(o.accounts.map((a) => [a.name, a.users.length])).toEqual([["A", 0], ["B", 0]]);
  });

  test.each([
    ["true", unlimitedJetStream()],
    ["enabled", unlimitedJetStream()],
    ["false", null],
    ["disabled", null],
  ])("jetstream: %s", (value, expected) => {
    expect(apply(`accounts { A: { jetstream: ${value} } }\n`).accounts[0]!.jetstream).toEqual(expected);
  });

  test("nkey users in an account, and the account's own nkey", () => {
    const user = createUser().getPublicKey();
    const acc = createAccount().getPublicKey();
    const o = apply(`accounts { A: { nkey: ${acc}, users: [ { nkey: ${user} } ] } }\n`);
    expect(o.accounts[0]!.nkey).toBe(acc);
    expect(o.accounts[0]!.users).toEqual([{ nkey: user }]);
  });

  test("system_account / system, no_system_account / no_system / no_sys_acc", () => {
    expect(apply("accounts { SYS: {} }\nsystem_account: SYS\n").systemAccount).toBe("SYS");
    expect(apply("accounts { SYS: {} }\nsystem: SYS\n").systemAccount).toBe("SYS");
    for (const key of ["no_system_account", "no_system", "no_sys_acc"]) expect(apply(`${key}: true\n`).noSystemAccount).toBe(true);
  });

  test("$SYS may be configured (with users), as in nats-server; users of the authorization block stay beside account users", () => {
    const o = apply(`
      authorization { users: [ { user: g, password: p } ] }
      accounts { $SYS: { users: [ { user: admin, password: p } ] } }
    `);
    expect(o.accounts.map((a) => a.name)).toEqual(["$SYS"]);
    expect(o.authorization?.users?.map((u) => u.user)).toEqual(["g"]);
  });

  test("a no_auth_user may be an account user", () => {
    expect(apply("no_auth_user: a\naccounts { A: { users: [ { user: a, password: p } ] } }\n").authorization?.noAuthUser).toBe("a");
  });
});

/** [name, config, the whole error line natter prints (after "natter: ")]. */
const ERRORS: [string, string, string][] = [
  ["reserved", "accounts {\n  $G: {}\n}\n", 't.conf:2:3: "$G" is a Reserved Account'],
  ["reserved-array", 'accounts: [A, "$G"]\n', 't.conf:1:16: "$G" is a Reserved Account'],
  ["duplicate-account", "accounts: [A, B, A]\n", "t.conf:1:18: Duplicate Account Entry: A"],
  ["not-a-map", "accounts {\n  A: 1\n}\n", "t.conf:2:3: Expected map entries for accounts"],
  [
    "duplicate-user-accounts",
    "accounts {\n  A: { users: [ { user: u, password: p } ] }\n  B: { users: [ { user: u, password: q } ] }\n}\n",
    't.conf:3:8: Duplicate user "u" detected',
  ],
  [
    "duplicate-user-authorization",
    "authorization { users: [ { user: u, password: p } ] }\naccounts {\n  A: { users: [ { user: u, password: q } ] }\n}\n",
    't.conf:3:8: Duplicate user "u" detected',
  ],
  [
    "single-user",
    "authorization { user: x, password: y }\naccounts {\n  A: { users: [ { user: u, password: p } ] }\n}\n",
    "t.conf:3:8: Can not have a single user/pass and accounts",
  ],
  [
    "token",
    "authorization { token: t }\naccounts {\n  A: { users: [ { user: u, password: p } ] }\n}\n",
    "t.conf:3:8: Can not have a token and accounts",
  ],
  [
    "stream-import-undefined",
    'accounts {\n  A: { imports: [ { stream: { account: Z, subject: "x" } } ] }\n}\n',
    't.conf:2:19: "Z" account not defined for stream import',
  ],
  [
    "service-import-undefined",
    'accounts {\n  A: { imports: [ { service: { account: Z, subject: "x" } } ] }\n}\n',
    't.conf:2:19: "Z" account not defined for service import',
  ],
  [
    "stream-export-undefined",
    'accounts {\n  A: { exports: [ { stream: "x", accounts: [Z] } ] }\n}\n',
    't.conf:2:19: "Z" account not defined for stream export',
  ],
  [
    "stream-import-not-exported",
    'accounts {\n  A: {}\n  B: { imports: [ { stream: { account: A, subject: "a.b" } } ] }\n}\n',
    't.conf:3:19: Error adding stream import "a.b": stream import not authorized',
  ],
  [
    "stream-import-other-account",
    'accounts {\n  A: { exports: [ { stream: "a.>", accounts: [C] } ] }\n  B: { imports: [ { stream: { account: A, subject: "a.b" } } ] }\n  C: {}\n}\n',
    't.conf:3:19: Error adding stream import "a.b": stream import not authorized',
  ],
  [
    "service-import-not-exported",
    'accounts {\n  A: { exports: [ { stream: "help" } ] }\n  B: { imports: [ { service: { account: A, subject: "help" } } ] }\n}\n',
    't.conf:3:19: Error adding service import "help": service import not authorized',
  ],
  [
    "import-wider-than-export",
    'accounts {\n  A: { exports: [ { stream: "a.b.*" } ] }\n  B: { imports: [ { stream: { account: A, subject: "a.>" } } ] }\n}\n',
    't.conf:3:19: Error adding stream import "a.>": stream import not authorized',
  ],
  [
    "prefix-wildcard",
    'accounts {\n  A: { exports: [ { stream: "a.>" } ] }\n  B: { imports: [ { stream: { account: A, subject: "a.>" }, prefix: "p.*" } ] }\n}\n',
    't.conf:3:19: Error adding stream import "a.>": stream import prefix can not contain wildcard tokens',
  ],
  [
    "cycle",
    'accounts {\n  A: { exports: [ { service: "q" } ], imports: [ { service: { account: B, subject: "q" } } ] }\n  B: { exports: [ { service: "q" } ], imports: [ { service: { account: A, subject: "q" } } ] }\n}\n',
    't.conf:3:50: Error adding service import "q": import forms a cycle',
  ],
  [
    "prefix-and-to",
    'accounts {\n  A: { imports: [ { stream: { account: B, subject: "x" }, prefix: p, to: y } ] }\n}\n',
    "t.conf:2:70: Stream import can not have a 'prefix' and a 'to' property",
  ],
  ["import-no-subject", "accounts {\n  A: { imports: [ { stream: { account: B } } ] }\n}\n", "t.conf:2:21: Expect an account name and a subject"],
  [
    "duplicate-service-import",
    'accounts {\n  A: { exports: [ { service: "q" } ] }\n  B: { imports: [ { service: { account: A, subject: "q" } }, { service: { account: A, subject: "q" } } ] }\n}\n',
    't.conf:3:62: Duplicate service import subject "q", previously used in import for account "A", subject "q"',
  ],
  ["response-type", 'accounts {\n  A: { exports: [ { service: "q", response_type: lots } ] }\n}\n', 't.conf:2:35: Unknown response type: "lots"'],
  ["response-on-stream", 'accounts {\n  A: { exports: [ { stream: "q", response_type: stream } ] }\n}\n', "t.conf:2:34: Detected response directive on non-service"],
  ["allow-trace-on-stream-export", 'accounts {\n  A: { exports: [ { stream: "q", allow_trace: true } ] }\n}\n', "t.conf:2:34: Detected allow_trace directive on non-service"],
  ["allow-trace-on-service-import", 'accounts {\n  A: { exports: [ { service: "q" } ] }\n  B: { imports: [ { allow_trace: true, service: { account: A, subject: "q" } } ] }\n}\n', "t.conf:3:21: Detected allow_trace directive on a non-stream"],
  ["exports-not-array", 'accounts {\n  A: { exports: { stream: "q" } }\n}\n', "t.conf:2:8: Exports should be an array, got map[string]interface {}"],
  ["limits-unknown", "accounts {\n  A: { limits: { max_bananas: 1 } }\n}\n", 't.conf:2:18: Unknown field "max_bananas" parsing account limits'],
  ["jetstream-string", "accounts {\n  A: { jetstream: maybe }\n}\n", "t.conf:2:8: Expected 'enabled' or 'disabled' for string value, got 'maybe'"],
  ["jetstream-max-bytes-required", "accounts {\n  A: { jetstream: { max_bytes_required: 5 } }\n}\n", 't.conf:2:21: Expected a parseable bool for "max_bytes_required", got 5'],
  ["jetstream-max-ack-pending", "accounts {\n  A: { jetstream: { max_ack_pending: x } }\n}\n", 't.conf:2:21: Expected a parseable size for "max_ack_pending", got x'],
  ["account-nkey", "accounts {\n  A: { nkey: ABC }\n}\n", 't.conf:2:8: Not a valid public nkey for an account: "ABC"'],
  ["account-unknown-key", "accounts {\n  A: { colour: red }\n}\n", 't.conf:2:8: unknown field "colour"'],
  ["system-account-undefined", "accounts { A: {} }\nsystem_account: NOPE\n", "t.conf:2:1: error resolving system account: account missing"],
  ["system-account-type", "system_account: 1\n", "t.conf:1:1: system account name must be a string"],
  [
    "no-auth-user-missing",
    "no_auth_user: zed\naccounts { A: { users: [ { user: a, password: p } ] } }\n",
    'no_auth_user: "zed" not present as user in authorization block or account configuration',
  ],
];

describe("config errors: nats-server's texts, at the offending key", () => {
  test.each(ERRORS)("%s", (_name, text, line) => {
    expect(errorsOf(text)).toEqual([line]);
  });
});

describe("a bad accounts config ends natter with one line and exit code 1", () => {
  test.concurrent.each(ERRORS)("%s", async (name, text, line) => {
    const result = await checkConfig(text, name);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    const file = path.join(tmp, `${name}.conf`);
    expect(lines[0]).toBe(`natter: ${line.replace(/^t\.conf:/, `${file}:`)}`);
  });

  test("a good one passes -t", async () => {
    const result = await checkConfig("accounts { A: { users: [ { user: a, password: p } ] } }\nsystem_account: A\n", "good");
    expect(result.stderr).toMatch(/is valid/);
    expect(result.code).toBe(0);
  });
});
