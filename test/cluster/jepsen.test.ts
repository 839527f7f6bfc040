// The Jepsen-style fault test (test/cluster/jepsen/): a short bounded run — 3 nodes, ~20 s of seeded
// faults (kill -9 and restart, leader-biased; partitions in network namespaces, or pauses where those are
// unavailable) while clients publish to an R3 stream with acks and consume with a durable pull consumer —
// then the checker over the history and every replica. Against natter by default (skipped while natter
// refuses num_replicas > 1), against nats-server 2.9.10 with NATTER_TEST_SERVER=nats-server (kills only:
// it loses acknowledged messages under the partition, see below).
// A failure prints the seed: JEPSEN_SEED=<seed> replays the same schedule. The long run is
// `npm run jepsen -- --nodes 5 --duration 300 --seed N --server natter|nats-server`.
//
// The checker itself is tested first, on made-up histories, so that a run that passes means something.
import { describe, expect, test } from "vitest";
import { check, type CheckInput, type ReplicaRead } from "./jepsen/checker.ts";
import type { HistoryEvent } from "./jepsen/history.ts";
import { seedFromEnv } from "./jepsen/random.ts";
import { runJepsen } from "./jepsen/run.ts";
import { formatSchedule, generateSchedule, type FaultKind } from "./jepsen/schedule.ts";
import { HAS_NATS_SERVER } from "../harness/reference.ts";
import { serverKind } from "../harness/server.ts";

const SUITE_SEED = 4;

const state = (n: number) => ({ messages: n, bytes: n * 10, first_seq: 1, last_seq: n });
const replica = (server: string, ids: string[]): ReplicaRead => ({
  server,
  messages: ids.map((id, i) => ({ seq: i + 1, id })),
  state: state(ids.length),
});

/** Two acked publishes (a at 1, b at 2), each delivered once and acked. */
function goodInput(): CheckInput {
  const events: HistoryEvent[] = [
    { t: 0, type: "pub-invoke", client: "p0", id: "a" },
    { t: 5, type: "pub-ok", client: "p0", id: "a", seq: 1, duplicate: false },
    { t: 6, type: "pub-invoke", client: "p0", id: "b" },
    { t: 9, type: "pub-fail", client: "p0", id: "b", error: "timeout" },
    { t: 20, type: "pub-ok", client: "p0", id: "b", seq: 2, duplicate: true },
    { t: 30, type: "deliver", seq: 1, id: "a", deliveryCount: 1 },
    { t: 31, type: "ack-ok", seq: 1 },
    { t: 32, type: "deliver", seq: 2, id: "b", deliveryCount: 1 },
    { t: 33, type: "ack-ok", seq: 2 },
  ];
  return { events, replicas: ["n0", "n1", "n2"].map((s) => replica(s, ["a", "b"])), ackWaitMs: 1000, consumerDrained: true, readUpTo: 2 };
}

