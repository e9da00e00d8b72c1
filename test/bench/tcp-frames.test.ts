import t from 'tap'
import { once } from 'node:events'
import { createServer, connect } from 'node:net'
import type { Socket } from 'node:net'
import { FrameKind, FrameParser, FrameWriter, HEADER_BYTES, MAX_FRAME_BYTES } from '../../bench/variants/tcp-frames.js'

interface Seen { kind: number, from: number, to: number, payload: string, frameLength: number }

function collect (): { parser: FrameParser, seen: Seen[] } {
  const seen: Seen[] = []
  const parser = new FrameParser((kind, from, to, payload, frame) => {
    seen.push({ kind, from, to, payload: payload.toString('hex'), frameLength: frame.length })
  })
  return { parser, seen }
}

function encode (kind: number, from: number, to: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(HEADER_BYTES + payload.length)
  b.writeUInt32LE(b.length - 4, 0)
  b[4] = kind
  b.writeUInt16LE(from, 5)
  b.writeUInt16LE(to, 7)
  payload.copy(b, HEADER_BYTES)
  return b
}

const frames = [
  encode(FrameKind.Data, 1, 2, Buffer.from('hello')),
  encode(FrameKind.Broadcast, 3, 0xffff, Buffer.alloc(0)),
  encode(FrameKind.Data, 0xfffe, 0, Buffer.alloc(3000, 7)),
  encode(FrameKind.Hello, 4, 0, Buffer.alloc(0)),
]
const stream = Buffer.concat(frames)
const expected: Seen[] = [
  { kind: FrameKind.Data, from: 1, to: 2, payload: Buffer.from('hello').toString('hex'), frameLength: frames[0]!.length },
  { kind: FrameKind.Broadcast, from: 3, to: 0xffff, payload: '', frameLength: frames[1]!.length },
  { kind: FrameKind.Data, from: 0xfffe, to: 0, payload: Buffer.alloc(3000, 7).toString('hex'), frameLength: frames[2]!.length },
  { kind: FrameKind.Hello, from: 4, to: 0, payload: '', frameLength: frames[3]!.length },
]

t.test('parser: one chunk holding every frame', async (t) => {
  const { parser, seen } = collect()
  t.ok(parser.push(stream))
  t.same(seen, expected)
})

t.test('parser: every split point of the stream into two chunks', async (t) => {
  for (let cut = 1; cut < stream.length; cut += cut < 40 ? 1 : 97) {
    const { parser, seen } = collect()
    parser.push(stream.subarray(0, cut))
    parser.push(stream.subarray(cut))
    if (JSON.stringify(seen) !== JSON.stringify(expected)) { t.fail(`split at ${cut}`); return }
  }
  t.pass('all splits parse identically')
})

t.test('parser: one byte at a time', async (t) => {
  const { parser, seen } = collect()
  for (let i = 0; i < stream.length; i++) parser.push(stream.subarray(i, i + 1))
  t.same(seen, expected)
})

t.test('parser: impossible lengths mark the stream bad', async (t) => {
  const tooBig = Buffer.alloc(HEADER_BYTES)
  tooBig.writeUInt32LE(MAX_FRAME_BYTES + 1, 0)
  const a = collect()
  t.equal(a.parser.push(tooBig), false)
  t.equal(a.parser.bad, true)
  t.equal(a.parser.push(stream), false, 'stays bad')
  t.same(a.seen, [])

  const tooSmall = Buffer.alloc(HEADER_BYTES)
  tooSmall.writeUInt32LE(2, 0)
  const b = collect()
  t.equal(b.parser.push(tooSmall), false)

  // The bad length arrives split across chunks.
  const c = collect()
  c.parser.push(frames[0]!)
  c.parser.push(tooBig.subarray(0, 2))
  t.equal(c.parser.push(tooBig.subarray(2)), false)
  t.equal(c.seen.length, 1)
})

async function socketPair (): Promise<{ client: Socket, server: Socket, close: () => void }> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  const accepted = once(srv, 'connection')
  const client = connect(port, '127.0.0.1')
  await once(client, 'connect')
  const [server] = await accepted as [Socket]
  return { client, server, close: () => { client.destroy(); server.destroy(); srv.close() } }
}

t.test('writer: frames queued in one tick go out in one write, in order', async (t) => {
  const { client, server, close } = await socketPair()
  t.teardown(close)
  const writes: number[] = []
  const origWrite = client.write.bind(client)
  client.write = ((chunk: Buffer, ...rest: never[]) => { writes.push(chunk.length); return origWrite(chunk, ...rest) }) as typeof client.write
  const w = new FrameWriter()
  w.attach(client)
  const { parser, seen } = collect()
  server.on('data', (d: Buffer) => parser.push(d))
  for (let i = 0; i < 100; i++) w.queueFrame(FrameKind.Data, 1, 2, Buffer.from([i]))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(writes, [100 * (HEADER_BYTES + 1)], 'one write for the whole tick')
  while (seen.length < 100) await once(server, 'data')
  t.same(seen.map((s) => Number.parseInt(s.payload, 16)), Array.from({ length: 100 }, (_, i) => i))
})

t.test('writer: queues while detached, flushes on attach, drops at the hard bound', async (t) => {
  const w = new FrameWriter({ highWaterMark: 100, maxQueuedBytes: 10 * (HEADER_BYTES + 10) })
  const payload = Buffer.alloc(10, 1)
  const results: boolean[] = []
  for (let i = 0; i < 12; i++) results.push(w.queueFrame(FrameKind.Data, 1, 2, payload))
  t.equal(w.dropped, 2, 'two frames beyond the bound are dropped and counted')
  t.equal(results[0], true, 'below the high-water mark')
  t.equal(results[9], false, 'above the high-water mark')
  let resolved = false
  const waiting = w.whenWritable().then(() => { resolved = true })
  t.equal(resolved, false)

  const { client, server, close } = await socketPair()
  t.teardown(close)
  const { parser, seen } = collect()
  server.on('data', (d: Buffer) => parser.push(d))
  w.attach(client)
  await waiting
  t.equal(resolved, true, 'writable again once flushed')
  while (seen.length < 10) await once(server, 'data')
  t.equal(seen.length, 10)
})
