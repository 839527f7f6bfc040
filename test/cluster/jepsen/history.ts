// The history of a run: what each client asked and what it was told, with the time it was told, and
// when each fault began and ended. The checker judges the run from this and from the final stores alone.
export type HistoryEvent =
  /** A publisher starts publishing a new message (payload and Nats-Msg-Id are both `id`). */
  | { t: number; type: "pub-invoke"; client: string; id: string }
  /** A PubAck: the stream says it stored `id` at `seq` (duplicate: it had it already). */
  | { t: number; type: "pub-ok"; client: string; id: string; seq: number; duplicate: boolean }
  /** One attempt failed (timeout, no responders, an error reply); the client retries with the same id. */
  | { t: number; type: "pub-fail"; client: string; id: string; error: string }
  /** The client stopped retrying: `id` may or may not be stored (indeterminate). */
  | { t: number; type: "pub-gave-up"; client: string; id: string }
  /** The consumer received stream sequence `seq` holding `id`, for the `deliveryCount`th time. */
  | { t: number; type: "deliver"; seq: number; id: string; deliveryCount: number }
  /** The server confirmed the consumer's ack of `seq` (an AckAck reply). */
  | { t: number; type: "ack-ok"; seq: number }
  | { t: number; type: "ack-fail"; seq: number; error: string }
  /** A fault began or was undone (or everything was healed). */
  | { t: number; type: "fault"; phase: "start" | "end" | "heal"; text: string };

export class History {
  readonly events: HistoryEvent[] = [];
  private readonly t0 = Date.now();

  /** Milliseconds since the run began. */
  now(): number {
    return Date.now() - this.t0;
  }

  add(event: HistoryEvent): void {
    this.events.push(event);
  }

  count(type: HistoryEvent["type"]): number {
    let n = 0;
    for (const e of this.events) if (e.type === type) n++;
    return n;
  }
}
