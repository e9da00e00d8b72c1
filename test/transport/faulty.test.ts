import t from 'tap'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { FaultyTransport, wrapFaulty } from '../../lib/transport/faulty.js'
import type { FaultyOptions } from '../../lib/transport/faulty.js'
import { createRng, SimNetwork } from '../../lib/transport/sim.js'
import { bindUdp } from '../../lib/transport/udp.js'
import type { UdpTransport } from '../../lib/transport/udp.js'

const WAIT_MS = 10_000
const N = 10_000
const BATCH = 500

function datagram(seq: number): Buffer {
  const b = Buffer.alloc(16)
  b.writeUInt32BE(seq, 0)
  return b
}

function withinBinomial(observed: number, n: number, p: number, k = 5): boolean {
  return Math.abs(observed - n * p) <= k * Math.sqrt(n * p * (1 - p))
}

/**
 * A receiving loopback socket and a faulty wrapper of a sending one. `send()`
 * sends N numbered datagrams (from one reused scratch buffer) in batches and,
 * after each batch, lets the receiver (same process) drain everything
 * forwarded so far, so the kernel never drops for lack of buffer space.
 */
async function loopbackRig(t: Teardown, options: FaultyOptions): Promise<{
  faulty: FaultyTransport
  seqs: number[]
  send: () => Promise<void>
  drain: (n: number) => Promise<void>
}> {
  const receiver = await bindUdp({ address: '127.0.0.1' })
  const faulty = wrapFaulty(await bindUdp({ address: '127.0.0.1' }), options)
  t.teardown(async () => { await faulty.close(); await receiver.close() })
  const seqs: number[] = []
  receiver.setHandler((data) => { seqs.push(data.readUInt32BE(0)) })
  const deadline = performance.now() + WAIT_MS
  const drain = async (n: number): Promise<void> => {
    while (seqs.length < n) {
      if (performance.now() > deadline) throw new Error(`received ${seqs.length} of ${n} datagrams within ${WAIT_MS} ms`)
      await nextTurn()
    }
  }
  const scratch = Buffer.alloc(16)
  const send = async (): Promise<void> => {
    for (let i = 0; i < N; i++) {
      scratch.writeUInt32BE(i, 0)
      faulty.send([scratch], receiver.port, '127.0.0.1')
      if (i % BATCH === BATCH - 1) await drain(faulty.stats.forwarded)
    }
  }
  return { faulty, seqs, send, drain }
}

/** What the helpers need of a tap test. */
interface Teardown { teardown: (fn: () => unknown) => void }

/** Sequence numbers of the first `n` datagrams `transport` receives; rejects after `timeoutMs`. */
function receiveSeqs(transport: UdpTransport, n: number, timeoutMs = WAIT_MS): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const seqs: number[] = []
    const timer = setTimeout(() => reject(new Error(`received ${seqs.length} of ${n} datagrams within ${timeoutMs} ms`)), timeoutMs)
    transport.setHandler((data) => {
      seqs.push(data.readUInt32BE(0))
      if (seqs.length === n) {
        clearTimeout(timer)
        resolve(seqs)
      }
    })
  })
}

