#!/bin/sh
# One request per connection (busybox nc -e gives this script the socket as
# stdin and stdout). Request, one line:
#   TIMEOUT_SECONDS BASE64(argv0) BASE64(argv1) ...
# Base64 per argument keeps spaces, quotes and newlines intact through sh.
# Reply: "ACK\n" once the request is read (no ACK means nothing ran, so the
# caller may retry), then "RESULT EXIT OUT_BYTES ERR_BYTES\n", stdout, stderr.
exec 2>>/tmp/agent.log
IFS=' ' read -r timeout rest || exit 0
printf 'ACK\n'
set --
for word in $rest; do
    # The trailing x survives $(...)'s removal of trailing newlines.
    arg=$(printf '%s' "$word" | base64 -d; echo x)
    set -- "$@" "${arg%x}"
done
[ $# -gt 0 ] || { printf 'RESULT 127 0 13\nempty command'; exit 0; }
cmd=$1; shift
# busybox sh would run its own applet for a bare name, so the name is resolved
# here: the Debian tools in /usr/local/sbin first, then open-iscsi, then busybox.
case $cmd in
    */*) path=$cmd ;;
    *) path=
       for dir in /usr/local/sbin /usr/sbin /usr/bin /sbin /bin; do
           [ -x "$dir/$cmd" ] && { path=$dir/$cmd; break; }
       done ;;
esac
out=/tmp/agent.$$.out err=/tmp/agent.$$.err
if [ -z "$path" ]; then
    : > "$out"; echo "$cmd: command not found" > "$err"; rc=127
else
    cd /
    timeout -s KILL "$timeout" "$path" "$@" < /dev/null > "$out" 2> "$err"
    rc=$?
fi
printf 'RESULT %s %s %s\n' "$rc" "$(stat -c %s "$out")" "$(stat -c %s "$err")"
cat "$out" "$err"
rm -f "$out" "$err"
