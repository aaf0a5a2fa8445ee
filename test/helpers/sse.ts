import type http from 'node:http'

export interface SseFrame { event: string, data: any }

/** Collects the `event:`/`data:` frames of a Server-Sent Events response into `frames` as they come (data parsed as JSON). */
export function readSse (res: http.IncomingMessage, frames: SseFrame[] = []): SseFrame[] {
  let buf = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    buf += chunk
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1]
      const data = /^data: (.*)$/m.exec(block)?.[1]
      if (event !== undefined && data !== undefined) frames.push({ event, data: JSON.parse(data) })
    }
  })
  return frames
}
