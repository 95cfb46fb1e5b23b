#!/usr/bin/env bash
# Installs everything bizstream needs into .venv (Python >= 3.11) and checks for Java 17+ and Maven, which fetch and
# run the local Kafka broker. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# The dashboard's tests drive a real browser: Debian's Chromium and its WebDriver (nothing is downloaded at test time).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# Images on the CPU: Tesseract OCR with its English data; the fonts the sample memes are rendered in.
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr)
[ -d /usr/share/tesseract-ocr ] && ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata >/dev/null 2>&1 || need_apt+=(tesseract-ocr-eng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo ">> installing ${need_apt[*]} with apt-get"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q "${need_apt[@]}"
  else
    echo "bizstream needs Java 17+ and Maven on PATH to run Kafka (and Chromium + chromedriver for the dashboard's tests, Tesseract and DejaVu fonts for images: ${need_apt[*]}); install them and run this again" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$candidate; break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "bizstream needs Python 3.11 or newer" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo ">> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
# The stamp records what was installed, so a second run with unchanged pyproject.toml takes a second.
stamp=.venv/.bizstream-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo ">> installing bizstream and its dependencies (the first time downloads PyTorch: a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test,bench]"
  touch "$stamp"
fi
# pip's last words are often a setuptools warning about editable installs: say plainly that it worked.
echo ">> bizstream is installed in .venv (.venv/bin/bizstream --help)"
