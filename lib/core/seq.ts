/**
 * 32-bit serial-number arithmetic (RFC 1982 style): packet numbers and message
 * sequences wrap at 2^32, and comparisons stay correct across the wrap as long
 * as the two numbers are less than 2^31 apart.
 */

/** `a - b` as a signed 32-bit distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0
}

/** True when `a` comes before `b`. */
export function seqLess(a: number, b: number): boolean {
  return ((a - b) | 0) < 0
}

/** `a + n` wrapped to an unsigned 32-bit number. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0
}

/** The later of `a` and `b`. */
export function seqMax(a: number, b: number): number {
  return ((a - b) | 0) < 0 ? b : a
}
