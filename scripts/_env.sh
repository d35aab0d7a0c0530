# Shared set-up for scripts/*: a project .venv with labelcheck installed.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

ensure_venv() {  # $1: pip extras, e.g. "" or "[dev]"
  local extras="${1:-}"
  if [ ! -x "$PY" ]; then
    echo "labelcheck: creating $VENV" >&2
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
  fi
  local stamp="$VENV/.installed$extras"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  # A current [dev] install includes the plain one.
  if [ -z "$extras" ] && [ "$(cat "$VENV/.installed[dev]" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "labelcheck: installing the package$extras into .venv" >&2
    "$PY" -m pip install -q -e ".$extras"
    echo "$want" > "$stamp"
  fi
}
