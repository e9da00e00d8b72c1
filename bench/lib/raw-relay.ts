/**
 * The floor of the agent's topology: the processes and hops a request takes
 * through two agents — client → Unix socket → agent → UDP → agent → Unix
 * socket → client, and back — with no work done in any of them (no framing,
 * no protocol, no encryption). bench/agent.ts runs two relays and an echo and
 * measures round trips through them beside the real agents, so the cost of
 * the extra processes and wake-ups on this machine is measured, not assumed.
 *
 *   raw-relay.js relay SOCKET_PATH  listens on SOCKET_PATH and on UDP
 *     127.0.0.1:0, prints `port N`, then reads `peer N` (the other relay's
 *     UDP port) from stdin. Each chunk read from its Unix client leaves as one
 *     datagram to the peer; each datagram received is written to the client.
 *   raw-relay.js echo SOCKET_PATH   connects to SOCKET_PATH, prints `ready`,
 *     and writes back every chunk it reads.
 *
 * Both stop on SIGTERM.
 */
import { createSocket } from 'node:dgram'
import { connect, createServer, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { lookupAddress } from '../../lib/transport/udp.js'

const [mode, path] = process.argv.slice(2)
if ((mode !== 'relay' && mode !== 'echo') || path === undefined) {
  process.stderr.write('usage: raw-relay.js relay|echo SOCKET_PATH\n')
  process.exit(1)
}

if (mode === 'echo') {
  const socket = connect(path, () => process.stdout.write('ready\n'))
  socket.on('data', (chunk) => socket.write(chunk))
  socket.on('error', (err) => {
    process.stderr.write(`raw-relay echo: ${err.message}\n`)
    process.exit(1)
  })
  process.once('SIGTERM', () => socket.destroy())
} else {
  let peerPort = 0
  let client: Socket | null = null
  // warpmesh's lookup: an IP literal reaches the kernel in the same tick, as the agents' sends do.
  const udp = createSocket({ type: 'udp4', lookup: lookupAddress })
  udp.on('message', (msg) => client?.write(msg))
  const server = createServer((socket) => {
    client = socket
    socket.setNoDelay?.(true)
    socket.on('data', (chunk) => {
      if (peerPort !== 0) udp.send(chunk, peerPort, '127.0.0.1')
    })
    socket.on('error', () => {})
  })
  udp.bind(0, '127.0.0.1', () => {
    server.listen(path, () => process.stdout.write(`port ${udp.address().port}\n`))
  })
  createInterface({ input: process.stdin }).on('line', (line) => {
    const m = /^peer (\d+)$/.exec(line.trim())
    if (m !== null) {
      peerPort = Number(m[1])
      process.stdout.write('peered\n')
    }
  })
  process.once('SIGTERM', () => {
    udp.close()
    server.close(() => process.exit(0))
  })
}
