// The building blocks of schema.ts: one function per kind of leaf, each carrying the description,
// default and `errorMessage` every leaf needs (see schema.ts), so a section reads as a list of keys.
import { DURATION_PATTERN, RATE_PATTERN, SIZE_PATTERN } from './units.js'

type S = Record<string, unknown>

export const HOST_PORT_PATTERN = '^(\\[[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\\]|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?):[0-9]{1,5}$'
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$'
export const HOST_NAME = '[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*'
export const TOKEN_PATTERN = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"

export const duration = (description: string, dflt?: string): S => ({
  type: ['string', 'integer'],
  pattern: DURATION_PATTERN,
  minimum: 0,
  description,
  ...(dflt === undefined ? {} : { default: dflt }),
  errorMessage: 'must be a duration like 250ms, 2s, 5m or integer milliseconds',
})
export const size = (description: string, dflt: string): S => ({
  type: ['string', 'integer'],
  pattern: SIZE_PATTERN,
  minimum: 0,
  description,
  default: dflt,
  errorMessage: 'must be a size like 16kb, 1mb or integer bytes',
})
export const rate = (description: string): S => ({
  type: 'string', pattern: RATE_PATTERN, description, errorMessage: 'must be a rate like 100/s, 6000/m or 10/h',
})
export const int = (min: number, max: number | undefined, description: string, dflt?: number): S => ({
  type: 'integer',
  minimum: min,
  ...(max === undefined ? {} : { maximum: max }),
  description,
  ...(dflt === undefined ? {} : { default: dflt }),
  errorMessage: max === undefined ? `must be an integer >= ${min}` : `must be an integer ${min}..${max}`,
})
export const bool = (description: string, dflt: boolean): S => ({ type: 'boolean', description, default: dflt })
export const str = (description: string): S => ({ type: 'string', description })
export const oneOfWords = (values: string[], description: string, dflt?: string): S => ({
  type: 'string',
  enum: values,
  description,
  ...(dflt === undefined ? {} : { default: dflt }),
  errorMessage: `must be one of: ${values.join(', ')}`,
})
export const hostPort = (description: string): S => ({
  type: 'string',
  pattern: HOST_PORT_PATTERN,
  description,
  errorMessage: 'must be host:port (an IPv6 host in brackets: [::1]:8080)',
})
export const name = (description: string): S => ({
  type: 'string',
  pattern: NAME_PATTERN,
  description,
  errorMessage: 'must be a name of letters, digits, ".", "_" or "-", starting with a letter or digit',
})
export const obj = (description: string, properties: Record<string, S>, required: string[] = []): S => ({
  type: 'object',
  description,
  properties,
  ...(required.length > 0 ? { required } : {}),
  additionalProperties: false,
})
export const only = (kind: string): S => ({ not: {}, errorMessage: `only allowed ${kind}` })

/**
 * A path a route matches: only what a request's path can be, since requests are refused
 * otherwise (400): visible ASCII without "?", "#" or "\\", and no "." or ".." segment (literal
 * or %2e). Anything else could never match, which `tandem check` would not have shown.
 */
export function routePath (description: string): Record<string, unknown> {
  return {
    type: 'string',
    pattern: '^(?!.*(?:^|/)(?:\\.|%2[eE]){1,2}(?:/|$))/[\\x21\\x22\\x24-\\x3e\\x40-\\x5b\\x5d-\\x7e]*$',
    description,
    errorMessage: 'must be a path starting with "/", in visible ASCII, without "?", "#", "\\" or a "." or ".." segment (no request path has them)',
  }
}
