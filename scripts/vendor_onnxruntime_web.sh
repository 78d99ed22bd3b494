#!/usr/bin/env bash
# Vendors onnxruntime-web's wasm build into the demo's static folder, so the page can run the
# model in the browser with no CDN and no internet at run time. Run by `make install`.
#   scripts/vendor_onnxruntime_web.sh [VERSION]     (default below; ORT_WEB_VERSION overrides)
# Fetches the npm package tarball with `npm pack` (no node_modules, no install scripts run) and
# copies only the files the wasm backend needs (~15 MB): ort.wasm.min.mjs (the JS API),
# ort-wasm-simd-threaded.{mjs,wasm} (the runtime) and the licence. Skips with a note when npm is
# missing or the registry cannot be reached: the demo then works without the in-browser option.
set -euo pipefail
VERSION="${1:-${ORT_WEB_VERSION:-1.30.0}}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/src/picosam2/demo/static/vendor/onnxruntime-web"
FILES=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)

if [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$VERSION" ]; then
  ok=1
  for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || ok=0; done
  if [ "$ok" = 1 ]; then exit 0; fi
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "note: npm not found; the demo's in-browser (onnxruntime-web) option is disabled" >&2
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --silent --ignore-scripts "onnxruntime-web@$VERSION" >pack.log 2>&1); then
  echo "note: could not fetch onnxruntime-web@$VERSION with npm (offline?); the demo's in-browser option is disabled" >&2
  sed -n '1,5p' "$work/pack.log" >&2 || true
  exit 0
fi
tar -xzf "$work"/onnxruntime-web-*.tgz -C "$work"
stage="$work/stage"
mkdir -p "$stage"
for f in "${FILES[@]}"; do
  if [ ! -s "$work/package/dist/$f" ]; then
    echo "error: onnxruntime-web@$VERSION has no dist/$f; pick another version" >&2
    exit 1
  fi
  cp "$work/package/dist/$f" "$stage/"
done
license="$(cd "$work/package" && node -e 'process.stdout.write(require("./package.json").license || "")' 2>/dev/null || echo MIT)"
printf 'onnxruntime-web %s from the npm registry (https://www.npmjs.com/package/onnxruntime-web)\nCopyright (c) Microsoft Corporation. Licence: %s (https://github.com/microsoft/onnxruntime/blob/main/LICENSE)\n' \
  "$VERSION" "${license:-MIT}" >"$stage/NOTICE.txt"
echo "$VERSION" >"$stage/VERSION"
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.tmp" && mv "$stage" "$DEST.tmp"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "vendored onnxruntime-web $VERSION into ${DEST#"$ROOT"/}"
