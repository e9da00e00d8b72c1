import t from 'tap'
import * as dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { setImmediate as nextTurn } from 'node:timers/promises'
import {
  bindUdp, DEFAULT_SOCKET_BUFFER_SIZE, MAX_UDP4_PAYLOAD, UdpBindError, UdpTransport,
} from '../../lib/transport/udp.js'

const WAIT_MS = 5000

interface Received { data: Buffer, port: number, address: string }

/** Resolve with the first `n` datagrams `transport` receives, or reject after `timeoutMs`. */
function receive(transport: UdpTransport, n: number, timeoutMs = WAIT_MS): Promise<Received[]> {
  return new Promise((resolve, reject) => {
    const got: Received[] = []
    const timer = setTimeout(() => reject(new Error(`received ${got.length} of ${n} datagrams within ${timeoutMs} ms`)), timeoutMs)
    transport.setHandler((data, port, address) => {
      // `data` is only valid during the call.
      got.push({ data: Buffer.from(data), port, address })
      if (got.length === n) {
        clearTimeout(timer)
        resolve(got)
      }
    })
  })
}

/** Linux caps a requested socket buffer at the sysctl maximum and reports twice the granted value. */
function linuxExpected(requested: number, sysctl: 'rmem_max' | 'wmem_max'): number | undefined {
  if (process.platform !== 'linux') return undefined
  const max = Number(readFileSync(`/proc/sys/net/core/${sysctl}`, 'utf8').trim())
  return 2 * Math.min(requested, max)
}

/** Why IPv6 loopback cannot be used here, or `false` if it can. */
async function ipv6Unavailable(): Promise<string | false> {
  try {
    await (await bindUdp({ address: '::1' })).close()
    return false
  } catch (err) {
    return `IPv6 loopback unavailable (${(err as UdpBindError).errno ?? String(err)})`
  }
}

const noIpv6 = await ipv6Unavailable()

t.test('binds IPv4 loopback on an OS-chosen port', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  t.teardown(() => a.close())
  t.ok(a instanceof UdpTransport)
  t.equal(a.family, 'IPv4')
  t.equal(a.address, '127.0.0.1')
  t.ok(Number.isInteger(a.port) && a.port > 0 && a.port <= 65535, `port ${a.port}`)
  t.ok(a.socket instanceof dgram.Socket, 'exposes the node socket')
  t.equal(a.socket.address().port, a.port)
  t.equal(a.closed, false)
  t.same(a.stats, { sendErrors: 0, socketErrors: 0, copiedSends: 0 })
  t.equal(a.lastError, undefined)
})

t.test('binds the IPv4 wildcard by default', async (t) => {
  const a = await bindUdp()
  t.teardown(() => a.close())
  t.equal(a.family, 'IPv4')
  t.equal(a.address, '0.0.0.0')
  t.ok(a.port > 0)
})

t.test('binds IPv6 loopback and exchanges a datagram', { skip: noIpv6 }, async (t) => {
  const a = await bindUdp({ address: '::1' })
  const b = await bindUdp({ address: '::1' })
  t.teardown(async () => { await a.close(); await b.close() })
  t.equal(a.family, 'IPv6')
  t.equal(a.address, '::1')
  t.equal(a.socket.address().family, 'IPv6', 'a udp6 socket')
  const got = receive(b, 1)
  a.send([Buffer.from('six')], b.port, '::1')
  const [d] = await got
  t.same([d!.data.toString(), d!.port, d!.address], ['six', a.port, '::1'])
})

