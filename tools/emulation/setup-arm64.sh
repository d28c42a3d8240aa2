#!/usr/bin/env bash
# Build an arm64 (aarch64) user-mode emulation environment: Debian's python3.11 for arm64 plus the
# aarch64 manylinux wheels of numpy and onnxruntime, run by qemu-aarch64 (Debian package qemu-user).
#
#     bash setup-arm64.sh CACHE_DIR            e.g.  bash setup-arm64.sh .cache/emulation/arm64
#
# Then run any script that needs only Python 3 + numpy + onnxruntime on an emulated arm64 CPU:
#
#     CACHE_DIR/bin/python-arm64 --cpu cortex-a53 script.py ARGS...     (no dot product: ARMv8.0)
#     CACHE_DIR/bin/python-arm64 --cpu neoverse-n1 script.py ARGS...    (dotprod, ARMv8.2)
#     CACHE_DIR/bin/python-arm64 --cpu max script.py ARGS...            (dotprod, i8mm, SVE, SME)
#
# (or ARM64_CPU=NAME instead of --cpu; `CACHE_DIR/bin/python-arm64 --list-cpus` lists the models).
# Without the wrapper (e.g. from a subprocess runner) the same is
#
#     qemu-aarch64 -cpu NAME -L CACHE_DIR/cpu/NAME CACHE_DIR/cpu/NAME/usr/bin/python3 script.py ARGS...
#
# (the program path must be the host path: qemu opens the main binary without the -L prefix). The bare
# CACHE_DIR/sysroot carries the /proc/cpuinfo of qemu's default model, `max`, for runs without -cpu.
#
# Idempotent: a finished build is recorded in CACHE_DIR/.stamp and a rerun with the same pins returns at
# once; an interrupted or outdated build is redone from scratch. Safe to run concurrently (flock).
# Needs: root only to apt-get install qemu-user when qemu-aarch64 is missing; apt-get, dpkg-deb, flock and
# a pip (python3 -m pip, or $PIP=path/to/pip) on the host. Downloads only from Debian's mirror and PyPI:
# ~9 MB of arm64 package indices, ~16 MB of .deb files, ~39 MB of wheels.
#
# Why each piece:
# - The interpreter and its shared libraries come from Debian (signed archive, versioned packages); they
#   are resolved with a private apt configuration (state, cache and sources under CACHE_DIR, arm64 only)
#   so the host's dpkg architectures and apt lists are left untouched, then unpacked with dpkg-deb -x.
# - numpy and onnxruntime are the aarch64 cp311 wheels from PyPI, pinned to the x86 venv's versions
#   and to their sha256.
# - onnxruntime (pytorch/cpuinfo) parses /proc/cpuinfo at import; under qemu-user 7.x that file is the
#   x86 host's and cpuinfo crashes (SIGSEGV in `import onnxruntime`). qemu-aarch64 -L PREFIX looks up every
#   absolute path in PREFIX first, so each CPU model gets a tiny root CACHE_DIR/cpu/NAME (symlinks into the
#   shared sysroot) with its own proc/cpuinfo, written from the MIDR_EL1 and AT_HWCAP/AT_HWCAP2 that the
#   emulated CPU itself reports. Kernel selection (dotprod, i8mm) follows those hwcaps, as on hardware.
set -euo pipefail

