import { readFileSync } from 'node:fs'
import { parseConfig } from '../../../src/config/load.js'
const text = readFileSync('test/fixtures/config/spec-full.yaml', 'utf8')
try { console.log(JSON.stringify(parseConfig(text, 'spec-full.yaml', { TANDEM_ADMIN_TOKEN: 't', TANDEM_PEER_SECRET: '0123456789abcdef' }), null, 1)) } catch (e) { console.log((e as Error).message) }
