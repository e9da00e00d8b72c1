/**
 * Floors of the protection goals of `bench:endpoint`: what warpmesh's
 * AEAD alone adds, on the goals' own scale (protected ÷ unprotected). Pure
 * functions, tested in test/bench/endpoint-floor.test.ts.
 */

/** Average size of `packets` packets of `bytes` in all, rounded to a whole byte; NaN without packets. */
export function averagePacket (bytes: number, packets: number): number {
  return packets > 0 ? Math.round(bytes / packets) : NaN
}

/** AEAD µs per message: each flow's packets × its seal+open µs, summed, ÷ messages. */
export function aeadUsPerMessage (flows: readonly { packets: number, sealOpenUs: number }[], messages: number): number {
  if (!(messages > 0)) return NaN
  return flows.reduce((a, f) => a + (f.packets > 0 ? f.packets * f.sealOpenUs : 0), 0) / messages
}

/**
 * A floor on a protection goal's scale (protected ÷ unprotected): protection
 * adds at least the AEAD's own cost (µs of CPU per message, or µs of round
 * trip) to the unprotected figure, so the ratio is at least
 * (unprotected + AEAD) ÷ unprotected. NaN for a negative cost (not a
 * measurement) or an unusable unprotected figure.
 */
export function addedFloorRatio (aeadUs: number, unprotectedUs: number): number {
  return unprotectedUs > 0 && Number.isFinite(unprotectedUs) && aeadUs >= 0 ? 1 + aeadUs / unprotectedUs : NaN
}

/** A ratio as the change it means: 1.12 → '+12 %', 0.97 → '-3 %'; '—' when not finite. */
export function deltaPercent (ratio: number | null): string {
  if (ratio === null || !Number.isFinite(ratio)) return '—'
  const pct = Math.round((ratio - 1) * 100)
  return `${pct >= 0 ? '+' : ''}${pct} %`
}

/**
 * The printed verdict of a goal `measured ratio ≤ limit`. When it is not met
 * and its limit is below the floor measured in the same run, it says so: no
 * change to the protocol can meet it on this machine. A floor never turns a
 * goal met (noise can put a measurement under its floor; it stays as measured).
 */
export function goalVerdict (met: boolean, limit: number | null, floorRatio: number | null): string {
  if (met) return 'met'
  return limit !== null && floorRatio !== null && Number.isFinite(floorRatio) && floorRatio > limit ? 'NOT MET (below floor)' : 'NOT MET'
}