t.test('over real loopback', async (t) => {
  t.test('drops the requested fraction, exactly the datagrams the seed says', async (t) => {
    const { faulty, seqs, send, drain } = await loopbackRig(t, { seed: 123, drop: 0.1 })
    const expected: number[] = []
    const replay = createRng(123)
    for (let i = 0; i < N; i++) if (!(replay() < 0.1)) expected.push(i)
    await send()
    await drain(expected.length)
    t.same(seqs, expected, 'the seed decides which datagrams are dropped')
    t.same(faulty.stats, { sent: N, dropped: N - expected.length, duplicated: 0, reordered: 0, forwarded: expected.length, held: 0 })
    t.ok(withinBinomial(faulty.stats.dropped, N, 0.1), `dropped ${(faulty.stats.dropped / N).toFixed(4)} of ${N}`)
  })

  t.test('duplicates', async (t) => {
    const { faulty, seqs, send, drain } = await loopbackRig(t, { seed: 5, duplicate: 0.1 })
    const replay = createRng(5)
    let expectedCopies = 0
    for (let i = 0; i < N; i++) if (replay() < 0.1) expectedCopies++
    await send()
    await drain(N + expectedCopies)
    t.equal(seqs.length, N + expectedCopies)
    t.equal(faulty.stats.duplicated, expectedCopies)
    const counts = new Map<number, number>()
    for (const s of seqs) counts.set(s, (counts.get(s) ?? 0) + 1)
    t.equal(counts.size, N, 'every datagram arrives')
    t.equal([...counts.values()].filter((c) => c === 2).length, expectedCopies, 'copies of distinct datagrams')
    t.ok([...counts.values()].every((c) => c === 1 || c === 2))
    t.equal(faulty.stats.forwarded, N + expectedCopies)
    t.ok(withinBinomial(expectedCopies, N, 0.1), `duplicated ${expectedCopies}`)
  })

  t.test('reorders: each held datagram arrives after a later one', async (t) => {
    // A long release delay: held datagrams wait for the next one sent.
    const { faulty, seqs, send, drain } = await loopbackRig(t, { seed: 77, reorder: 0.1, reorderDelayMs: 60_000 })
    await send()
    const heldAtEnd = faulty.stats.held
    await faulty.close()
    await drain(N)
    t.equal(seqs.length, N)
    t.equal(new Set(seqs).size, N, 'every datagram exactly once')
    let late = 0
    let max = -1
    for (const s of seqs) {
      if (s < max) late++
      else max = s
    }
    t.ok(late > 0, `${late} arrived after a later datagram`)
    t.equal(late, faulty.stats.reordered - heldAtEnd, 'exactly the held ones (those flushed by close come last, in order)')
    t.ok(withinBinomial(faulty.stats.reordered, N, 0.1), `reordered ${faulty.stats.reordered}`)
  })

  t.test('close flushes held datagrams, oldest first', async (t) => {
    const receiver = await bindUdp({ address: '127.0.0.1' })
    t.teardown(() => receiver.close())
    const faulty = wrapFaulty(await bindUdp({ address: '127.0.0.1' }), { reorder: 1, maxHeld: 100, reorderDelayMs: 60_000 })
    const got = receiveSeqs(receiver, 50)
    const scratch = Buffer.alloc(16)
    for (let i = 0; i < 50; i++) {
      scratch.writeUInt32BE(i, 0)
      faulty.send([scratch], receiver.port, '127.0.0.1')
    }
    t.equal(faulty.stats.held, 50)
    t.equal(faulty.stats.forwarded, 0)
    await faulty.close()
    t.same(await got, Array.from({ length: 50 }, (_, i) => i), 'held copies, not the reused scratch buffer')
    t.same(faulty.stats, { sent: 50, dropped: 0, duplicated: 0, reordered: 50, forwarded: 50, held: 0 })
  })

  t.test('a held datagram is released by the timer when nothing follows', async (t) => {
    const receiver = await bindUdp({ address: '127.0.0.1' })
    const faulty = wrapFaulty(await bindUdp({ address: '127.0.0.1' }), { reorder: 1, reorderDelayMs: 1 })
    t.teardown(async () => { await faulty.close(); await receiver.close() })
    const got = receiveSeqs(receiver, 1)
    faulty.send([datagram(42)], receiver.port, '127.0.0.1')
    t.equal(faulty.stats.held, 1)
    t.same(await got, [42])
    t.equal(faulty.stats.held, 0)
  })
})

