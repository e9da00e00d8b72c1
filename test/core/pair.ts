// A deterministic two-connection harness for the reliability core: packets go
// through the real codec over a seeded lossy link with delay and jitter, on a
// discrete clock. No sockets, no timers.
import { Connection, type ConnectionHost, type ConnectionOptions, type UndeliveredMessage } from '../../lib/core/connection.js'
import { decodeFrames, type CloseReason, type Delivery } from '../../lib/wire/codec.js'

export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface LinkOptions {
  loss?: number
  duplicate?: number
  reorder?: number
  delayMs?: number
  jitterMs?: number
  seed?: number
}

export interface Received {
  data: Uint8Array
  channel: number
  delivery: Delivery
}

export class Side {
  conn!: Connection
  received: Received[] = []
  datagrams = 0
  drains = 0
  closedWith: { reason: CloseReason, byPeer: boolean, undelivered: UndeliveredMessage[] } | null = null
  constructor(readonly name: string) {}
}

interface InFlight { at: number, seq: number, to: Side, pn: number, payload: Buffer }

export class Pair {
  now = 0
  a = new Side('a')
  b = new Side('b')
  readonly #queue: InFlight[] = []
  #seq = 0
  #lastAt = 0
  readonly #rand: () => number
  readonly link: Required<LinkOptions>
  dropped = 0

  constructor(link: LinkOptions = {}, options: ConnectionOptions = {}, optionsB: ConnectionOptions = options) {
    this.link = { loss: 0, duplicate: 0, reorder: 0, delayMs: 0.05, jitterMs: 0, seed: 1, ...link }
    this.#rand = rng(this.link.seed)
    const host: ConnectionHost = {
      output: (conn, pn, payload) => {
        const from = conn.owner as Side
        from.datagrams++
        this.#transmit(from === this.a ? this.b : this.a, pn, payload)
      },
      deliver: (conn, data, channel, delivery) => {
        (conn.owner as Side).received.push({ data: Buffer.from(data), channel, delivery })
      },
      drain: (conn) => { (conn.owner as Side).drains++ },
      closed: (conn, reason, byPeer, undelivered) => {
        (conn.owner as Side).closedWith = { reason, byPeer, undelivered }
      },
    }
    this.a.conn = new Connection(host, 0, options)
    this.a.conn.owner = this.a
    this.b.conn = new Connection(host, 0, optionsB)
    this.b.conn.owner = this.b
  }

  #transmit(to: Side, pn: number, payload: Buffer): void {
    const l = this.link
    if (this.#rand() < l.loss) { this.dropped++; return }
    const copies = this.#rand() < l.duplicate ? 2 : 1
    for (let i = 0; i < copies; i++) {
      // Jitter never reorders (a FIFO link); `reorder` does, on purpose.
      let at = Math.max(this.now + l.delayMs + this.#rand() * l.jitterMs, this.#lastAt)
      if (this.#rand() < l.reorder) at += l.delayMs * 3 + l.jitterMs
      else this.#lastAt = at
      this.#queue.push({ at, seq: this.#seq++, to, pn, payload })
    }
    this.#queue.sort((x, y) => x.at - y.at || x.seq - y.seq)
  }

  /** Flush both sides, as the endpoint does at the end of every turn. */
  flush(): void {
    this.a.conn.flush(this.now)
    this.b.conn.flush(this.now)
  }

  /** Advance to the next event (delivery or deadline); false when nothing is left before `until`. */
  step(until: number): boolean {
    const next = this.#queue[0]?.at ?? Infinity
    const deadline = Math.min(this.a.conn.nextDeadline(), this.b.conn.nextDeadline())
    const t = Math.min(next, deadline)
    if (t > until) { this.now = until; return false }
    this.now = Math.max(this.now, t)
    while (this.#queue.length > 0 && this.#queue[0].at <= this.now) {
      const d = this.#queue.shift()!
      const frames = decodeFrames(d.payload)
      if (typeof frames === 'string') throw new Error('undecodable payload: ' + frames)
      d.to.conn.receive(d.pn, frames, d.payload.length, this.now)
    }
    if (this.a.conn.nextDeadline() <= this.now) this.a.conn.onTimer(this.now)
    if (this.b.conn.nextDeadline() <= this.now) this.b.conn.onTimer(this.now)
    this.flush()
    return true
  }

  runUntil(pred: () => boolean, maxMs: number): boolean {
    const end = this.now + maxMs
    while (!pred()) {
      if (!this.step(end)) return pred()
    }
    return true
  }

  get inTransit(): number { return this.#queue.length }
}
