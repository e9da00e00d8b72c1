/**
 * Peer restart over real UDP on 127.0.0.1, separate processes. Process B is
 * killed (SIGKILL by PID) while both sides stream reliable-ordered messages,
 * and started again on the same port. A sees the old session go down (with
 * its unacknowledged messages reported undelivered), then a new session
 * whose remoteEpoch differs. Every message carries the tag of the session it
 * was sent on (sender's epoch and connection id) and the receiving fixture
 * checks it against the session it was delivered on, so a message of the
 * old session delivered into the new one is caught, in either direction.
 */
import t from 'tap'
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { PeerProcess, type PeerEvent } from '../fixtures/peer-process.js'

// Start-up includes compiling lib/ with tap's TypeScript loader: seconds on a loaded CI machine.
const START_MS = 45_000
const WAIT_MS = 30_000

function startPeer (t: Test, name: string, config: Record<string, unknown>): PeerProcess {
  const p = new PeerProcess(name, config)
  t.teardown(() => p.kill())
  return p
}

/** Wait until `receiver` delivered `n` messages on session `localId`. */
function progress (receiver: PeerProcess, localId: unknown, n: number): Promise<PeerEvent> {
  return receiver.waitFor((e) => e.ev === 'progress' && e.localId === localId && (e.received as number) >= n,
    WAIT_MS, `${n} messages on session ${String(localId)}`)
}

function noViolations (t: Test, ...peers: PeerProcess[]): void {
  for (const p of peers) {
    t.same(p.all('violation'), [], `${p.name}: every message carried its own session's tag, in order, intact`)
    t.same(p.all('fatal'), [], `${p.name}: no uncaught error`)
  }
}

t.test('the restarted peer connects again: old session down, new session with a new epoch', async (t) => {
  for (const keyed of [false, true]) {
    await t.test(keyed ? 'protected' : 'unprotected', async (t) => {
      const key = keyed ? { key: randomBytes(32).toString('hex') } : {}
      const a = startPeer(t, 'A', { ...key, progressEvery: 100 })
      const b1 = startPeer(t, 'B1', { ...key, progressEvery: 100 })
      const [aReady, b1Ready] = await Promise.all([
        a.waitFor((e) => e.ev === 'ready', START_MS, 'ready'),
        b1.waitFor((e) => e.ev === 'ready', START_MS, 'ready'),
      ])
      const portB = b1Ready.port as number

      b1.command('connect', { id: 1, host: '127.0.0.1', port: aReady.port })
      const oldAtB = await b1.waitFor((e) => e.ev === 'connected', WAIT_MS, 'connected')
      const oldAtA = await a.waitFor((e) => e.ev === 'session', WAIT_MS, 'session')
      t.equal(oldAtA.remoteEpoch, b1Ready.epoch, 'A knows B1 by its epoch')
      b1.command('stream', { count: -1, paced: true })
      a.command('stream', { count: -1, paced: true })
      await progress(a, oldAtA.localId, 500)
      await progress(b1, oldAtB.localId, 500)

      const mark = a.events.length
      const killedAt = Date.now()
      await b1.kill()
      const b2 = startPeer(t, 'B2', { ...key, port: portB, progressEvery: 100 })
      const b2Ready = await b2.waitFor((e) => e.ev === 'ready', START_MS, 'ready')
      t.equal(b2Ready.port, portB, 'B2 bound the same port')
      t.not(b2Ready.epoch, b1Ready.epoch, 'B2 has a new epoch')
      b2.command('connect', { id: 2, host: '127.0.0.1', port: aReady.port })
      const newAtB = await b2.waitFor((e) => e.ev === 'connected' || e.ev === 'connect-failed', WAIT_MS, 'connected')
      t.equal(newAtB.ev, 'connected', `B2 connected (${String(newAtB.error ?? '')})`)

      const down = await a.waitFor((e) => e.ev === 'session-down' && e.localId === oldAtA.localId, WAIT_MS, 'session-down', mark)
      const newAtA = await a.waitFor((e) => e.ev === 'session' && e.remoteEpoch === b2Ready.epoch, WAIT_MS, 'new session', mark)
      t.ok(a.events.indexOf(down) < a.events.indexOf(newAtA), `A saw session-down (${String(down.reason)}) before the new session`)
      t.not(newAtA.remoteEpoch, oldAtA.remoteEpoch, 'the new session has a different remoteEpoch')
      t.not(newAtA.localId, oldAtA.localId, 'and a new connection id')
      t.ok((down.undelivered as number) > 0, `A's messages B1 never acknowledged reported undelivered: ${String(down.undelivered)}`)

      // Both directions work on the new session; the fixtures check every tag.
      b2.command('stream', { count: -1, paced: true })
      a.command('stream', { count: -1, paced: true })
      await progress(a, newAtA.localId, 500)
      await progress(b2, newAtB.localId, 500)
      const aStats = await a.stats()
      t.comment(`restart: B2 ready +${(b2Ready.receivedAt as number) - killedAt} ms, connected +${(newAtB.receivedAt as number) - killedAt} ms, ` +
        `old session down +${(down.receivedAt as number) - killedAt} ms; A dropped ${JSON.stringify((aStats.endpoint as PeerEvent).dropped)}`)
      t.same((aStats.sessions as PeerEvent[]).map((s) => s.remoteEpoch), [b2Ready.epoch], 'A holds only the new session')
      noViolations(t, a, b2)
      t.equal(a.all('session').length, 2, 'A saw exactly two sessions')
      t.equal(a.all('session-down').length, 1, 'and exactly one went down')
      a.command('exit')
      b2.command('exit')
    })
  }
})