describe("jepsen checker (made-up histories)", () => {
  test("a clean history passes", () => {
    const r = check(goodInput());
    expect(r.violations).toEqual([]);
    expect(r.stats).toMatchObject({ invoked: 2, acked: 2, stored: 2, duplicateAcks: 1, deliveries: 2 });
  });

  test("the fence write may still be on its way to a follower: only what came before it is judged", () => {
    const input = goodInput();
    input.events.push(
      { t: 40, type: "pub-invoke", client: "fence", id: "fence-0" },
      { t: 41, type: "pub-ok", client: "fence", id: "fence-0", seq: 3, duplicate: false },
    );
    input.replicas = input.replicas.map((r) => (r.server === "n2" ? r : { ...r, state: { ...state(3), bytes: 30 } }));
    expect(check(input).violations).toEqual([]);
    input.replicas[2] = { ...input.replicas[2]!, state: { ...state(1) } };
    expect(check(input).violations.join("\n")).toMatch(/n2 reports last sequence 1, below 2/);
  });

  test("an acknowledged publish missing from the stream is reported lost", () => {
    const input = goodInput();
    input.replicas = ["n0", "n1", "n2"].map((s) => replica(s, ["a"]));
    input.consumerDrained = false;
    expect(check(input).violations.join("\n")).toMatch(/acknowledged publishes lost \(1\): b/);
  });

  test("a message stored twice, or never published, is reported", () => {
    const input = goodInput();
    input.replicas = ["n0", "n1", "n2"].map((s) => replica(s, ["a", "b", "b", "zz"]));
    input.readUpTo = 4;
    const text = check(input).violations.join("\n");
    expect(text).toMatch(/stored more than once \(1\): b at seqs 2,3/);
    expect(text).toMatch(/no client published \(1\): zz/);
    expect(text).toMatch(/consumer never received \(2\): seq 3; seq 4/);
  });

  test("replicas with another order, or other numbers, are reported", () => {
    const input = goodInput();
    input.replicas[2] = replica("n2", ["b", "a"]);
    input.replicas[1] = { ...replica("n1", ["a", "b"]), state: { ...state(2), bytes: 99 } };
    const text = check(input).violations.join("\n");
    expect(text).toMatch(/replicas differ \(1\): first difference at index 0: n0 has seq 1=a, n2 seq 1=b/);
    expect(text).toMatch(/replica states differ/);
  });

  test("a PubAck naming another sequence than the stored one is reported", () => {
    const input = goodInput();
    input.replicas = ["n0", "n1", "n2"].map((s) => replica(s, ["b", "a"]));
    input.consumerDrained = false;
    expect(check(input).violations.join("\n")).toMatch(/PubAck sequence differs.*a acked at seq 1, stored at 2/);
  });

  test("a redelivery after a confirmed ack is allowed within ack_wait or after a fault, reported otherwise", () => {
    const late = goodInput();
    late.events.push({ t: 5000, type: "deliver", seq: 1, id: "a", deliveryCount: 2 });
    expect(check(late).violations.join("\n")).toMatch(/ack was confirmed, past ack_wait \(1\): seq 1 acked at \+31 ms/);

    const soon = goodInput();
    soon.events.push({ t: 500, type: "deliver", seq: 1, id: "a", deliveryCount: 2 });
    expect(check(soon).violations).toEqual([]);

    const afterFault = goodInput();
    afterFault.events.push({ t: 2000, type: "fault", phase: "start", text: "kill n1" }, { t: 5000, type: "deliver", seq: 1, id: "a", deliveryCount: 2 });
    const r = check(afterFault);
    expect(r.violations).toEqual([]);
    expect(r.stats.redeliveredAfterAckAllowed).toBe(1);
    // A server that confirms acks once replicated (natter) gets no allowance for the fault.
    expect(check({ ...afterFault, acksCommitted: true }).violations.join("\n")).toMatch(/seq 1 acked at \+31 ms, delivered again at \+5000 ms after a fault/);
  });

  test("the schedule is a function of the seed, hits a minority, and has no partitions without namespaces", () => {
    const a = generateSchedule({ seed: 42, nodes: 5, durationMs: 60_000, partitions: true });
    expect(generateSchedule({ seed: 42, nodes: 5, durationMs: 60_000, partitions: true })).toEqual(a);
    expect(formatSchedule(generateSchedule({ seed: 43, nodes: 5, durationMs: 60_000, partitions: true }))).not.toEqual(formatSchedule(a));
    expect(a.every((e) => e.targets.length >= 1 && e.targets.length <= 2)).toBe(true);
    expect(a.some((e) => e.targets.includes("leader"))).toBe(true);
    const loop = generateSchedule({ seed: 42, nodes: 3, durationMs: 60_000, partitions: false });
    expect(a.some((e) => e.kind === "partition") && a.every((e) => e.kind !== "pause")).toBe(true);
    expect(loop.some((e) => e.kind === "pause")).toBe(true);
    expect(loop.every((e) => e.kind !== "partition" && e.targets.length === 1)).toBe(true);
  });
});

describe.skipIf(serverKind === "nats-server" && !HAS_NATS_SERVER)(`jepsen run (${serverKind})`, () => {
  test("3 nodes, ~20 s of faults: every acked publish stored once, replicas identical, no redelivery after a confirmed ack", async (ctx) => {
    // A fixed schedule by default (kills of the leader and of a follower, a partition cutting the leader
    // off), so that the suite is the same every time; JEPSEN_SEED picks another one, and
    // `npm run jepsen` draws a fresh seed per run.
    const seed = process.env.JEPSEN_SEED ? seedFromEnv() : SUITE_SEED;
    // nats-server 2.9.10 does not survive a partition that cuts its stream leader off: with this very seed
    // it lost acknowledged messages, stored others twice, and its replicas diverged (README, Reliability).
    // Against it the suite runs the kills only, so that the run checks this harness; natter gets the
    // partitions too. JEPSEN_FAULTS=kill,partition,pause overrides either.
    const faults = (process.env.JEPSEN_FAULTS?.split(",") ?? (serverKind === "nats-server" ? ["kill"] : ["kill", "partition"])) as FaultKind[];
    const lines: string[] = [];
    let outcome: Awaited<ReturnType<typeof runJepsen>>;
    try {
      outcome = await runJepsen({
        server: serverKind,
        nodes: 3,
        durationMs: 20_000,
        seed,
        faults,
        recoveryMs: 90_000,
        log: (line) => lines.push(line),
      });
    } finally {
      console.log(lines.join("\n")); // the seed and the schedule, pass or fail
    }
    if (outcome.kind === "unsupported") {
      console.warn(`jepsen run skipped: ${outcome.reason}`);
      ctx.skip(outcome.reason);
      return;
    }
    if (!outcome.result.ok) console.error(outcome.logs);
    expect(outcome.result.violations, `seed ${seed} (replay: JEPSEN_SEED=${seed})\n${lines.join("\n")}`).toEqual([]);
    expect(outcome.result.stats.acked).toBeGreaterThan(0);
  }, 420_000);
});
