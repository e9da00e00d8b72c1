#!/bin/sh
# Builds the agent's Java and PHP clients before the tests and bench:agent use
# them, once, so that test files running in parallel never build concurrently.
# A client whose toolchain is missing is skipped with a message (its tests then
# skip too); a build that fails with the toolchain present fails this script.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if command -v javac >/dev/null 2>&1 && command -v protoc >/dev/null 2>&1 && [ -f "${PROTOBUF_JAR:-/usr/share/java/protobuf.jar}" ]; then
  "$here/java/build.sh"
else
  echo "clients/build-all.sh: Java client not built (needs javac, protoc and protobuf-java)" >&2
fi
if command -v php >/dev/null 2>&1 && command -v protoc >/dev/null 2>&1; then
  "$here/php/build.sh"
else
  echo "clients/build-all.sh: PHP client not built (needs php and protoc)" >&2
fi
