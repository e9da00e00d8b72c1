import t from 'tap'
import { ENV_VARS } from '../../lib/config.js'
import { parseKeys } from '../../lib/security/keys.js'
import { cleanEnv, killAll, runCli, TEST_KEY } from './fixtures/cli.js'

t.teardown(killAll)

t.test('keygen prints one fresh valid key', async (t) => {
  const [a, b] = await Promise.all([runCli(['keygen'], cleanEnv()), runCli(['keygen'], cleanEnv())])
  for (const r of [a, b]) {
    t.equal(r.code, 0)
    t.equal(r.stderr, '')
    t.match(r.stdout, /^[0-9a-f]{64}\n$/)
    t.equal(parseKeys(r.stdout.trim(), 'WARPMESH_KEY').length, 1, 'parses as a key list of one')
    t.equal(parseKeys(r.stdout.trim(), 'WARPMESH_KEY')[0]?.length, 32)
  }
  t.not(a.stdout, b.stdout, 'fresh each time')
})

t.test('help lists every command and every environment variable', async (t) => {
  const [help, dashHelp, sub] = await Promise.all([
    runCli(['help'], cleanEnv()),
    runCli(['--help'], cleanEnv()),
    runCli(['send', '--help'], cleanEnv()),
  ])
  t.equal(help.code, 0)
  t.equal(dashHelp.stdout, help.stdout)
  t.equal(sub.stdout, help.stdout)
  for (const command of ['coordinator', 'peers', 'send', 'listen', 'agent', 'keygen', 'demo', 'help']) {
    t.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'), command)
  }
  for (const spec of ENV_VARS) {
    t.match(help.stdout, `  ${spec.name} (`, spec.name)
    t.match(help.stdout, `Expected: ${spec.expected}\n`, `${spec.name} expected form`)
  }
})

t.test('usage errors: exit 2, name the command or flag, no stack', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /a command is missing; expected one of coordinator, peers, send, listen, agent, keygen, demo, help/],
    [['frob'], /unknown command "frob"; expected one of coordinator/],
    [['coordinator', '--frob'], /unknown flag --frob for "warpmesh coordinator"; expected one of --id, --bind/],
    [['send', '--to'], /flag --to of "warpmesh send" needs a value/],
    [['send', 'hello'], /needs --to ID/],
    [['send', '--to', 'x'], /needs a MESSAGE/],
    [['send', '--to', 'x', '--reliable', '--unreliable', 'm'], /--reliable or --unreliable, not both/],
    [['send', '--to', 'x', '--channel', '16', 'm'], /--channel="16" is invalid: 16 is out of range; expected a whole number from 0 to 15/],
    [['send', '--to', 'x', '--timeout', 'soon', 'm'], /--timeout="soon" is invalid: expected a duration/],
    [['demo', '--duration', '-3'], /--duration/],
    [['keygen', 'extra'], /takes no arguments/],
    [['listen', '--json=yes'], /flag --json of "warpmesh listen" takes no value/],
  ]
  const results = await Promise.all(cases.map(([args]) => runCli(args, cleanEnv())))
  for (let i = 0; i < cases.length; i++) {
    const [args, want] = cases[i]!
    const r = results[i]!
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    t.match(r.stderr, want, args.join(' '))
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
    t.equal(r.stdout, '')
  }
})

t.test('a flag that overrides a variable is named in the error', async (t) => {
  const r = await runCli(['coordinator', '--bind', '1.2.3.4:70000'], cleanEnv({ WARPMESH_KEY: TEST_KEY, WARPMESH_BIND: '127.0.0.1:0' }))
  t.equal(r.code, 2)
  t.equal(r.stderr, 'warpmesh: --bind="1.2.3.4:70000" is invalid: port 70000 is out of range 0..65535; expected host:port, e.g. 0.0.0.0:7400\n')
})

t.test('no key and no WARPMESH_INSECURE: refuses with guidance', async (t) => {
  const results = await Promise.all([
    runCli(['coordinator', '--bind', '127.0.0.1:0'], cleanEnv()),
    runCli(['listen'], cleanEnv({ WARPMESH_ID: 'x' })),
    runCli(['coordinator'], cleanEnv({ WARPMESH_KEY: '  ' })),
  ])
  for (const r of results) {
    t.equal(r.code, 2)
    t.match(r.stderr, /^warpmesh: WARPMESH_KEY is not set: neither is WARPMESH_KEY_FILE, and WARPMESH_INSECURE is not set; expected a network key: run `warpmesh keygen` and set its output as WARPMESH_KEY/)
    t.match(r.stderr, 'WARPMESH_INSECURE=1 runs without authentication or encryption')
    t.notMatch(r.stderr, /\n\s+at /)
  }
})

