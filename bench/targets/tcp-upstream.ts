// The TCP benchmark's upstream: a `source` port that streams a fixed buffer to every client until
// it goes away (one long download, nothing allocated per write), and a `greet` port that answers
// each connection with one byte and closes (the new-connections test). Prints one JSON line,
// {"source":N,"greet":N}, once both listen.
import net, { type AddressInfo } from 'node:net'

const CHUNK = Buffer.alloc(256 * 1024, 0x61)

function pump (socket: net.Socket): void {
  while (!socket.destroyed && socket.write(CHUNK));
}

const source = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {})
  socket.on('drain', () => { pump(socket) })
  pump(socket)
})
const greet = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {})
  socket.end('+')
})

async function listen (server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => { server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve) })
  return (server.address() as AddressInfo).port
}

process.stdout.write(JSON.stringify({ source: await listen(source), greet: await listen(greet) }) + '\n')
process.on('SIGTERM', () => { process.exit(0) })
