import { createServer } from 'node:net'
import t from 'tap'
import { cleanEnv, killAll, runCli, startCli, TEST_KEY } from './fixtures/cli.js'

t.teardown(killAll)

t.test('coordinator + listen + send + peers on 127.0.0.1 (random free port), keyed', async (t) => {
  const env = cleanEnv({ WARPMESH_KEY: TEST_KEY })
  const coordinator = startCli(['coordinator', '--bind', '127.0.0.1:0'], env)
  t.teardown(() => coordinator.stop('SIGKILL'))
  const port = Number((await coordinator.waitFor(/"msg":"ready".*"port":(\d+)/, 'stderr'))[1])
  t.ok(port > 0, `coordinator on port ${port}`)
  const at = `127.0.0.1:${port}`

  const listener = startCli(['listen', '--id', 'listener-1', '--subscribe', 'news'], { ...env, WARPMESH_COORDINATORS: at })
  const jsonListener = startCli(['listen', '--json', '--id', 'listener-2', '--role', 'lobby', '--meta', 'mode=skywars,max=16'], {
    ...env,
    WARPMESH_COORDINATORS: at,
  })
  t.teardown(() => listener.stop('SIGKILL'))
  t.teardown(() => jsonListener.stop('SIGKILL'))
  await Promise.all([listener.waitFor(/"msg":"listening"/, 'stderr'), jsonListener.waitFor(/"msg":"listening"/, 'stderr')])

  const [sent, sentUnreliable, sentJson, missing] = await Promise.all([
    runCli(['send', '--to', 'listener-1', '--channel', '3', 'hello', 'mesh'], { ...env, WARPMESH_COORDINATORS: at, WARPMESH_ID: 'sender-1' }),
    runCli(['send', '--to', 'listener-1', '--unreliable', '--coordinator', at, 'tab\there'], env),
    runCli(['send', '--to', 'listener-2', '--reliable', '--coordinator', at, '--id', 'sender-2', 'héllo'], env),
    runCli(['send', '--to', 'nobody', '--timeout', '1s', '--coordinator', at, 'x'], env),
  ])
  for (const r of [sent, sentUnreliable, sentJson]) {
    t.equal(r.code, 0, `send exit 0 ${r.stderr}`)
    t.equal(r.stdout, '')
  }
  t.equal(missing.code, 1, 'unknown peer: exit 1')
  t.match(missing.stderr, 'warpmesh: peer "nobody" did not appear in the peer table within 1000 ms')

  await listener.waitFor(/^sender-1 3 hello mesh$/m, 'stdout', 5000)
  // Unreliable on loopback: not guaranteed, but the line format is what matters when it comes.
  const line = await listener.waitFor(/^\S+ 0 tab\\x09here$/m, 'stdout', 2000).catch(() => null)
  if (line === null) t.comment('the unreliable message was lost (allowed)')
  const json = JSON.parse((await jsonListener.waitFor(/^\{.*\}$/m, 'stdout', 5000))[0])
  t.same(json, { from: 'sender-2', channel: 0, delivery: 3, text: 'héllo', base64: Buffer.from('héllo').toString('base64') })

  // `peers` asks the coordinator for its table without joining: two at once see only the listeners.
  const [table, asJson] = await Promise.all([
    runCli(['peers', '--coordinator', at], env),
    runCli(['peers', '--coordinator', at, '--json'], env),
  ])
  t.equal(table.code, 0)
  t.match(table.stdout, /^ID +ROLE +ADDRESS +EPOCH +META +TOPICS\n/)
  t.match(table.stdout, /^listener-1 +cli +127\.0\.0\.1:\d+ +\d+ +- +news$/m)
  t.match(table.stdout, /^listener-2 +lobby +127\.0\.0\.1:\d+ +\d+ +mode=skywars,max=16 +-$/m)
  t.match(table.stdout, /\n2 peers\n$/)
  t.equal(asJson.code, 0)
  const peers = JSON.parse(asJson.stdout) as { id: string; role: string; meta: Record<string, string>; topics: string[] }[]
  t.same(peers.map((p) => p.id).sort(), ['listener-1', 'listener-2'])
  t.same(peers.find((p) => p.id === 'listener-2')?.meta, { mode: 'skywars', max: '16' })
  t.notMatch(coordinator.stderr, /"msg":"node registered"[^\n]*"id":"cli-/, 'peers never registered as a node')
  t.notMatch(listener.stderr, /"peer":"cli-/, 'the listeners saw no node come and go')
  // Several coordinators: one that does not answer is named; the table comes from the one that does.
  const partly = await runCli(['peers', '--coordinator', `127.0.0.1:1,${at}`, '--timeout', '1s'], env)
  t.equal(partly.code, 0, `one coordinator answering is enough ${partly.stderr}`)
  t.match(partly.stdout, /\n2 peers\n$/)
  const none = await runCli(['peers', '--coordinator', '127.0.0.1:1', '--timeout', '1s'], env)
  t.equal(none.code, 1, 'no coordinator answering: exit 1')
  t.match(none.stderr, /^warpmesh: no coordinator answered: 127\.0\.0\.1:1: /)
  const wrongKey = await runCli(['peers', '--coordinator', at, '--timeout', '2s'], { ...env, WARPMESH_KEY: 'ab'.repeat(32) })
  t.equal(wrongKey.code, 1, 'wrong key: exit 1, no table')
  t.equal(wrongKey.stdout, '')
  t.match(wrongKey.stderr, /no coordinator answered: .*matching network key/)

  // Graceful stop by PID: exit 0, the coordinator logs the clean deregistration.
  const [l1, l2] = await Promise.all([listener.stop('SIGINT'), jsonListener.stop('SIGTERM')])
  t.equal(l1.code, 0, 'listen: SIGINT → exit 0')
  t.equal(l2.code, 0, 'listen: SIGTERM → exit 0')
  await coordinator.waitFor(/"msg":"node deregistered".*"id":"listener-2"/, 'stderr', 5000)
  const c = await coordinator.stop('SIGTERM')
  t.equal(c.code, 0, 'coordinator: SIGTERM → exit 0')
  t.match(c.stderr, /"msg":"stopped"/)
})

t.test('coordinator: metrics endpoint when WARPMESH_METRICS is set; address in use exits 1', async (t) => {
  const env = cleanEnv({ WARPMESH_INSECURE: '1' })
  const metricsPort = await freeTcpPort()
  const coordinator = startCli(['coordinator', '--bind', '127.0.0.1:0', '--metrics', `127.0.0.1:${metricsPort}`], env)
  t.teardown(() => coordinator.stop('SIGKILL'))
  const url = (await coordinator.waitFor(/"msg":"metrics listening".*"url":"([^"]+)"/, 'stderr'))[1]!
  t.match(coordinator.stderr, /"level":"warn".*running WITHOUT a network key/, 'insecure warns at start-up')
  const port = Number((await coordinator.waitFor(/"msg":"ready".*"port":(\d+)/, 'stderr'))[1])
  const body = await (await fetch(url)).text()
  t.match(body, /^warpmesh_peers_up 0$/m)
  t.match(body, /^warpmesh_packets_sent_total \d+$/m)
  const clash = await runCli(['coordinator', '--bind', `127.0.0.1:${port}`], env)
  t.equal(clash.code, 1, 'address in use: exit 1')
  t.match(clash.stderr, /warpmesh: .*EADDRINUSE/)
  t.notMatch(clash.stderr, /\n\s+at /)
  t.equal((await coordinator.stop('SIGINT')).code, 0)
})

async function freeTcpPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('peers right after a coordinator (re)starts: the table is printed and said to be possibly incomplete', async (t) => {
  const env = cleanEnv({ WARPMESH_INSECURE: '1', WARPMESH_HEARTBEAT_MS: '10000' }) // lease 30 s: still starting when peers asks
  const coordinator = startCli(['coordinator', '--bind', '127.0.0.1:0'], env)
  t.teardown(() => coordinator.stop('SIGKILL'))
  const port = Number((await coordinator.waitFor(/"msg":"ready".*"port":(\d+)/, 'stderr'))[1])
  const r = await runCli(['peers', '--coordinator', `127.0.0.1:${port}`], env)
  t.equal(r.code, 0)
  t.match(r.stdout, /\n0 peers\n$/)
  t.match(r.stderr, `warpmesh: coordinator 127.0.0.1:${port} started less than a lease ago; nodes registered with an earlier instance may not be back in its table yet`)
})
