// The security keys of the config file and the flags, onto Options: shapes, aliases, defaults and the
// errors nats-server gives for the same mistakes. Unit tests (no server).
import { describe, expect, test } from "vitest";
import { defaultOptions, OptionsError, parseCommandLine, validateOptions, type Options } from "../../src/options.ts";
import { createUser } from "@nats-io/nkeys";
import { Authenticator, cookieCredentials } from "../../src/auth/authenticator.ts";
import { redactRead, redactSecrets } from "../../src/auth/redact.ts";
import { formatError } from "../../src/protocol/errors.ts";
import { configErrorsOf, optionsFromText } from "../harness/config-text.ts";

const apply = (text: string) => optionsFromText(text);
const errorsOf = (text: string) => configErrorsOf(text);

describe("authorization block", () => {
  test("token, user/password, timeout (seconds)", () => {
    expect(apply("authorization { token: abc, timeout: 3 }").authorization).toEqual({ token: "abc", timeoutMs: 3000, noAuthUser: undefined });
    expect(apply("authorization { user: u, pass: p, timeout: 0.5 }").authorization).toMatchObject({ user: "u", password: "p", timeoutMs: 500 });
  });

  test("users with permissions: new style, old style, allow_responses, queue entries; defaults fill in", () => {
    const o = apply(`authorization {
      default_permissions { publish: "pub.>" }
      users = [
        { user: a, password: pa, permissions: { publish: { allow: ["x.*"], deny: "x.y" }, subscribe: ["s.>", "jobs v1"] } }
        { username: b, password: pb, permissions: { allow_responses: { max: 3, expires: "1m" } } }
        { user: c, password: pc, permissions: { sub: "c.>", allow_responses: true } }
        { user: d, password: pd }
      ]
    }`);
    const users = o.authorization!.users!;
    expect(users[0]!.permissions).toEqual({ publish: { allow: ["x.*"], deny: ["x.y"] }, subscribe: { allow: ["s.>", "jobs v1"] } });
    expect(users[1]!.permissions).toEqual({ responses: { max: 3, expiresMs: 60_000 } });
    expect(users[2]!.permissions).toEqual({ subscribe: { allow: ["c.>"] }, responses: { max: 1, expiresMs: 120_000 } });
    expect(users[3]!.permissions).toEqual({ publish: { allow: ["pub.>"] } });
  });

  test("nkey users; no_auth_user at the top level (before or after the block)", () => {
    const key = createUser().getPublicKey();
    const o = apply(`no_auth_user: guest\nauthorization { users = [ { nkey: ${key} }, { user: guest, password: g } ] }`);
    expect(o.authorization!.users![0]).toEqual({ nkey: key });
    expect(o.authorization!.noAuthUser).toBe("guest");
    expect(() => validateOptions(o)).not.toThrow();
  });

  test.each([
    ["authorization { token: t, user: u }", "t.conf:1:1: Cannot have a user/pass and token"],
    ["authorization { user: u, users = [ {user: v, password: w} ] }", "t.conf:1:1: Can not have a single user/pass and a users array"],
    ["authorization { users = [ {user: v, password: w}, {user: v, password: x} ] }", 't.conf:1:1: Duplicate user "v" detected'],
    ["authorization { users = [ {password: w} ] }", "t.conf:1:27: User entry requires a user"],
    ["authorization { users = [ {nkey: UBAD} ] }", "t.conf:1:27: Not a valid public nkey for a user"],
    ["authorization { users = [ {user: v, permissions: { publish: { allow: \"a b c\" } } } ] }", 't.conf:1:63: subject "a b c" is not a valid subject'],
    ["authorization { users = [ {user: v, permissions: { pub: {}, bogus: 1 } } ] }", 't.conf:1:61: Unknown field "bogus" parsing permissions'],
    ["authorization { users = [ {user: v, permissions: { publish: { allowed: x } } } ] }", "t.conf:1:63: Unknown field name \"allowed\" parsing subject permissions, only 'allow' or 'deny' are permitted"],
    ["authorization { colour: red }", 't.conf:1:17: unknown field "colour"'],
    ['authorization { users = [ {user: v, allowed_connection_types: ["STANDARD", "foo"]} ] }', 't.conf:1:37: invalid connection types ["FOO"]'],
    ['tls { cert_file: "a" }', "t.conf:1:1: missing 'key_file' in TLS configuration"],
    ['tls { cert_file: "a", key_file: "b", cipher_suites: [] }', "t.conf:1:38: error parsing tls config, 'cipher_suites' cannot be empty"],
    ['tls { cert_file: "a", key_file: "b", cipher_suites: ["TLS_NOPE"] }', "t.conf:1:55: unrecognized cipher TLS_NOPE"],
    ['tls { cert_file: "a", key_file: "b", curve_preferences: ["X25519"] }', 't.conf:1:38: "tls.curve_preferences" is not supported yet'],
    ['tls { cert_file: "a", key_file: "b", bogus: 1 }', 't.conf:1:38: error parsing tls config, unknown field ["bogus"]'],
    ['tls { cert_file: "a", key_file: "b", verify_cert_and_check_known_urls: true }', "t.conf:1:38: verify_cert_and_check_known_urls not supported in this context"],
    ['tls { cert_file: "a", key_file: "b", cert_store: "WindowsCurrentUser" }', "t.conf:1:38: cert_store not compatible with current operating system"],
    ['tls { cert_file: "a", key_file: "b", pinned_certs: ["abc"] }', "t.conf:1:54: error parsing tls config, 'pinned_certs' key abc does not look like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo"],
    ['tls { cert_file: "a", key_file: "b", min_version: "1.1" }', "t.conf:1:38: error parsing tls config: unsupported TLS version: TLS 1.1"],
    ['tls { cert_file: "a", key_file: "b", min_version: "1.4" }', "t.conf:1:38: error parsing tls config: unknown version: 1.4"],
    ['tls { cert_file: "a", key_file: "b", verify_and_map: 1 }', "t.conf:1:38: error parsing tls config, expected 'verify_and_map' to be a boolean"],
    ['websocket { port: 1, no_tls: true, tls { cert_file: "a", key_file: "b", verify_and_map: true } }', 't.conf:1:73: "websocket.tls.verify_and_map" is not supported yet (only on the client port)'],
  ])("%s", (text, message) => {
    expect(errorsOf(`${text}\n`)).toEqual([message]);
  });

  test("allowed_connection_types: a string or a list, any case, kept in upper case", () => {
    const users = apply('authorization { users = [ {user: a, allowed_connection_types: "websocket"}, {user: b, clients: ["Standard", "LEAFNODE_WS"]} ] }').authorization!.users!;
    expect(users.map((u) => u.allowedConnectionTypes)).toEqual([["WEBSOCKET"], ["STANDARD", "LEAFNODE_WS"]]);
  });

  test("tls: verify_and_map turns verify on; pinned_certs kept in lower case", () => {
    const pin = "AB".repeat(32);
    const o = apply(`tls { cert_file: "a", key_file: "b", verify_and_map: true, pinned_certs: ["${pin}"], verify_cert_and_check_known_urls: false }`);
    expect(o.tls).toEqual({ certFile: "a", keyFile: "b", verify: true, verifyAndMap: true, pinnedCerts: ["ab".repeat(32)] });
  });

  test("no_auth_user must name a configured user (nats-server's messages)", () => {
    expect(() => validateOptions(apply("no_auth_user: x\nauthorization { token: t }"))).toThrow('no_auth_user: "x" present, but users are not defined');
    expect(() => validateOptions(apply("no_auth_user: x\nauthorization { users = [ {user: y, password: z} ] }"))).toThrow(
      'no_auth_user: "x" not present as user in authorization block or account configuration',
    );
  });
});

