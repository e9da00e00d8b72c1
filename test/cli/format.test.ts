import t from 'tap'
import {
  coordinatorSnapshot, formatMessage, formatPeers, formatTable, helpText, metricsSnapshot, parseCommandLine, UsageError,
} from '../../lib/cli.js'

t.test('formatTable: padded columns, last column unpadded', async (t) => {
  t.equal(formatTable(['A', 'BB', 'C'], [['xxx', 'y', 'z'], ['', 'long', '']]), 'A    BB    C\nxxx  y     z\n     long\n')
})

t.test('formatPeers: sorted by role then id, meta and topics joined', async (t) => {
  const out = formatPeers([
    { id: 'b', role: 'proxy', address: '::1', port: 7401, epoch: 2, meta: {}, topics: [] },
    { id: 'a', role: 'downstream', address: '10.0.0.1', port: 7402, epoch: 1, meta: { mode: 'sw', max: '16' }, topics: ['status', 'x'] },
  ])
  t.equal(
    out,
    [
      'ID  ROLE        ADDRESS        EPOCH  META            TOPICS',
      'a   downstream  10.0.0.1:7402  1      mode=sw,max=16  status,x',
      'b   proxy       [::1]:7401     2      -               -',
      '2 peers',
      '',
    ].join('\n'),
  )
  t.equal(formatPeers([]), 'ID  ROLE  ADDRESS  EPOCH  META  TOPICS\n0 peers\n')
})

t.test('formatMessage: text line with escapes, or JSON', async (t) => {
  const data = new TextEncoder().encode('hi\n\\there')
  t.equal(formatMessage({ from: 'n1', data, channel: 2, delivery: 3 }, false), 'n1 2 hi\\x0a\\\\there\n')
  t.equal(formatMessage({ from: 'n1', data, channel: 0, delivery: 3, topic: 'news' }, false), 'n1 0 #news hi\\x0a\\\\there\n')
  t.same(JSON.parse(formatMessage({ from: 'n1', data, channel: 0, delivery: 0, topic: 'news' }, true)), {
    from: 'n1', channel: 0, delivery: 0, topic: 'news', text: 'hi\n\\there', base64: Buffer.from(data).toString('base64'),
  })
})

t.test('parseCommandLine: flags override their variables and are remembered for errors', async (t) => {
  const args = parseCommandLine(['send', '--to', 'x', '--bind', '127.0.0.1:0', '--coordinator', 'c:1', 'a', 'b'], { WARPMESH_BIND: '0.0.0.0:1' })
  t.equal(args.command, 'send')
  t.same(args.positionals, ['a', 'b'])
  t.equal(args.env.WARPMESH_BIND, '127.0.0.1:0')
  t.equal(args.env.WARPMESH_COORDINATORS, 'c:1')
  t.equal(args.flagFor.get('WARPMESH_BIND'), '--bind')
  t.equal(args.env.WARPMESH_ID, undefined, '--to is not a configuration flag')
  t.equal(parseCommandLine(['-h'], {}).command, 'help')
  t.throws(() => parseCommandLine(['keygen', '--bind', 'x'], {}), UsageError)
  t.throws(() => parseCommandLine(['constructor'], {}), { message: /unknown command "constructor"/ })
  t.match(helpText(), /Environment variables:\n {2}WARPMESH_ID/)
})

t.test('metricsSnapshot from node.stats()', async (t) => {
  const peer = {
    id: 'lobby-1', roundTripTime: 0.25, srtt: 1.5, packetsSent: 10, packetsReceived: 9, bytesSent: 100, bytesReceived: 90,
    framesRetransmitted: 2, packetsLost: 1, messagesSent: 5, messagesReceived: 4,
  }
  const snap = metricsSnapshot(
    { peers: { 'lobby-1': peer, x: { ...peer, id: 'x', roundTripTime: 0, srtt: 0 } }, totals: { messagesSent: 50, messagesReceived: 40 } },
    new Map([['lobby-1', 'downstream']]),
  )
  t.equal(snap.peersUp, 2)
  t.same(snap.peers[0], {
    peerId: 'lobby-1', role: 'downstream', packetsSent: 10, packetsReceived: 9, bytesSent: 100, bytesReceived: 90,
    retransmits: 2, losses: 1, messagesSent: 5, messagesReceived: 4, rttMs: 0.25, srttMs: 1.5,
  })
  t.notOk('srttMs' in (snap.peers[1] as object), 'no RTT series before a sample')
  t.notOk('rttMs' in (snap.peers[1] as object), 'no path RTT series before a sample')
  t.same(snap.totals, {
    packetsSent: 20, packetsReceived: 18, bytesSent: 200, bytesReceived: 180, retransmits: 4, losses: 2, messagesSent: 50, messagesReceived: 40,
  })
  const withEndpoint = metricsSnapshot({ peers: {} }, undefined, {
    datagramsSent: 7, datagramsReceived: 8, bytesSent: 70, bytesReceived: 80, dropped: { 'auth-failed': 3 },
  })
  t.same(withEndpoint.malformed, { 'auth-failed': 3 })
  t.equal(withEndpoint.totals.packetsReceived, 8)
  t.same(metricsSnapshot(undefined).totals.messagesSent, 0)
})

t.test('coordinatorSnapshot: sessions named by the table, control messages as messages', async (t) => {
  const session = (remote: string, isOpen = true) => ({
    remote, isOpen,
    stats: () => ({ roundTripTime: 0.5, srtt: 2, packetsSent: 1, framesRetransmitted: 1, packetsLost: 0 }) as never,
  })
  const snap = coordinatorSnapshot({
    table: () => [{ id: 'proxy-1', role: 'proxy', address: '127.0.0.1', port: 5000 }],
    stats: () => ({ controlMessagesSent: 11, controlMessagesReceived: 12 }),
    endpoint: {
      stats: () => ({ datagramsSent: 3, datagramsReceived: 4, bytesSent: 5, bytesReceived: 6, dropped: {} }),
      sessions: () => [session('127.0.0.1:5000'), session('127.0.0.1:6000'), session('127.0.0.1:7000', false)],
    },
  })
  t.same(snap.peers.map((p) => [p.peerId, p.role, p.rttMs, p.srttMs]), [['proxy-1', 'proxy', 0.5, 2], ['127.0.0.1:6000', '', 0.5, 2]])
  t.same(snap.totals, {
    packetsSent: 3, packetsReceived: 4, bytesSent: 5, bytesReceived: 6, retransmits: 2, losses: 0, messagesSent: 11, messagesReceived: 12,
  })
})
