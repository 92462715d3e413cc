#!/usr/bin/env bash
# Turns Debian's `fortunes` (one file per category, entries separated by lines holding "%") into a
# text-classification folder: OUT/CATEGORY/N.txt, one entry per file (Keras's text_dataset_from_directory
# layout, as aclImdb). Usage: Scripts/fortunes-to-folder.sh OUT [CATEGORY...] (default: computers
# definitions people).
set -euo pipefail
out=${1:?usage: Scripts/fortunes-to-folder.sh OUT [CATEGORY...]}
shift
categories=("${@:-}")
[ -n "${categories[0]}" ] || categories=(computers definitions people)
source=/usr/share/games/fortunes
for category in "${categories[@]}"; do
    [ -f "$source/$category" ] || { echo "fortunes-to-folder: no category '$category' in $source (apt-get install fortunes)" >&2; exit 1; }
    mkdir -p "$out/$category"
    awk -v dir="$out/$category" 'BEGIN { n = 0; text = "" }
        /^%$/ { if (text != "") { file = sprintf("%s/%04d.txt", dir, n++); printf "%s", text > file; close(file) } text = ""; next }
        { text = text $0 "\n" }
        END { if (text != "") { file = sprintf("%s/%04d.txt", dir, n++); printf "%s", text > file; close(file) } }' "$source/$category"
done
echo "fortunes-to-folder: wrote $(find "$out" -name '*.txt' | wc -l) texts in ${#categories[@]} classes to $out"
