/**
 * Two endpoints in separate processes over real UDP on 127.0.0.1, with the
 * fault-injection wrapper dropping 10 % of the datagrams each side sends
 * (data one way, acks the other): every reliable-ordered message arrives
 * exactly once, in order, intact — unprotected (100,000 messages) and
 * protected with a network key (20,000 messages), in 1200-byte datagrams (as
 * between hosts: thousands of packets, so the loss is exercised hundreds of
 * times), and once more in the default loopback datagrams (32 KiB).
 */
import t from 'tap'
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { PeerProcess } from '../fixtures/peer-process.js'
import { expectedDigest } from '../fixtures/payload.js'

// Start-up includes compiling lib/ with tap's TypeScript loader: seconds on a loaded CI machine.
const START_MS = 45_000

/** The wrapper dropped about 10 %: within 4 standard deviations of the binomial mean, and at least one. */
function lossAsAsked (f: { sent: number, dropped: number }): boolean {
  const mean = f.sent * 0.1
  const bound = 4 * Math.sqrt(f.sent * 0.1 * 0.9)
  return f.dropped > 0 && Math.abs(f.dropped - mean) <= bound
}

/** 1200-byte datagrams on loopback too, as between hosts. */
const SMALL = 1200

async function lossyStream (t: Test, count: number, key: string | undefined, timeoutMs: number,
  loopbackDatagram: number | undefined): Promise<void> {
  const common = {
    drop: 0.1, ...(key !== undefined ? { key } : {}), ...(loopbackDatagram !== undefined ? { loopbackDatagram } : {}),
  }
  const receiver = new PeerProcess('receiver', { ...common, seed: 7, expect: count })
  t.teardown(() => receiver.kill())
  const sender = new PeerProcess('sender', { ...common, seed: 11 })
  t.teardown(() => sender.kill())
  const [rReady, sReady] = await Promise.all([
    receiver.waitFor((e) => e.ev === 'ready', START_MS, 'ready'),
    sender.waitFor((e) => e.ev === 'ready', START_MS, 'ready'),
  ])

  const started = Date.now()
  sender.command('connect', { id: 1, host: '127.0.0.1', port: rReady.port })
  const conn = await sender.waitFor((e) => e.ev === 'connected' || e.ev === 'connect-failed', 30_000, 'connect')
  t.equal(conn.ev, 'connected', `session up (${String(conn.error ?? '')})`)
  sender.command('stream', { count })
  const done = await receiver.waitFor((e) => e.ev === 'complete' || e.ev === 'violation', timeoutMs, `${count} messages`)
  const elapsed = Date.now() - started
  t.equal(done.ev, 'complete', `no violation: ${String(done.detail ?? '')}`)
  t.equal(done.received, count, 'every message delivered')
  t.equal(done.digest, expectedDigest(sReady.epoch as number, conn.localId as number, count),
    'the receiver\'s digest of what it got equals the digest of what was sent, in order')
  t.equal(receiver.all('violation').length, 0, 'no message with a wrong tag, order or content')
  t.equal(receiver.all('session').length, 1, 'one session')

  const [ss, rs] = await Promise.all([sender.stats(), receiver.stats()])
  const sFaulty = ss.faulty as { sent: number, dropped: number }
  const rFaulty = rs.faulty as { sent: number, dropped: number }
  t.ok(lossAsAsked(sFaulty), `sender's datagrams dropped: ${sFaulty.dropped} of ${sFaulty.sent}`)
  // In large datagrams the receiver may send only a few dozen acks: too few to check the rate.
  if (rFaulty.sent >= 100) t.ok(lossAsAsked(rFaulty), `receiver's datagrams (acks) dropped: ${rFaulty.dropped} of ${rFaulty.sent}`)
  const session = (ss.sessions as Record<string, number>[])[0]!
  if (loopbackDatagram !== undefined) {
    t.equal(session.maxDatagram, loopbackDatagram, `the session used ${loopbackDatagram}-byte datagrams`)
  } else {
    t.ok(session.maxDatagram > SMALL, `the session used loopback datagrams: ${session.maxDatagram} bytes`)
  }
  t.ok(session.framesRetransmitted > 0, `frames retransmitted: ${session.framesRetransmitted}`)
  if (key !== undefined) {
    const rSession = (rs.sessions as Record<string, number>[])[0]!
    t.equal(rSession.authFailures, 0, 'no packet failed authentication')
  }
  t.comment(`${count} messages in ${elapsed} ms (${Math.round(count / (elapsed / 1000))}/s) with 10 % loss each way; ` +
    `${session.packetsSent} packets sent, ${session.framesRetransmitted} frames retransmitted, ${session.packetsLost} packets lost`)

  sender.command('exit')
  receiver.command('exit')
}

t.test('100,000 reliable-ordered messages through 10 % loss each way, unprotected', async (t) => {
  await lossyStream(t, 100_000, undefined, 60_000, SMALL)
})

t.test('20,000 reliable-ordered messages through 10 % loss each way, protected by a network key', async (t) => {
  await lossyStream(t, 20_000, randomBytes(32).toString('hex'), 30_000, SMALL)
})

t.test('100,000 reliable-ordered messages through 10 % loss each way in loopback-sized datagrams, protected', async (t) => {
  await lossyStream(t, 100_000, randomBytes(32).toString('hex'), 60_000, undefined)
})
