// Server streams in tests.

/** Everything a server stream sends, in order; rejects with the stream's error. */
export async function drain<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}
