// The PHP client's own unit tests (clients/php/tests, PHPUnit), run from tap so that
// CI's "N passed, N failed" line counts each PHPUnit testcase as one assertion.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const PHP_DIR = join(ROOT, 'clients/php')
/** PHPUnit testcases the suite holds at least (raise it when adding tests). */
const EXPECTED_MIN_TESTCASES = 124
/** Bounds of the two steps, ms (the suite takes ~10 s on the 2-CPU VM). */
const BUILD_TIMEOUT_MS = 30_000
const PHPUNIT_TIMEOUT_MS = 50_000

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a program; a timeout kills that child (by its PID, through execFile). */
function run(file: string, args: string[], cwd: string, timeout: number): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      done({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

async function has(file: string, args: string[]): Promise<boolean> {
  const r = await run(file, args, ROOT, 10_000)
  return r.code === 0
}

interface TestCase {
  name: string
  failure: string | null
  skipped: boolean
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&amp;/g, '&')
}

/** The testcases of a PHPUnit JUnit log: name = Class::method (with its data set), failure text or null. */
function parseJUnit(xml: string): TestCase[] {
  const cases: TestCase[] = []
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) {
    const attrs = m[1]!
    const body = m[3] ?? ''
    const attr = (name: string): string => unescapeXml(new RegExp(`\\b${name}="([^"]*)"`).exec(attrs)?.[1] ?? '')
    const cls = attr('class') || attr('classname')
    const fail = /<(failure|error)\b[^>]*>([\s\S]*?)<\/\1>/.exec(body)
    cases.push({
      name: `${cls.replace(/^.*\\/, '')}::${attr('name')}`,
      failure: fail === null ? null : unescapeXml(fail[2]!).trim(),
      skipped: /<skipped\b/.test(body),
    })
  }
  return cases
}

const runtimeDir = process.env.WARPMESH_PROTOBUF_PHP ?? '/usr/share/php'
const missing: string[] = []
if (!(await has('php', ['--version']))) missing.push('php (Debian: php-cli)')
if (!(await has('protoc', ['--version']))) missing.push('protoc (Debian: protobuf-compiler)')
if (!(await has('phpunit', ['--version']))) missing.push('phpunit (Debian: phpunit)')
if (!existsSync(join(runtimeDir, 'Google/Protobuf/Internal/Message.php'))) {
  missing.push(`the pure-PHP protobuf runtime in ${runtimeDir} (Debian: php-google-protobuf, or set WARPMESH_PROTOBUF_PHP)`)
}

if (missing.length > 0) {
  t.plan(0, `PHP client tests skipped: missing ${missing.join(', ')}; .ci/run installs them`)
} else {
  const build = await run(join(PHP_DIR, 'build.sh'), [], PHP_DIR, BUILD_TIMEOUT_MS)
  t.equal(build.code, 0, 'clients/php/build.sh generates the protocol classes', { stderr: build.stderr })

  const dir = mkdtempSync(join(tmpdir(), 'wm-phpunit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = join(dir, 'junit.xml')
  const r = await run('phpunit', ['--log-junit', log], PHP_DIR, PHPUNIT_TIMEOUT_MS)
  const xml = existsSync(log) ? readFileSync(log, 'utf8') : ''
  const cases = parseJUnit(xml)
  for (const c of cases) {
    if (c.skipped) t.pass(c.name, { skip: 'skipped by PHPUnit' })
    else t.ok(c.failure === null, c.name, c.failure === null ? {} : { diagnostic: true, phpunit: c.failure })
  }
  t.ok(cases.length >= EXPECTED_MIN_TESTCASES, `PHPUnit ran ${cases.length} testcases, at least ${EXPECTED_MIN_TESTCASES}`, {
    stdout: r.stdout.slice(-4000),
    stderr: r.stderr.slice(-4000),
  })
  const failed = cases.filter((c) => c.failure !== null).length
  t.equal(r.code === 0, failed === 0, `phpunit's exit code (${r.code}) agrees with the ${failed} failed testcases`, {
    stdout: r.stdout.slice(-4000),
  })
}
