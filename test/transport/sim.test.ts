import t from 'tap'
import { systemClock } from '../../lib/transport/transport.js'
import {
  createRng, DEFAULT_LINK_CONDITIONS, FakeClock, SimBindError, SimNetwork, SimTransport,
} from '../../lib/transport/sim.js'
import type { SimNetworkOptions } from '../../lib/transport/sim.js'

/** Datagram carrying a 32-bit sequence number, padded to `size` bytes. */
function datagram(seq: number, size = 8): Buffer {
  const b = Buffer.alloc(size)
  b.writeUInt32BE(seq, 0)
  return b
}

function popcount(a: Buffer, b: Buffer): number {
  let bits = 0
  for (let i = 0; i < a.length; i++) {
    let x = a[i]! ^ b[i]!
    while (x !== 0) {
      bits += x & 1
      x >>>= 1
    }
  }
  return bits
}

/** |observed − n·p| within `k` standard deviations of a binomial. */
function withinBinomial(observed: number, n: number, p: number, k = 5): boolean {
  return Math.abs(observed - n * p) <= k * Math.sqrt(n * p * (1 - p))
}

function pair(options: SimNetworkOptions = {}): { net: SimNetwork, clock: FakeClock, a: SimTransport, b: SimTransport } {
  const clock = new FakeClock()
  const net = new SimNetwork({ ...options, clock })
  return { net, clock, a: net.bind('10.0.0.1', 1000), b: net.bind('10.0.0.2', 2000) }
}

t.test('createRng', async (t) => {
  t.test('pinned sequence (other tests rely on it)', async (t) => {
    const rng = createRng(1)
    t.same([rng(), rng(), rng()], [0.5686059962026775, 0.753928849240765, 0.8893939366098493])
    const zero = createRng(0)
    t.same([zero(), zero()], [0.8868539538234472, 0.26395898405462503])
  })
  t.test('same seed same sequence, different seeds differ', async (t) => {
    const x = createRng(42)
    const y = createRng(42)
    const z = createRng(43)
    const hi = createRng(42 + 2 ** 32)
    const xs = Array.from({ length: 1000 }, () => x())
    t.same(Array.from({ length: 1000 }, () => y()), xs)
    t.not(z(), xs[0])
    t.not(hi(), xs[0])
  })
  t.test('uniform in [0, 1)', async (t) => {
    const rng = createRng(-7)
    const n = 100_000
    const buckets = new Array<number>(10).fill(0)
    let min = 1
    let max = 0
    for (let i = 0; i < n; i++) {
      const v = rng()
      min = Math.min(min, v)
      max = Math.max(max, v)
      buckets[Math.floor(v * 10)]!++
    }
    t.ok(min >= 0 && max < 1, `range [${min}, ${max}]`)
    for (const count of buckets) t.ok(withinBinomial(count, n, 0.1), `bucket ${count} of ${n}`)
  })
  t.test('rejects a seed that is not a safe integer', async (t) => {
    t.throws(() => createRng(1.5), RangeError)
    t.throws(() => createRng(Number.NaN), RangeError)
    t.throws(() => createRng(2 ** 53), RangeError)
  })
})

