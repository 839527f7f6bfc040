// The config tree onto Options: nats-server's key names, types, errors as nats-server prints them, keys
// natter does not support yet refused, and flags over the file.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultOptions, OptionsError, parseCommandLine, type Options } from "../../src/options.ts";
import { applyConfig } from "../../src/config/apply.ts";
import { ConfigErrors, parseConfig } from "../../src/config/parser.ts";
import { loadOptions } from "../../src/config/load.ts";
import { formatGoDuration, parseGoDuration } from "../../src/config/duration.ts";

function apply(text: string): { options: Options; warnings: string[] } {
  const options: Options = { ...defaultOptions, wsAllowedOrigins: [] };
  const warnings = applyConfig(parseConfig(text, "t.conf"), options, "t.conf");
  return { options, warnings };
}

function errorsOf(text: string): string[] {
  try {
    apply(text);
  } catch (error) {
    if (error instanceof ConfigErrors) return error.errors.map((e) => e.message);
    throw error;
  }
  throw new Error("expected errors");
}

describe("every natter option has a config key", () => {
  test("server and limits", () => {
    const { options } = apply(`
      host: 127.0.0.1
      port: 4333
      server_name: alpha
      max_payload: 2MB
      max_control_line: 8KB
      max_pending: 128MB
      max_connections: 100
      max_subscriptions: 50
      ping_interval: "30s"
      ping_max: 5
      write_deadline: "3s"
      connect_timeout: "5s"
      debug: true
      trace: yes
      logtime: false
      log_file: "/tmp/natter.log"
      pid_file: "/tmp/natter.pid"
      ports_file_dir: "/tmp"
      lame_duck_duration: "1m"
      lame_duck_grace_period: "5s"
      http_port: 8222
      http_host: 127.0.0.2
    `);
    expect(options).toMatchObject({
      host: "127.0.0.1",
      port: 4333,
      serverName: "alpha",
      maxPayload: 2 * 1024 * 1024,
      maxControlLine: 8 * 1024,
      maxPending: 128 * 1024 * 1024,
      maxConnections: 100,
      maxSubscriptions: 50,
      pingIntervalMs: 30_000,
      pingMax: 5,
      writeDeadlineMs: 3000,
      connectTimeoutMs: 5000,
      debug: true,
      trace: true,
      logtime: false,
      logFile: "/tmp/natter.log",
      pidFile: "/tmp/natter.pid",
      portsFileDir: "/tmp",
      lameDuckDurationMs: 60_000,
      lameDuckGracePeriodMs: 5000,
      httpPort: 8222,
      httpHost: "127.0.0.2",
    });
  });

  test("nats-server's aliases: listen, net, max_subs, max_conn, logfile, pidfile, monitor_port, http", () => {
    const { options } = apply(`listen: "10.0.0.1:4555"\nmax_subs: 7\nmax_conn: 9\nlogfile: a.log\npidfile: a.pid\nhttp: "127.0.0.1:8333"\n`);
    expect(options).toMatchObject({ host: "10.0.0.1", port: 4555, maxSubscriptions: 7, maxConnections: 9, logFile: "a.log", pidFile: "a.pid", httpHost: "127.0.0.1", httpPort: 8333 });
    expect(apply("net: 0.0.0.0\nmonitor_port: 8444\nlisten: 4666\n").options).toMatchObject({ host: "0.0.0.0", httpPort: 8444, port: 4666 });
  });

  test("keys are case-insensitive, as nats-server's", () => {
    expect(apply("PORT: 4777\nMax_Payload: 1KB\n").options).toMatchObject({ port: 4777, maxPayload: 1024 });
  });

  test("the websocket block", () => {
    const { options } = apply(`websocket {
      host: 127.0.0.1
      port: 8080
      no_tls: true
      compression: true
      same_origin: true
      allowed_origins: ["https://a.example", "https://b.example"]
    }`);
    expect(options).toMatchObject({
      wsHost: "127.0.0.1",
      wsPort: 8080,
      wsCompression: true,
      wsSameOrigin: true,
      wsAllowedOrigins: ["https://a.example", "https://b.example"],
    });
    // nats-server's default inside the block: no compression; `ws` and `listen` work too.
    expect(apply(`ws { listen: "127.0.0.1:9090", no_tls: true, allowed_origins: "https://c.example" }`).options).toMatchObject({
      wsHost: "127.0.0.1",
      wsPort: 9090,
      wsCompression: false,
      wsAllowedOrigins: ["https://c.example"],
    });
  });

  test("ping_interval as a bare number is seconds, with nats-server's warning", () => {
    const { options, warnings } = apply("ping_interval: 5\n");
    expect(options.pingIntervalMs).toBe(5000);
    expect(warnings).toEqual(['t.conf:1:1: invalid use of field "ping_interval": ping_interval should be converted to a duration']);
  });

  test("variables may hold settings; a variable that is used is not an unknown field", () => {
    expect(apply("LIMIT: 4KB\nmax_payload: $LIMIT\n").options.maxPayload).toBe(4096);
  });
});

