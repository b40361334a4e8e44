#!/usr/bin/env bash
# Regenerates hf/tokenizer/unicode16_tables.go, the Unicode character tables that the
# tokenizer's pre-tokenizers use (General_Category, Script, Other_Alphabetic, White_Space,
# lowercase mappings), from the npm package @unicode/unicode-$UCD_VERSION (node-unicode's
# packaging of the Unicode Character Database). Go's own unicode package is Unicode 15.0;
# Hugging Face tokenizers' regex engine (Oniguruma) and Rust's char methods know 16.0.
#   scripts/gen-unicode-tables.sh
# Needs npm and node (the package is installed into a temporary directory from the npm
# registry that npm's configuration names) and go. UCD_VERSION / UCD_NPM_VERSION pick
# another data version; the output file name carries the major version.
set -euo pipefail
cd "$(dirname "$0")/.."
ucd=${UCD_VERSION:-16.0.0}
pkgver=${UCD_NPM_VERSION:-2.0.7}
out=hf/tokenizer/unicode${ucd%%.*}_tables.go
command -v npm >/dev/null || { echo "gen-unicode-tables: npm is not installed" >&2; exit 1; }
command -v node >/dev/null || { echo "gen-unicode-tables: node is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "gen-unicode-tables: installing @unicode/unicode-$ucd@$pkgver into $tmp" >&2
npm install --prefix "$tmp" --no-save --no-audit --no-fund --loglevel=error "@unicode/unicode-$ucd@$pkgver" >&2
pkg="$tmp/node_modules/@unicode/unicode-$ucd"
# Dump the ranges (begin, end exclusive) and case mappings as JSON for the Go generator.
cat > "$tmp/dump.mjs" <<'JS'
import { readdirSync, existsSync } from 'node:fs';
const [pkg, ucd, npmver] = process.argv.slice(2);
const dirs = (sub) => readdirSync(`${pkg}/${sub}`, { withFileTypes: true })
  .filter((d) => d.isDirectory()).map((d) => d.name).sort();
const ranges = async (sub, name) =>
  (await import(`${pkg}/${sub}/${name}/ranges.mjs`)).default.map((r) => [r.begin, r.end]);
const out = { version: ucd, package: `@unicode/unicode-${ucd}@${npmver}`, categories: {}, scripts: {}, properties: {} };
for (const d of dirs('General_Category')) out.categories[d] = await ranges('General_Category', d);
for (const d of dirs('Script')) out.scripts[d] = await ranges('Script', d);
for (const d of ['Other_Alphabetic', 'White_Space']) out.properties[d] = await ranges('Binary_Property', d);
out.lower = [...(await import(`${pkg}/Simple_Case_Mapping/Lowercase/code-points.mjs`)).default.entries()];
const special = `${pkg}/Special_Casing/Lowercase/code-points.mjs`;
out.lowerSpecial = existsSync(special) ? [...(await import(special)).default.entries()] : [];
process.stdout.write(JSON.stringify(out));
JS
node "$tmp/dump.mjs" "$pkg" "$ucd" "$pkgver" > "$tmp/ucd.json"
go run ./scripts/gen-unicode-tables "$tmp/ucd.json" > "$tmp/tables.go"
mv "$tmp/tables.go" "$out"
echo "gen-unicode-tables: wrote $out (Unicode $ucd)" >&2
