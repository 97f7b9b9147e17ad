#!/usr/bin/env bash
# Idempotent set-up of mmcora's development environment in <repo>/.venv.
#
#   bash tools/setup_env.sh            # create or refresh .venv, then exit 0
#
# Steps: check Python and compiler, create the venv, install the build tools, torch and
# torchvision from requirements/torch.txt, mmcv 2.1.0 built from source (cached as a wheel
# outside the repo, keyed by mmcv, torch, Python and platform), the runtime and test
# requirements, then mmcora itself in editable mode. A stamp of the requirement files makes a
# second run on a warm machine a few seconds long.
#
# Environment:
#   MMCORA_PYTHON      interpreter used to create the venv (default: python3)
#   MMCORA_VENV        venv directory (default: <repo>/.venv)
#   MMCORA_CACHE_DIR   wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/mmcora)
#   MMCORA_FORCE=1     ignore the stamp and re-run every pip step
#   MAX_JOBS           parallel compile jobs for mmcv (default: number of cores)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMCORA_VENV:-$REPO/.venv}"
PYTHON="${MMCORA_PYTHON:-python3}"
CACHE_DIR="${MMCORA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mmcora}"
MMCV_VERSION="$(sed -n 's/^mmcv==\([0-9.]*\).*/\1/p' "$REPO/requirements/mminstall.txt")"

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. interpreter and compiler --------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 ||
    die "no '$PYTHON' on PATH. Install Python 3.10-3.12 or point MMCORA_PYTHON at one."
"$PYTHON" - <<'PY' || die "Python 3.10-3.12 is required (found $("$PYTHON" --version 2>&1)). Set MMCORA_PYTHON=/path/to/python3.11."
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
PY
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
    die "'$PYTHON' lacks the venv/ensurepip modules. On Debian/Ubuntu: apt-get install python3-venv."

# --- 2. venv ------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv at $VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create a venv at $VENV (is the disk full or read-only?)"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

