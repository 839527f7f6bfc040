// The console's stream actions go through the JetStream API ($JS.API.…), as a client's would: an internal
// client in the stream's account sends the request and waits for the answer. So the console gets exactly
// the checks and error texts a client gets, and never reaches into the stream layer's internals.
import { randomBytes } from "../random.ts";
import type { Server } from "../server.ts";
import { InternalClient } from "../internal-client.ts";

const API_TIMEOUT_MS = 5_000;

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Sends `body` (JSON) to the JetStream API subject in `account` and resolves with the parsed answer. */
export function jsApi(server: Server, accountName: string, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const account = server.accounts.get(accountName);
  if (account === undefined) return Promise.reject(new ApiError(404, `no account ${accountName}`));
  const client = new InternalClient(server, "console", account);
  const inbox = `_INBOX.console.${randomBytes(9).toString("base64url")}`;
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(new ApiError(504, `no answer from ${subject}`))), API_TIMEOUT_MS);
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      client.unsubscribe(sub);
      client.close();
      settle();
    };
    const sub = client.subscribe(inbox, (m) => {
      finish(() => {
        try {
          resolve(JSON.parse(m.payload.toString("utf8")) as Record<string, unknown>);
        } catch {
          reject(new ApiError(502, `${subject} answered with something other than JSON`));
        }
      });
    }, null, { local: true });
    if (!client.publish(subject, Buffer.from(JSON.stringify(body)), inbox)) {
      finish(() => reject(new ApiError(503, "JetStream is not enabled for this account")));
    }
  });
}

/** The answer, or an ApiError with the API's own description when it holds an error. */
export async function jsApiOk(server: Server, account: string, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = await jsApi(server, account, subject, body);
  const error = answer.error as { code?: number; description?: string } | undefined;
  if (error !== undefined) throw new ApiError(error.code && error.code >= 400 && error.code < 600 ? error.code : 400, error.description ?? "JetStream API error");
  return answer;
}

/** A stream or consumer name as the API takes it in a subject: no dots, wildcards or spaces. */
export function validName(name: unknown): name is string {
  return typeof name === "string" && /^[^.*>\s]+$/.test(name) && name.length <= 255;
}