t.test('FakeClock', async (t) => {
  t.test('timers fire in deadline order, ties FIFO, now() = deadline', async (t) => {
    const clock = new FakeClock(100)
    const log: string[] = []
    clock.setTimer(() => log.push(`c@${clock.now()}`), 30)
    clock.setTimer(() => log.push(`a@${clock.now()}`), 10)
    clock.setTimer(() => log.push(`b1@${clock.now()}`), 20)
    clock.setTimer(() => log.push(`b2@${clock.now()}`), 20)
    clock.setTimer(() => log.push(`b3@${clock.now()}`), 20)
    t.equal(clock.pending(), 5)
    t.equal(clock.nextTimerAt(), 110)
    t.equal(clock.advance(25), 4)
    t.same(log, ['a@110', 'b1@120', 'b2@120', 'b3@120'])
    t.equal(clock.now(), 125)
    t.equal(clock.runFor(5), 1)
    t.same(log.at(-1), 'c@130')
    t.equal(clock.now(), 130)
    t.equal(clock.pending(), 0)
    t.equal(clock.nextTimerAt(), undefined)
  })

  t.test('many timers in random order come out sorted and stable', async (t) => {
    const clock = new FakeClock()
    const rng = createRng(3)
    const fired: Array<[number, number]> = []
    const expected: Array<[number, number]> = []
    for (let i = 0; i < 2000; i++) {
      const delay = Math.floor(rng() * 50)
      expected.push([delay, i])
      clock.setTimer(() => fired.push([clock.now(), i]), delay)
    }
    expected.sort((x, y) => x[0] - y[0] || x[1] - y[1])
    clock.advance(100)
    t.same(fired, expected)
  })

  t.test('clearTimer removes exactly that timer; double clear and foreign handles are harmless', async (t) => {
    const clock = new FakeClock()
    const log: number[] = []
    const handles = [0, 1, 2, 3, 4, 5].map((i) => clock.setTimer(() => log.push(i), 10 + (i % 3)))
    clock.clearTimer(handles[1])
    clock.clearTimer(handles[4])
    clock.clearTimer(handles[1])
    clock.clearTimer(undefined)
    clock.clearTimer({})
    clock.clearTimer(new FakeClock().setTimer(() => {}, 1))
    t.equal(clock.pending(), 4)
    clock.advance(20)
    t.same(log, [0, 3, 2, 5])
    clock.clearTimer(handles[0])
    t.equal(clock.pending(), 0)
  })

  t.test('a cleared last timer and re-arming (one endpoint timer)', async (t) => {
    const clock = new FakeClock()
    let fired = 0
    let handle = clock.setTimer(() => fired++, 10)
    for (let i = 0; i < 1000; i++) {
      clock.clearTimer(handle)
      handle = clock.setTimer(() => fired++, 10)
    }
    t.equal(clock.pending(), 1)
    clock.advance(10)
    t.equal(fired, 1)
  })

  t.test('deferred callbacks run FIFO, before timers and before time moves', async (t) => {
    const clock = new FakeClock()
    const log: string[] = []
    clock.setTimer(() => log.push(`timer0@${clock.now()}`), 0)
    clock.defer(() => {
      log.push(`d1@${clock.now()}`)
      clock.defer(() => log.push(`d3@${clock.now()}`))
    })
    clock.defer(() => log.push(`d2@${clock.now()}`))
    clock.setTimer(() => {
      log.push(`t1@${clock.now()}`)
      clock.defer(() => log.push(`d4@${clock.now()}`))
    }, 5)
    clock.setTimer(() => log.push(`t2@${clock.now()}`), 5)
    t.equal(clock.pending(), 5)
    clock.advance(10)
    t.same(log, ['d1@0', 'd2@0', 'd3@0', 'timer0@0', 't1@5', 'd4@5', 't2@5'])
    t.equal(clock.now(), 10)
  })

  t.test('runDeferred runs deferred work only', async (t) => {
    const clock = new FakeClock()
    const log: string[] = []
    clock.setTimer(() => log.push('timer'), 0)
    clock.defer(() => { log.push('a'); clock.defer(() => log.push('b')) })
    t.equal(clock.runDeferred(), 2)
    t.same(log, ['a', 'b'])
    t.equal(clock.now(), 0)
    t.equal(clock.pending(), 1)
  })

  t.test('runUntil stops at the moment the predicate holds', async (t) => {
    const clock = new FakeClock()
    let count = 0
    const tick = (): void => { count++; clock.setTimer(tick, 7) }
    clock.setTimer(tick, 7)
    t.equal(clock.runUntil(() => count === 3, 1000), true)
    t.equal(clock.now(), 21)
    t.equal(clock.runUntil(() => count === 1000, 100), false)
    t.equal(clock.now(), 121)
    t.equal(count, 17)
    t.equal(clock.runUntil(() => true, 0), true, 'checked before running anything')
  })

  t.test('runUntil with nothing scheduled moves time to the limit', async (t) => {
    const clock = new FakeClock()
    t.equal(clock.runUntil(() => clock.now() >= 50, 50), true)
    t.equal(clock.now(), 50)
    t.equal(clock.runUntil(() => false, 10), false)
    t.equal(clock.now(), 60)
  })

  t.test('negative, NaN and infinite delays', async (t) => {
    const clock = new FakeClock()
    const log: string[] = []
    clock.setTimer(() => log.push('never'), Infinity)
    clock.setTimer(() => log.push('nan'), Number.NaN)
    clock.setTimer(() => log.push('neg'), -5)
    clock.advance(0)
    t.same(log, ['nan', 'neg'])
    t.equal(clock.now(), 0)
    t.equal(clock.pending(), 1)
  })

  t.test('a throwing callback propagates and leaves the clock usable', async (t) => {
    const clock = new FakeClock()
    const log: string[] = []
    clock.setTimer(() => { throw new Error('boom') }, 1)
    clock.setTimer(() => log.push('after'), 2)
    t.throws(() => clock.advance(5), { message: 'boom' })
    t.equal(clock.now(), 1)
    clock.advance(4)
    t.same(log, ['after'])
    t.equal(clock.now(), 5)
  })

  t.test('caller mistakes throw', async (t) => {
    const clock = new FakeClock()
    t.throws(() => new FakeClock(Number.NaN), RangeError)
    t.throws(() => clock.advance(-1), RangeError)
    t.throws(() => clock.runFor(Infinity), RangeError)
    t.throws(() => clock.runUntil(() => false, Infinity), RangeError)
    t.throws(() => clock.runUntil(undefined as unknown as () => boolean, 1), TypeError)
    t.throws(() => clock.setTimer(undefined as unknown as () => void, 1), TypeError)
    t.throws(() => clock.defer(undefined as unknown as () => void), TypeError)
    let inner: unknown
    clock.setTimer(() => {
      try { clock.advance(1) } catch (err) { inner = err }
    }, 1)
    clock.advance(1)
    t.match(inner, { message: /inside a clock callback/ })
  })
})