t.test('a dual-stack IPv6 socket sends to IPv4 literals; an IPv4 socket refuses IPv6 ones', async (t) => {
  const v4 = await bindUdp({ address: '127.0.0.1' })
  t.teardown(() => v4.close())
  v4.send([Buffer.from('x')], 9, '::1')
  t.equal(v4.stats.sendErrors, 1, 'counted, not silently lost')
  const dualStack = noIpv6 === false && process.platform === 'linux' &&
    readFileSync('/proc/sys/net/ipv6/bindv6only', 'utf8').trim() === '0'
  if (!dualStack) {
    t.comment('skipping the dual-stack half: no IPv6 or net.ipv6.bindv6only=1')
    return
  }
  const dual = await bindUdp({ address: '::' })
  t.teardown(() => dual.close())
  const got = receive(v4, 1)
  dual.send([Buffer.from('mapped')], v4.port, '127.0.0.1')
  const [d] = await got
  t.same([d!.data.toString(), d!.port], ['mapped', dual.port])
  t.same(dual.stats, { sendErrors: 0, socketErrors: 0, copiedSends: 0 })
})

t.test('1000 datagrams between two sockets all arrive intact', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  const b = await bindUdp({ address: '127.0.0.1' })
  t.teardown(async () => { await a.close(); await b.close() })
  const n = 1000
  const received: Received[] = []
  b.setHandler((data, port, address) => { received.push({ data: Buffer.from(data), port, address }) })
  const deadline = performance.now() + WAIT_MS
  const header = Buffer.alloc(4)
  const payload = Buffer.alloc(60)
  for (let i = 0; i < n; i++) {
    // Reused scratch buffers: send must not need them after it returns.
    header.writeUInt32BE(i, 0)
    payload.fill(i & 0xff)
    a.send([header, payload], b.port, '127.0.0.1')
    // Same process: let the receiver drain every 100 datagrams, so even a
    // small net.core.rmem_max cannot make the kernel drop.
    if (i % 100 === 99) {
      while (received.length <= i && performance.now() < deadline) await nextTurn()
    }
  }
  t.equal(received.length, n, `all received within ${WAIT_MS} ms`)
  const seqs = new Set<number>()
  let intact = 0
  for (const { data, port, address } of received) {
    const seq = data.readUInt32BE(0)
    seqs.add(seq)
    if (data.length === 64 && data.subarray(4).every((x) => x === (seq & 0xff)) && port === a.port && address === '127.0.0.1') intact++
  }
  t.equal(seqs.size, n, 'each datagram exactly once')
  t.equal(intact, n, 'length, payload and sender correct')
  t.same(a.stats, { sendErrors: 0, socketErrors: 0, copiedSends: 0 })
})

t.test('largest IPv4 datagram goes through; one byte more is counted, not thrown', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  const b = await bindUdp({ address: '127.0.0.1' })
  t.teardown(async () => { await a.close(); await b.close() })
  const got = receive(b, 1)
  a.send([Buffer.alloc(MAX_UDP4_PAYLOAD + 1)], b.port, '127.0.0.1')
  t.equal(a.stats.sendErrors, 1)
  a.send([Buffer.alloc(MAX_UDP4_PAYLOAD - 7), Buffer.alloc(7)], b.port, '127.0.0.1')
  const [d] = await got
  t.equal(d!.data.length, MAX_UDP4_PAYLOAD)
  t.equal(a.stats.sendErrors, 1)
})

t.test('sending to a closed port or a bad port never throws', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  const b = await bindUdp({ address: '127.0.0.1' })
  const gone = await bindUdp({ address: '127.0.0.1' })
  const gonePort = gone.port
  await gone.close()
  t.teardown(async () => { await a.close(); await b.close() })
  for (let i = 0; i < 10; i++) a.send([Buffer.from('lost')], gonePort, '127.0.0.1')
  t.same(a.stats, { sendErrors: 0, socketErrors: 0, copiedSends: 0 }, 'unconnected UDP: nothing to report')
  a.send([Buffer.from('x')], 0, '127.0.0.1')
  a.send([Buffer.from('x')], 70000, '127.0.0.1')
  a.send([Buffer.from('x')], Number.NaN, '127.0.0.1')
  t.equal(a.stats.sendErrors, 3, 'ports node rejects are counted')
  // The socket still works after ICMP port-unreachable replies.
  const got = receive(b, 1)
  a.send([Buffer.from('still alive')], b.port, '127.0.0.1')
  t.equal((await got)[0]!.data.toString(), 'still alive')
  t.equal(a.stats.socketErrors, 0)
})

