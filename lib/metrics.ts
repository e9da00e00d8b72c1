/**
 * Prometheus metrics (prom-client). Values are not tracked here: at every
 * scrape a `collect()` callback returns a {@link MetricsSnapshot} of the
 * counters the endpoint and node already keep, and the metrics are set from
 * it. Nothing runs between scrapes.
 *
 * Metrics use a dedicated `Registry`, never prom-client's global one, so an
 * application embedding warpmesh keeps its own metrics separate.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `warpmesh_peers_up` | gauge | |
 * | `warpmesh_packets_sent_total`, `warpmesh_packets_received_total` | counter | |
 * | `warpmesh_bytes_sent_total`, `warpmesh_bytes_received_total` | counter | |
 * | `warpmesh_retransmits_total`, `warpmesh_losses_total` | counter | |
 * | `warpmesh_messages_sent_total`, `warpmesh_messages_received_total` | counter | |
 * | `warpmesh_malformed_datagrams_total` | counter | `reason` |
 * | `warpmesh_peer_rtt_seconds` | gauge | `peer`, `role` |
 * | `warpmesh_peer_srtt_seconds` | gauge | `peer`, `role` |
 * | `warpmesh_peer_packets_sent_total` … `warpmesh_peer_messages_received_total` (the eight counters above) | counter | `peer`, `role` |
 * | `warpmesh_peers_unreported` | gauge | |
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import { silentLogger, type Logger } from './log.js'

/** Traffic counters, cumulative since start (or since the session started, per peer). */
export interface TrafficCounters {
  /** Datagrams sent. */
  packetsSent: number
  /** Datagrams received and accepted (malformed ones are counted in `malformed` only). */
  packetsReceived: number
  /** UDP payload bytes sent. */
  bytesSent: number
  /** UDP payload bytes received. */
  bytesReceived: number
  /** Packets sent again because they were declared lost or timed out. */
  retransmits: number
  /** Packets declared lost. */
  losses: number
  /** Application messages sent (a datagram may carry many). */
  messagesSent: number
  /** Application messages delivered to the application. */
  messagesReceived: number
}

/** One peer's row of a {@link MetricsSnapshot}. */
export interface PeerMetrics extends TrafficCounters {
  /** Peer node id; the `peer` label. */
  peerId: string
  /** Peer role; the `role` label. Default `""`. */
  role?: string
  /**
   * The path's round trip in milliseconds (exported in seconds): the
   * session's `roundTripTime`, ack delay taken out. Default: no sample yet, no series.
   */
  rttMs?: number
  /**
   * Smoothed round-trip time of the retransmission timer (RFC 6298 SRTT), in
   * milliseconds (exported in seconds); above `rttMs` when samples vary.
   * Default: no sample yet, no series.
   */
  srttMs?: number
}

/**
 * What `collect()` returns at each scrape. Counter values must be cumulative
 * and never decrease (a peer's counters may restart from 0 with a new session;
 * Prometheus treats that as a counter reset). Negative or non-finite values
 * are exported as 0.
 */
export interface MetricsSnapshot {
  /** Peers with a live session. */
  peersUp: number
  /** Totals over all peers, including traffic that belongs to no peer (handshakes, coordinator). */
  totals: TrafficCounters
  /** Dropped datagrams by reason (e.g. `too-short`, `bad-auth`, `unknown-session`). Default: none. */
  malformed?: Readonly<Record<string, number>>
  /** Per-peer rows. A peer absent from a snapshot has its series removed. */
  peers: readonly PeerMetrics[]
}

/** Options of {@link registerMetrics}. */
export interface RegisterMetricsOptions {
  /** Most peers exported with per-peer series; the rest are counted in `warpmesh_peers_unreported`. Default 1000. */
  maxPeerSeries?: number
}

/** Handle returned by {@link registerMetrics}. */
export interface MetricsUpdater {
  /** Set every metric from `snapshot`. */
  update(snapshot: MetricsSnapshot): void
  /** Remove the metrics from the registry. Idempotent. */
  unregister(): void
}

type CounterName = keyof TrafficCounters