describe("websocket block", () => {
  test("authorization override, no_auth_user, cookie names, tls", () => {
    const o = apply(`websocket {
      port: 8080
      authorization { user: wu, password: wp, timeout: 5 }
      user_cookie: u
      pass_cookie: p
      token_cookie: t
      tls { cert_file: "c.pem", key_file: "k.pem" }
    }`);
    expect(o.websocketAuth).toEqual({ user: "wu", password: "wp", timeoutMs: 5000, userCookie: "u", passCookie: "p", tokenCookie: "t" });
    expect(o.wsTls).toEqual({ certFile: "c.pem", keyFile: "k.pem" });
  });

  test("no_tls wins over a tls block; without either a websocket port is refused", () => {
    expect(apply('websocket { port: 1, no_tls: true, tls { cert_file: "c", key_file: "k" } }').wsTls).toBeNull();
    expect(errorsOf("websocket { port: 1 }\n")).toEqual(["t.conf:1:1: websocket requires TLS configuration"]);
  });
});

describe("flags", () => {
  const run = (argv: string[]) => {
    const parsed = parseCommandLine(argv);
    if (parsed.kind !== "run") throw new Error("not run");
    return parsed.options;
  };

  test("--auth, --user/--pass", () => {
    expect(run(["--auth", "tok"]).authorization).toEqual({ token: "tok" });
    expect(run(["--user", "u", "--pass", "p"]).authorization).toEqual({ user: "u", password: "p" });
    expect(() => run(["--auth", "t", "--user", "u"])).toThrow(OptionsError);
  });

  test("--tls needs a certificate and a key; --tlsverify turns TLS on with verify", () => {
    expect(() => run(["--tls"])).toThrow("TLS Server certificate must be present and valid");
    expect(() => run(["--tls", "--tlscert", "/nonexistent.pem", "--tlskey", "/nonexistent.key"])).toThrow(/cannot read \/nonexistent\.pem/);
    expect(() => run(["--tlsverify", "--tlscert", "/nonexistent.pem"])).toThrow("TLS Server private key must be present and valid");
  });
});

