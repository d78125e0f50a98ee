#!/usr/bin/env bash
# Prints the first python3 that can import matplotlib, for scripts/plot.py: PATH's python3 may be a pyenv or
# venv one without it, where Debian's (/usr/bin/python3, with python3-matplotlib) has it. Exits 1, printing
# nothing, when there is none. Used by scripts/demo.sh and tests/plots/test_plot.sh.
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import matplotlib" >/dev/null 2>&1; then
    echo "$candidate"
    exit 0
  fi
done
exit 1
