// MQTT topic names and filters ↔ NATS subjects, exactly as nats-server converts them (server/mqtt.go,
// mqttToNATSSubjectConversion and natsSubjectToMQTTTopic), so MQTT and NATS clients share subjects:
//   `/` → `.`, except a leading `/` → `/.`, and a `/` that ends the topic or precedes another `/`
//   (an empty level) → `./`;  `.` → `//`;  in filters `+` → `*` and `#` → `>`;  a space is refused.
// A filter ending in `/#` also matches its parent level (`a/#` matches `a`): the caller subscribes to
// both `a.>` and `a` (mqttNeedSubForLevelUp).

const SEP = 0x2f; // '/'
const DOT = 0x2e; // '.'

export class TopicError extends Error {}

/** A PUBLISH topic name → the NATS subject it is published on. Wildcards are refused. */
export function topicToSubject(topic: string): string {
  return convert(topic, false);
}

/** A SUBSCRIBE topic filter → the NATS subscription subject. */
export function filterToSubject(filter: string): string {
  return convert(filter, true);
}

function convert(mt: string, wildcardsAllowed: boolean): string {
  if (mt.length === 0) throw new TopicError(wildcardsAllowed ? "topic filter cannot be empty" : "topic cannot be empty");
  let out = "";
  const end = mt.length - 1;
  for (let i = 0; i < mt.length; i++) {
    const c = mt.charCodeAt(i);
    switch (c) {
      case SEP:
        if (i === 0 || out.charCodeAt(out.length - 1) === DOT) out += "/.";
        else if (i === end || mt.charCodeAt(i + 1) === SEP) out += "./";
        else out += ".";
        break;
      case 0x20:
        throw new TopicError("character ' ' not supported for MQTT topics");
      case DOT:
        out += "//";
        break;
      case 0x2b: // '+'
      case 0x23: // '#'
        // [MQTT-3.3.2-2], [MQTT-4.7.1-1]: topic names carry no wildcards.
        if (!wildcardsAllowed) throw new TopicError(`wildcards not allowed in publish's topic: ${JSON.stringify(mt)}`);
        out += c === 0x2b ? "*" : ">";
        break;
      default:
        out += mt[i];
    }
  }
  if (out.charCodeAt(out.length - 1) === DOT) out += "/";
  return out;
}

/** A NATS subject → the MQTT topic name an MQTT subscriber receives it on (the reverse rules). */
export function subjectToTopic(subject: string): string {
  let out = "";
  const end = subject.length - 1;
  for (let i = 0; i < subject.length; i++) {
    const c = subject.charCodeAt(i);
    if (c === SEP) {
      if (i < end) {
        const next = subject.charCodeAt(i + 1);
        if (next === DOT) {
          out += "/";
          i++;
          continue;
        }
        if (next === SEP) {
          out += ".";
          i++;
          continue;
        }
      }
      // A lone '/' (from a NATS publisher) is dropped, as nats-server's conversion does.
    } else if (c === DOT) {
      out += "/";
    } else {
      out += subject[i];
    }
  }
  return out;
}

/** Whether a converted filter ends in `.>` after at least one level: it must also match the parent level. */
export function needsParentLevel(subject: string): boolean {
  return subject.length >= 3 && subject.endsWith(".>");
}

/**
 * An MQTT topic filter's own validity ([MQTT-4.7.1-2], [MQTT-4.7.1-3]): `#` only alone or last after a
 * `/`, `+` only as a whole level. Returns an error text or null.
 */
export function filterProblem(filter: string): string | null {
  if (filter.length === 0) return "topic filter cannot be empty";
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) return `invalid use of '#' in ${JSON.stringify(filter)}`;
    if (level.includes("+") && level !== "+") return `invalid use of '+' in ${JSON.stringify(filter)}`;
  }
  return null;
}