describe("pieces", () => {
  test("cookies: only the configured names, percent-decoded", () => {
    const ws = { userCookie: "nu", passCookie: "np", tokenCookie: "nt" };
    expect(cookieCredentials("a=1; nu=alice; np=p%40ss", ws)).toEqual({ user: "alice", pass: "p@ss" });
    expect(cookieCredentials("nt=\"tok\"", ws)).toEqual({ token: "tok" });
    expect(cookieCredentials("other=1", ws)).toBeUndefined();
    expect(cookieCredentials("nu=alice", null)).toBeUndefined();
  });

  test("redaction: CONNECT credentials, also when the CONNECT is split across reads", () => {
    expect(redactSecrets('CONNECT {"user":"u","pass":"s3","auth_token":"t0k","sig":"abc","name":"n"}')).toBe(
      'CONNECT {"user":"u","pass":"[REDACTED]","auth_token":"[REDACTED]","sig":"[REDACTED]","name":"n"}',
    );
    const owner = {};
    const first = redactRead(owner, 'PING\r\nCONNECT {"user":"u","pa');
    const second = redactRead(owner, 'ss":"s3cret"}\r\nPING\r\n');
    expect(first + second).not.toContain("s3cret");
    expect(second.endsWith("PING\r\n")).toBe(true);
  });

  test("-ERR templates quote like Go's %q", () => {
    expect(formatError("PublishViolation", "a.b")).toBe('Permissions Violation for Publish to "a.b"');
    expect(formatError("SubscribeQueueViolation", "x", "q\"1")).toBe('Permissions Violation for Subscription to "x" using queue "q\\"1"');
  });

  test("INFO auth_required: off on the client port when no_auth_user is set; the auth timeout follows TLS", () => {
    const a = new Authenticator({ users: [{ user: "g", password: "p" }], noAuthUser: "g" }, null, null);
    expect(a.requiredFor("tcp")).toBe(true);
    expect(a.infoAuthRequired("tcp")).toBe(false);
    expect(a.timeoutFor("tcp")).toBe(2000);
    expect(new Authenticator({ token: "t" }, null, 5000).timeoutFor("tcp")).toBe(6000);
    expect(Authenticator.fromOptions({ ...defaultOptions, wsAllowedOrigins: [], routes: [] })).toBeNull();
  });
});
