/**
 * A queue of things due at times: a binary min-heap on the time, ties broken
 * by the order of {@linkcode TimeQueue.push}, so that what is due at the same
 * time comes out in the order it went in. The relay holds its delayed copies
 * in one, the tests' simulated network its events.
 *
 * @module
 */

interface Slot<T> {
  time: number;
  order: number;
  item: T;
}

function before<T>(x: Slot<T>, y: Slot<T>): boolean {
  return x.time < y.time || (x.time === y.time && x.order < y.order);
}

/** Items due at times, taken earliest first (then first pushed first). */
export class TimeQueue<T> {
  #heap: Slot<T>[] = [];
  #order = 0;

  /** How many items are queued. */
  get size(): number {
    return this.#heap.length;
  }

  /** When the earliest item is due, or `undefined` when the queue is empty. */
  get nextTime(): number | undefined {
    return this.#heap[0]?.time;
  }

  /** The earliest item, left in the queue. */
  peek(): T | undefined {
    return this.#heap[0]?.item;
  }

  /** Queues `item`, due at `time`. */
  push(time: number, item: T): void {
    const heap = this.#heap;
    heap.push({ time, order: this.#order++, item });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  /** Takes the earliest item out of the queue. */
  pop(): T | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let least = i;
        if (left < heap.length && before(heap[left], heap[least])) least = left;
        if (right < heap.length && before(heap[right], heap[least])) {
          least = right;
        }
        if (least === i) break;
        [heap[i], heap[least]] = [heap[least], heap[i]];
        i = least;
      }
    }
    return top?.item;
  }
}
