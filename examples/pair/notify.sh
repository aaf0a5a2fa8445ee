#!/bin/sh
# onChange hook for tandem pairs: moves a virtual IP to the active node, as keepalived's notify
# scripts do. tandem runs it as:  notify.sh [IFACE [ADDR/PREFIX]] NEW_ROLE OLD_ROLE NODE_ID
# (the configured arguments first, then the three it appends), one call at a time, in order,
# killed after onChangeTimeout. Needs CAP_NET_ADMIN (root, or `setcap cap_net_admin+ep`).
set -u
IFACE=${1:?interface}
VIP=${2:?address/prefix}
NEW_ROLE=${3:?new role}
OLD_ROLE=${4:-}
NODE_ID=${5:-}
ADDR=${VIP%/*}

logger -t tandem-notify "node ${NODE_ID}: ${OLD_ROLE} -> ${NEW_ROLE} (${VIP} on ${IFACE})" 2>/dev/null || true

case "$NEW_ROLE" in
  active)
    # Idempotent: a survivor of a dual-active conflict runs this again to re-announce.
    ip addr replace "$VIP" dev "$IFACE"
    # Gratuitous ARP so switches and neighbours learn the new owner at once; in the background,
    # so the hook returns at once. Two arpings exist: iputils (-I IFACE) and Habets (-i IFACE).
    if command -v arping >/dev/null 2>&1; then
      if arping --help 2>&1 | grep -q Habets; then
        # -S: Habets' -U alone sends from the interface's primary address, which updates no one.
        arping -q -U -S "$ADDR" -c 3 -W 0.2 -w 2 -i "$IFACE" "$ADDR" >/dev/null 2>&1 &
      else
        arping -q -U -c 3 -w 2 -I "$IFACE" "$ADDR" >/dev/null 2>&1 &
      fi
    fi
    ;;
  standby|fault)
    ip addr del "$VIP" dev "$IFACE" 2>/dev/null || true
    ;;
esac
exit 0
