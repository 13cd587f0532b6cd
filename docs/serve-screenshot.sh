#!/usr/bin/env bash
# Remake docs/source/_static/serve.png, the docs' picture of `lenet-fast serve`'s page: the browser
# test (tests/test_browser.py) draws the digits 0-9 in headless Chromium and keeps a
# screenshot of each; this keeps the 9 (C1 feature maps shown), cropped.
#
#   docs/serve-screenshot.sh
#
# Needs lenet_fast with the serve and browser extras, MNIST ($LENET_FAST_DATA_DIR) and
# Debian's chromium and chromium-driver.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
LENET_FAST_SCREENSHOTS="$work" python -m pytest -q -p no:cacheprovider "$here/../tests/test_browser.py"
python - "$work/page-9.png" "$here/source/_static/serve.png" <<'PY'
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").crop((20, 10, 870, 625)).quantize(64).save(sys.argv[2], optimize=True)
PY
echo "wrote $here/source/_static/serve.png ($(stat -c %s "$here/source/_static/serve.png") bytes)"
