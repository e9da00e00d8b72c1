/**
 * Round-trip time estimation and retransmission timeout, RFC 6298:
 * SRTT α = 1/8, RTTVAR β = 1/4, RTO = SRTT + max(G, 4·RTTVAR), clamped to
 * [minRto, maxRto], doubled on every timeout (exponential backoff, capped) and
 * reset by the next valid sample. Samples come only from packets acknowledged
 * for the first time, and every packet number is used once, so a sample is
 * never ambiguous (Karn's rule holds by construction: a retransmitted frame
 * travels in a new packet with its own send time).
 *
 * Two figures come out of the same samples, for two readers:
 * - `srtt`/`rttVar`/`rto` drive retransmission and stay RFC 6298's smoothed
 *   mean, which a few slow samples pull up (and keep up for ~16 samples):
 *   conservative, as a timer must be;
 * - {@link RttEstimator.pathRtt} is what users read as the round trip
 *   (`roundTripTime` in stats, metrics and the demo): the median of the last
 *   {@link PATH_RTT_SAMPLES} samples less the peer's ack delay (QUIC's
 *   latest_rtt − ack_delay), so neither the acks delayed by sparse one-way
 *   traffic nor a stray slow wake-up shows as the path's latency.
 */

import { MedianWindow } from './median-window.js'

/** Samples the median of {@link RttEstimator.pathRtt} is taken over. */
export const PATH_RTT_SAMPLES = 16

/** Options of {@link RttEstimator}; all times in milliseconds. */
export interface RttOptions {
  /** RTO before the first sample. Default 100 ms (LAN-suited, RFC 6298 says 1 s for the Internet). */
  initialRto?: number
  /** Lower bound of the RTO. Default 5 ms, not TCP's 200 ms. */
  minRto?: number
  /** Upper bound of the RTO, backoff included. Default 2000 ms. */
  maxRto?: number
  /** Clock granularity G. Default 1 ms. */
  granularity?: number
}

export class RttEstimator {
  /** Smoothed RTT, ms; 0 until the first sample. */
  srtt = 0
  /** RTT variation, ms. */
  rttVar = 0
  /** Most recent sample, ms. */
  latestRtt = 0
  /** Smallest sample seen (less the peer's ack delay), ms. */
  minRtt = Infinity
  /** Number of consecutive timeouts since the last valid sample. */
  backoff = 0
  readonly #initialRto: number
  readonly #minRto: number
  readonly #maxRto: number
  readonly #granularity: number
  /** The last {@link PATH_RTT_SAMPLES} adjusted samples. */
  readonly #path = new MedianWindow(PATH_RTT_SAMPLES)

  constructor(options: RttOptions = {}) {
    this.#initialRto = options.initialRto ?? 100
    this.#minRto = options.minRto ?? 5
    this.#maxRto = options.maxRto ?? 2000
    this.#granularity = options.granularity ?? 1
    if (!(this.#minRto > 0) || !(this.#maxRto >= this.#minRto)) {
      throw new RangeError(`RTT options: expected 0 < minRto <= maxRto, got minRto=${this.#minRto} maxRto=${this.#maxRto}`)
    }
  }

  /** True once at least one sample was taken. */
  get hasSample(): boolean {
    return this.srtt > 0
  }

  /**
   * Feed one RTT sample. `ackDelay` is the time the peer says it held the
   * ack; it is subtracted whenever less than the sample, and `minRtt` is the
   * smallest adjusted sample.
   *
   * RFC 9002 (§5.3) keeps min_rtt unadjusted and subtracts the delay only
   * down to it: a QUIC peer acknowledges handshake packets at once, so
   * min_rtt starts true. Here every ack of sparse one-way traffic waits up to
   * `maxAckDelay` (no reply comes to carry it), so every sample holds the
   * delay, an unadjusted minimum holds it too, and SRTT kept the whole ack
   * delay (~1 ms) on top of a loopback path. The delay comes from an authenticated peer,
   * measured by its clock from receipt to the ack's departure; a wrong one
   * can only make SRTT smaller, and the RTO keeps its floor (`minRto`) while
   * the loss time threshold also uses the unadjusted latest sample.
   */
  sample(rtt: number, ackDelay = 0): void {
    if (!(rtt >= 0)) return
    this.latestRtt = rtt
    const adjusted = ackDelay > 0 && ackDelay < rtt ? rtt - ackDelay : rtt
    if (adjusted < this.minRtt) this.minRtt = adjusted
    this.#path.add(adjusted)
    if (this.srtt === 0) {
      this.srtt = Math.max(adjusted, 0.001)
      this.rttVar = adjusted / 2
    } else {
      this.rttVar = 0.75 * this.rttVar + 0.25 * Math.abs(this.srtt - adjusted)
      this.srtt = 0.875 * this.srtt + 0.125 * adjusted
    }
    this.backoff = 0
  }

  /**
   * The path's round trip, ms: the median of the last
   * {@link PATH_RTT_SAMPLES} samples less the peer's ack delay (the mean of
   * the middle two for an even count); 0 before the first sample. Computed
   * when read (stats, not per packet). Not used for any timer: see `srtt`.
   */
  get pathRtt(): number {
    return this.#path.count === 0 ? 0 : this.#path.median()
  }

  /** The RTO without backoff, ms. */
  get baseRto(): number {
    if (this.srtt === 0) return clamp(this.#initialRto, this.#minRto, this.#maxRto)
    return clamp(this.srtt + Math.max(this.#granularity, 4 * this.rttVar), this.#minRto, this.#maxRto)
  }

  /** The current RTO including backoff, ms. */
  get rto(): number {
    return Math.min(this.baseRto * 2 ** this.backoff, this.#maxRto)
  }

  /** Record a retransmission timeout: the RTO doubles, up to `maxRto`. */
  onTimeout(): void {
    if (this.baseRto * 2 ** this.backoff < this.#maxRto) this.backoff++
  }

  /** RFC 9002 time threshold: 9/8 × max(srtt, latest), at least the granularity. */
  get lossDelay(): number {
    const base = this.srtt === 0 ? this.#initialRto : Math.max(this.srtt, this.latestRtt)
    return Math.max((base * 9) / 8, this.#granularity)
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v
}
