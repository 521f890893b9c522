#!/usr/bin/env bash
# Installs everything the project needs, idempotently: Debian packages from requirements/apt.txt,
# .venv-rasa (the Rasa engine) from requirements/rasa.lock and .venv (our code, tests) from
# requirements/app.lock. A stamp per venv records what was installed; when nothing changed,
# a second run installs nothing and takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "setup: Python 3.11 is required (found $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

log() { printf 'setup: %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------------------------
missing=()
while read -r pkg; do
  [ -z "$pkg" ] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' requirements/apt.txt)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- virtual environments ----------------------------------------------------------------------
pyver=$("$PYTHON" -c 'import sys; print(sys.version)')

ensure_venv() {  # ensure_venv DIR STAMP INSTALL_COMMAND...
  local dir=$1 stamp=$2; shift 2
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$stamp" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  log "installing $dir (this takes a few minutes the first time)"
  [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
  rm -f "$dir/.installed"
  "$@"
  echo "$stamp" > "$dir/.installed"
  log "$dir ready"
}

PIP_FLAGS=(--disable-pip-version-check --no-input -q)

install_rasa() {
  .venv-rasa/bin/pip install "${PIP_FLAGS[@]}" --no-deps --ignore-requires-python -r requirements/rasa.lock
}
install_app() {
  .venv/bin/pip install "${PIP_FLAGS[@]}" --no-deps -r requirements/app.lock
  .venv/bin/pip install "${PIP_FLAGS[@]}" --no-deps --no-build-isolation -e .
}

ensure_venv .venv-rasa "$(echo "$pyver" | cat - requirements/rasa.lock | sha256sum | cut -c1-16)" install_rasa
ensure_venv .venv "$(echo "$pyver" | cat - requirements/app.lock pyproject.toml | sha256sum | cut -c1-16)" install_app
