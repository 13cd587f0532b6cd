#!/usr/bin/env bash
# Remake docs/source/_static/report.png, the picture of `lenet-fast report`: the top of the
# report page of a model, as headless Chromium shows it, quantised to 64 colours.
#
#   docs/report-screenshot.sh [MODEL.npz]     (default: trains lenet5-modern.npz first)
#
# Needs lenet_fast with the plot extra, MNIST ($LENET_FAST_DATA_DIR), Pillow and
# chromium (Debian: apt-get install chromium).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
model="${1:-}"
if [ -z "$model" ]; then
    model="$work/lenet5-modern.npz"
    lenet-fast train --no-progress --out "$model"
fi
lenet-fast report "$model" --out "$work/report.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1320,2060 \
    --screenshot="$work/shot.png" "file://$work/report.html" 2>/dev/null
python - "$work/shot.png" "$here/source/_static/report.png" <<'EOF'
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").quantize(64).save(sys.argv[2], optimize=True)
EOF
echo "wrote $here/source/_static/report.png ($(stat -c %s "$here/source/_static/report.png") bytes)"
