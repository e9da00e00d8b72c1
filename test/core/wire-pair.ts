// Two connections whose packets are captured, so a test decides, packet by
// packet, what is delivered, dropped or reordered, and when.
import { Connection, type ConnectionHost, type ConnectionOptions, type UndeliveredMessage } from '../../lib/core/connection.js'
import { decodeFrames, type CloseReason, type Frame } from '../../lib/wire/codec.js'

export interface Captured { pn: number, frames: Frame[], bytes: number, payload: Buffer }

export class End {
  conn!: Connection
  out: Captured[] = []
  got: { data: Buffer, channel: number, delivery: number }[] = []
  drains = 0
  closed: { reason: CloseReason, byPeer: boolean, undelivered: UndeliveredMessage[] } | null = null
}

export function wirePair(options: ConnectionOptions = {}): { a: End, b: End, pass(from: End, to: End, now: number, filter?: (c: Captured) => boolean): number } {
  const a = new End()
  const b = new End()
  const host: ConnectionHost = {
    output: (conn, pn, payload) => {
      const f = decodeFrames(payload)
      if (typeof f === 'string') throw new Error('bad payload ' + f)
      ;(conn.owner as End).out.push({ pn, frames: f, bytes: payload.length, payload: Buffer.from(payload) })
    },
    deliver: (conn, data, channel, delivery) => { (conn.owner as End).got.push({ data: Buffer.from(data), channel, delivery }) },
    drain: (conn) => { (conn.owner as End).drains++ },
    closed: (conn, reason, byPeer, undelivered) => { (conn.owner as End).closed = { reason, byPeer, undelivered } },
  }
  a.conn = new Connection(host, 0, options)
  a.conn.owner = a
  b.conn = new Connection(host, 0, options)
  b.conn.owner = b
  /** Move every captured packet of `from` to `to` (those `filter` accepts; the rest are lost). */
  function pass(from: End, to: End, now: number, filter: (c: Captured) => boolean = () => true): number {
    const list = from.out
    from.out = []
    let n = 0
    for (const c of list) {
      if (!filter(c)) continue
      to.conn.receive(c.pn, c.frames, c.bytes, now)
      n++
    }
    return n
  }
  return { a, b, pass }
}
