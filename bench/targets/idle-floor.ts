// The floor for bench/idle-rss: the least a Node process can spend on an idle keep-alive client.
// A bare node:net server that answers every request with fixed bytes and arms one idle timeout per
// connection, nothing else: no parsing, no routing, no upstream. Whatever RSS it shows with the
// same 10,000 clients is what Node itself costs, so a proxy's figure reads against it.
// Prints {"port":N} once it listens.
import net from 'node:net'

const ANSWER = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n\r\nhello, world\n', 'latin1')

const server = net.createServer((socket) => {
  socket.setTimeout(60_000, () => { socket.destroy() })
  socket.on('data', () => { socket.write(ANSWER) })
  socket.on('error', () => {})
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as net.AddressInfo).port }) + '\n')
})
process.on('SIGTERM', () => { process.exit(0) })
