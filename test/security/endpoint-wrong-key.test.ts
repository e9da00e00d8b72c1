/**
 * A node without a matching network key gets no session, on either side; the
 * handshake fails at once with HandshakeError (no hang until the timeout), and
 * both sides log, rate-limited, that the handshake failed for lack of a key,
 * naming the peer's address.
 */
import t from 'tap'
import { Endpoint } from '../../lib/endpoint.js'
import { HandshakeError } from '../../lib/errors.js'
import { SimNetwork } from '../../lib/transport/sim.js'
import { captureLog, KEY_NEW, KEY_OLD, KEY_OTHER, settle, WRONG_KEY_LINE } from './fixtures/helpers.js'

t.test('sim: wrong key → HandshakeError, no session either side, one log line each side naming the peer', async (t) => {
  const net = new SimNetwork({ seed: 7, delayMs: 5 })
  const clock = net.clock
  const logA = captureLog('a', () => clock.now())
  const logB = captureLog('b', () => clock.now())
  const a = new Endpoint(net.bind('10.0.0.1', 7400), { keys: [KEY_OLD], clock, logger: logA.logger })
  const b = new Endpoint(net.bind('10.0.0.2', 7400), { keys: [KEY_NEW, KEY_OTHER], clock, logger: logB.logger })
  const failedA: string[][] = []
  const failedB: string[][] = []
  a.on('handshake-failed', (addr: string, why: string) => failedA.push([addr, why]))
  b.on('handshake-failed', (addr: string, why: string) => failedB.push([addr, why]))
  let sessionEvents = 0
  a.on('session', () => sessionEvents++)
  b.on('session', () => sessionEvents++)

  const start = clock.now()
  const out = await settle(clock, a.connect('10.0.0.2', 7400))
  t.ok(out !== null && !out.ok, 'connect rejects')
  const err = (out as { error: unknown }).error
  t.ok(err instanceof HandshakeError, 'HandshakeError')
  t.equal((err as HandshakeError).code, 'ERR_WARPMESH_HANDSHAKE')
  t.equal((err as HandshakeError).address, '10.0.0.2:7400')
  t.match((err as Error).message, /no matching network key/)
  // HELLO, CHALLENGE, CONNECT, REJECT: 4 one-way delays, far below the 5 s handshake timeout.
  t.ok(clock.now() - start <= 4 * 5 + 10, `failed after ${clock.now() - start} simulated ms`)

  t.same(a.sessions(), [])
  t.same(b.sessions(), [])
  t.equal(sessionEvents, 0)
  t.equal(a.stats().sessions, 0)
  t.equal(b.stats().sessions, 0)
  t.equal(a.stats().handshakesCompleted, 0)
  t.equal(b.stats().handshakesCompleted, 0)
  t.equal(a.stats().handshakesFailed, 1)
  t.equal(b.stats().handshakesFailed, 1)
  t.equal(b.stats().dropped['bad-key'], 1)
  t.same(failedA, [['10.0.0.2:7400', 'handshake with 10.0.0.2:7400 failed: no matching network key']])
  t.same(failedB, [['10.0.0.1:7400', 'no matching network key']])

  const la = logA.lines(WRONG_KEY_LINE)
  const lb = logB.lines(WRONG_KEY_LINE)
  t.equal(la.length, 1, 'initiator logs once')
  t.equal(lb.length, 1, 'responder logs once')
  t.equal(la[0]!.level, 'warn')
  t.equal(lb[0]!.level, 'warn')
  t.equal(la[0]!.peer, '10.0.0.2:7400', 'initiator names the responder')
  t.equal(lb[0]!.peer, '10.0.0.1:7400', 'responder names the initiator')

  // Nothing lingers: no retries, no timers firing later, no late session.
  clock.advance(30_000)
  t.same(a.sessions(), [])
  t.same(b.sessions(), [])
  t.equal(a.stats().handshakesFailed, 1)
  t.equal(b.stats().datagramsReceived, 2, 'HELLO and CONNECT only: the initiator stopped')
  await a.close()
  await b.close()
})