usage() { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
[[ $# -eq 1 && -n $1 ]] || usage

# ---- pins ------------------------------------------------------------------------------------------
SUITE=bookworm          # Debian 12: python3.11, glibc 2.36 (>= manylinux_2_28)
PYVER=3.11
NUMPY_VERSION=2.4.6
NUMPY_SHA256=0ab0a9c4ffb1a6d95ef519fe4247dba8eb6b18ad93999f76b7f657039acabd47
ORT_VERSION=1.32.0
ORT_SHA256=2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c
WHEEL_PLATFORM=manylinux_2_28_aarch64
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
DEB_PACKAGES=(python${PYVER}-minimal libpython${PYVER}-stdlib libstdc++6 libgcc-s1)
STAMP="arm64-emulation v2 ${SUITE} python${PYVER} numpy==${NUMPY_VERSION} onnxruntime==${ORT_VERSION}"

mkdir -p "$1"
CACHE=$(cd "$1" && pwd)
exec 9>"$CACHE/.lock"
flock 9

log() { printf '[setup-arm64] %s\n' "$*" >&2; }

if [[ -f $CACHE/.stamp && "$(cat "$CACHE/.stamp")" == "$STAMP" && -x $CACHE/bin/python-arm64 ]]; then
    log "up to date: $CACHE ($STAMP)"
    exit 0
fi
start=$(date +%s)

# ---- host tools --------------------------------------------------------------------------------------
if ! command -v qemu-aarch64 >/dev/null; then
    [[ $(id -u) -eq 0 ]] || { log "qemu-aarch64 missing: apt-get install qemu-user (as root)"; exit 1; }
    log "installing qemu-user"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
fi
for tool in apt-get dpkg-deb sha256sum; do
    command -v "$tool" >/dev/null || { log "missing host tool: $tool"; exit 1; }
done
if [[ -n ${PIP:-} ]]; then
    read -r -a pip_cmd <<<"$PIP"
elif python3 -m pip --version >/dev/null 2>&1; then
    pip_cmd=(python3 -m pip)
else
    log "no pip on the host: set PIP=/path/to/venv/bin/pip or apt-get install python3-pip"; exit 1
fi
# a host Python only unzips the wheels: $PYTHON, else python3, else the interpreter beside $PIP
HOST_PY=${PYTHON:-$(command -v python3 || true)}
if [[ -z $HOST_PY && -n ${PIP:-} && -x $(dirname "${pip_cmd[0]}")/python ]]; then HOST_PY=$(dirname "${pip_cmd[0]}")/python; fi
[[ -n $HOST_PY ]] || { log "no host python3 (set PYTHON=...)"; exit 1; }

rm -f "$CACHE/.stamp"
DL=$CACHE/downloads
mkdir -p "$DL/debs" "$DL/wheels"

# ---- Debian arm64 packages through a private apt configuration --------------------------------------
APT=$CACHE/apt
rm -rf "$APT"
mkdir -p "$APT/etc/apt.conf.d" "$APT/etc/preferences.d" "$APT/etc/sources.list.d" \
         "$APT/state/lists/partial" "$APT/cache/archives/partial"
: >"$APT/state/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f $keyring ]] || { log "missing $keyring (Debian package debian-archive-keyring)"; exit 1; }
cat >"$APT/etc/sources.list" <<EOF
deb [arch=arm64 signed-by=$keyring] $DEBIAN_MIRROR $SUITE main
deb [arch=arm64 signed-by=$keyring] $DEBIAN_MIRROR $SUITE-updates main
deb [arch=arm64 signed-by=$keyring] $DEBIAN_SECURITY_MIRROR $SUITE-security main
EOF
cat >"$APT/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Dir::State "$APT/state";
Dir::State::status "$APT/state/status";
Dir::Cache "$APT/cache";
Dir::Cache::archives "$DL/debs";
Dir::Etc "$APT/etc";
Dir::Etc::sourcelist "$APT/etc/sources.list";
Dir::Etc::sourceparts "$APT/etc/sources.list.d";
Dir::Etc::parts "$APT/etc/apt.conf.d";
Dir::Etc::preferencesparts "$APT/etc/preferences.d";
Debug::NoLocking "true";
EOF
mkdir -p "$DL/debs/partial"
export APT_CONFIG=$APT/apt.conf
log "apt-get update (arm64 indices of $SUITE, $SUITE-updates, $SUITE-security)"
apt-get -q update | { grep -E "^(Fetched|E:|W:)" || true; } >&2
log "resolving and downloading ${DEB_PACKAGES[*]} (arm64) with their dependencies"
# Resolve against an empty dpkg status: the full dependency closure is fetched (signed indices, sha256
# of each .deb checked by apt). Packages already in downloads/debs are reused.
mapfile -t debs < <(apt-get install -s -y "${DEB_PACKAGES[@]}" | awk '/^Inst /{print $2}')
apt-get -q install -d -y "${DEB_PACKAGES[@]}" | { grep -E "^(Fetched|E:|W:)" || true; } >&2
unset APT_CONFIG

# ---- wheels from PyPI, pinned by version and sha256 ---------------------------------------------------
cat >"$DL/wheels/requirements.txt" <<EOF
numpy==$NUMPY_VERSION --hash=sha256:$NUMPY_SHA256
onnxruntime==$ORT_VERSION --hash=sha256:$ORT_SHA256
EOF
log "pip download numpy==$NUMPY_VERSION onnxruntime==$ORT_VERSION ($WHEEL_PLATFORM, cp${PYVER/./})"
PIP_DISABLE_PIP_VERSION_CHECK=1 "${pip_cmd[@]}" download -q --no-deps --only-binary=:all: \
    --platform "$WHEEL_PLATFORM" --python-version "$PYVER" --implementation cp --abi "cp${PYVER/./}" \
    --require-hashes -r "$DL/wheels/requirements.txt" -d "$DL/wheels"

# ---- sysroot ------------------------------------------------------------------------------------------
NEW=$CACHE/sysroot.new
rm -rf "$NEW"
mkdir -p "$NEW"
log "unpacking ${#debs[@]} .deb files into the sysroot"
manifest=$CACHE/MANIFEST.new
{
    echo "# $STAMP"
    echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $DEBIAN_MIRROR ($SUITE, arm64)"
} >"$manifest"
for pkg in "${debs[@]}"; do
    deb=$(shopt -s nullglob; printf '%s\n' "$DL/debs/${pkg}"_*_{arm64,all}.deb | sort -V | tail -n 1)
    [[ -n $deb ]] || { log "downloaded .deb for $pkg not found"; exit 1; }
    dpkg-deb -x "$deb" "$NEW"
    echo "deb $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) $(dpkg-deb -f "$deb" Architecture)" >>"$manifest"
done
rm -rf "$NEW/usr/share/doc" "$NEW/usr/share/man" "$NEW/usr/share/locale" "$NEW/usr/share/info" \
       "$NEW/usr/share/lintian"
# an empty ld.so.cache so that the dynamic loader never reads the host's (x86) cache
: >"$NEW/etc/ld.so.cache"
SITE=$NEW/usr/local/lib/python$PYVER/dist-packages
mkdir -p "$SITE"
for whl in "$DL/wheels"/numpy-"$NUMPY_VERSION"-*.whl "$DL/wheels"/onnxruntime-"$ORT_VERSION"-*.whl; do
    echo "wheel $(basename "$whl") sha256:$(sha256sum "$whl" | cut -d' ' -f1)" >>"$manifest"
    "$HOST_PY" - "$whl" "$SITE" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    # platlib wheels: the archive root is site-packages; skip console scripts (*.data/scripts)
    z.extractall(sys.argv[2], [n for n in z.namelist() if ".data/" not in n])
EOF
done
[[ -x $NEW/usr/bin/python$PYVER ]] || { log "python$PYVER missing from the sysroot"; exit 1; }
# `/usr/bin/python3` as in a Debian system, and empty site dirs that shadow the host's (qemu -L falls back
# to the host's file for any path the sysroot lacks) when the guest path /usr/bin/python3 is run
ln -sf "python$PYVER" "$NEW/usr/bin/python3"
mkdir -p "$NEW/usr/lib/python3/dist-packages" "$NEW/usr/lib/python$PYVER/dist-packages"

# ---- per-CPU roots: symlinks into the sysroot + that CPU's /proc/cpuinfo -------------------------------
CPUS_NEW=$CACHE/cpu.new
rm -rf "$CPUS_NEW"
mkdir -p "$CPUS_NEW"
cat >"$CACHE/cpuprobe.py" <<'EOF'
# Print MIDR_EL1, AT_HWCAP and AT_HWCAP2 of the CPU this runs on (aarch64 Linux; EL0 reads of MIDR_EL1
# are emulated by Linux and by qemu-user).
import ctypes, mmap, struct
libc = ctypes.CDLL(None)
libc.getauxval.restype = ctypes.c_ulong
libc.getauxval.argtypes = [ctypes.c_ulong]
code = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
code.write(struct.pack("<II", 0xD5380000, 0xD65F03C0))  # mrs x0, midr_el1 ; ret
midr = ctypes.CFUNCTYPE(ctypes.c_uint64)(ctypes.addressof(ctypes.c_char.from_buffer(code)))()
print(f"MIDR={midr:#x} HWCAP={libc.getauxval(16):#x} HWCAP2={libc.getauxval(26):#x}")
EOF
mapfile -t cpus < <(qemu-aarch64 -cpu help | awk 'NR > 1 && NF == 1 {print $1}')
for cpu in "${cpus[@]}"; do
    r=$CPUS_NEW/$cpu
    mkdir -p "$r/proc"
    for d in "$NEW"/*; do
        [[ $(basename "$d") == proc ]] || ln -s "../../sysroot/$(basename "$d")" "$r/$(basename "$d")"
    done
    if ! env -i "$(command -v qemu-aarch64)" -cpu "$cpu" -L "$NEW" "$NEW/usr/bin/python$PYVER" -I -S "$CACHE/cpuprobe.py" \
            >"$r/cpu.env" 2>/dev/null; then
        log "cannot probe cpu model $cpu; skipped"; rm -rf "$r"; continue
    fi
done

# ---- the runner ------------------------------------------------------------------------------------------
mkdir -p "$CACHE/bin"
cat >"$CACHE/bin/python-arm64.new" <<'RUNNER'
#!/usr/bin/env bash
# python3.11 for arm64 (numpy, onnxruntime) under qemu-aarch64; written by setup-arm64.sh.
#   python-arm64 [--cpu NAME] ARGS...   run python on CPU model NAME (default: $ARM64_CPU, else cortex-a53)
#   python-arm64 --list-cpus            the CPU models qemu-aarch64 offers
#   python-arm64 --prepare              (re)write every model's /proc/cpuinfo for this host's CPU ids
set -euo pipefail
cache=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

# /proc/cpuinfo as Linux/arm64 prints it for the CPU model of ROOT (ROOT/cpu.env: MIDR, HWCAP, HWCAP2),
# one entry per CPU id of this host; ORT's cpuinfo reads it at import (the host's x86 file crashes it).
write_cpuinfo() {
    local root=$1 possible MIDR HWCAP HWCAP2 i id lo hi range tmp
    possible=$(cat /sys/devices/system/cpu/possible 2>/dev/null || echo 0)
    [[ "$(cat "$root/proc/possible" 2>/dev/null)" == "$possible" ]] && return 0
    eval "$(tr ' ' '\n' <"$root/cpu.env" | grep -E '^(MIDR|HWCAP|HWCAP2)=0x[0-9a-f]+$')"
    local names1=(fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma
                  lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg)
    local names2=(dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm svef64mm
                  svebf16 i8mm bf16 dgh rng bti mte ecv afp rpres mte3 sme sme_i16i64 sme_f64f64 sme_i8i32
                  sme_f16f32 sme_b16f32 sme_f32f32 sme_fa64 wfxt)
    local features=() ids=() ranges=()
    for i in "${!names1[@]}"; do (( (HWCAP >> i) & 1 )) && features+=("${names1[i]}"); done
    for i in "${!names2[@]}"; do (( (HWCAP2 >> i) & 1 )) && features+=("${names2[i]}"); done
    IFS=, read -r -a ranges <<<"$possible"
    for range in "${ranges[@]}"; do
        lo=${range%-*}; hi=${range#*-}
        for ((id = lo; id <= hi; id++)); do ids+=("$id"); done
    done
    mkdir -p "$root/proc"
    tmp=$(mktemp "$root/proc/.cpuinfo.XXXXXX")
    for id in "${ids[@]}"; do
        printf 'processor\t: %d\nBogoMIPS\t: 100.00\nFeatures\t: %s\nCPU implementer\t: 0x%02x\n' \
            "$id" "${features[*]}" $(( (MIDR >> 24) & 0xff )) >>"$tmp"
        printf 'CPU architecture: 8\nCPU variant\t: 0x%x\nCPU part\t: 0x%03x\nCPU revision\t: %d\n\n' \
            $(( (MIDR >> 20) & 0xf )) $(( (MIDR >> 4) & 0xfff )) $(( MIDR & 0xf )) >>"$tmp"
    done
    chmod 644 "$tmp"
    mv -f "$tmp" "$root/proc/cpuinfo"
    tmp=$(mktemp "$root/proc/.possible.XXXXXX")
    echo "$possible" >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$root/proc/possible"
}

cpu=${ARM64_CPU:-cortex-a53}
case ${1:-} in
    --list-cpus) for d in "$cache"/cpu/*/; do basename "$d"; done; exit 0 ;;
    --prepare) for d in "$cache"/cpu/*/; do write_cpuinfo "${d%/}"; done; exit 0 ;;
    --cpu) cpu=${2:?--cpu NAME}; shift 2 ;;
    --cpu=*) cpu=${1#--cpu=}; shift ;;
esac
root=$cache/cpu/$cpu
[[ -f $root/cpu.env ]] || { echo "python-arm64: unknown cpu '$cpu' (see --list-cpus)" >&2; exit 2; }
write_cpuinfo "$root"
# nothing of the host's Python, loader or OpenBLAS settings may leak into the emulated process
exec env -u PYTHONPATH -u PYTHONHOME -u PYTHONSTARTUP -u PYTHONSAFEPATH -u LD_LIBRARY_PATH -u LD_PRELOAD \
    -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u QEMU_CPU -u QEMU_LD_PREFIX PYTHONNOUSERSITE=1 \
    qemu-aarch64 -cpu "$cpu" -L "$root" "$root/usr/bin/python3.11" "$@"
RUNNER
chmod 755 "$CACHE/bin/python-arm64.new"

# ---- swap the new build in, then smoke-test it --------------------------------------------------------
rm -rf "$CACHE/sysroot" "$CACHE/cpu"
mv "$NEW" "$CACHE/sysroot"
mv "$CPUS_NEW" "$CACHE/cpu"
mv -f "$CACHE/bin/python-arm64.new" "$CACHE/bin/python-arm64"
"$CACHE/bin/python-arm64" --prepare
# qemu-aarch64's default CPU model (no -cpu) is `max`: give the bare sysroot that model's /proc/cpuinfo
mkdir -p "$CACHE/sysroot/proc"
cp "$CACHE/cpu/max/proc/cpuinfo" "$CACHE/sysroot/proc/cpuinfo"
mv -f "$manifest" "$CACHE/MANIFEST"
rm -rf "$APT"   # ~50 MB of uncompressed indices; downloads/ is kept for an offline rebuild

for cpu in cortex-a53 neoverse-n1 max; do
    [[ -d $CACHE/cpu/$cpu ]] || continue
    "$CACHE/bin/python-arm64" --cpu "$cpu" -c '
import platform, sys, numpy, onnxruntime as ort
assert platform.machine() == "aarch64", platform.machine()
print(f"[setup-arm64] {sys.argv[1]}: {platform.machine()} python {platform.python_version()} "
      f"numpy {numpy.__version__} onnxruntime {ort.__version__} {ort.get_device()}", file=sys.stderr)
' "$cpu"
done
echo "$STAMP" >"$CACHE/.stamp"
log "done in $(( $(date +%s) - start )) s: $(du -sh --apparent-size "$CACHE/sysroot" | cut -f1) sysroot," \
    "$(du -sh "$DL" | cut -f1) downloads; run: $CACHE/bin/python-arm64 --cpu NAME script.py"
