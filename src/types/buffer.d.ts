// Buffer#latin1Slice and #latin1Write exist in Node and Bun (they back toString("latin1") and
// write(…, "latin1")) but are not declared. natter decodes subjects with latin1Slice: one byte = one
// char, no UTF-8 validation, and skipping toString's argument dispatch is measurably faster on the
// publish path. latin1Write writes a control line about 8× faster than write(…, "latin1") in Bun 1.4
// (which dispatches on its arguments first); it returns the bytes written, as write does.
declare global {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    latin1Write(text: string, offset: number, length: number): number;
  }
}
export {};
