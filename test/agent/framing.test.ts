/**
 * Varint length-delimited framing: frames cut at every possible chunk
 * boundary come out whole and in order; a frame within one chunk is a view
 * (no copy); oversized and malformed lengths stop the decoder before
 * anything of them is buffered.
 */
import t from 'tap'
import { encodeFrame, FrameDecoder, MAX_PREFIX_BYTES, varintLength, writeVarint } from '../../lib/agent/framing.js'
import { decodeAgentMessage, decodeClientMessage, encodeClientFrame, errorCodeName, idKey, meshDelivery } from '../../lib/agent/protocol.js'

function frames(d: FrameDecoder): Buffer[] {
  const out: Buffer[] = []
  for (let f = d.next(); f !== null; f = d.next()) out.push(Buffer.from(f))
  return out
}

t.test('varints', async (t) => {
  for (const [n, len] of [[0, 1], [127, 1], [128, 2], [16383, 2], [16384, 3], [2 ** 21, 4], [2 ** 28, 5], [2 ** 32 - 1, 5]] as const) {
    t.equal(varintLength(n), len, `${n}: ${len} bytes`)
    const b = Buffer.alloc(5)
    t.equal(writeVarint(n, b, 0), len)
  }
  t.same([...encodeFrame(Buffer.from('abc'))], [3, 97, 98, 99])
})

t.test('frames split at every boundary', async (t) => {
  const payloads = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(200, 1), Buffer.alloc(20_000, 2), Buffer.from('end')]
  const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)))
  for (const step of [1, 2, 3, 7, 127, 128, 129, 4096, stream.length]) {
    const d = new FrameDecoder(1 << 20)
    const got: Buffer[] = []
    for (let i = 0; i < stream.length; i += step) {
      d.push(stream.subarray(i, i + step))
      got.push(...frames(d))
    }
    t.same(got.map((g) => g.toString('hex')), payloads.map((p) => p.toString('hex')), `chunks of ${step}`)
    t.equal(d.error, null)
    t.equal(d.midFrame, false)
  }
})

t.test('a frame inside one chunk is a view; pushing before reading all joins the rest', async (t) => {
  const chunk = Buffer.concat([encodeFrame(Buffer.from('one')), encodeFrame(Buffer.from('two'))])
  const d = new FrameDecoder(100)
  d.push(chunk)
  const one = d.next()!
  t.equal(one.buffer, chunk.buffer, 'same memory')
  t.equal(d.pending, 4)
  d.push(encodeFrame(Buffer.from('three')))
  t.same(frames(d).map(String), ['two', 'three'])
  t.equal(d.pending, 0)
  d.push(Buffer.from([5, 1, 2]))
  t.equal(d.next(), null)
  t.ok(d.midFrame, 'holds a partial frame')
})

t.test('oversized and malformed lengths', async (t) => {
  const d = new FrameDecoder(1000)
  const b = Buffer.alloc(5)
  d.push(b.subarray(0, writeVarint(1001, b, 0)))
  t.equal(d.next(), null)
  t.equal(d.error, 'too-large')
  t.equal(d.errorLength, 1001)
  d.push(Buffer.from([1, 2]))
  t.equal(d.next(), null, 'stays stopped')
  const e = new FrameDecoder(1000)
  e.push(Buffer.alloc(MAX_PREFIX_BYTES, 0xff))
  t.equal(e.next(), null)
  t.equal(e.error, 'bad-length')
  const f = new FrameDecoder(1000)
  f.push(Buffer.from([0xff]))
  t.equal(f.next(), null, 'a prefix split across chunks waits')
  f.push(Buffer.from([0x7f]))
  t.equal(f.next(), null)
  t.equal(f.error, 'too-large', '0x3fff > 1000')
  t.throws(() => new FrameDecoder(0), RangeError)
  t.equal(new FrameDecoder(1).next(), null, 'nothing pushed')
})

t.test('protocol helpers', async (t) => {
  t.equal(errorCodeName(10), 'TIMEOUT')
  t.equal(errorCodeName(99), 'ERROR_CODE_99')
  t.equal(idKey(undefined), 0)
  t.equal(idKey(5), 5)
  t.equal(idKey({ low: 1, high: 1, toString: () => 'x' }), 2 ** 32 + 1)
  t.equal(idKey({ low: 0, high: 0x7fffffff, toString: () => 'big' }), 'big')
  t.same([0, 1, 2, 3, 4, 5].map(meshDelivery), [3, 0, 1, 2, 3, -1])
  // The outer message: last body wins, unknown fields skipped, bad input named.
  const send = encodeClientFrame({ send: { id: 1, to: 'a' } }).subarray(1)
  const req = encodeClientFrame({ request: { id: 2, to: 'b' } }).subarray(1)
  const unknown = Buffer.from([0x98, 0x06, 0x01, 0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0xad, 0x06, 1, 2, 3, 4])
  const m = decodeClientMessage(Buffer.concat([send, unknown, req]))
  t.match(m, { body: 'request', value: { to: 'b' } })
  t.same(decodeClientMessage(Buffer.alloc(0)), { body: undefined, value: {} })
  t.match(decodeClientMessage(Buffer.from([0x12, 5, 1])), /field 2 declares 5 bytes, 1 left/)
  t.match(decodeClientMessage(Buffer.from([0x0b])), /invalid wire type 3/)
  t.match(decodeClientMessage(Buffer.from([0x80])), /truncated field tag/)
  t.match(decodeClientMessage(Buffer.from([0x12])), /truncated field length/)
  t.match(decodeClientMessage(Buffer.from([0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), /field length too long/)
  t.match(decodeClientMessage(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), /field tag too long/)
  t.match(decodeClientMessage(Buffer.from([0x09, 1, 2])), /truncated field/)
  t.match(decodeClientMessage(Buffer.from([0x12, 2, 0x0a, 5])), /^send: index out of range/)
  t.match(decodeAgentMessage(Buffer.from([0x2a, 2, 0x08, 7])), { body: 'result', value: { count: 0 } })
})