t.test('socket error events are counted, never fatal', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  t.teardown(() => a.close())
  const err = new Error('injected')
  a.socket.emit('error', err)
  a.socket.emit('error', new Error('again'))
  t.equal(a.stats.socketErrors, 2)
  t.equal(a.lastError?.message, 'again')
  t.equal(a.stats.sendErrors, 0)
})

t.test('socket buffers are raised (default 4 MiB, configurable, 0 keeps the OS default)', async (t) => {
  const plain = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => plain.bind(0, '127.0.0.1', resolve))
  const osRecv = plain.getRecvBufferSize()
  const osSend = plain.getSendBufferSize()
  plain.close()

  const a = await bindUdp({ address: '127.0.0.1' })
  const b = await bindUdp({ address: '127.0.0.1', recvBufferSize: 1024 * 1024, sendBufferSize: 512 * 1024 })
  const c = await bindUdp({ address: '127.0.0.1', recvBufferSize: 0, sendBufferSize: 0 })
  t.teardown(async () => { await a.close(); await b.close(); await c.close() })

  t.equal(DEFAULT_SOCKET_BUFFER_SIZE, 4 * 1024 * 1024)
  t.equal(a.recvBufferSize, a.socket.getRecvBufferSize(), 'reports what the OS reports')
  t.equal(a.sendBufferSize, a.socket.getSendBufferSize())
  t.same([c.recvBufferSize, c.sendBufferSize], [osRecv, osSend], '0 keeps the OS default')
  const expected = [
    linuxExpected(DEFAULT_SOCKET_BUFFER_SIZE, 'rmem_max'),
    linuxExpected(DEFAULT_SOCKET_BUFFER_SIZE, 'wmem_max'),
    linuxExpected(1024 * 1024, 'rmem_max'),
    linuxExpected(512 * 1024, 'wmem_max'),
  ]
  if (expected[0] === undefined) {
    t.ok(a.recvBufferSize >= osRecv && b.recvBufferSize >= osRecv, 'not below the OS default')
    return
  }
  t.same([a.recvBufferSize, a.sendBufferSize, b.recvBufferSize, b.sendBufferSize], expected,
    'Linux: twice min(requested, net.core.[rw]mem_max)')
})

t.test('close is idempotent and releases the port', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  const port = a.port
  const first = a.close()
  const second = a.close()
  t.equal(first, second, 'same promise')
  await first
  await a.close()
  t.equal(a.closed, true)
  a.send([Buffer.from('late')], port, '127.0.0.1')
  t.equal(a.stats.sendErrors, 1, 'send after close is counted, not thrown')
  const again = await bindUdp({ address: '127.0.0.1', port })
  t.equal(again.port, port, 'port can be bound again')
  await again.close()
})

t.test('close after the node socket was closed directly', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  a.socket.close()
  await a.close()
  t.equal(a.closed, true)
  const b = await bindUdp({ address: '127.0.0.1' })
  await new Promise<void>((resolve) => b.socket.close(resolve))
  await b.close()
  await b.close()
  t.equal(b.closed, true)
  const c = await bindUdp({ address: '127.0.0.1' })
  const realClose = c.socket.close
  c.socket.close = () => { throw new Error('unexpected') }
  await t.rejects(c.close(), { message: 'unexpected' }, 'other close errors are not hidden')
  c.socket.close = realClose
  await new Promise<void>((resolve) => c.socket.close(resolve))
})

