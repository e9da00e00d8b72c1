import { request } from 'node:http'
import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { createLogger } from '../lib/log.js'
import {
  type MetricsSnapshot,
  type PeerMetrics,
  registerMetrics,
  startMetricsServer,
  type TrafficCounters,
} from '../lib/metrics.js'

const HOST = '127.0.0.1'
/** Bound on every HTTP exchange of this file. */
const HTTP_TIMEOUT_MS = 5000

function counters(base: number): TrafficCounters {
  return {
    packetsSent: base + 1,
    packetsReceived: base + 2,
    bytesSent: base + 3,
    bytesReceived: base + 4,
    retransmits: base + 5,
    losses: base + 6,
    messagesSent: base + 7,
    messagesReceived: base + 8,
  }
}

function peer(peerId: string, base: number, extra: Partial<PeerMetrics> = {}): PeerMetrics {
  return { peerId, ...counters(base), ...extra }
}

const SNAPSHOT: MetricsSnapshot = {
  peersUp: 2,
  totals: counters(1000),
  malformed: { 'too-short': 4, 'bad-auth': 9 },
  peers: [peer('lobby-1', 10, { role: 'downstream', srttMs: 12.5 }), peer('proxy-1', 20, { role: 'proxy' })],
}

/** Parse Prometheus text: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    out.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return out
}

function warpmeshSamples(text: string): Map<string, number> {
  return new Map([...samples(text)].filter(([key]) => key.startsWith('warpmesh_')))
}

async function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) })
}

t.test('serves /metrics over HTTP, filled from collect() at scrape time', async (t) => {
  let calls = 0
  const server = await startMetricsServer({
    host: HOST,
    port: 0,
    collect: () => {
      calls++
      return SNAPSHOT
    },
  })
  t.teardown(() => server.close())
  t.equal(server.host, HOST)
  t.ok(server.port > 0, 'a real port when 0 was asked for')
  t.equal(server.url, `http://${HOST}:${server.port}/metrics`)
  t.equal(calls, 0, 'nothing collected before a scrape')

  const res = await get(server.url)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const text = await res.text()
  t.equal(calls, 1, 'one collect per scrape')
  const s = warpmeshSamples(text)
  const want: Record<string, number> = {
    warpmesh_peers_up: 2,
    warpmesh_peers_unreported: 0,
    warpmesh_packets_sent_total: 1001,
    warpmesh_packets_received_total: 1002,
    warpmesh_bytes_sent_total: 1003,
    warpmesh_bytes_received_total: 1004,
    warpmesh_retransmits_total: 1005,
    warpmesh_losses_total: 1006,
    warpmesh_messages_sent_total: 1007,
    warpmesh_messages_received_total: 1008,
    'warpmesh_malformed_datagrams_total{reason="too-short"}': 4,
    'warpmesh_malformed_datagrams_total{reason="bad-auth"}': 9,
    'warpmesh_peer_srtt_seconds{peer="lobby-1",role="downstream"}': 0.0125,
  }
  const names = ['packets_sent', 'packets_received', 'bytes_sent', 'bytes_received', 'retransmits', 'losses', 'messages_sent', 'messages_received']
  names.forEach((name, i) => {
    want[`warpmesh_peer_${name}_total{peer="lobby-1",role="downstream"}`] = 10 + i + 1
    want[`warpmesh_peer_${name}_total{peer="proxy-1",role="proxy"}`] = 20 + i + 1
  })
  t.same(Object.fromEntries(s), want, 'exactly these warpmesh series')
  t.notOk(s.has('warpmesh_peer_srtt_seconds{peer="proxy-1",role="proxy"}'), 'no srtt series without a sample')
  t.match(text, '# TYPE warpmesh_packets_sent_total counter')
  t.match(text, '# TYPE warpmesh_peers_up gauge')
  t.match(text, '# TYPE warpmesh_peer_srtt_seconds gauge')
  t.match(text, /\nprocess_cpu_user_seconds_total /, 'process metrics on a dedicated registry by default')
})

t.test('each scrape is fresh: changed values, departed peers and reasons disappear', async (t) => {
  let snapshot: MetricsSnapshot = SNAPSHOT
  const server = await startMetricsServer({ host: HOST, port: 0, collect: () => snapshot, processMetrics: false })
  t.teardown(() => server.close())
  const first = await (await get(server.url)).text()
  t.ok(warpmeshSamples(first).has('warpmesh_peer_packets_sent_total{peer="proxy-1",role="proxy"}'))
  t.notMatch(first, /process_cpu/, 'processMetrics: false')

  snapshot = {
    peersUp: 1,
    totals: counters(2000),
    peers: [peer('lobby-1', 30, { role: 'downstream', rttMs: 0.25, srttMs: 8 })],
  }
  const s = warpmeshSamples(await (await get(server.url)).text())
  t.equal(s.get('warpmesh_peers_up'), 1)
  t.equal(s.get('warpmesh_packets_sent_total'), 2001)
  t.equal(s.get('warpmesh_peer_packets_sent_total{peer="lobby-1",role="downstream"}'), 31)
  t.equal(s.get('warpmesh_peer_srtt_seconds{peer="lobby-1",role="downstream"}'), 0.008)
  t.equal(s.get('warpmesh_peer_rtt_seconds{peer="lobby-1",role="downstream"}'), 0.00025, 'the path round trip, its own series')
  t.notOk([...s.keys()].some((key) => key.includes('proxy-1')), 'departed peer has no series')
  t.notOk([...s.keys()].some((key) => key.includes('malformed')), 'no reasons, no series')
})

t.test('HEAD, query strings, other paths and methods', async (t) => {
  const server = await startMetricsServer({ host: HOST, port: 0, collect: () => SNAPSHOT, processMetrics: false })
  t.teardown(() => server.close())
  const head = await get(server.url, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(await head.text(), '')
  t.ok(Number(head.headers.get('content-length')) > 0, 'HEAD announces the length of the body GET would send')
  const withQuery = await get(`${server.url}?name[]=warpmesh_peers_up`)
  t.equal(withQuery.status, 200)
  t.match(await withQuery.text(), 'warpmesh_peers_up 2')
  const root = await get(`http://${HOST}:${server.port}/`)
  t.equal(root.status, 404)
  t.equal(await root.text(), 'not found; metrics are at /metrics\n')
  const other = await get(`http://${HOST}:${server.port}/metricsx`)
  t.equal(other.status, 404)
  await other.text()
  const post = await get(server.url, { method: 'POST', body: 'x' })
  t.equal(post.status, 405)
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  await post.text()
})

t.test('a failing collect() gives 500 and a rate-limited log line, then recovers', async (t) => {
  const lines: string[] = []
  const log = createLogger({ name: 'metrics', stream: { write: (line: string) => lines.push(line) } })
  let fail: unknown = new Error('peer table locked')
  const server = await startMetricsServer({
    host: HOST,
    port: 0,
    processMetrics: false,
    log,
    collect: () => {
      if (fail !== undefined) throw fail
      return SNAPSHOT
    },
  })
  t.teardown(() => server.close())
  const bad = await get(server.url)
  t.equal(bad.status, 500)
  t.equal(await bad.text(), 'metrics collection failed: peer table locked\n')
  const again = await get(server.url)
  t.equal(again.status, 500)
  await again.text()
  t.equal(lines.length, 1, 'second failure within the interval is suppressed')
  const record = JSON.parse(lines[0] as string) as { level: string; msg: string; err: { message: string } }
  t.equal(record.level, 'error')
  t.equal(record.msg, 'metrics collection failed')
  t.equal(record.err.message, 'peer table locked')
  fail = 'not an Error'
  const odd = await get(server.url)
  t.equal(await odd.text(), 'metrics collection failed: not an Error\n')
  fail = undefined
  const good = await get(server.url)
  t.equal(good.status, 200)
  t.match(await good.text(), 'warpmesh_peers_up 2')
})

t.test('async collect()', async (t) => {
  const server = await startMetricsServer({
    host: HOST,
    port: 0,
    processMetrics: false,
    collect: async () => {
      await new Promise((resolve) => setImmediate(resolve))
      return { ...SNAPSHOT, peersUp: 7 }
    },
  })
  t.teardown(() => server.close())
  t.equal(warpmeshSamples(await (await get(server.url)).text()).get('warpmesh_peers_up'), 7)
})

t.test('a caller registry: shared with its own metrics, left clean on close', async (t) => {
  const register = new Registry()
  const own = new Counter({ name: 'game_matches_total', help: 'Matches played.', registers: [register] })
  own.inc(3)
  const server = await startMetricsServer({ host: HOST, port: 0, register, collect: () => SNAPSHOT })
  t.equal(server.register, register)
  const text = await (await get(server.url)).text()
  t.match(text, 'game_matches_total 3')
  t.match(text, 'warpmesh_peers_up 2')
  t.notMatch(text, /process_cpu/, 'no process metrics on a caller registry unless asked')
  await server.close()
  t.equal(register.getSingleMetric('warpmesh_peers_up'), undefined, 'warpmesh metrics removed on close')
  t.ok(register.getSingleMetric('game_matches_total'), 'the caller metric stays')
  // The registry can serve warpmesh metrics again.
  const again = await startMetricsServer({ host: HOST, port: 0, register, collect: () => SNAPSHOT })
  t.match(await (await get(again.url)).text(), 'warpmesh_peers_up 2')
  await again.close()
})

t.test('close: idempotent, drops keep-alive connections, stops listening', async (t) => {
  const server = await startMetricsServer({ host: HOST, port: 0, collect: () => SNAPSHOT, processMetrics: false })
  // An idle keep-alive connection must not hold close() up.
  await new Promise<void>((resolve, reject) => {
    const req = request(
      { host: HOST, port: server.port, path: '/metrics', headers: { connection: 'keep-alive' }, timeout: HTTP_TIMEOUT_MS },
      (res) => {
        res.resume()
        res.on('end', resolve)
      },
    )
    req.on('error', reject)
    req.end()
  })
  const started = Date.now()
  const first = server.close()
  t.equal(server.close(), first, 'same promise')
  await first
  t.ok(Date.now() - started < HTTP_TIMEOUT_MS, 'closed without waiting for the idle connection to time out')
  await t.rejects(get(server.url), 'nothing listens any more')
})

t.test('binds only to the given host', async (t) => {
  const server = await startMetricsServer({ host: HOST, port: 0, collect: () => SNAPSHOT, processMetrics: false })
  t.teardown(() => server.close())
  t.equal(server.host, HOST)
  // 127.0.0.2 is loopback too, but not the bound address.
  await t.rejects(get(`http://127.0.0.2:${server.port}/metrics`), 'other loopback address refused')
})

t.test('IPv6 host in the url', async (t) => {
  let server: Awaited<ReturnType<typeof startMetricsServer>>
  try {
    server = await startMetricsServer({ host: '::1', port: 0, collect: () => SNAPSHOT, processMetrics: false })
  } catch (err) {
    t.comment(`skipped: no IPv6 loopback here: ${(err as Error).message}`)
    return
  }
  t.teardown(() => server.close())
  t.equal(server.url, `http://[::1]:${server.port}/metrics`)
  t.equal((await get(server.url)).status, 200)
})

t.test('listen failure rejects and leaves the registry clean', async (t) => {
  const first = await startMetricsServer({ host: HOST, port: 0, collect: () => SNAPSHOT, processMetrics: false })
  t.teardown(() => first.close())
  const register = new Registry()
  await t.rejects(startMetricsServer({ host: HOST, port: first.port, register, collect: () => SNAPSHOT }), {
    code: 'EADDRINUSE',
  })
  t.same(register.getMetricsAsArray(), [], 'nothing left registered')
})

t.test('invalid options reject at once, naming the option', async (t) => {
  const collect = (): MetricsSnapshot => SNAPSHOT
  await t.rejects(startMetricsServer({ host: '', port: 0, collect }), {
    name: 'TypeError',
    message: 'options.host must be a non-empty string',
  })
  for (const port of [-1, 65536, 1.5, Number.NaN]) {
    await t.rejects(startMetricsServer({ host: HOST, port, collect }), {
      name: 'RangeError',
      message: `options.port must be an integer from 0 to 65535; got ${String(port)}`,
    })
  }
  await t.rejects(startMetricsServer({ host: HOST, port: 0, collect: undefined as never }), {
    name: 'TypeError',
    message: 'options.collect must be a function',
  })
  await t.rejects(startMetricsServer({ host: HOST, port: 0, collect, maxPeerSeries: -1 }), {
    name: 'RangeError',
    message: 'options.maxPeerSeries must be a non-negative integer; got -1',
  })
})

t.test('registerMetrics: per-peer series bound', async (t) => {
  const register = new Registry()
  const metrics = registerMetrics(register, { maxPeerSeries: 2 })
  metrics.update({
    peersUp: 3,
    totals: counters(0),
    peers: [peer('a', 0), peer('b', 0), peer('c', 0)],
  })
  const s = warpmeshSamples(await register.metrics())
  t.equal(s.get('warpmesh_peers_unreported'), 1)
  t.ok(s.has('warpmesh_peer_packets_sent_total{peer="a",role=""}'), 'role label empty when unknown')
  t.ok(s.has('warpmesh_peer_packets_sent_total{peer="b",role=""}'))
  t.notOk(s.has('warpmesh_peer_packets_sent_total{peer="c",role=""}'), 'third peer left out')
  t.equal(s.get('warpmesh_peers_up'), 3, 'totals unaffected')
  const none = registerMetrics(new Registry(), { maxPeerSeries: 0 })
  t.doesNotThrow(() => none.update({ peersUp: 1, totals: counters(0), peers: [peer('a', 0)] }))
  t.throws(() => registerMetrics(new Registry(), { maxPeerSeries: 1.5 }), RangeError)
})

t.test('registerMetrics: bad numbers are exported as 0, bad rtt and srtt as no series', async (t) => {
  const register = new Registry()
  const metrics = registerMetrics(register)
  metrics.update({
    peersUp: Number.NaN,
    totals: { ...counters(0), packetsSent: -5, bytesSent: Number.POSITIVE_INFINITY },
    malformed: { weird: Number.NaN },
    peers: [
      peer('a', 0, { srttMs: Number.NaN, rttMs: Number.NaN, retransmits: -1 }),
      peer('b', 0, { srttMs: -1, rttMs: -1 }),
      peer('c', 0, { srttMs: 0, rttMs: 0 }),
    ],
  })
  const s = warpmeshSamples(await register.metrics())
  t.equal(s.get('warpmesh_peers_up'), 0)
  t.equal(s.get('warpmesh_packets_sent_total'), 0)
  t.equal(s.get('warpmesh_bytes_sent_total'), 0)
  t.equal(s.get('warpmesh_packets_received_total'), 2)
  t.equal(s.get('warpmesh_malformed_datagrams_total{reason="weird"}'), 0)
  t.equal(s.get('warpmesh_peer_retransmits_total{peer="a",role=""}'), 0)
  t.notOk(s.has('warpmesh_peer_srtt_seconds{peer="a",role=""}'))
  t.notOk(s.has('warpmesh_peer_srtt_seconds{peer="b",role=""}'))
  t.equal(s.get('warpmesh_peer_srtt_seconds{peer="c",role=""}'), 0, 'zero is a valid sample')
  t.notOk(s.has('warpmesh_peer_rtt_seconds{peer="a",role=""}'))
  t.notOk(s.has('warpmesh_peer_rtt_seconds{peer="b",role=""}'))
  t.equal(s.get('warpmesh_peer_rtt_seconds{peer="c",role=""}'), 0)
})

t.test('registerMetrics: a clash throws and undoes a partial registration', async (t) => {
  const register = new Registry()
  new Counter({ name: 'warpmesh_bytes_sent_total', help: 'someone else', registers: [register] })
  t.throws(() => registerMetrics(register), /warpmesh_bytes_sent_total/)
  t.same(
    register.getMetricsAsArray().map((m) => m.name),
    ['warpmesh_bytes_sent_total'],
    'only the pre-existing metric is left',
  )
  const clean = new Registry()
  const metrics = registerMetrics(clean)
  t.throws(() => registerMetrics(clean), 'twice on one registry')
  t.ok(clean.getSingleMetric('warpmesh_peers_up'), 'the first registration is intact')
  metrics.unregister()
  metrics.unregister()
  t.same(clean.getMetricsAsArray(), [], 'unregister removes everything, twice is harmless')
})
