#!/bin/sh
# Generates the PHP classes of the agent's client protocol from ../../agent.proto
# into gen/ (not committed). Needs protoc (Debian: protobuf-compiler).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proto_dir=$(cd "$here/../.." && pwd)
command -v protoc >/dev/null 2>&1 || { echo "build.sh: protoc not found (Debian: apt-get install protobuf-compiler)" >&2; exit 1; }
# Up to date? (gen/ newer than agent.proto and this script)
if [ -d "$here/gen" ] && [ -z "$(find "$proto_dir/agent.proto" "$here/build.sh" -newer "$here/gen" -print 2>/dev/null | head -n 1)" ]; then
  exit 0
fi
rm -rf "$here/gen.tmp"
mkdir -p "$here/gen.tmp"
protoc --php_out="$here/gen.tmp" -I "$proto_dir" "$proto_dir/agent.proto"
rm -rf "$here/gen"
mv "$here/gen.tmp" "$here/gen"
echo "build.sh: generated $(find "$here/gen" -name '*.php' | wc -l) classes in $here/gen"
