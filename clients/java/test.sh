#!/usr/bin/env bash
# Compiles and runs the JUnit 5 tests of the Java client (after build.sh).
# XML reports go to build/test-reports (or $1). Exit code: the console launcher's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
protobuf_jar="${PROTOBUF_JAR:-/usr/share/java/protobuf.jar}"
junit_jar="${JUNIT_CONSOLE_JAR:-/usr/share/java/junit-platform-console-standalone.jar}"
reports="${1:-$here/build/test-reports}"

fail() { echo "test.sh: $*" >&2; exit 1; }
[ -f "$junit_jar" ] || fail "JUNIT_CONSOLE_JAR=$junit_jar does not exist (Debian: apt-get install junit5)"
"$here/build.sh"

# The Debian standalone jar finds the Jupiter engine through its manifest Class-Path;
# the API jars are added explicitly for javac.
api_cp="$junit_jar"
for j in junit-jupiter-api junit-jupiter-params opentest4j apiguardian-api junit-platform-commons; do
  [ -f "/usr/share/java/$j.jar" ] && api_cp="$api_cp:/usr/share/java/$j.jar"
done

tclasses="$here/build/test-classes"
stamp="$tclasses/.compiled"
rm -rf "$reports"
mkdir -p "$reports"
# Recompile the tests only when a test source, the jar or this script changed.
if [ ! -f "$stamp" ] || [ -n "$(find "$here/src/test" "$here/build/warpmesh-client.jar" "$here/test.sh" -newer "$stamp" -print -quit)" ]; then
  rm -rf "$tclasses"
  mkdir -p "$tclasses"
  find "$here/src/test/java" -name '*.java' > "$here/build/test-sources.txt"
  javac --release 17 -encoding UTF-8 -nowarn \
    -cp "$here/build/warpmesh-client.jar:$protobuf_jar:$api_cp" -d "$tclasses" @"$here/build/test-sources.txt"
  touch "$stamp"
fi

java -jar "$junit_jar" \
  --class-path "$tclasses:$here/build/warpmesh-client.jar:$protobuf_jar" \
  --scan-class-path "$tclasses" \
  --reports-dir "$reports" \
  --disable-banner --disable-ansi-colors --details=tree --fail-if-no-tests
