// The protocol trace (-V) of a route between natter nodes. Routes speak natter's own binary frames
// (./protocol.ts), but each frame is traced in the words nats-server's route trace uses for the same
// thing, with the `rid:` prefix, so one grep finds interest and messages on routes of either server:
//
//   <<- [RS+ $G foo q 1]      interest (SUB frame: account, subject, queue group and its weight)
//   <<- [RS- $G foo]          interest gone (UNSUB frame)
//   <<- [RMSG $G foo + r q 2] a message (HMSG with headers): reply and queue groups as nats-server writes them
//   <<- MSG_PAYLOAD: ["hi"]   its payload, for messages read
//   ->> [PING] / ->> [PONG]   a PING frame / the answer to an RTT probe
//
// HELLO frames are not traced (nats-server does not trace INFO).
import { FrameKind, MSG_HEADER, MsgAt, MsgFlag, PING_ECHO_REPLY, decodeBody } from "./protocol.ts";
import { outOpTrace, payloadTrace } from "../protocol/trace.ts";

/** `<<- [RS+ …]`-style lines for the frame buf[start, end); `accountName` maps the frame's account index. */
export function routeFrameTraces(direction: "<<-" | "->>", buf: Buffer, start: number, end: number, accountName: (index: number) => string): string[] {
  const kind = buf[start + 4];
  const op = (text: string) => (direction === "<<-" ? `<<- [${text}]` : outOpTrace(text, null));
  switch (kind) {
    case FrameKind.SUB:
    case FrameKind.UNSUB: {
      let at = start + 5;
      const account = accountName(buf.readUInt16BE(at));
      const subjectLength = buf.readUInt16BE(at + 2);
      at += 4;
      const subject = buf.latin1Slice(at, at + subjectLength);
      at += subjectLength;
      const queueLength = buf.readUInt16BE(at);
      const queue = queueLength > 0 ? buf.latin1Slice(at + 2, at + 2 + queueLength) : null;
      if (kind === FrameKind.UNSUB) return [op(`RS- ${account} ${subject}${queue !== null ? ` ${queue}` : ""}`)];
      const weight = buf.readUInt32BE(at + 2 + queueLength);
      return [op(`RS+ ${account} ${subject}${queue !== null ? ` ${queue} ${weight}` : ""}`)];
    }
    case FrameKind.MSG: {
      const flags = buf[start + MsgAt.FLAGS]!;
      const subjectLength = buf.readUInt16BE(start + MsgAt.SUBJECT_LENGTH);
      const replyLength = buf.readUInt16BE(start + MsgAt.REPLY_LENGTH);
      const headLength = buf.readUInt16BE(start + MsgAt.HEAD_LENGTH);
      const headerSize = buf.readInt32BE(start + MsgAt.HEADER_SIZE);
      const payloadLength = buf.readUInt32BE(start + MsgAt.PAYLOAD_LENGTH);
      const queueCount = buf.readUInt16BE(start + MsgAt.QUEUE_COUNT);
      const subjectStart = start + MSG_HEADER;
      const tailStart = subjectStart + subjectLength;
      const payloadStart = tailStart + headLength;
      let at = payloadStart + payloadLength + 2;
      if ((flags & MsgFlag.DELIVER_AS) !== 0) at += 2 + buf.readUInt16BE(at);
      if ((flags & MsgFlag.REQUEST_INFO) !== 0) at += 2 + buf.readUInt16BE(at);
      const queues: string[] = [];
      for (let q = 0; q < queueCount && at + 2 <= end; q++) {
        const length = buf.readUInt16BE(at);
        queues.push(buf.latin1Slice(at + 2, at + 2 + length));
        at += 2 + length;
      }
      const reply = (flags & MsgFlag.REPLY) !== 0 ? buf.latin1Slice(tailStart, tailStart + replyLength) : null;
      let line = `${(flags & MsgFlag.HEADERS) !== 0 ? "HMSG" : "RMSG"} ${accountName(buf.readUInt16BE(start + MsgAt.ACCOUNT))} ${buf.latin1Slice(subjectStart, tailStart)}`;
      if (queues.length > 0) line += reply !== null ? ` + ${reply} ${queues.join(" ")}` : ` | ${queues.join(" ")}`;
      else if (reply !== null) line += ` ${reply}`;
      line += (flags & MsgFlag.HEADERS) !== 0 ? ` ${headerSize} ${payloadLength}` : ` ${payloadLength}`;
      const traces = [op(line)];
      if (direction === "<<-") traces.push(payloadTrace(buf, payloadStart, payloadStart + payloadLength));
      return traces;
    }
    case FrameKind.PING:
      return [op(end > start + 5 && buf[start + 5] === PING_ECHO_REPLY ? "PONG" : "PING")];
    case FrameKind.ERROR: {
      let text = "(unreadable)";
      try {
        const body = decodeBody(buf, start + 5, end);
        if (typeof body.error === "string") text = body.error;
      } catch {
        // keep "(unreadable)"
      }
      return [op(`-ERR ${text}`)];
    }
    default:
      return []; // HELLO
  }
}
