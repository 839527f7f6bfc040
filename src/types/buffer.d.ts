// Buffer#latin1Slice exists in Node and Bun (it backs toString("latin1")) but is not declared.
// natter decodes subjects with it: one byte = one char, no UTF-8 validation, and skipping
// toString's argument dispatch is measurably faster on the publish path.
declare global {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
  }
}
export {};
