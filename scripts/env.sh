# Sourced by the scripts: one target directory outside the clone, shared by every build, test
# and CI run on this machine, so repeated runs are incremental and the runtime wasm is built once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capsule-target}"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
