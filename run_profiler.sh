#!/usr/bin/env bash
# Visual Layer's on-prem CLI flags, mapped onto the vizdex operator CLI (SPEC §4b):
#   ./run_profiler.sh -p <path> -n <name>                          → vizdex create -n <name> -p <path>
#   ./run_profiler.sh -o add_media -d <dataset_id> -p <path> [-a]  → vizdex add-media -d <id> -p <path> [-a]
#   ./run_profiler.sh -o reindex -d <dataset_id>                   → vizdex reindex -d <id>
# It runs the vizdex of this checkout (dist/cli/main.js; `vizdex` on PATH when dist is missing).
# The configuration is vizdex's own: VIZDEX_* in the environment (VIZDEX_DATA_DIR…) or --data-dir.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage:
  run_profiler.sh -p <path> -n <name> [--owner EMAIL]           create a dataset (also: -o create)
  run_profiler.sh -o add_media -d <dataset_id> -p <path> [-a]   add media (-a: reindex afterwards)
  run_profiler.sh -o reindex -d <dataset_id>                    reindex a PARTIAL INDEX dataset

Options:
  -o <operation>   create (default), add_media or reindex
  -p <path>        a local folder (absolute or relative), a .txt/.csv/.parquet list of files,
                   or an s3:// or http(s):// location
  -n <name>        dataset name (create; default: the last segment of the path)
  -d <dataset_id>  dataset id (add_media, reindex)
  -a               add_media: reindex once the new media are in (ends READY, not PARTIAL INDEX)
  --data-dir <D>   vizdex data folder (default: $VIZDEX_DATA_DIR, else ./data)
  --owner <EMAIL>  create: the user that owns the dataset (default: $VIZDEX_PIPELINE_OWNER, else the admin)
  -h, --help       this help

Environment: every VIZDEX_* setting is passed to vizdex. VIZDEX_CLI overrides the command that is run
(e.g. VIZDEX_CLI="node /opt/vizdex/dist/cli/main.js").
Exit status: 0 when the operation finished; 1 when it failed (the reason on stderr); 2 on bad usage.
EOF
}

bad_usage() {
  echo "run_profiler.sh: $1" >&2
  usage >&2
  exit 2
}

operation=create
path=
name=
dataset=
auto_reindex=false
extra=()
owner=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -a | --auto-reindex) auto_reindex=true; shift ;;
    -o | -p | -n | -d | --data-dir | --owner)
      [[ $# -ge 2 ]] || bad_usage "option $1 needs a value"
      case "$1" in
        -o) operation=$2 ;;
        -p) path=$2 ;;
        -n) name=$2 ;;
        -d) dataset=$2 ;;
        --data-dir) extra+=("$1" "$2") ;;
        --owner) owner=("$1" "$2") ;;
      esac
      shift 2
      ;;
    --data-dir=*) extra+=("$1"); shift ;;
    --owner=*) owner=("$1"); shift ;;
    *) bad_usage "unknown argument: $1" ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -n "${VIZDEX_CLI:-}" ]]; then
  read -r -a cli <<<"$VIZDEX_CLI"
elif [[ -f "$here/dist/cli/main.js" ]]; then
  cli=(node "$here/dist/cli/main.js")
elif command -v vizdex >/dev/null 2>&1; then
  cli=(vizdex)
else
  echo "run_profiler.sh: vizdex not found: build this checkout (npm run build) or put vizdex on PATH" >&2
  exit 127
fi

case "$operation" in
  create)
    [[ -n "$path" ]] || bad_usage "create needs -p <path>"
    [[ -z "$dataset" ]] || bad_usage "-d is for add_media and reindex; create makes a new dataset"
    [[ "$auto_reindex" == false ]] || bad_usage "-a is for add_media"
    if [[ -z "$name" ]]; then
      name=$(basename -- "${path%/}")
    fi
    exec "${cli[@]}" create -n "$name" -p "$path" ${owner[@]+"${owner[@]}"} ${extra[@]+"${extra[@]}"}
    ;;
  add_media | add-media)
    [[ ${#owner[@]} -eq 0 ]] || bad_usage "--owner is for create (add_media acts as the dataset's owner)"
    [[ -n "$dataset" ]] || bad_usage "add_media needs -d <dataset_id>"
    [[ -n "$path" ]] || bad_usage "add_media needs -p <path>"
    [[ -z "$name" ]] || bad_usage "-n is for create"
    args=(add-media -d "$dataset" -p "$path")
    [[ "$auto_reindex" == false ]] || args+=(-a)
    exec "${cli[@]}" "${args[@]}" ${extra[@]+"${extra[@]}"}
    ;;
  reindex)
    [[ ${#owner[@]} -eq 0 ]] || bad_usage "--owner is for create (reindex acts as the dataset's owner)"
    [[ -n "$dataset" ]] || bad_usage "reindex needs -d <dataset_id>"
    [[ -z "$path" && -z "$name" && "$auto_reindex" == false ]] || bad_usage "reindex takes only -d <dataset_id>"
    exec "${cli[@]}" reindex -d "$dataset" ${extra[@]+"${extra[@]}"}
    ;;
  *) bad_usage "unknown operation '$operation' (expected create, add_media or reindex)" ;;
esac
