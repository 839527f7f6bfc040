// Turning JetStream on: flags (-js, -sd) and config-file keys (jetstream {…}, store_dir), as nats-server names them.
import { describe, expect, test } from "vitest";
import { defaultOptions, parseCommandLine } from "../../src/options.ts";
import { configErrorsOf, optionsFromText } from "../harness/config-text.ts";

const apply = (text: string) => optionsFromText(text);
const errorsOf = (text: string) => configErrorsOf(text);

describe("JetStream options", () => {
  test("off by default; -js and -sd turn it on and place the store", () => {
    expect(defaultOptions.jetstream).toBe(false);
    const parsed = parseCommandLine(["-js", "-sd", "/tmp/x"]);
    expect(parsed.kind === "run" && parsed.options).toMatchObject({ jetstream: true, storeDir: "/tmp/x" });
    const long = parseCommandLine(["--jetstream", "--store_dir=/tmp/y"]);
    expect(long.kind === "run" && long.options).toMatchObject({ jetstream: true, storeDir: "/tmp/y" });
  });

  test("config file: jetstream: enabled, a jetstream block with limits and sync, store_dir at top level", () => {
    expect(apply("jetstream: enabled\n")).toMatchObject({ jetstream: true });
    expect(apply("jetstream: disabled\n")).toMatchObject({ jetstream: false });
    expect(apply('jetstream {\n  store_dir: "/data/js"\n  max_memory_store: 1GB\n  max_file_store: 10GB\n  sync_interval: always\n}\n')).toMatchObject({
      jetstream: true, storeDir: "/data/js", jsMaxMemory: 1024 ** 3, jsMaxFile: 10 * 1024 ** 3, jsSyncIntervalMs: 0,
    });
    expect(apply('jetstream { sync_interval: "5s" }\n')).toMatchObject({ jetstream: true, jsSyncIntervalMs: 5000 });
    expect(apply('store_dir: "/s"\n')).toMatchObject({ jetstream: false, storeDir: "/s" });
  });

  test("bad values are errors at their key", () => {
    expect(errorsOf("jetstream: maybe\n")[0]).toMatch(/^t\.conf:1:1: expected 'enabled' or 'disabled'/);
    expect(errorsOf("jetstream {\n  colour: red\n}\n")).toEqual(['t.conf:2:3: unknown field "colour"']);
  });

  test("jetstream { disabled: true } turns it off; keys of features natter lacks are refused by name", () => {
    expect(apply('jetstream { store_dir: "/d", disabled: true }\n')).toMatchObject({ jetstream: false, storeDir: "/d" });
    expect(errorsOf('jetstream {\n  key: "s3cret"\n}\n')).toEqual(['t.conf:2:3: "jetstream.key" is not supported yet']);
  });

  test("a domain: jetstream { domain } and --js_domain; names nats-server refuses, with its texts", () => {
    expect(apply("jetstream {\n  domain: edge1\n}\n")).toMatchObject({ jetstream: true, jsDomain: "edge1" });
    const parsed = parseCommandLine(["-js", "--js_domain", "hub"]);
    expect(parsed.kind === "run" && parsed.options).toMatchObject({ jetstream: true, jsDomain: "hub" });
    expect(defaultOptions.jsDomain).toBe("");
    expect(errorsOf('jetstream {\n  domain: "a.b"\n}\n')).toEqual(["t.conf:2:3: invalid domain name: may not contain ., * or >"]);
    expect(errorsOf('jetstream {\n  domain: "a b"\n}\n')).toEqual(['t.conf:2:3: invalid domain name: derived "$JS.a b.API.>" is not a valid subject']);
    expect(() => parseCommandLine(["-js", "--js_domain", "x.y"])).toThrow(/invalid domain name: may not contain/);
  });
});
