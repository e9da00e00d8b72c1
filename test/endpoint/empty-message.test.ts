/**
 * A zero-length message arrives as a zero-length Uint8Array in every
 * delivery mode (protobufjs decodes an empty bytes field as an empty JS
 * array; the endpoint must never hand that to an application).
 */
import t from 'tap'
import { Delivery } from '../../lib/wire/codec.js'
import { connect, driveUntil, world } from './helpers.js'

for (const keyed of [false, true]) {
  t.test(`empty messages, ${keyed ? 'keyed' : 'insecure'}`, async (t) => {
    const w = world({ keep: false, keyed })
    const { sa } = await connect(w)
    const modes = [Delivery.UNRELIABLE, Delivery.UNRELIABLE_SEQUENCED, Delivery.RELIABLE_UNORDERED, Delivery.RELIABLE_ORDERED]
    for (const delivery of modes) sa.send(Buffer.alloc(0), { channel: 2, delivery })
    t.ok(await driveUntil(w, () => w.gotB.length === modes.length, 1000), 'all delivered')
    t.same(w.gotB.map((m) => m.delivery), modes)
    for (const m of w.gotB) {
      t.ok(m.data instanceof Uint8Array, `delivery ${m.delivery}: a Uint8Array`)
      t.equal(m.data.length, 0)
    }
  })
}