t.test('setHandler replaces the handler; default drops', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  const b = await bindUdp({ address: '127.0.0.1' })
  t.teardown(async () => { await a.close(); await b.close() })
  // Before setHandler the default handler drops datagrams quietly.
  const raw = new Promise<string>((resolve) => b.socket.once('message', (data) => resolve(data.toString())))
  a.send([Buffer.from('to the default handler')], b.port, '127.0.0.1')
  t.equal(await raw, 'to the default handler')
  let first = 0
  b.setHandler(() => { first++ })
  const got = receive(b, 1)
  a.send([Buffer.from('second')], b.port, '127.0.0.1')
  t.equal((await got)[0]!.data.toString(), 'second')
  t.equal(first, 0, 'replaced handler not called')
  t.throws(() => b.setHandler('nope' as unknown as () => void), TypeError)
})

t.test('send hands IP-literal datagrams to the kernel before returning', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  const b = await bindUdp({ address: '127.0.0.1' })
  t.teardown(async () => { await a.close(); await b.close() })
  const scratch = Buffer.from('first')
  const got = receive(b, 2)
  a.send([scratch], b.port, '127.0.0.1')
  scratch.write('XXXXX')
  a.send([scratch.subarray(0, 2), Buffer.from('!')], b.port, '127.0.0.1')
  scratch.write('YYYYY')
  t.same((await got).map((d) => d.data.toString()), ['first', 'XX!'])
  t.equal(a.stats.copiedSends, 0, 'no copy needed')
})

t.test('datagrams to a host name are copied and resolved', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  const b = await bindUdp({ address: '127.0.0.1' })
  t.teardown(async () => { await a.close(); await b.close() })
  const scratch = Buffer.from('by name')
  const got = receive(b, 1)
  a.send([scratch], b.port, 'localhost')
  scratch.write('XXXXXXX')
  t.equal((await got)[0]!.data.toString(), 'by name')
  t.equal(a.stats.copiedSends, 1)
})

t.test('datagrams queued behind others are copied', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  t.teardown(() => a.close())
  // Node would queue this send: pretend its queue is not empty.
  const real = a.socket.getSendQueueCount
  a.socket.getSendQueueCount = () => 1
  const b = await bindUdp({ address: '127.0.0.1' })
  t.teardown(() => b.close())
  const got = receive(b, 1)
  const scratch = Buffer.from('queued')
  a.send([scratch], b.port, '127.0.0.1')
  scratch.write('XXXXXX')
  a.socket.getSendQueueCount = real
  t.equal((await got)[0]!.data.toString(), 'queued')
  t.equal(a.stats.copiedSends, 1)
})

t.test('bind failures and bad options', async (t) => {
  const a = await bindUdp({ address: '127.0.0.1' })
  t.teardown(() => a.close())
  const err = await bindUdp({ address: '127.0.0.1', port: a.port }).catch ((e: unknown) => e)
  t.ok(err instanceof UdpBindError)
  t.match(err, { name: 'UdpBindError', code: 'ERR_WARPMESH_UDP_BIND', errno: 'EADDRINUSE', cause: { code: 'EADDRINUSE' } })
  t.match((err as Error).message, `127.0.0.1:${a.port}`)
  const notLocal = await bindUdp({ address: '192.0.2.1' }).catch ((e: unknown) => e)
  t.match(notLocal, { code: 'ERR_WARPMESH_UDP_BIND', errno: 'EADDRNOTAVAIL' })
  t.equal(new UdpBindError('x', 'not an error').errno, undefined)
  await t.rejects(bindUdp({ address: '' }), TypeError)
  await t.rejects(bindUdp({ port: -1 }), { name: 'RangeError', message: /"port"/ })
  await t.rejects(bindUdp({ port: 65536 }), RangeError)
  await t.rejects(bindUdp({ recvBufferSize: -1 }), { message: /"recvBufferSize"/ })
  await t.rejects(bindUdp({ sendBufferSize: 1.5 }), { message: /"sendBufferSize"/ })
  await t.rejects(bindUdp({ sendBufferSize: 2 ** 31 }), { message: /"sendBufferSize"/ })
})