t.test('deterministic, over the simulated network', async (t) => {
  const setup = (options: FaultyOptions): { net: SimNetwork, faulty: FaultyTransport, got: number[] } => {
    const net = new SimNetwork()
    const receiver = net.bind('10.0.0.2', 2000)
    const faulty = wrapFaulty(net.bind('10.0.0.1', 1000), { clock: net.clock, ...options })
    const got: number[] = []
    receiver.setHandler((data) => got.push(data.readUInt32BE(0)))
    return { net, faulty, got }
  }

  t.test('timer releases held datagrams after reorderDelayMs', async (t) => {
    const { net, faulty, got } = setup({ reorder: 1, reorderDelayMs: 5 })
    faulty.send([datagram(1)], 2000, '10.0.0.2')
    net.clock.advance(2)
    faulty.send([datagram(2)], 2000, '10.0.0.2')
    net.clock.advance(2.999)
    t.same(got, [])
    net.clock.advance(0.001)
    t.same(got, [1, 2], 'one timer, armed by the first held datagram')
    t.equal(net.clock.pending(), 0)
  })

  t.test('maxHeld bounds what is held', async (t) => {
    const { net, faulty, got } = setup({ reorder: 1, maxHeld: 3 })
    for (let i = 0; i < 5; i++) faulty.send([datagram(i)], 2000, '10.0.0.2')
    net.clock.advance(0)
    t.same(got, [3, 0, 1, 2], 'the fourth goes at once and releases the others after it')
    t.equal(faulty.stats.held, 1)
    await faulty.close()
    net.clock.advance(0)
    t.same(got, [3, 0, 1, 2, 4])
    t.same(faulty.stats, { sent: 5, dropped: 0, duplicated: 0, reordered: 4, forwarded: 5, held: 0 })
  })

  t.test('maxHeld 0 never holds', async (t) => {
    const { net, faulty, got } = setup({ reorder: 1, maxHeld: 0 })
    for (let i = 0; i < 3; i++) faulty.send([datagram(i)], 2000, '10.0.0.2')
    net.clock.advance(0)
    t.same(got, [0, 1, 2])
    t.equal(faulty.stats.reordered, 0)
  })

  t.test('a duplicated and held datagram: one copy now, one later', async (t) => {
    const { net, faulty, got } = setup({ reorder: 1, duplicate: 1, maxHeld: 1 })
    faulty.send([datagram(0)], 2000, '10.0.0.2')
    faulty.send([datagram(1)], 2000, '10.0.0.2')
    net.clock.advance(0)
    t.same(got, [0, 1, 1, 0])
    t.same(faulty.stats, { sent: 2, dropped: 0, duplicated: 2, reordered: 1, forwarded: 4, held: 0 })
  })

  t.test('held datagrams are copied, passed-through ones are not needed after send', async (t) => {
    const net = new SimNetwork()
    const receiver = net.bind('10.0.0.2', 2000)
    const faulty = wrapFaulty(net.bind('10.0.0.1', 1000), { clock: net.clock, reorder: 0.5, seed: 3 })
    const got: string[] = []
    receiver.setHandler((data) => got.push(data.toString()))
    const scratch = Buffer.alloc(3)
    for (let i = 0; i < 100; i++) {
      scratch.write(String(i).padStart(3, '0'))
      faulty.send([scratch.subarray(0, 1), scratch.subarray(1)], 2000, '10.0.0.2')
    }
    await faulty.close()
    net.clock.advance(0)
    t.same([...got].sort(), Array.from({ length: 100 }, (_, i) => String(i).padStart(3, '0')))
    t.ok(faulty.stats.reordered > 20)
  })

  t.test('same seed, same faults; another seed, other faults', async (t) => {
    const run = (seed: number): string => {
      const { net, faulty, got } = setup({ seed, drop: 0.2, duplicate: 0.1, reorder: 0.2 })
      for (let i = 0; i < 1000; i++) {
        faulty.send([datagram(i)], 2000, '10.0.0.2')
        if (i % 10 === 0) net.clock.advance(1)
      }
      net.clock.advance(100)
      return got.join(',')
    }
    t.equal(run(9), run(9))
    t.not(run(9), run(10))
  })

  t.test('pass-through: addresses, handler, close, send after close', async (t) => {
    const net = new SimNetwork()
    const inner = net.bind('fd00::1', 1000)
    const peer = net.bind('fd00::2', 2000)
    const faulty = wrapFaulty(inner, { clock: net.clock })
    t.equal(faulty.inner, inner)
    t.same([faulty.family, faulty.address, faulty.port], ['IPv6', 'fd00::1', 1000])
    const got: string[] = []
    faulty.setHandler((data, port, address) => got.push(`${data.toString()} from [${address}]:${port}`))
    peer.send([Buffer.from('in')], 1000, 'fd00::1')
    net.clock.advance(0)
    t.same(got, ['in from [fd00::2]:2000'])
    const first = faulty.close()
    t.equal(faulty.close(), first)
    await first
    t.equal(inner.closed, true)
    faulty.send([Buffer.from('late')], 2000, 'fd00::2')
    t.equal(net.stats.dropped.closed, 1, 'forwarded to the closed inner transport, which drops it')
    t.equal(faulty.stats.sent, 0)
  })

  t.test('options are validated', async (t) => {
    const inner = new SimNetwork().bind('10.0.0.1')
    t.throws(() => wrapFaulty(inner, { drop: 1.1 }), { name: 'RangeError', message: /"drop"/ })
    t.throws(() => wrapFaulty(inner, { duplicate: -1 }), { message: /"duplicate"/ })
    t.throws(() => wrapFaulty(inner, { reorder: Number.NaN }), { message: /"reorder"/ })
    t.throws(() => wrapFaulty(inner, { reorderDelayMs: -1 }), { message: /"reorderDelayMs"/ })
    t.throws(() => wrapFaulty(inner, { maxHeld: 1.5 }), { message: /"maxHeld"/ })
    t.throws(() => wrapFaulty(inner, { seed: 0.5 }), RangeError)
    t.throws(() => wrapFaulty(null as unknown as typeof inner), TypeError)
    t.ok(wrapFaulty(inner) instanceof FaultyTransport, 'all options default')
  })
})

t.test('the wrapper reports the inner socket\'s receive buffer (the endpoint sizes its in-flight cap from it)', async (t) => {
  const inner = await bindUdp({ address: '127.0.0.1' })
  const faulty = wrapFaulty(inner, { drop: 0 })
  t.teardown(() => faulty.close())
  t.ok(inner.recvBufferSize > 0)
  t.equal(faulty.recvBufferSize, inner.recvBufferSize)
})
