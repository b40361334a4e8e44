#!/usr/bin/env bash
# Regenerates the embedded demo data sets under data/ from Debian's fortune
# cookie files:
#   data/fortunes/c4-{train,validation}.00000-of-00001.json.gz  (pretraining)
#   data/demo-glue/SST-2/{train,dev}.tsv                        (fine-tuning)
# plus the license files. The output is deterministic for a given input.
#
# Usage: scripts/make-demo-data.sh [FORTUNES_DIR]
#   FORTUNES_DIR defaults to /usr/share/games/fortunes
#   (Debian/Ubuntu: apt-get install -y fortunes fortunes-min).
set -euo pipefail

cd "$(dirname "$0")/.."
src="${1:-/usr/share/games/fortunes}"

if [ ! -f "$src/computers" ] || [ ! -f "$src/fortunes" ]; then
	echo "make-demo-data: no fortune files in $src" >&2
	echo "  install them with: apt-get install -y fortunes fortunes-min" >&2
	exit 1
fi

go run ./scripts/mkdemo -src "$src" -out data

copyright=/usr/share/doc/fortunes/copyright
if [ -f "$copyright" ]; then
	for d in data/fortunes data/demo-glue; do
		{
			echo "The texts in this directory are derived from the fortune cookie files of"
			echo "Debian's fortunes and fortunes-min packages (source package fortune-mod),"
			echo "whose copyright file ($copyright) follows."
			echo
			cat "$copyright"
		} >"$d/LICENSE"
	done
else
	echo "make-demo-data: $copyright not found; keeping the existing LICENSE files" >&2
fi

for f in data/fortunes/*.json.gz data/demo-glue/SST-2/*.tsv; do
	printf '%8d  %s\n' "$(wc -c <"$f")" "$f"
done
