/**
 * The project's seeded pseudo-random generator (mulberry32): 32-bit state,
 * fast, good enough for simulation, and the same sequence for the same seed on
 * every platform, so a seed replays the same run. Used by the relay (its
 * fates) and by the tests' simulated network.
 *
 * @module
 */

/** A seeded generator of uniform floats in [0, 1). */
export class Prng {
  #state: number;

  /** Creates a generator; any integer seed is fine (only its low 32 bits count). */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /**
   * `true` with probability `p`; draws nothing for `p` ≤ 0 and one number
   * otherwise, even for `p` ≥ 1 (a seeded relay run counts on that).
   */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A uniform float in [min, max]. */
  uniform(min: number, max: number): number {
    return min + this.next() * (max - min);
  }
}

/**
 * A copy of `bytes` with `count` distinct bits flipped, chosen by `prng`
 * (all of them when `bytes` has fewer bits).
 */
export function flipBits(
  bytes: Uint8Array,
  count: number,
  prng: Prng,
): Uint8Array {
  const copy = bytes.slice();
  const bits = bytes.length * 8;
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, bits)) chosen.add(prng.below(bits));
  for (const bit of chosen) copy[bit >>> 3] ^= 0x80 >>> (bit & 7);
  return copy;
}
