import { ConfigErrors } from '../../../src/errors.js'
import { parseConfig } from '../../../src/config/load.js'
import type { Config } from '../../../src/config/types.js'

/** Joins lines so a test can count them: element i is line i + 1. */
export function yaml (...lines: string[]): string {
  return lines.join('\n') + '\n'
}

/** Every error line for `text`, file name `t.yaml`; fails the test when the config is valid. */
export function errorsOf (text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 't.yaml', env)
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message)
    throw err
  }
  throw new Error('expected config errors, but the config is valid')
}

export function parse (text: string, env: NodeJS.ProcessEnv = {}): Config {
  return parseConfig(text, 't.yaml', env)
}

/** A minimal valid config: upstream `web` (line 3-4), http listener `public` (line 6-10). */
export const MINIMAL = [
  'upstreams:', //                         1
  '  web:', //                             2
  '    servers:', //                       3
  '      - address: 127.0.0.1:8081', //    4
  'listeners:', //                         5
  '  - name: public', //                   6
  '    protocol: http', //                 7
  '    listen: 127.0.0.1:8080', //         8
  '    routes:', //                        9
  '      - upstream: web', //              10
]
