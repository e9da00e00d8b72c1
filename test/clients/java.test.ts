/**
 * The Java client's JUnit 5 suite (clients/java), run from tap: builds the
 * jar (clients/java/build.sh), runs the JUnit console launcher
 * (clients/java/test.sh) with an XML report directory, and turns every
 * JUnit testcase into one tap assertion, so CI's "N passed, N failed" line
 * counts them. Skipped with a clear message when the JDK, protoc,
 * protobuf-java or JUnit 5 is missing (.ci/run installs them on Debian).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const javaDir = join(root, 'clients', 'java')
const protobufJar = process.env.PROTOBUF_JAR ?? '/usr/share/java/protobuf.jar'
const junitJar = process.env.JUNIT_CONSOLE_JAR ?? '/usr/share/java/junit-platform-console-standalone.jar'
/** JUnit testcases the suite holds at least (it fails if fewer ran: a lost test class shows). */
const EXPECTED_MIN_TESTS = 92
/** Bound on build + test run, ms (the run takes ~15 s on the 2-CPU VM). */
const RUN_TIMEOUT_MS = 180_000

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

function missingTools(): string | null {
  const missing: string[] = []
  for (const cmd of ['java', 'javac', 'jar', 'protoc']) if (!onPath(cmd)) missing.push(cmd)
  if (!existsSync(protobufJar)) missing.push(`${protobufJar} (PROTOBUF_JAR)`)
  if (!existsSync(junitJar)) missing.push(`${junitJar} (JUNIT_CONSOLE_JAR)`)
  return missing.length > 0
    ? `Java client tests skipped: missing ${missing.join(', ')} (Debian: default-jdk-headless protobuf-compiler libprotobuf-java junit5)`
    : null
}

/** One JUnit testcase from a report. */
interface TestCase {
  readonly name: string
  readonly failure: string | null
  readonly skipped: boolean
}

function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|quot|amp|lt|gt|apos);/g, (_m, e: string) => {
    if (e === 'quot') return '"'
    if (e === 'amp') return '&'
    if (e === 'lt') return '<'
    if (e === 'gt') return '>'
    if (e === 'apos') return "'"
    return String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10))
  })
}

function attribute(tag: string, name: string): string {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag)
  return m === null ? '' : decodeXml(m[1] as string)
}

/** Every testcase of the legacy JUnit XML reports in `dir`. */
function parseReports(dir: string): TestCase[] {
  const cases: TestCase[] = []
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.xml')).sort()) {
    const xml = readFileSync(join(dir, file), 'utf8')
    const re = /<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g
    for (let m = re.exec(xml); m !== null; m = re.exec(xml)) {
      const whole = m[0]
      const open = whole.slice(0, whole.indexOf('>') + 1)
      const body = m[2] ?? ''
      const cls = attribute(open, 'classname')
      const name = `${cls.replace(/^dev\.warpmesh\.agent\./, '')} ${attribute(open, 'name')}`
      const failed = /<(failure|error)\b([^>]*)>?/.exec(body)
      cases.push({
        name,
        failure: failed === null ? null : (attribute(failed[2] as string, 'message') || `JUnit ${failed[1] as string}`),
        skipped: /<skipped\b/.test(body),
      })
    }
  }
  return cases
}

const reason = missingTools()

t.test('Java client: JUnit 5 suite', { skip: reason ?? false }, async (t) => {
  const reports = mkdtempSync(join(tmpdir(), 'warpmesh-junit-'))
  t.teardown(() => rmSync(reports, { recursive: true, force: true }))
  const run = spawnSync(join(javaDir, 'test.sh'), [reports], {
    encoding: 'utf8',
    timeout: RUN_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
  })
  const output = `${run.stdout ?? ''}\n${run.stderr ?? ''}`
  const cases = existsSync(reports) ? parseReports(reports) : []
  if (cases.length === 0) {
    t.fail('no JUnit report: the build or the launcher failed', {
      status: run.status, signal: run.signal, error: run.error?.message, output: output.slice(-4000),
    })
    return
  }
  for (const c of cases) {
    if (c.skipped) t.skip(c.name)
    else if (c.failure === null) t.pass(c.name)
    else t.fail(c.name, { message: c.failure })
  }
  const failed = cases.filter((c) => c.failure !== null).length
  t.ok(cases.length >= EXPECTED_MIN_TESTS, `at least ${EXPECTED_MIN_TESTS} JUnit tests ran (${cases.length})`)
  t.equal(run.status, failed > 0 ? 1 : 0, 'the launcher\'s exit status agrees with the report', {
    output: run.status === 0 || failed > 0 ? undefined : output.slice(-4000),
  })
})
