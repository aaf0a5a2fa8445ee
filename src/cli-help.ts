// The text of `tandem --help` and `tandem COMMAND --help`: what each command does, its options,
// the signals it handles, the environment it reads and its exit codes (spec "Command line").

const EXIT = `Exit codes:
  0  success (run: after a clean shutdown)
  1  runtime failure: a port in use, an unreadable file (one line on stderr)
  2  invalid config or command line (every problem, one per line: FILE:LINE:COL: path: message)`

const ENV = `Environment:
  \${NAME} and \${NAME:-default} in any config string take the environment's value; an unset
  \${NAME} without a default is a config error. A common use: token: \${TANDEM_ADMIN_TOKEN}.`

const SIGNALS = `Signals:
  SIGHUP           reload the config file (as POST /api/reload): an invalid file is refused and
                   the running config keeps serving
  SIGTERM, SIGINT  /readyz turns 503 at once; listeners keep accepting for shutdownDelay, then
                   stop; in-flight requests and streams get up to shutdownTimeout more; exit 0`

const COMMANDS: Record<string, string> = {
  run: `usage: tandem run -c FILE     (also: tandem -c FILE)

Runs the proxy from FILE until SIGTERM or SIGINT.

Options:
  -c, --config FILE  the YAML config (required)
  -h, --help         this help

${SIGNALS}

${ENV}

${EXIT}`,

  check: `usage: tandem check -c FILE

Validates FILE without starting anything (like nginx -t or haproxy -c) and prints "FILE: ok".
Every problem is reported at once, schema and cross-reference errors together.

Options:
  -c, --config FILE  the YAML config (required)
  -h, --help         this help

${ENV}

Exit codes:
  0  the file is valid
  1  the file cannot be read
  2  the file is invalid (every problem, one per line: FILE:LINE:COL: path: message)`,

  schema: `usage: tandem schema

Prints the config's JSON Schema (draft-07), for editors: examples/tandem.schema.json is a copy.

Exit codes:
  0  always`,

  demo: `usage: tandem demo

Starts three demo backends and a proxy over them (examples/demo.yaml), then prints the proxy,
admin and dashboard URLs. What \`npm start\` runs.

Environment (besides \${NAME} substitution):
  TANDEM_DEMO_PORT            the proxy's port (default 8080)
  TANDEM_DEMO_ADMIN_PORT      the admin API and dashboard port (default 9090)
  TANDEM_DEMO_BACKEND_PORT_1  the backends' ports (defaults 9101, 9102, 9103)
  TANDEM_DEMO_BACKEND_PORT_2
  TANDEM_DEMO_BACKEND_PORT_3

${SIGNALS}

${EXIT}`,
}

export const USAGE = `usage:
  tandem run -c FILE     run the proxy (also: tandem -c FILE)
  tandem check -c FILE   validate a config file
  tandem schema          print the config's JSON Schema
  tandem demo            run three demo backends and a proxy over them
  tandem --version`

const GENERAL = `tandem: a Layer-4/7 load-balancing proxy with active/standby pairs

${USAGE}

Options:
  -c, --config FILE  the YAML config (run, check)
  -h, --help         help; \`tandem COMMAND --help\` for one command
  -v, --version      print the version

${SIGNALS}

${ENV}

${EXIT}

Admin API, dashboard and metrics: on admin.listen when the config has an admin section
(GET / is the live dashboard, /metrics is Prometheus, /healthz and /readyz are probes).`

/** Help for `command`, or the general help when it is undefined or not a command. */
export function helpText (command?: string): string {
  return (command !== undefined ? COMMANDS[command] : undefined) ?? GENERAL
}
