/**
 * The relay's seeded pseudo-random generator (mulberry32): 32-bit state,
 * fast, and the same sequence for the same seed on every platform, so a seed
 * replays the same fates.
 *
 * @module
 */

/** A seeded generator of uniform floats in [0, 1). */
export class Prng {
  #state: number;

  /** Creates a generator; only the low 32 bits of `seed` count. */
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

  /** `true` with probability `p`; draws nothing for `p` ≤ 0. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}
