#!/bin/sh
# Back up ldf-server's durable log while the server runs:
#
#   deploy/backup.sh DATA_DIR BACKUP_DIR [KEEP]
#
# Writes BACKUP_DIR/ldf-data-YYYYMMDDTHHMMSSZ/ (a copy of DATA_DIR that the server starts from
# as it is) and keeps the newest KEEP backups (default 14, or $KEEP). POSIX sh and cp only, so
# it runs on the host, in the ldf-server image (compose.yaml's "backup" service) or in busybox.
#
# Why a plain copy is safe while the server writes (README, "Backups"):
#  - every log file is only ever appended to, so a file copied during a write is a prefix of
#    the real one that ends, at worst, in a torn record; on start-up the server detects it by
#    its checksum and cuts it off (such a record was being written during the backup: it is
#    in the next backup);
#  - meta.log is copied before the day files: it records which pages were served as immutable,
#    and every member of such a page is in the day files already, so the copy never promises a
#    page it lacks members of. (The other order could.) A garage first described during the
#    copy gets its description back at the first poll after a restore;
#  - a day file that retention deletes during the copy is skipped (it had expired).
# Restore: stop the server, replace DATA_DIR with a backup's contents, start the server.
set -eu

usage="usage: $0 DATA_DIR BACKUP_DIR [KEEP]"
data=${1:?$usage}
dest=${2:?$usage}
keep=${3:-${KEEP:-14}}
case $keep in '' | *[!0-9]*) echo "$0: KEEP must be a number, not '$keep'" >&2; exit 2 ;; esac
[ -d "$data" ] || { echo "$0: no data directory $data" >&2; exit 1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
target="$dest/ldf-data-$stamp"
n=1
while [ -e "$target" ]; do n=$((n + 1)); target="$dest/ldf-data-$stamp-$n"; done   # two in one second
partial="$target.partial"
mkdir -p "$dest"
rm -rf "$partial"
mkdir "$partial"

copy() {  # copy FILE DIR: a file deleted meanwhile (retention) is skipped, any other failure stops
    cp -p "$1" "$2/" 2>/dev/null && return 0
    [ -e "$1" ] || return 0
    cp -p "$1" "$2/"
}

for dataset in "$data"/*/; do
    [ -d "$dataset" ] || continue
    name=$(basename "$dataset")
    mkdir -p "$partial/$name/days"
    [ ! -e "$dataset/meta.log" ] || copy "$dataset/meta.log" "$partial/$name"   # first: see above
    for day in "$dataset"days/*.log; do
        [ -e "$day" ] || continue
        copy "$day" "$partial/$name/days"
    done
done
sync
mv "$partial" "$target"
echo "$target"

# Keep the newest $keep backups.
count=$(find "$dest" -mindepth 1 -maxdepth 1 -type d -name 'ldf-data-*' ! -name '*.partial' | wc -l)
excess=$((count - keep))
if [ "$excess" -gt 0 ]; then
    find "$dest" -mindepth 1 -maxdepth 1 -type d -name 'ldf-data-*' ! -name '*.partial' | sort | head -n "$excess" |
        while IFS= read -r old; do rm -rf "$old"; done
fi