// One bad value per variable; node-only variables through `listen`, agent-only
// ones through `agent`, the rest through `coordinator` (config is checked
// before any socket is opened).
const BAD: Record<string, { value: string; command: 'listen' | 'coordinator' | 'agent'; shown?: RegExp }> = {
  WARPMESH_ID: { value: 'bad id', command: 'coordinator' },
  WARPMESH_ROLE: { value: 'Proxy', command: 'listen' },
  WARPMESH_BIND: { value: '10.0.0.1', command: 'coordinator' },
  WARPMESH_ADVERTISE: { value: '0.0.0.0:7401', command: 'listen' },
  WARPMESH_COORDINATORS: { value: '127.0.0.1:99999', command: 'listen' },
  WARPMESH_META: { value: 'mode', command: 'listen' },
  WARPMESH_LOG: { value: 'loud', command: 'coordinator' },
  WARPMESH_METRICS: { value: 'localhost', command: 'coordinator' },
  WARPMESH_HEARTBEAT_MS: { value: '5', command: 'coordinator' },
  WARPMESH_LEASE_MISSES: { value: 'many', command: 'coordinator' },
  WARPMESH_WARMUP: { value: '-5', command: 'listen' },
  WARPMESH_MAX_DATAGRAM: { value: '575', command: 'listen' },
  WARPMESH_LOOPBACK_DATAGRAM: { value: '64k', command: 'coordinator' },
  // Key values are secrets: the message shows their length, never the value.
  WARPMESH_KEY: { value: 'deadbeef', command: 'coordinator', shown: /\[redacted: 8 characters\]/ },
  WARPMESH_KEY_FILE: { value: '/nonexistent/warpmesh.key', command: 'coordinator' },
  WARPMESH_INSECURE: { value: 'maybe', command: 'coordinator' },
  // Agent-only variables, through `agent`.
  WARPMESH_AGENT_SOCKET: { value: `/${'x'.repeat(200)}`, command: 'agent', shown: /is 201 bytes long/ },
  WARPMESH_AGENT_LISTEN: { value: '0.0.0.0:7500', command: 'agent' },
  WARPMESH_AGENT_TOKEN: { value: 'two words', command: 'agent', shown: /"<redacted>"/ },
  WARPMESH_AGENT_CLIENT_BUFFER: { value: '1k', command: 'agent' },
  WARPMESH_REQUEST_TIMEOUT_MS: { value: 'later', command: 'agent' },
}

t.test('every environment variable: a bad value exits 2 naming variable, value and expected form', async (t) => {
  t.same(Object.keys(BAD).sort(), ENV_VARS.map((s) => s.name).sort(), 'one case per variable')
  const specs = new Map(ENV_VARS.map((s) => [s.name, s]))
  const entries = Object.entries(BAD)
  const results = await Promise.all(
    entries.map(([name, { value, command }]) => {
      const base: Record<string, string> = name.startsWith('WARPMESH_KEY') || name === 'WARPMESH_INSECURE' ? {} : { WARPMESH_KEY: TEST_KEY }
      return runCli([command], cleanEnv({ WARPMESH_ID: 'n1', ...base, [name]: value }))
    }),
  )
  for (let i = 0; i < entries.length; i++) {
    const [name, { value, shown }] = entries[i]!
    const r = results[i]!
    const spec = specs.get(name)!
    t.equal(r.code, 2, `${name}: exit 2`)
    t.match(r.stderr, `warpmesh: ${name}=`, `${name}: named`)
    if (shown === undefined) t.match(r.stderr, JSON.stringify(value), `${name}: value shown`)
    else {
      t.match(r.stderr, shown, `${name}: value redacted`)
      t.notMatch(r.stderr, value, `${name}: secret not printed`)
    }
    // The key file's expected form is "a readable file of <key list form>".
    t.match(r.stderr, spec.expected, `${name}: expected form`)
    t.notMatch(r.stderr, /\n\s+at /, `${name}: no stack`)
    t.equal(r.stdout, '')
  }
})