t.test('SimNetwork basics', async (t) => {
  t.test('delivers after the delay, with the sender address, on a later turn', async (t) => {
    const { net, clock, a, b } = pair({ delayMs: 5 })
    const got: Array<[string, number, string, number]> = []
    b.setHandler((data, port, address) => got.push([data.toString(), port, address, clock.now()]))
    a.send([Buffer.from('hel'), Buffer.from('lo')], 2000, '10.0.0.2')
    t.same(got, [], 'never synchronous')
    t.equal(net.inFlight, 1)
    clock.advance(4.999)
    t.same(got, [])
    clock.advance(0.001)
    t.same(got, [['hello', 1000, '10.0.0.1', 5]])
    t.same(net.stats, {
      sent: 1,
      delivered: 1,
      duplicated: 0,
      corrupted: 0,
      reordered: 0,
      bytesSent: 5,
      bytesDelivered: 5,
      dropped: { loss: 0, mtu: 0, partition: 0, unreachable: 0, queue: 0, closed: 0 },
    })
  })

  t.test('zero delay still waits for the deferred work of the turn', async (t) => {
    const { clock, a, b } = pair()
    const log: string[] = []
    b.setHandler(() => log.push('recv'))
    a.send([Buffer.from('x')], 2000, '10.0.0.2')
    clock.defer(() => log.push('defer'))
    clock.advance(0)
    t.same(log, ['defer', 'recv'])
  })

  t.test('bytes are copied at send time', async (t) => {
    const { clock, a, b } = pair()
    const got: string[] = []
    b.setHandler((data) => got.push(data.toString()))
    const scratch = Buffer.from('aaaa')
    a.send([scratch], 2000, '10.0.0.2')
    scratch.write('bbbb')
    a.send([scratch.subarray(0, 2), new Uint8Array([0x63])], 2000, '10.0.0.2')
    scratch.write('zzzz')
    a.send([], 2000, '10.0.0.2')
    clock.advance(1)
    t.same(got, ['aaaa', 'bbc', ''])
  })

  t.test('datagrams due together arrive in one batch; replies go on a later turn', async (t) => {
    const { clock, a, b } = pair({ delayMs: 1 })
    const log: string[] = []
    b.setHandler((data, port, address) => {
      log.push(`b:${data.toString()}`)
      clock.defer(() => log.push(`flush:${data.toString()}`))
      b.send([Buffer.from(`re-${data.toString()}`)], port, address)
    })
    a.setHandler((data) => log.push(`a:${data.toString()}`))
    a.send([Buffer.from('1')], 2000, '10.0.0.2')
    a.send([Buffer.from('2')], 2000, '10.0.0.2')
    t.equal(clock.pending(), 1, 'one network timer for both datagrams')
    clock.advance(1)
    t.same(log, ['b:1', 'b:2', 'flush:1', 'flush:2'])
    clock.advance(1)
    t.same(log.slice(4), ['a:re-1', 'a:re-2'])
  })

  t.test('zero-delay replies sent during a batch are not delivered in that batch', async (t) => {
    const { clock, a, b } = pair()
    const log: string[] = []
    b.setHandler((data, port, address) => {
      log.push(`b:${data.toString()}`)
      b.send([data], port, address)
    })
    a.setHandler((data) => log.push(`a:${data.toString()}`))
    a.send([Buffer.from('1')], 2000, '10.0.0.2')
    a.send([Buffer.from('2')], 2000, '10.0.0.2')
    clock.defer(() => log.push('defer'))
    clock.advance(0)
    t.same(log, ['defer', 'b:1', 'b:2', 'a:1', 'a:2'])
  })

  t.test('a throwing handler propagates; the rest of the batch still arrives', async (t) => {
    const { clock, a, b } = pair()
    const got: string[] = []
    b.setHandler((data) => {
      got.push(data.toString())
      if (data.toString() === '1') throw new Error('handler bug')
    })
    a.send([Buffer.from('1')], 2000, '10.0.0.2')
    a.send([Buffer.from('2')], 2000, '10.0.0.2')
    t.throws(() => clock.advance(1), { message: 'handler bug' })
    clock.advance(1)
    t.same(got, ['1', '2'])
  })

  t.test('bind: allocation, conflicts, families, validation', async (t) => {
    const net = new SimNetwork()
    const x = net.bind('10.0.0.1')
    const y = net.bind('10.0.0.1', 0)
    const z = net.bind('10.0.0.2')
    t.same([x.port, y.port, z.port], [49152, 49153, 49152])
    t.equal(x.family, 'IPv4')
    t.equal(x.endpoint, '10.0.0.1:49152')
    const v6 = net.bind('fd00::1', 7)
    t.equal(v6.family, 'IPv6')
    t.equal(v6.endpoint, '[fd00::1]:7')
    t.equal(v6.address, 'fd00::1')
    t.throws(() => net.bind('10.0.0.1', 49152), SimBindError)
    t.throws(() => net.bind('10.0.0.1', 49152), { code: 'ERR_WARPMESH_SIM_BIND', name: 'SimBindError' })
    t.throws(() => net.bind('', 1), TypeError)
    t.throws(() => net.bind('10.0.0.1', 65536), RangeError)
    t.throws(() => net.bind('10.0.0.1', 1.5), RangeError)
    await x.close()
    t.equal(net.bind('10.0.0.1', 49152).port, 49152, 'port free again after close')
    t.equal(net.bind('10.0.0.1').port, 49154)
    t.type(net.clock, FakeClock)
    t.ok(x instanceof SimTransport)
    t.same(net.conditions, DEFAULT_LINK_CONDITIONS)
  })

  t.test('ephemeral ports wrap around and run out', async (t) => {
    const net = new SimNetwork()
    net.bind('h', 65535)
    for (let p = 49152; p < 65535; p++) net.bind('h', p)
    t.throws(() => net.bind('h'), { code: 'ERR_WARPMESH_SIM_BIND', message: /no free port on h/ })
    const other = new SimNetwork()
    other.bind('h', 65534)
    other.bind('h', 65535)
    const used = new Set<number>()
    for (let p = 49152; p < 65534; p++) used.add(other.bind('h').port)
    t.equal(used.size, 65534 - 49152)
    await other.bind('h', 1).close()
    t.throws(() => other.bind('h'), SimBindError)
  })

  t.test('unreachable, closed, close idempotent, in-flight to a closed socket', async (t) => {
    const { net, clock, a, b } = pair({ delayMs: 10 })
    const got: string[] = []
    b.setHandler((data) => got.push(data.toString()))
    a.send([Buffer.from('nobody')], 2001, '10.0.0.2')
    a.send([Buffer.from('nobody')], 2000, '10.9.9.9')
    a.send([Buffer.from('late')], 2000, '10.0.0.2')
    await b.close()
    await b.close()
    t.equal(b.closed, true)
    b.send([Buffer.from('from closed')], 1000, '10.0.0.1')
    clock.advance(10)
    t.same(got, [])
    t.same(net.stats.dropped, { loss: 0, mtu: 0, partition: 0, unreachable: 3, queue: 0, closed: 1 })
    t.equal(net.stats.sent, 4)
    t.equal(net.stats.delivered, 0)
  })

  t.test('a socket bound at the destination while a datagram is in flight receives it', async (t) => {
    const { net, clock, a, b } = pair({ delayMs: 10 })
    a.send([Buffer.from('x')], 2000, '10.0.0.2')
    await b.close()
    const rebound = net.bind('10.0.0.2', 2000)
    const got: string[] = []
    rebound.setHandler((data) => got.push(data.toString()))
    clock.advance(10)
    t.same(got, ['x'])
    t.equal(net.stats.dropped.unreachable, 0)
  })

  t.test('setHandler replaces the handler; default drops', async (t) => {
    const { net, clock, a, b } = pair()
    a.send([Buffer.from('1')], 2000, '10.0.0.2')
    clock.advance(1)
    t.equal(net.stats.delivered, 1, 'delivered to the default handler')
    const first: string[] = []
    const second: string[] = []
    b.setHandler((d) => first.push(d.toString()))
    b.setHandler((d) => second.push(d.toString()))
    a.send([Buffer.from('2')], 2000, '10.0.0.2')
    clock.advance(1)
    t.same([first, second], [[], ['2']])
    t.throws(() => b.setHandler(null as unknown as () => void), TypeError)
  })

  t.test('systemClock (the production Clock) runs timers and deferred work', async (t) => {
    const log: string[] = []
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error('systemClock did not fire within 2 s')), 2000)
      const cancelled = systemClock.setTimer(() => log.push('cancelled'), 0)
      systemClock.clearTimer(cancelled)
      systemClock.setTimer(() => { log.push('timer'); clearTimeout(guard); resolve() }, 1)
      systemClock.defer(() => log.push('defer'))
    })
    t.same(log, ['defer', 'timer'])
    t.type(systemClock.now(), 'number')
  })

  t.test('systemClock arms node timers in whole milliseconds, rounded up (a fractional delay fired early)', async (t) => {
    const original = globalThis.setTimeout
    const asked: unknown[] = []
    globalThis.setTimeout = ((fn: () => void, ms?: number) => { asked.push(ms); return original(fn, ms) }) as typeof setTimeout
    try {
      for (const ms of [4.73, 0.2, 5, 0, -3, Number.NaN]) systemClock.clearTimer(systemClock.setTimer(() => {}, ms))
    } finally {
      globalThis.setTimeout = original
    }
    t.same(asked, [5, 1, 5, 0, 0, 0])
  })

  t.test('systemClock.soon runs when the current callback returns, in order, before deferred work', async (t) => {
    const log: string[] = []
    await new Promise<void>((resolve) => {
      setImmediate(() => {
        systemClock.defer(() => { log.push('defer'); resolve() })
        systemClock.soon!(() => log.push('soon 1'))
        systemClock.soon!(() => log.push('soon 2'))
        log.push('callback')
      })
    })
    t.same(log, ['callback', 'soon 1', 'soon 2', 'defer'])
  })

  t.test('a systemClock.soon function that throws is an uncaught exception, and the next ones still run', async (t) => {
    const listeners = process.listeners('uncaughtException')
    process.removeAllListeners('uncaughtException')
    t.teardown(() => { for (const l of listeners) process.on('uncaughtException', l) })
    const caught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve))
    const log: string[] = []
    systemClock.soon!(() => { throw new Error('boom') })
    systemClock.soon!(() => log.push('next'))
    const err = await caught
    t.match(err, { message: 'boom' })
    t.same(log, ['next'])
  })

  t.test('runs on the real clock too', async (t) => {
    const net = new SimNetwork({ clock: systemClock, delayMs: 2 })
    const a = net.bind('10.0.0.1', 1)
    const b = net.bind('10.0.0.2', 2)
    const start = performance.now()
    const got = await new Promise<string>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error('not delivered within 2 s')), 2000)
      b.setHandler((data) => { clearTimeout(timeout); resolve(data.toString()) })
      a.send([Buffer.from('real')], 2, '10.0.0.2')
    })
    t.equal(got, 'real')
    // Delivery waits until clock.now() reaches the arrival time, even if a timer fires early.
    t.ok(performance.now() - start >= 2, 'not delivered before the delay')
  })

  t.test('option validation names the option', async (t) => {
    t.throws(() => new SimNetwork({ loss: 1.5 }), { name: 'RangeError', message: /"loss"/ })
    t.throws(() => new SimNetwork({ duplicate: -0.1 }), { message: /"duplicate"/ })
    t.throws(() => new SimNetwork({ reorder: Number.NaN }), { message: /"reorder"/ })
    t.throws(() => new SimNetwork({ corrupt: 2 }), { message: /"corrupt"/ })
    t.throws(() => new SimNetwork({ delayMs: -1 }), { message: /"delayMs"/ })
    t.throws(() => new SimNetwork({ jitterMs: Infinity }), { message: /"jitterMs"/ })
    t.throws(() => new SimNetwork({ reorderDelayMs: Number.NaN }), { message: /"reorderDelayMs"/ })
    t.throws(() => new SimNetwork({ mtu: 1.5 }), { message: /"mtu"/ })
    t.throws(() => new SimNetwork({ bandwidth: 0 }), { message: /"bandwidth"/ })
    t.throws(() => new SimNetwork({ queueBytes: -1 }), { message: /"queueBytes"/ })
    t.throws(() => new SimNetwork({ seed: 0.5 }), RangeError)
    const net = new SimNetwork()
    t.throws(() => net.configure(null as unknown as object), TypeError)
    t.throws(() => net.setLink('a', 'b', { loss: 3 }), { message: /SimNetwork.setLink: option "loss"/ })
    t.throws(() => net.setLink('', 'b', {}), TypeError)
    t.throws(() => net.setLink({ address: '' }, 'b', {}), TypeError)
    t.throws(() => net.partition(null as unknown as string, 'b'), TypeError)
    t.throws(() => net.heal('a'), TypeError)
  })
})