# The stamp covers every input of the set-up; when it matches and the key imports work, the
# environment is current and nothing is installed.
stamp_of() {
    cat "$REPO"/requirements/*.txt "$REPO/setup.py" "$REPO/tools/setup_env.sh" 2>/dev/null |
        "$PY" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}
STAMP_FILE="$VENV/.mmcora-setup-stamp"
STAMP="$(stamp_of)"
# Run from / so that the repository's own mmcora/ never stands in for an installed one.
installed_ok() {
    (cd / && "$PY" -c 'import importlib.metadata as m, mmcv._ext, mmseg.models, mmcora, mim
import os.path as osp, sysconfig
m.version("mmcora")
assert osp.isdir(osp.join(sysconfig.get_paths()["purelib"], "mmcora", ".mim", "configs"))')
}
if [ "${MMCORA_FORCE:-0}" != 1 ] && [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$STAMP" ] &&
    installed_ok >/dev/null 2>&1; then
    log "environment is up to date ($VENV)"
    exit 0
fi
rm -f "$STAMP_FILE"

# --- 3. build tools, torch ------------------------------------------------------------------
log "installing build tools"
"${PIP[@]}" install -q --upgrade pip >/dev/null 2>&1 || true
"${PIP[@]}" install -q -r "$REPO/requirements/build.txt" ||
    die "could not install requirements/build.txt; check that PyPI is reachable (pip config list)."
log "installing torch and torchvision ($(grep -v '^#' "$REPO/requirements/torch.txt" | xargs))"
"${PIP[@]}" install -q -r "$REPO/requirements/torch.txt" ||
    die "could not install requirements/torch.txt. torch and torchvision must come as a matching pair."
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')" ||
    die "torch is installed but does not import; remove $VENV and run again."

# --- 4. mmcv with compiled ops, cached -----------------------------------------------------
mmcv_ok() { "$PY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; }
if ! mmcv_ok; then
    TAG="$("$PY" -c 'import sys, platform; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")')"
    FLAVOUR=cpu; [ "${FORCE_CUDA:-0}" = 1 ] && FLAVOUR="cuda${TORCH_CUDA_ARCH_LIST:-native}"
    FLAVOUR="${FLAVOUR// /_}"
    KEY="mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$TAG-$FLAVOUR"
    WHEEL_DIR="$CACHE_DIR/wheels/$KEY"
    if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
        command -v g++ >/dev/null 2>&1 ||
            die "no C++ compiler (g++) found; mmcv $MMCV_VERSION must be compiled. On Debian/Ubuntu: apt-get install g++."
        log "building mmcv $MMCV_VERSION with ops against torch $TORCH_VERSION (about 10 minutes on 2 cores)"
        BUILD_DIR="$(mktemp -d)"
        trap 'rm -rf "$BUILD_DIR"' EXIT
        # pip's own wheel cache ignores the torch a wheel was compiled against: --no-cache-dir.
        # torch >= 2.14 headers need C++20 while mmcv 2.1.0 passes -std=c++17: a wrapper swaps it.
        # The name contains "g++" so torch's compiler check accepts it.
        cat >"$BUILD_DIR/g++-cxx20" <<'SH'
#!/usr/bin/env bash
args=()
for a in "$@"; do
    if [ "$a" = "-std=c++17" ] || [ "$a" = "-std=c++14" ]; then args+=("-std=c++20"); else args+=("$a"); fi
done
exec "${MMCORA_REAL_CXX:-g++}" "${args[@]}"
SH
        chmod +x "$BUILD_DIR/g++-cxx20"
        if ! CXX="$BUILD_DIR/g++-cxx20" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "${PIP[@]}" wheel --no-cache-dir --no-build-isolation --no-deps --no-binary mmcv \
            -w "$BUILD_DIR/out" "mmcv==$MMCV_VERSION" >"$BUILD_DIR/build.log" 2>&1; then
            mkdir -p "$CACHE_DIR"
            cp "$BUILD_DIR/build.log" "$CACHE_DIR/mmcv-build-failed.log"
            tail -n 30 "$BUILD_DIR/build.log" >&2
            die "building mmcv $MMCV_VERSION failed; full log: $CACHE_DIR/mmcv-build-failed.log. \
Check g++ >= 10 (C++20), free disk space, and that requirements/build.txt is installed."
        fi
        mkdir -p "$WHEEL_DIR"
        # Move into place only when complete, so an interrupted build never leaves a bad cache.
        cp "$BUILD_DIR"/out/mmcv-*.whl "$WHEEL_DIR/.tmp.whl"
        mv "$WHEEL_DIR/.tmp.whl" "$WHEEL_DIR/$(basename "$BUILD_DIR"/out/mmcv-*.whl)"
        log "cached $(ls "$WHEEL_DIR"/mmcv-*.whl)"
    else
        log "using cached $(ls "$WHEEL_DIR"/mmcv-*.whl)"
    fi
    "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEEL_DIR"/mmcv-*.whl
    "${PIP[@]}" install -q "$WHEEL_DIR"/mmcv-*.whl  # its own dependencies
    mmcv_ok || die "mmcv $MMCV_VERSION was installed but mmcv._ext does not import; remove $WHEEL_DIR and run again."
fi

# --- 5. runtime and test requirements, mmcora ---------------------------------------------
log "installing runtime and test requirements"
"${PIP[@]}" install -q -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt" ||
    die "could not install requirements/runtime.txt or tests.txt (see pip's message above)."
log "installing mmcora (editable)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$REPO" ||
    die "pip install -e $REPO failed (see pip's message above)."
# mim (0.3.9) looks for a package at <site-packages>/<name> (pkg_resources' location), which
# a PEP 660 editable install never creates, so `mim train mmcora` would not find .mim. Link
# the source package there and list the link in the RECORD, so that `pip uninstall` or a later
# `pip install .` removes the link (never the sources it points to).
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
[ -e "$SITE/mmcora" ] || ln -s "$REPO/mmcora" "$SITE/mmcora"
RECORD="$(ls -d "$SITE"/mmcora-*.dist-info | head -n 1)/RECORD"
grep -qx 'mmcora,,' "$RECORD" || echo 'mmcora,,' >>"$RECORD"
installed_ok ||
    die "the environment is installed but 'import mmcora' or its .mim files fail (see above)."

echo "$STAMP" >"$STAMP_FILE"
log "ready: $VENV (torch $TORCH_VERSION, mmcv $MMCV_VERSION)"
