// A datagram of another protocol version is dropped, counted, and logged once
// per 5 s whatever its source (spoofed sources cannot multiply the lines).
import t from 'tap'
import { Endpoint } from '../../lib/endpoint.js'
import { SimNetwork } from '../../lib/transport/sim.js'
import { encodePacket, MAGIC, PacketType, VERSION } from '../../lib/wire/codec.js'
import { captureLog } from '../security/fixtures/helpers.js'

const LINE = 'dropped a datagram of another warpmesh protocol version: are nodes of different releases in one network?'

t.test('another protocol version: dropped as bad-version, one rate-limited log line naming the source', async (t) => {
  const net = new SimNetwork({ seed: 11, delayMs: 1 })
  const clock = net.clock
  const log = captureLog('b', () => clock.now())
  const b = new Endpoint(net.bind('10.0.0.2', 7400), { insecure: true, clock, logger: log.logger })
  const hello = (version: number): Uint8Array => encodePacket({
    magic: MAGIC, version, type: PacketType.HELLO,
    handshake: { connectionId: 7, epoch: 1, nonce: Buffer.alloc(32, 1), maxDatagram: 1200 } as never,
  })
  const senders = Array.from({ length: 20 }, (_, i) => net.bind(`10.0.1.${i + 1}`, 7400))
  for (const s of senders) s.send([hello(VERSION - 1)], 7400, '10.0.0.2')
  clock.advance(10)
  t.equal(b.stats().dropped['bad-version'], 20, 'every one dropped and counted')
  t.equal(b.stats().handshakesStarted + b.sessions().length, 0, 'no state')
  const lines = log.lines(LINE)
  t.equal(lines.length, 1, 'one line for 20 sources')
  t.equal(lines[0]!.from, '10.0.1.1:7400', 'naming the first source')
  t.equal(lines[0]!.version, VERSION, 'and the version this node speaks')
  clock.advance(6000)
  senders[5]!.send([hello(VERSION + 1)], 7400, '10.0.0.2')
  clock.advance(10)
  t.equal(log.lines(LINE).length, 2, 'another line after the interval')
  // A datagram of our version still gets its answer.
  const before = b.stats().datagramsSent
  senders[0]!.send([hello(VERSION)], 7400, '10.0.0.2')
  clock.advance(10)
  t.equal(b.stats().datagramsSent, before + 1, 'a HELLO of this version is answered')
  await b.close()
})
