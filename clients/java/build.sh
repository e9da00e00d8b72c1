#!/usr/bin/env bash
# Builds the Java client of the warpmesh agent:
#   protoc --java_out (agent.proto) -> build/gen
#   javac --release 17 (generated + src/main/java) -> build/classes
#   jar -> build/warpmesh-client.jar
# Needs: javac/jar (JDK 17+), protoc (3.21), protobuf-java (PROTOBUF_JAR, default
# /usr/share/java/protobuf.jar). Idempotent: the jar is rebuilt only when a source changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../agent.proto"
protobuf_jar="${PROTOBUF_JAR:-/usr/share/java/protobuf.jar}"
build="$here/build"
jar_out="$build/warpmesh-client.jar"

fail() { echo "build.sh: $*" >&2; exit 1; }
command -v protoc >/dev/null || fail "protoc not found (Debian: apt-get install protobuf-compiler)"
command -v javac >/dev/null || fail "javac not found (Debian: apt-get install default-jdk-headless)"
command -v jar >/dev/null || fail "jar not found (Debian: apt-get install default-jdk-headless)"
[ -f "$protobuf_jar" ] || fail "PROTOBUF_JAR=$protobuf_jar does not exist (Debian: apt-get install libprotobuf-java)"
[ -f "$proto" ] || fail "$proto not found"

# Up to date? (every source older than the jar)
if [ -f "$jar_out" ] && [ -z "$(find "$proto" "$here/src/main" "$here/build.sh" -newer "$jar_out" -print -quit)" ]; then
  exit 0
fi

rm -rf "$build/gen" "$build/classes"
mkdir -p "$build/gen" "$build/classes"
protoc --proto_path="$(dirname "$proto")" --java_out="$build/gen" "$proto"
find "$build/gen" "$here/src/main/java" -name '*.java' > "$build/sources.txt"
javac --release 17 -encoding UTF-8 -Xlint:all,-serial,-options \
  -cp "$protobuf_jar" -d "$build/classes" @"$build/sources.txt"
rm -f "$jar_out.tmp"
jar --create --file "$jar_out.tmp" -C "$build/classes" .
mv "$jar_out.tmp" "$jar_out"
echo "build.sh: built $jar_out"