t.test('SimNetwork impairments', async (t) => {
  t.test('determinism: same seed, same trace; another seed, another trace', async (t) => {
    const run = (seed: number): string[] => {
      const { clock, a, b } = pair({
        seed, loss: 0.1, duplicate: 0.05, reorder: 0.1, reorderDelayMs: 3, delayMs: 2, jitterMs: 1.5, corrupt: 0.05,
      })
      const trace: string[] = []
      b.setHandler((data, port) => {
        trace.push(`${clock.now().toFixed(6)} ${port} ${data.toString('hex')}`)
        if (data[0]! % 4 === 0) b.send([data], port, '10.0.0.1')
      })
      a.setHandler((data) => trace.push(`${clock.now().toFixed(6)} echo ${data.toString('hex')}`))
      for (let i = 0; i < 2000; i++) {
        clock.setTimer(() => a.send([datagram(i)], 2000, '10.0.0.2'), i * 0.25)
      }
      clock.advance(1000)
      return trace
    }
    const first = run(7)
    t.ok(first.length > 3500, `trace has ${first.length} entries`)
    // Compared as one string: a deep diff of thousands of entries is slow.
    t.ok(run(7).join('\n') === first.join('\n'), 'same seed, identical trace')
    t.ok(run(8).join('\n') !== first.join('\n'), 'other seed, other trace')
  })

  t.test('loss rate over 100k datagrams', async (t) => {
    const { net, clock, a, b } = pair({ seed: 11, loss: 0.1 })
    let received = 0
    b.setHandler(() => { received++ })
    const payload = datagram(0)
    const n = 100_000
    for (let i = 0; i < n; i++) {
      a.send([payload], 2000, '10.0.0.2')
      if (i % 1000 === 999) clock.advance(1)
    }
    clock.advance(1)
    t.equal(received, n - net.stats.dropped.loss)
    t.equal(net.stats.delivered, received)
    t.ok(withinBinomial(net.stats.dropped.loss, n, 0.1), `lost ${net.stats.dropped.loss} of ${n}`)
    t.equal(net.stats.bytesSent, n * 8)
    t.equal(net.stats.bytesDelivered, received * 8)
  })

  t.test('per-direction loss via setLink', async (t) => {
    const { net, clock, a, b } = pair({ seed: 5 })
    net.setLink('10.0.0.1', '10.0.0.2', { loss: 0.5 })
    let atB = 0
    let atA = 0
    b.setHandler(() => { atB++ })
    a.setHandler(() => { atA++ })
    const n = 10_000
    for (let i = 0; i < n; i++) {
      a.send([datagram(i)], 2000, '10.0.0.2')
      b.send([datagram(i)], 1000, '10.0.0.1')
    }
    clock.advance(1)
    t.equal(atA, n, 'reverse direction untouched')
    t.equal(atB, n - net.stats.dropped.loss)
    t.ok(withinBinomial(atB, n, 0.5), `a→b delivered ${atB} of ${n}`)
  })

  t.test('link precedence: socket→socket over socket→host over host→socket over host→host', async (t) => {
    const net = new SimNetwork()
    const a1 = net.bind('10.0.0.1', 1)
    const a2 = net.bind('10.0.0.1', 2)
    const b1 = net.bind('10.0.0.2', 1)
    const b2 = net.bind('10.0.0.2', 2)
    net.setLink('10.0.0.1', '10.0.0.2', { delayMs: 1 })
    net.setLink({ address: '10.0.0.1' }, { address: '10.0.0.2', port: 2 }, { delayMs: 2 })
    net.setLink(a2, '10.0.0.2', { delayMs: 3 })
    net.setLink(a2, b2, { delayMs: 4, loss: 0.25 })
    t.equal(net.conditionsFor(a1, b1).delayMs, 1)
    t.equal(net.conditionsFor(a1, b2).delayMs, 2)
    t.equal(net.conditionsFor(a2, b1).delayMs, 3)
    t.same(net.conditionsFor(a2, b2), { ...DEFAULT_LINK_CONDITIONS, delayMs: 4, loss: 0.25 })
    t.equal(net.conditionsFor(b1, a1).delayMs, 0, 'other direction uses the defaults')
    net.configure({ jitterMs: 2, delayMs: 9 })
    t.same(net.conditionsFor(a2, b2), { ...DEFAULT_LINK_CONDITIONS, delayMs: 4, loss: 0.25, jitterMs: 2 }, 'overrides inherit new defaults')
    t.equal(net.conditionsFor(b1, a1).delayMs, 9)
    net.clearLink(a2, b2)
    t.equal(net.conditionsFor(a2, b2).delayMs, 3)
    net.clearLink(a2, '10.0.0.2')
    net.clearLink('10.0.0.9', '10.0.0.2')
    net.clearLink('10.0.0.1', '10.0.0.9')
    t.equal(net.conditionsFor(a2, b2).delayMs, 2)
    net.clearLink('10.0.0.1', '10.0.0.2')
    net.clearLink('10.0.0.1', { address: '10.0.0.2', port: 2 })
    t.equal(net.conditionsFor(a2, b2).delayMs, 9)
    net.configure({ jitterMs: 0 })
    const clock = net.clock
    const times: number[] = []
    b2.setHandler(() => times.push(clock.now()))
    net.setLink(a1, b2, { delayMs: 4 })
    a1.send([datagram(1)], 2, '10.0.0.2')
    a2.send([datagram(2)], 2, '10.0.0.2')
    clock.advance(20)
    t.same(times, [4, 9])
  })

  t.test('duplication', async (t) => {
    const { net, clock, a, b } = pair({ seed: 21, duplicate: 0.2, jitterMs: 1 })
    const seen = new Map<number, number>()
    b.setHandler((data) => {
      const seq = data.readUInt32BE(0)
      seen.set(seq, (seen.get(seq) ?? 0) + 1)
    })
    const n = 10_000
    for (let i = 0; i < n; i++) a.send([datagram(i)], 2000, '10.0.0.2')
    clock.advance(2)
    const twice = [...seen.values()].filter((c) => c === 2).length
    t.equal(seen.size, n, 'every datagram arrives')
    t.equal(net.stats.delivered, n + net.stats.duplicated)
    t.equal(twice, net.stats.duplicated, 'duplicates are exact copies of distinct datagrams')
    t.ok([...seen.values()].every((c) => c === 1 || c === 2))
    t.ok(withinBinomial(net.stats.duplicated, n, 0.2), `duplicated ${net.stats.duplicated}`)
  })

  t.test('reordering happens only with reorder > 0', async (t) => {
    const run = (reorder: number): { inversions: number, late: number, net: SimNetwork } => {
      const { net, clock, a, b } = pair({ seed: 9, reorder, reorderDelayMs: 5, delayMs: 2 })
      const order: number[] = []
      b.setHandler((data) => order.push(data.readUInt32BE(0)))
      for (let i = 0; i < 5000; i++) clock.setTimer(() => a.send([datagram(i)], 2000, '10.0.0.2'), i * 0.1)
      clock.advance(1000)
      let inversions = 0
      let late = 0
      let max = -1
      for (let i = 0; i < order.length; i++) {
        if (i > 0 && order[i]! < order[i - 1]!) inversions++
        if (order[i]! < max) late++
        else max = order[i]!
      }
      t.equal(order.length, 5000, 'all delivered')
      return { inversions, late, net }
    }
    const none = run(0)
    t.equal(none.inversions, 0)
    t.equal(none.net.stats.reordered, 0)
    const some = run(0.1)
    t.ok(some.inversions > 0, `${some.inversions} inversions`)
    t.equal(some.late, some.net.stats.reordered, 'each delayed datagram (5 ms = 50 later sends) arrives late')
    t.ok(withinBinomial(some.net.stats.reordered, 5000, 0.1), `reordered ${some.net.stats.reordered}`)
  })

  t.test('jitter spreads arrivals over [delay, delay + jitter)', async (t) => {
    const { clock, a, b } = pair({ seed: 4, delayMs: 10, jitterMs: 4 })
    const times: number[] = []
    b.setHandler(() => times.push(clock.now()))
    for (let i = 0; i < 1000; i++) a.send([datagram(i)], 2000, '10.0.0.2')
    clock.advance(20)
    t.equal(times.length, 1000)
    t.ok(times.every((x) => x >= 10 && x < 14))
    t.ok(Math.min(...times) < 10.1 && Math.max(...times) > 13.9)
    t.same(times, [...times].sort((x, y) => x - y), 'handlers called in arrival order')
  })

  t.test('corruption flips exactly one bit', async (t) => {
    const { net, clock, a, b } = pair({ seed: 13, corrupt: 1 })
    const sent: Buffer[] = []
    let flips = 0
    let exact = 0
    let i = 0
    b.setHandler((data) => {
      const bits = popcount(data, sent[i++]!)
      flips += bits
      if (bits === 1) exact++
    })
    const rng = createRng(99)
    for (let k = 0; k < 1000; k++) {
      const d = Buffer.alloc(1 + Math.floor(rng() * 100))
      for (let j = 0; j < d.length; j++) d[j] = Math.floor(rng() * 256)
      sent.push(Buffer.from(d))
      a.send([d], 2000, '10.0.0.2')
    }
    a.send([], 2000, '10.0.0.2')
    sent.push(Buffer.alloc(0))
    clock.advance(1)
    t.equal(i, 1001)
    t.equal(exact, 1000)
    t.equal(flips, 1000)
    t.equal(net.stats.corrupted, 1000, 'the empty datagram is not corrupted')
  })

  t.test('partial corruption rate', async (t) => {
    const { net, clock, a, b } = pair({ seed: 17, corrupt: 0.1 })
    let bad = 0
    const d = datagram(0x01020304, 32)
    b.setHandler((data) => { if (!data.equals(d)) bad++ })
    for (let i = 0; i < 10_000; i++) a.send([d], 2000, '10.0.0.2')
    clock.advance(1)
    t.equal(bad, net.stats.corrupted)
    t.ok(withinBinomial(bad, 10_000, 0.1), `${bad} corrupted`)
  })

  t.test('mtu', async (t) => {
    const { net, clock, a, b } = pair({ mtu: 1200 })
    const sizes: number[] = []
    b.setHandler((data) => sizes.push(data.length))
    a.send([Buffer.alloc(1000), Buffer.alloc(200)], 2000, '10.0.0.2')
    a.send([Buffer.alloc(1000), Buffer.alloc(201)], 2000, '10.0.0.2')
    a.send([Buffer.alloc(65508)], 2000, '10.0.0.2')
    net.configure({ mtu: 65507 })
    a.send([Buffer.alloc(65507)], 2000, '10.0.0.2')
    a.send([Buffer.alloc(65508)], 2000, '10.0.0.2')
    clock.advance(1)
    t.same(sizes, [1200, 65507])
    t.equal(net.stats.dropped.mtu, 3)
  })

  t.test('bandwidth serializes datagrams; a full queue tail-drops', async (t) => {
    const { net, clock, a, b } = pair({ bandwidth: 1000, delayMs: 5, queueBytes: 250 })
    const c = net.bind('10.0.0.3', 3000)
    const arrivals: string[] = []
    b.setHandler((data) => arrivals.push(`b${data.readUInt32BE(0)}@${clock.now()}`))
    c.setHandler((data) => arrivals.push(`c${data.readUInt32BE(0)}@${clock.now()}`))
    for (let i = 0; i < 4; i++) a.send([datagram(i, 100)], 2000, '10.0.0.2')
    a.send([datagram(9, 100)], 3000, '10.0.0.3')
    t.equal(net.stats.dropped.queue, 2, 'third and fourth exceed 250 queued bytes')
    clock.advance(50)
    a.send([datagram(4, 100)], 2000, '10.0.0.2')
    clock.advance(1000)
    // b4 queues behind b1 (pipe busy until 200 ms: 150 + 100 bytes fit in 250).
    t.same(arrivals, ['b0@105', 'c9@105', 'b1@205', 'b4@305'], 'each pair is its own pipe')
    await c.close()
    net.configure({ bandwidth: Infinity })
    a.send([datagram(5, 100)], 2000, '10.0.0.2')
    clock.advance(5)
    t.same(arrivals.at(-1), `b5@${clock.now()}`)
  })

  t.test('partition and heal', async (t) => {
    const net = new SimNetwork()
    const clock = net.clock
    const a = net.bind('10.0.0.1', 1)
    const b = net.bind('10.0.0.2', 1)
    const b2 = net.bind('10.0.0.2', 2)
    const c = net.bind('10.0.0.3', 1)
    const got: string[] = []
    for (const x of [a, b, b2, c]) x.setHandler((_d, port, address) => got.push(`${address}:${port}->${x.endpoint}`))
    const all = (): void => {
      for (const x of [a, b, b2, c]) for (const y of [a, b, b2, c]) if (x !== y) x.send([Buffer.from('p')], y.port, y.address)
      clock.advance(1)
    }
    net.partition('10.0.0.1', ['10.0.0.2'])
    all()
    t.equal(net.stats.dropped.partition, 4)
    t.notOk(got.some((g) => g.includes('10.0.0.1') && g.includes('10.0.0.2')))
    t.equal(got.length, 8)
    net.heal('10.0.0.1', '10.0.0.2')
    net.heal('10.0.0.7', '10.0.0.8')
    got.length = 0
    all()
    t.equal(got.length, 12)
    net.partition({ address: '10.0.0.2', port: 2 }, [c, a])
    got.length = 0
    all()
    t.equal(net.stats.dropped.partition, 8)
    t.same(got.filter((g) => g.includes(':2')).sort(), ['10.0.0.2:1->10.0.0.2:2', '10.0.0.2:2->10.0.0.2:1'])
    net.partition(c, '10.0.0.2')
    got.length = 0
    all()
    t.same(got.sort(), [
      '10.0.0.1:1->10.0.0.2:1',
      '10.0.0.1:1->10.0.0.3:1',
      '10.0.0.2:1->10.0.0.1:1',
      '10.0.0.2:1->10.0.0.2:2',
      '10.0.0.2:2->10.0.0.2:1',
      '10.0.0.3:1->10.0.0.1:1',
    ])
    net.heal()
    got.length = 0
    all()
    t.equal(got.length, 12)
  })

  t.test('configure changes conditions for new datagrams only', async (t) => {
    const { net, clock, a, b } = pair({ delayMs: 10 })
    const times: number[] = []
    b.setHandler(() => times.push(clock.now()))
    a.send([datagram(1)], 2000, '10.0.0.2')
    net.configure({ delayMs: 1 })
    a.send([datagram(2)], 2000, '10.0.0.2')
    clock.advance(20)
    t.same(times, [1, 10])
    t.equal(net.conditions.delayMs, 1)
    net.configure({ loss: 1 })
    a.send([datagram(3)], 2000, '10.0.0.2')
    clock.advance(20)
    t.equal(times.length, 2)
  })
})
