/**
 * Bun hands every socket read to JavaScript as a fresh Buffer (a copy of its receive buffer, up to 512 KiB)
 * that only the garbage collector frees. A publisher at a GB/s leaves hundreds of MB of such reads between
 * two collections, all resident. Once a read has been parsed and nothing of it was kept, detaching its
 * ArrayBuffer (`transfer(0)`) frees the memory at once, and the allocator hands it to the next read.
 *
 * Only a Buffer that is the whole of its ArrayBuffer is detached: a view into a shared one (Buffer's small
 * pool, a TLS record) belongs to others too.
 */
export function releaseRead(data: Buffer): void {
  const backing = data.buffer;
  if (data.byteOffset === 0 && backing.byteLength === data.length && backing.byteLength > 0 && backing instanceof ArrayBuffer) backing.transfer(0);
}
