#!/bin/sh
# Stands in for udev's 60-persistent-storage.rules in a guest that has no udev:
# keeps /dev/disk/by-path/ip-ADDRESS:PORT-iscsi-TARGETNAME-lun-LUN pointing at
# the disk of each logged-in LUN, with the names udev's path_id builtin derives
# from sysfs (the connection's persistent_address and persistent_port, the
# session's targetname, the LUN of the SCSI device), and removes links whose
# disk went away at logout. It polls sysfs every 0.2 s instead of listening
# for uevents; the node plugin polls for the link in the same way.
mkdir -p /dev/disk/by-path
while :; do
    for block in /sys/class/iscsi_session/session*/device/target*/*:*:*:*/block/*; do
        [ -e "$block" ] || continue
        disk=${block##*/}
        hctl=${block%/block/*}; hctl=${hctl##*/}
        session=${block%%/device/*}
        sid=${session##*/session}
        for conn in /sys/class/iscsi_connection/connection"$sid":*; do
            [ -e "$conn/persistent_address" ] || continue
            link=/dev/disk/by-path/ip-$(cat "$conn/persistent_address"):$(cat "$conn/persistent_port")-iscsi-$(cat "$session/targetname")-lun-${hctl##*:}
            [ "$(readlink "$link")" = "../../$disk" ] || ln -sfn "../../$disk" "$link"
        done
    done
    for link in /dev/disk/by-path/*; do
        [ -L "$link" ] && [ ! -e "$link" ] && rm -f "$link"
    done
    usleep 200000
done