const COUNTERS: ReadonlyArray<readonly [CounterName, string, string]> = [
  ['packetsSent', 'packets_sent_total', 'Datagrams sent.'],
  ['packetsReceived', 'packets_received_total', 'Datagrams received and accepted.'],
  ['bytesSent', 'bytes_sent_total', 'UDP payload bytes sent.'],
  ['bytesReceived', 'bytes_received_total', 'UDP payload bytes received.'],
  ['retransmits', 'retransmits_total', 'Packets retransmitted.'],
  ['losses', 'losses_total', 'Packets declared lost.'],
  ['messagesSent', 'messages_sent_total', 'Application messages sent.'],
  ['messagesReceived', 'messages_received_total', 'Application messages delivered.'],
]

const PREFIX = 'warpmesh_'

function clean(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : 0
}

/**
 * Register the warpmesh metrics in `register` and return a function that
 * sets them from a snapshot. {@link startMetricsServer} uses it; use it
 * directly to serve the metrics from an existing HTTP server.
 *
 * @throws Error from prom-client if `register` already holds warpmesh metrics.
 * @throws RangeError if `maxPeerSeries` is not a non-negative integer.
 */
export function registerMetrics(register: Registry, options: RegisterMetricsOptions = {}): MetricsUpdater {
  const maxPeerSeries = options.maxPeerSeries ?? 1000
  if (!Number.isInteger(maxPeerSeries) || maxPeerSeries < 0) {
    throw new RangeError(`options.maxPeerSeries must be a non-negative integer; got ${String(maxPeerSeries)}`)
  }
  const registers = [register]
  const names: string[] = []
  const name = (suffix: string): string => {
    const full = PREFIX + suffix
    names.push(full)
    return full
  }
  // prom-client registers in the constructor, so a name clash half-way leaves
  // the earlier metrics registered; the catch below removes them.
  try {
    const peersUp = new Gauge({ name: name('peers_up'), help: 'Peers with a live session.', registers })
    const unreported = new Gauge({
      name: name('peers_unreported'),
      help: `Peers left out of per-peer series (more than ${maxPeerSeries}).`,
      registers,
    })
    const totals = COUNTERS.map(
      ([key, suffix, help]) => [key, new Counter({ name: name(suffix), help, registers })] as const,
    )
    const malformed = new Counter({
      name: name('malformed_datagrams_total'),
      help: 'Datagrams dropped as malformed or unauthenticated, by reason.',
      labelNames: ['reason'],
      registers,
    })
    const rtt = new Gauge({
      name: name('peer_rtt_seconds'),
      help: 'Round-trip time of the path to the peer (median of recent samples, the peer\'s ack delay taken out).',
      labelNames: ['peer', 'role'],
      registers,
    })
    const srtt = new Gauge({
      name: name('peer_srtt_seconds'),
      help: 'Smoothed round-trip time of the retransmission timer (RFC 6298 SRTT) to the peer.',
      labelNames: ['peer', 'role'],
      registers,
    })
    const perPeer = COUNTERS.map(
      ([key, suffix, help]) =>
        [key, new Counter({ name: name(`peer_${suffix}`), help: `Per peer: ${help}`, labelNames: ['peer', 'role'], registers })] as const,
    )

    let registered = true
    return {
      update(snapshot: MetricsSnapshot): void {
        peersUp.set(clean(snapshot.peersUp))
        for (const [key, counter] of totals) {
          counter.reset()
          counter.inc(clean(snapshot.totals[key]))
        }
        malformed.reset()
        if (snapshot.malformed !== undefined) {
          for (const reason of Object.keys(snapshot.malformed)) malformed.inc({ reason }, clean(snapshot.malformed[reason]))
        }
        rtt.reset()
        srtt.reset()
        for (const [, counter] of perPeer) counter.reset()
        const peers = snapshot.peers
        const reported = Math.min(peers.length, maxPeerSeries)
        unreported.set(peers.length - reported)
        for (let i = 0; i < reported; i++) {
          const peer = peers[i] as PeerMetrics
          const labels = { peer: peer.peerId, role: peer.role ?? '' }
          if (peer.rttMs !== undefined && Number.isFinite(peer.rttMs) && peer.rttMs >= 0) {
            rtt.set(labels, peer.rttMs / 1000)
          }
          if (peer.srttMs !== undefined && Number.isFinite(peer.srttMs) && peer.srttMs >= 0) {
            srtt.set(labels, peer.srttMs / 1000)
          }
          for (const [key, counter] of perPeer) counter.inc(labels, clean(peer[key]))
        }
      },
      unregister(): void {
        if (!registered) return
        registered = false
        for (const metric of names) register.removeSingleMetric(metric)
      },
    }
  } catch (err) {
    // The last name is the one that clashed; it belongs to someone else.
    for (const metric of names.slice(0, -1)) register.removeSingleMetric(metric)
    throw err
  }
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** Address to listen on, and only on it, e.g. `127.0.0.1` or `::`. Required. */
  host: string
  /** TCP port; 0 picks a free one (see {@link MetricsServer.port}). Required. */
  port: number
  /**
   * Registry to register the metrics in, e.g. to serve your own metrics on the
   * same endpoint. Default: a new dedicated `Registry` (never the global one).
   */
  register?: Registry
  /** Called once per scrape; its snapshot is what the scrape returns. Sync or async. Required. */
  collect: () => MetricsSnapshot | Promise<MetricsSnapshot>
  /**
   * Also export prom-client's default process metrics (CPU, memory, event loop
   * lag, GC). Default `true` when the registry is created here, `false` when
   * `register` is given (it may have them already). They keep sampling until
   * the process exits, even after `close()`.
   */
  processMetrics?: boolean
  /** See {@link RegisterMetricsOptions.maxPeerSeries}. Default 1000. */
  maxPeerSeries?: number
  /** Where collect failures (rate-limited) and server errors are logged. Default: {@link silentLogger}. */
  log?: Logger
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address. */
  readonly host: string
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number
  /** `http://host:port/metrics`. */
  readonly url: string
  /** The registry served. */
  readonly register: Registry
  /**
   * Stop listening, drop open connections, remove the warpmesh metrics from
   * the registry. Resolves when the server is closed. Idempotent.
   */
  close(): Promise<void>
}

