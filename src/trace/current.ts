import type { MsgTrace } from "./msg-trace.ts";

/**
 * The trace of the message being delivered, set only while a traced message is handed to an internal
 * client (a stream, an import bridge): they keep it to add their own events later. Null otherwise.
 */
export const tracing: { current: MsgTrace | null } = { current: null };
