import type { Config } from './config/types.js'
import { parseConfig, loadConfigFile } from './config/load.js'
import { Runtime, type RuntimeOptions } from './runtime/runtime.js'

export { parseConfig, loadConfigFile, Runtime }
export type { Config, RuntimeOptions }
export { ConfigError, ConfigErrors, TandemError } from './errors.js'

/**
 * Starts a proxy from a validated Config or from YAML text (validated here; throws ConfigErrors).
 * For tests and embedding; the CLI adds logging, the admin server and signals.
 */
export async function startTandem (config: Config | string, options: RuntimeOptions = {}): Promise<Runtime> {
  const cfg = typeof config === 'string' ? parseConfig(config, 'inline.yaml') : config
  const runtime = new Runtime(cfg, options)
  await runtime.start()
  return runtime
}
