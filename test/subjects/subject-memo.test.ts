// The one-entry memo of a publisher's last subject (src/subjects/subject-memo.ts): its bytes are
// allocated at the first memo, not per connection.
import { expect, test } from "vitest";
import { Sublist, type SublistEntry } from "../../src/subjects/sublist.ts";
import { SubjectMemo } from "../../src/subjects/subject-memo.ts";

const entry = (subject: string): SublistEntry => ({ subject, queue: null });

test("a repeated subject is answered from the memo until the sublist changes; other subjects are matched", () => {
  const list = new Sublist<SublistEntry>();
  const a = entry("a.b");
  list.insert(a);
  const memo = new SubjectMemo<SublistEntry>();
  const wire = Buffer.from("PUB a.b 0\r\nPUB a.c 0\r\n");
  const first = memo.match(list, wire, 4, 7);
  expect(first.plain).toEqual([a]);
  expect(memo.match(list, wire, 4, 7)).toBe(first); // the memo's answer: the same result object
  expect(memo.match(list, wire, 15, 18).plain).toEqual([]); // a.c
  const b = entry("a.*");
  list.insert(b);
  expect(memo.match(list, wire, 4, 7).plain).toEqual(expect.arrayContaining([a, b]));
  const long = Buffer.from(`x.${"y".repeat(80)}`);
  expect(memo.match(list, long, 0, long.length).plain).toEqual([]); // too long to memo: matched each time
  expect(memo.match(list, wire, 4, 7).plain).toHaveLength(2);
});
