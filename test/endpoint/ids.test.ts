// Connection ids and endpoint epochs stay below 2^30, so V8 keeps them
// unboxed (Smi) in every packet, session and handshake object: a larger one
// changed those fields' representation after the start-up warm-up and threw
// away the optimized hot path (see ID_LIMIT in lib/endpoint.ts).
import t from 'tap'
import { decodePacket, PacketType } from '../../lib/wire/codec.js'
import { connect, world } from './helpers.js'

t.test('connection ids and epochs are drawn from 1 .. 2^30 - 1', async (t) => {
  const ids: number[] = []
  const epochs: number[] = []
  const onWire: number[] = []
  for (let seed = 1; seed <= 20; seed++) {
    const w = world({ seed, capture: true })
    const { sa, sb } = await connect(w)
    ids.push(sa.localId, sa.remoteId, sb.localId, sb.remoteId)
    epochs.push(w.a.epoch, w.b.epoch, sa.remoteEpoch, sb.remoteEpoch)
    for (const d of [...w.sentA, ...w.sentB]) {
      const p = decodePacket(d)
      if (typeof p !== 'string' && p.type === PacketType.DATA) onWire.push(p.connectionId)
    }
    await w.a.close()
    await w.b.close()
  }
  // Drawn up to 2^32 as before, 120 values would all stay under 2^30 with probability 4^-120.
  for (const [name, values] of [['connection ids', ids], ['epochs', epochs], ['DATA packets\' connection ids', onWire]] as const) {
    t.ok(values.length >= 40, `${values.length} ${name}`)
    t.ok(values.every((v) => Number.isInteger(v) && v >= 1 && v < 2 ** 30), `${name} all in 1 .. 2^30 - 1`)
  }
  t.ok(new Set(epochs).size >= 30, 'epochs still random')
})