describe("errors, as nats-server prints them", () => {
  test("an unknown key", () => {
    expect(errorsOf("port: 4222\n\n\nbogus_key: 1\n")).toEqual(['t.conf:4:1: unknown field "bogus_key"']);
  });

  test("every error of the file is reported, in file order", () => {
    expect(errorsOf("a: 1\n  b: 2\nport: 1\n")).toEqual(['t.conf:1:1: unknown field "a"', 't.conf:2:3: unknown field "b"']);
  });

  test("an unknown key inside the websocket block", () => {
    expect(errorsOf("websocket {\n  port: 1\n  no_tls: true\n  colour: red\n}\n")).toEqual(['t.conf:4:3: unknown field "colour"']);
  });

  test.each([
    ["logfile_size_limit: 1", "logfile_size_limit"],
    ["operator: \"op.jwt\"", "operator"],
    ["http_base_path: /nats", "http_base_path"],
    ["gateway { name: x }", "gateway"],
    ["syslog: true", "syslog"],
    ["prof_block_rate: 1", "prof_block_rate"],
  ])("%s is refused as not supported yet", (text, key) => {
    expect(errorsOf(`${text}\n`)).toEqual([`t.conf:1:1: "${key}" is not supported yet`]);
  });

  test("websocket jwt_cookie is refused (no JWT auth); a websocket port without no_tls needs TLS, as in nats-server", () => {
    expect(errorsOf("websocket {\n  port: 1\n  no_tls: true\n  jwt_cookie: jwt\n}\n")).toEqual(['t.conf:4:3: "websocket.jwt_cookie" is not supported: natter has no JWT (operator mode) authentication']);
    expect(errorsOf("websocket {\n  port: 8080\n}\n")[0]).toMatch(/^t\.conf:1:1: websocket requires TLS configuration/);
  });

  test.each([
    ["max_payload: abc", /^t\.conf:1:1: max_payload must be an integer or a size .*got string "abc"$/],
    ["max_payload: 3GB", /^t\.conf:1:1: max_payload value is too big$/],
    ["port: 70000", /^t\.conf:1:1: port must be a port number/],
    ["debug: 1", /^t\.conf:1:1: debug must be a boolean/],
    ["server_name: 5", /^t\.conf:1:1: server_name must be a string/],
    ['ping_interval: "soon"', /^t\.conf:1:1: error parsing ping_interval: time: invalid duration "soon"$/],
    ['write_deadline: "5x"', /^t\.conf:1:1: error parsing write_deadline: time: unknown unit "x" in duration "5x"$/],
    ['lame_duck_duration: "10s"', /^t\.conf:1:1: invalid lame_duck_duration of 10s, minimum is 30 seconds$/],
    ["lame_duck_duration: 60", /^t\.conf:1:1: lame_duck_duration must be a duration string/],
    ['lame_duck_grace_period: "-1s"', /^t\.conf:1:1: invalid lame_duck_grace_period, needs to be positive$/],
    ['listen: "nonsense"', /^t\.conf:1:1: could not parse address string "nonsense"$/],
    ["max_connections: -5", /^t\.conf:1:1: max_connections value can not be negative$/],
    ["max_sub_tokens: 256", /^t\.conf:1:1: max_sub_tokens value is too big$/],
    ["max_sub_tokens: 0", /^t\.conf:1:1: max_sub_tokens value can not be negative$/],
    ["allow_non_tls: 1", /^t\.conf:1:1: allow_non_tls must be a boolean/],
  ])("%s", (text, message) => {
    const errors = errorsOf(`${text}\n`);
    expect(errors.length).toBe(1);
    expect(errors[0]).toMatch(message);
  });
});

describe("flags override the file", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "natter-apply-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("what a flag sets wins; the rest comes from the file", () => {
    const file = path.join(dir, "a.conf");
    writeFileSync(file, "port: 4001\nmax_payload: 2KB\ndebug: true\nserver_name: file\n");
    const parsed = parseCommandLine(["-c", file, "-p", "4002", "--debug=false"]);
    if (parsed.kind !== "run") throw new Error("run expected");
    const { options } = loadOptions(file, parsed.flagged);
    expect(options).toMatchObject({ port: 4002, maxPayload: 2048, debug: false, serverName: "file", configFile: file });
  });

  test("the merged result is validated (max_payload over max_pending)", () => {
    const file = path.join(dir, "b.conf");
    writeFileSync(file, "max_pending: 1KB\n");
    expect(() => loadOptions(file, { maxPayload: 4096 })).toThrow(OptionsError);
  });

  test("-t without -c is an error, as nats-server's", () => {
    expect(() => parseCommandLine(["-t"])).toThrow(/must specify \[-c, --config\]/);
  });
});

describe("Go durations", () => {
  test.each([
    ["2m", 120_000],
    ["10s", 10_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
    ["500ms", 500],
    ["250us", 0.25],
    ["0", 0],
    ["-3s", -3000],
  ])("parses %s", (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  test.each([["5", /missing unit/], ["", /invalid duration/], ["x", /invalid duration/], ["3d", /unknown unit "d"/]])("refuses %j", (text, re) => {
    expect(() => parseGoDuration(text)).toThrow(re);
  });

  test.each([
    [120_000, "2m0s"],
    [30_000, "30s"],
    [3_600_000, "1h0m0s"],
    [1500, "1.5s"],
    [500, "500ms"],
    [0, "0s"],
    [90_500, "1m30.5s"],
  ])("formats %d ms as %s", (ms, text) => {
    expect(formatGoDuration(ms)).toBe(text);
  });
});