t.test('the survivor detects the dead peer by timeout and reconnects to its restart', async (t) => {
  const key = { key: randomBytes(32).toString('hex') }
  const timeouts = { idleTimeoutMs: 1500, keepaliveMs: 200 }
  const a = startPeer(t, 'A', { ...key, ...timeouts, progressEvery: 100 })
  const b1 = startPeer(t, 'B1', { ...key, ...timeouts, progressEvery: 100 })
  const [aReady, b1Ready] = await Promise.all([
    a.waitFor((e) => e.ev === 'ready', START_MS, 'ready'),
    b1.waitFor((e) => e.ev === 'ready', START_MS, 'ready'),
  ])
  const portB = b1Ready.port as number
  void aReady

  a.command('connect', { id: 1, host: '127.0.0.1', port: portB })
  const oldAtA = await a.waitFor((e) => e.ev === 'connected', WAIT_MS, 'connected')
  const oldAtB = await b1.waitFor((e) => e.ev === 'session', WAIT_MS, 'session')
  a.command('stream', { count: -1, paced: true })
  b1.command('stream', { count: -1, paced: true })
  await progress(b1, oldAtB.localId, 500)
  await progress(a, oldAtA.localId, 500)

  const killedAt = Date.now()
  await b1.kill()
  const down = await a.waitFor((e) => e.ev === 'session-down', WAIT_MS, 'session-down')
  const detectMs = Date.now() - killedAt
  t.ok(detectMs >= 1000 && detectMs < 5000, `A declared B1 dead after ${detectMs} ms (idle timeout 1500 ms): ${String(down.reason)}`)
  t.ok((down.undelivered as number) > 0, `unacknowledged messages reported undelivered: ${String(down.undelivered)}`)

  const b2 = startPeer(t, 'B2', { ...key, ...timeouts, port: portB, progressEvery: 100 })
  const b2Ready = await b2.waitFor((e) => e.ev === 'ready', START_MS, 'ready')
  t.equal(b2Ready.port, portB, 'B2 bound the same port')
  const mark = a.events.length
  a.command('connect', { id: 2, host: '127.0.0.1', port: portB })
  const newAtA = await a.waitFor((e) => e.ev === 'connected' || e.ev === 'connect-failed', WAIT_MS, 'reconnect', mark)
  t.equal(newAtA.ev, 'connected', `A reconnected (${String(newAtA.error ?? '')})`)
  t.equal(newAtA.remoteEpoch, b2Ready.epoch, 'to B2, by its new epoch')
  t.not(newAtA.remoteEpoch, oldAtA.remoteEpoch, 'which differs from the old one')
  const newAtB = await b2.waitFor((e) => e.ev === 'session', WAIT_MS, 'session')

  a.command('stream', { count: -1, paced: true })
  b2.command('stream', { count: -1, paced: true })
  await progress(b2, newAtB.localId, 500)
  await progress(a, newAtA.localId, 500)
  noViolations(t, a, b2)
  t.equal(b2.all('session').length, 1, 'B2 has one session')
  a.command('exit')
  b2.command('exit')
})