t.test('sim: many wrong-key attempts → few log lines (rate-limited, 5 s per peer), the rest counted as suppressed', async (t) => {
  const net = new SimNetwork({ seed: 8, delayMs: 1 })
  const clock = net.clock
  const logA = captureLog('a', () => clock.now())
  const logB = captureLog('b', () => clock.now())
  const a = new Endpoint(net.bind('10.0.0.1', 7400), { keys: [KEY_OLD], clock, logger: logA.logger })
  const b = new Endpoint(net.bind('10.0.0.2', 7400), { keys: [KEY_NEW], clock, logger: logB.logger })
  const ATTEMPTS = 200
  let rejected = 0
  for (let i = 0; i < ATTEMPTS; i++) {
    const out = await settle(clock, a.connect('10.0.0.2', 7400), 1000)
    if (out !== null && !out.ok && out.error instanceof HandshakeError) rejected++
  }
  // Each attempt takes 4 ms of simulated time plus settle's 10 ms steps: 200 attempts span ~2 s < 5 s.
  t.ok(clock.now() < 5000, `attempts took ${clock.now()} simulated ms`)
  t.equal(rejected, ATTEMPTS, 'every attempt fails with HandshakeError')
  t.equal(b.stats().dropped['bad-key'], ATTEMPTS)
  t.equal(b.stats().handshakesFailed, ATTEMPTS)
  t.equal(a.stats().handshakesFailed, ATTEMPTS)
  t.equal(logA.lines(WRONG_KEY_LINE).length, 1)
  t.equal(logB.lines(WRONG_KEY_LINE).length, 1)

  // After the interval the next failure logs again and reports what it suppressed.
  clock.advance(5000)
  const out = await settle(clock, a.connect('10.0.0.2', 7400), 1000)
  t.ok(out !== null && !out.ok && out.error instanceof HandshakeError)
  const la = logA.lines(WRONG_KEY_LINE)
  const lb = logB.lines(WRONG_KEY_LINE)
  t.equal(la.length, 2)
  t.equal(lb.length, 2)
  t.equal(la[1]!.suppressed, ATTEMPTS - 1)
  t.equal(lb[1]!.suppressed, ATTEMPTS - 1)
  t.same(a.sessions(), [])
  t.same(b.sessions(), [])
  await a.close()
  await b.close()
})

t.test('sim: the responder side starting the handshake fails the same way (roles swapped)', async (t) => {
  const net = new SimNetwork({ seed: 9 })
  const clock = net.clock
  const logA = captureLog('a', () => clock.now())
  const logB = captureLog('b', () => clock.now())
  const a = new Endpoint(net.bind('10.0.0.1', 7400), { keys: [KEY_OLD], clock, logger: logA.logger })
  const b = new Endpoint(net.bind('10.0.0.2', 7400), { keys: [KEY_NEW], clock, logger: logB.logger })
  const out = await settle(clock, b.connect('10.0.0.1', 7400))
  t.ok(out !== null && !out.ok && out.error instanceof HandshakeError)
  t.equal(logA.lines(WRONG_KEY_LINE)[0]?.peer, '10.0.0.2:7400')
  t.equal(logB.lines(WRONG_KEY_LINE)[0]?.peer, '10.0.0.1:7400')
  t.equal(a.sessions().length + b.sessions().length, 0)
  await a.close()
  await b.close()
})

t.test('real UDP on 127.0.0.1: wrong key → HandshakeError, no session, rate-limited log lines on both sides', async (t) => {
  const logA = captureLog('a')
  const logB = captureLog('b')
  const a = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_OLD], logger: logA.logger })
  const b = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_NEW], logger: logB.logger })
  t.teardown(async () => { await a.close(); await b.close() })
  const ATTEMPTS = 50
  const started = Date.now()
  let rejected = 0
  for (let i = 0; i < ATTEMPTS; i++) {
    const t0 = Date.now()
    try {
      await a.connect('127.0.0.1', b.port)
    } catch (err) {
      if (err instanceof HandshakeError && /no matching network key/.test(err.message)) rejected++
    }
    // Loopback: a rejection takes milliseconds, not the 5 s handshake timeout.
    if (Date.now() - t0 > 2000) t.fail(`attempt ${i} took ${Date.now() - t0} ms`)
  }
  const elapsed = Date.now() - started
  t.equal(rejected, ATTEMPTS, 'every attempt rejected with HandshakeError')
  t.same(a.sessions(), [])
  t.same(b.sessions(), [])
  t.equal(b.stats().dropped['bad-key'], ATTEMPTS)
  t.equal(a.stats().handshakesCompleted + b.stats().handshakesCompleted, 0)
  const la = logA.lines(WRONG_KEY_LINE)
  const lb = logB.lines(WRONG_KEY_LINE)
  // 5 s rate limit per peer: one line per started 5 s window.
  const most = Math.ceil((elapsed + 1) / 5000)
  t.ok(la.length >= 1 && la.length <= most, `initiator: ${la.length} lines for ${ATTEMPTS} attempts in ${elapsed} ms`)
  t.ok(lb.length >= 1 && lb.length <= most, `responder: ${lb.length} lines for ${ATTEMPTS} attempts in ${elapsed} ms`)
  t.equal(la[0]!.peer, `127.0.0.1:${b.port}`)
  t.equal(lb[0]!.peer, `127.0.0.1:${a.port}`)
  t.equal(la[0]!.level, 'warn')
  t.equal(lb[0]!.level, 'warn')
})

t.test('real UDP: a node with the right key still connects to the same responder afterwards', async (t) => {
  const b = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_NEW] })
  const bad = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_OTHER] })
  const good = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_NEW] })
  t.teardown(async () => { await b.close(); await bad.close(); await good.close() })
  await t.rejects(bad.connect('127.0.0.1', b.port), HandshakeError)
  const s = await good.connect('127.0.0.1', b.port)
  const got = new Promise<string>((resolve) => b.once('message', (d: Uint8Array) => resolve(Buffer.from(d).toString())))
  s.send(Buffer.from('hello'))
  t.equal(await got, 'hello')
  t.equal(b.sessions().length, 1)
  t.equal(b.sessions()[0]!.remotePort, good.port)
})