/** Milliseconds a scraper may take to send its request headers. */
const HEADERS_TIMEOUT_MS = 5_000
/** Milliseconds a whole request may take. */
const REQUEST_TIMEOUT_MS = 10_000
/** Most concurrent connections; more are refused. */
const MAX_CONNECTIONS = 32
/** Minimum milliseconds between two logged collect failures. */
const COLLECT_ERROR_LOG_INTERVAL_MS = 60_000

/**
 * Serve `GET /metrics` (and `HEAD`) over HTTP on `host:port` only. Every
 * scrape calls `collect()` once; if it throws, the scrape gets status 500.
 * Other paths get 404, other methods 405.
 *
 * @throws TypeError / RangeError (rejects) for invalid options, naming the option.
 * @throws the `listen` error (rejects), e.g. `EADDRINUSE`, after removing the metrics again.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { host, port, collect } = options
  if (typeof host !== 'string' || host === '') throw new TypeError('options.host must be a non-empty string')
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`options.port must be an integer from 0 to 65535; got ${String(port)}`)
  }
  if (typeof collect !== 'function') throw new TypeError('options.collect must be a function')
  const log = options.log ?? silentLogger
  const register = options.register ?? new Registry()
  if (options.processMetrics ?? options.register === undefined) collectDefaultMetrics({ register })
  const updater = registerMetrics(register, { maxPeerSeries: options.maxPeerSeries })

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = String(req.url)
    const query = url.indexOf('?')
    const path = query < 0 ? url : url.slice(0, query)
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found; metrics are at /metrics\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
      return
    }
    let body: string
    try {
      updater.update(await collect())
      body = await register.metrics()
    } catch (err) {
      log.rateLimited('metrics-collect', COLLECT_ERROR_LOG_INTERVAL_MS).error('metrics collection failed', { err })
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics collection failed: ${(err as Error)?.message ?? String(err)}\n`)
      return
    }
    res.writeHead(200, { 'content-type': register.contentType, 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  const server = createServer((req, res) => {
    // serve() handles its own failures; this only keeps a surprise (a throwing
    // writeHead) from becoming an unhandled rejection in the host process.
    serve(req, res).catch(
      /* c8 ignore next 4 */
      (err: unknown) => {
        log.error('metrics request failed', { err })
        res.destroy()
      },
    )
  })
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.requestTimeout = REQUEST_TIMEOUT_MS
  server.maxConnections = MAX_CONNECTIONS

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port }, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    updater.unregister()
    throw err
  }
  server.on('error', (err) => log.error('metrics server error', { err }))

  const address = server.address() as AddressInfo
  const urlHost = address.address.includes(':') ? `[${address.address}]` : address.address
  let closing: Promise<void> | undefined
  return {
    host: address.address,
    port: address.port,
    url: `http://${urlHost}:${address.port}/metrics`,
    register,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        updater.unregister()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}
