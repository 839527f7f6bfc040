// The clients of a run. Publishers publish with acks, each message with a unique Nats-Msg-Id, and retry
// a failed attempt (timeout, no responders, an error) with the same id until it is acknowledged, as a
// careful client does. The consumer pulls from a durable consumer with explicit acks and asks the server
// to confirm each ack. Everything either is told goes into the history.
import { AckPolicy, jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { History } from "./history.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const decoder = new TextDecoder();

export interface PublisherOptions {
  name: string;
  subject: string;
  /** Messages per second at most (each waits for its ack anyway). */
  rate: number;
  /** Per-attempt timeout for the PubAck. */
  timeoutMs: number;
}

export class Publisher {
  private publishing = true;
  private giveUpAt = Infinity;
  private readonly js: JetStreamClient;
  readonly done: Promise<void>;

  constructor(nc: NatsConnection, private readonly history: History, private readonly opts: PublisherOptions) {
    this.js = jetstream(nc, { timeout: opts.timeoutMs });
    this.done = this.loop();
  }

  /** Starts no new message; the one in flight is retried until acked or until `giveUpAfterMs` passes. */
  stop(giveUpAfterMs: number): Promise<void> {
    this.publishing = false;
    this.giveUpAt = Date.now() + giveUpAfterMs;
    return this.done;
  }

  private async loop(): Promise<void> {
    const interval = 1000 / this.opts.rate;
    for (let n = 0; this.publishing; n++) {
      const started = Date.now();
      const id = `${this.opts.name}-${n}`;
      this.history.add({ t: this.history.now(), type: "pub-invoke", client: this.opts.name, id });
      for (;;) {
        try {
          const ack = await this.js.publish(this.opts.subject, id, { msgID: id, timeout: this.opts.timeoutMs });
          this.history.add({ t: this.history.now(), type: "pub-ok", client: this.opts.name, id, seq: ack.seq, duplicate: ack.duplicate });
          break;
        } catch (error) {
          this.history.add({ t: this.history.now(), type: "pub-fail", client: this.opts.name, id, error: (error as Error).message.slice(0, 120) });
          if (Date.now() > this.giveUpAt) {
            this.history.add({ t: this.history.now(), type: "pub-gave-up", client: this.opts.name, id });
            return;
          }
          await sleep(100);
        }
      }
      const spare = interval - (Date.now() - started);
      if (spare > 0) await sleep(spare); // pacing, not waiting for a condition
    }
  }
}

export interface ConsumerOptions {
  stream: string;
  durable: string;
  ackWaitMs: number;
  batch: number;
}

export const consumerConfig = (o: ConsumerOptions) => ({
  durable_name: o.durable,
  ack_policy: AckPolicy.Explicit,
  ack_wait: o.ackWaitMs * 1_000_000,
  max_deliver: -1,
});

export class Consumer {
  private running = true;
  /** Stream sequences received at least once. */
  readonly delivered = new Set<number>();
  readonly done: Promise<void>;
  private readonly js: JetStreamClient;

  constructor(nc: NatsConnection, private readonly history: History, private readonly opts: ConsumerOptions) {
    this.js = jetstream(nc, { timeout: 5_000 });
    this.done = this.loop();
  }

  stop(): Promise<void> {
    this.running = false;
    return this.done;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        const consumer = await this.js.consumers.get(this.opts.stream, this.opts.durable);
        while (this.running) {
          const batch = await consumer.fetch({ max_messages: this.opts.batch, expires: 2_000 });
          for await (const m of batch) {
            this.delivered.add(m.seq);
            this.history.add({ t: this.history.now(), type: "deliver", seq: m.seq, id: decoder.decode(m.data), deliveryCount: m.info.deliveryCount });
            try {
              if (await m.ackAck({ timeout: 3_000 })) {
                this.history.add({ t: this.history.now(), type: "ack-ok", seq: m.seq });
              } else {
                this.history.add({ t: this.history.now(), type: "ack-fail", seq: m.seq, error: "not confirmed" });
              }
            } catch (error) {
              this.history.add({ t: this.history.now(), type: "ack-fail", seq: m.seq, error: (error as Error).message.slice(0, 120) });
            }
          }
        }
      } catch {
        // consumer leader moving, no responders, timeouts: ask again
        await sleep(200);
      }
    }
  }
}
