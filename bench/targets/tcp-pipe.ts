// Orientation baseline: the textbook node:net proxy, `client.pipe(upstream).pipe(client)` with
// half-close and error handling and nothing else. argv: SOURCE_PORT GREET_PORT.
// Prints {"stream":N,"conns":N}.
import net, { type AddressInfo } from 'node:net'

const [sourcePort, greetPort] = process.argv.slice(2).map(Number)

async function proxy (port: number): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const up = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true })
    client.on('error', () => { up.destroy() })
    up.on('error', () => { client.destroy() })
    client.pipe(up).pipe(client)
  })
  await new Promise<void>((resolve) => { server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve) })
  return (server.address() as AddressInfo).port
}

process.stdout.write(JSON.stringify({ stream: await proxy(sourcePort as number), conns: await proxy(greetPort as number) }) + '\n')
process.on('SIGTERM', () => { process.exit(0) })
