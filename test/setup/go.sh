#!/usr/bin/env bash
# Prints the path of a go command that runs the Go version go.mod asks for,
# installing what it takes on Debian 12 first. The Makefile builds and
# tests with it.
#
# 1. A go on PATH, in /usr/local/go or from Debian that is already recent
#    enough is used as it is.
# 2. Otherwise a go >= 1.21 fetches the pinned toolchain from the Go module
#    proxy (GOTOOLCHAIN=go<version>; the go command keeps it in its module
#    cache) and that toolchain's go is printed.
# 3. Without any go >= 1.21 (Debian 12's own golang is 1.19), Debian's
#    golang-1.23-go is installed from bookworm-backports under
#    /usr/lib/go-1.23 (nothing else on the machine changes) and step 2 runs.
# Everything but the final path goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "go.sh: $*" >&2; }

want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' go.mod)
[ -n "$want" ] || { say "no go directive in go.mod"; exit 1; }

# version_of prints a go command's own version without the "go" prefix:
# outside the module and with GOTOOLCHAIN=local, so that a go >= 1.21 does
# not report the toolchain it would switch to.
version_of() { (cd / && GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) | sed 's/^go//' || true; }
# at_least A B: version A >= version B.
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

candidates() {
  command -v go 2>/dev/null || true
  for g in /usr/local/go/bin/go $(ls -d /usr/lib/go-1.*/bin/go 2>/dev/null | sort -rV); do
    [ -x "$g" ] && echo "$g"
  done
}

bootstrap=""
for g in $(candidates); do
  v=$(version_of "$g")
  [ -n "$v" ] || continue
  if at_least "$v" "$want"; then
    echo "$g"
    exit 0
  fi
  if [ -z "$bootstrap" ] && at_least "$v" 1.21; then
    bootstrap=$g
  fi
done

if [ -z "$bootstrap" ]; then
  say "no go >= 1.21 here; installing golang-1.23-go from bookworm-backports"
  src=/etc/apt/sources.list.d/opengcs-bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends -t bookworm-backports golang-1.23-go >&2
  # The toolchain comes over https.
  dpkg-query -W -f='${Status}' ca-certificates 2>/dev/null | grep -q 'install ok installed' ||
    apt-get install -y -qq --no-install-recommends ca-certificates >&2
  bootstrap=/usr/lib/go-1.23/bin/go
fi

say "fetching go$want with $bootstrap ($(version_of "$bootstrap"))"
# Run outside the module: the bootstrap go need not understand go.mod.
goroot=$(cd / && GOTOOLCHAIN="go$want" GOFLAGS= "$bootstrap" env GOROOT)
g="$goroot/bin/go"
v=$(version_of "$g")
if [ -z "$v" ] || ! at_least "$v" "$want"; then
  say "$g reports version '$v', want $want"
  exit 1
fi
echo "$g"
