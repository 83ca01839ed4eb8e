#!/usr/bin/env bash
# The gettext catalogues (translations/<lang>/LC_MESSAGES/messages.po), with Babel's pybabel:
#   scripts/i18n.sh extract   sources -> translations/messages.pot
#   scripts/i18n.sh update    extract, then merge new and changed messages into every .po
#   scripts/i18n.sh compile   .po -> .mo (the web process also does this at start when stale)
# New messages arrive untranslated (and a changed one fuzzy): translate them in the Korean .po
# and clear the fuzzy flag; tests/test_i18n_catalogue.py fails until every message has Korean.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
POT=translations/messages.pot

extract() {
  "$PYBABEL" extract -F babel.cfg -k t -k N_ --add-location=file --sort-output --no-wrap \
    --project="Incheon control room" --copyright-holder="Incheon control room" -o "$POT" .
}

case "${1:-}" in
  extract) extract ;;
  update) extract
          "$PYBABEL" update -i "$POT" -d translations --no-wrap --ignore-obsolete --no-fuzzy-matching ;;
  compile) "$PYBABEL" compile -d translations --statistics ;;
  *) echo "usage: $0 extract|update|compile" >&2; exit 2 ;;
esac
