// Cluster settings under nats-server's names: --cluster, --routes, --cluster_name, --no_advertise,
// --cluster_advertise, and the config file's cluster { } block.
import { describe, expect, test } from "vitest";
import { defaultOptions, OptionsError, parseCommandLine, type Options } from "../../src/options.ts";
import { applyConfig } from "../../src/config/apply.ts";
import { ConfigErrors, parseConfig } from "../../src/config/parser.ts";

function flags(...argv: string[]): Options {
  const r = parseCommandLine(argv);
  if (r.kind !== "run") throw new Error(r.kind);
  return r.options;
}

function config(text: string): Options {
  const options: Options = { ...defaultOptions, wsAllowedOrigins: [], routes: [] };
  applyConfig(parseConfig(text, "t.conf"), options, "t.conf");
  return options;
}

function configErrors(text: string): string[] {
  try {
    config(text);
  } catch (error) {
    if (error instanceof ConfigErrors) return error.errors.map((e) => e.message);
    throw error;
  }
  throw new Error("expected errors");
}

describe("cluster flags", () => {
  test("--cluster, --routes, --cluster_name, --no_advertise, --cluster_advertise", () => {
    const o = flags("--cluster", "nats://127.0.0.1:6222", "--routes", "nats://10.0.0.1:6222, nats-route://h2:7000", "--cluster_name", "prod", "--no_advertise", "--cluster_advertise", "10.0.0.9:6222");
    expect(o.clusterHost).toBe("127.0.0.1");
    expect(o.clusterPort).toBe(6222);
    expect(o.routes).toEqual(["10.0.0.1:6222", "h2:7000"]);
    expect(o.clusterName).toBe("prod");
    expect(o.clusterNoAdvertise).toBe(true);
    expect(o.clusterAdvertise).toBe("10.0.0.9:6222");
  });

  test("not clustered by default; a random cluster port with -1", () => {
    expect(flags().clusterPort).toBe(0);
    expect(flags("--cluster", "nats://0.0.0.0:-1").clusterPort).toBe(-1);
  });

  test("bad values end in one clear line", () => {
    expect(() => flags("--cluster", "6222x")).toThrow(OptionsError);
    expect(() => flags("--cluster", "nats://h:99999")).toThrow(/not a route URL/);
    expect(() => flags("--routes", "nats://127.0.0.1:6222")).toThrow("solicited routes require cluster capabilities, e.g. --cluster");
    expect(() => flags("-p", "4222", "--cluster", "nats://127.0.0.1:4222")).toThrow(/cluster port 4222 is already used/);
  });
});

describe("cluster { } in the config file", () => {
  test("name, listen, routes, no_advertise, advertise", () => {
    const o = config(`cluster {\n  name: "east"\n  listen: "127.0.0.1:6333"\n  routes: ["nats://a:6333", "nats://b:6333"]\n  no_advertise: true\n  advertise: "1.2.3.4:6333"\n}\n`);
    expect(o).toMatchObject({ clusterName: "east", clusterHost: "127.0.0.1", clusterPort: 6333, routes: ["a:6333", "b:6333"], clusterNoAdvertise: true, clusterAdvertise: "1.2.3.4:6333" });
  });

  test("host and port as separate keys; listen as a bare port", () => {
    expect(config("cluster {\n  host: 10.1.1.1\n  port: 7000\n}\n")).toMatchObject({ clusterHost: "10.1.1.1", clusterPort: 7000 });
    expect(config("cluster {\n  listen: 7001\n}\n")).toMatchObject({ clusterPort: 7001 });
  });

  test("keys natter does not support yet are refused; unknown keys and bad routes are errors at their position", () => {
    expect(configErrors("cluster {\n  port: 1\n  tls { cert_file: x }\n}\n")).toEqual(['t.conf:3:3: "cluster.tls" is not supported yet']);
    expect(configErrors("cluster {\n  port: 1\n  colour: red\n}\n")).toEqual(['t.conf:3:3: unknown field "colour"']);
    expect(configErrors('cluster {\n  port: 1\n  routes: ["nats://nohost"]\n}\n')).toEqual(['t.conf:3:3: error parsing route url "nats://nohost"']);
    expect(configErrors("cluster: 5\n")[0]).toMatch(/^t\.conf:1:1: Expected map to define cluster/);
  });
});
