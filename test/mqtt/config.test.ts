// The mqtt block and --mqtt_port: accepted in nats-server's syntax, keys natter lacks refused by name,
// and nats-server's start-up checks (JetStream required when standalone, mqtt user/token vs users).
import { describe, expect, test } from "vitest";
import { defaultOptions, OptionsError, parseCommandLine, validateOptions, type Options } from "../../src/options.ts";
import { applyConfig } from "../../src/config/apply.ts";
import { ConfigErrors, parseConfig } from "../../src/config/parser.ts";

function apply(text: string): Options {
  const options: Options = { ...defaultOptions, wsAllowedOrigins: [] };
  applyConfig(parseConfig(text, "t.conf"), options, "t.conf");
  return options;
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

describe("mqtt block", () => {
  test("port, host, authorization, no_auth_user, ack_wait, max_ack_pending", () => {
    const o = apply(`
      jetstream: true
      authorization { users: [ { user: a, password: b } ] }
      mqtt {
        listen: "127.0.0.1:1884"
        authorization { timeout: 3 }
        no_auth_user: a
        ack_wait: "5s"
        max_ack_pending: 100
      }
    `);
    expect(o.mqtt).toMatchObject({ host: "127.0.0.1", port: 1884, ackWaitMs: 5000, maxAckPending: 100, auth: { noAuthUser: "a", timeoutMs: 3000 } });
    expect(() => validateOptions(o)).not.toThrow();
    expect(defaultOptions.mqtt.port).toBe(0); // the defaults are not shared with what a file set
  });

  test("stream_replicas, consumer_replicas, consumer_memory_storage (the cluster's MQTT streams)", () => {
    const o = apply("jetstream: true\nmqtt {\n  port: 1883\n  stream_replicas: 3\n  consumer_replicas: 1\n  consumer_memory_storage: true\n}\n");
    expect(o.mqtt).toMatchObject({ streamReplicas: 3, consumerReplicas: 1, consumerMemoryStorage: true });
    expect(defaultOptions.mqtt.streamReplicas).toBe(0); // 0: nats-server's default, min(3, JetStream nodes)
  });

  test("keys natter does not implement are refused by name; unknown keys as nats-server words it", () => {
    expect(errorsOf("mqtt {\n  port: 1883\n  js_domain: hub\n}\n")).toEqual(['t.conf:3:3: "mqtt.js_domain" is not supported yet']);
    expect(errorsOf("mqtt {\n  colour: red\n}\n")).toEqual(['t.conf:2:3: unknown field "colour"']);
    expect(errorsOf('mqtt {\n  ack_wait: "-1s"\n}\n')).toEqual(["t.conf:2:3: ack wait must be a positive value"]);
  });

  test("a standalone server needs JetStream for MQTT, with nats-server's error", () => {
    const o = apply("mqtt { port: 1883 }\n");
    expect(() => validateOptions(o)).toThrow(new OptionsError("mqtt requires JetStream to be enabled if running in standalone mode"));
  });

  test("an mqtt user or token cannot be mixed with users, as in nats-server", () => {
    const o = apply("jetstream: true\nauthorization { users: [ { user: a, password: b } ] }\nmqtt { port: 1883, authorization { user: m, password: p } }\n");
    expect(() => validateOptions(o)).toThrow("mqtt authentication username not compatible with presence of users/nkeys");
  });

  test("--procs > 1 with MQTT needs JetStream (the workers keep sessions in it)", () => {
    expect(() => parseCommandLine(["--mqtt_port", "1999", "--procs", "2"])).toThrow("mqtt with --procs greater than 1 needs JetStream (-js)");
    const parsed = parseCommandLine(["-js", "--mqtt_port", "1999", "--procs", "2"]);
    expect(parsed.kind === "run" && parsed.options.mqtt.port).toBe(1999);
  });

  test("--mqtt_port sets the port", () => {
    const parsed = parseCommandLine(["-js", "--mqtt_port", "1999"]);
    expect(parsed.kind).toBe("run");
    if (parsed.kind === "run") expect(parsed.options.mqtt.port).toBe(1999);
  });
});
