/**
 * The floor of one local hop: a process that echoes every byte it reads on
 * a Unix domain socket. Started by bench/agent.ts with the socket path as
 * its argument; prints `ready` once listening; stops on SIGTERM.
 */
import { createServer } from 'node:net'

const path = process.argv[2]
if (path === undefined) {
  process.stderr.write('usage: unix-echo.js SOCKET_PATH\n')
  process.exit(1)
}
const server = createServer((socket) => {
  socket.on('data', (chunk) => socket.write(chunk))
  socket.on('error', () => {})
})
server.listen(path, () => process.stdout.write('ready\n'))
process.once('SIGTERM', () => server.close(() => process.exit(0)))
