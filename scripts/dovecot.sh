#!/usr/bin/env bash
# A private Dovecot for tests and benchmarks: scripts/dovecot.sh start|stop DIR PORT
# Its own config, Maildir storage under DIR/home/USER/Maildir and a passwd-file of test users
# (test1..test9 with password "pass", demouser/demopass), on 127.0.0.1. Never the system service.
# Optional environment: DOVECOT_USERS="name:password ..." adds users;
# DOVECOT_OAUTH2_URL=http://127.0.0.1:PORT/introspect makes passdb check OAuth2 tokens there (XOAUTH2, OAUTHBEARER);
# DOVECOT_OAUTH2_MECHANISMS="xoauth2" offers only some of the two (default both);
# DOVECOT_LMTP_PORT=N also runs dovecot-lmtp on 127.0.0.1:N (RCPT TO:<user@any.domain> is user);
# DOVECOT_TRUSTED_NETWORKS="127.0.0.1/32" sets login_trusted_networks (a proxy's ID x-originating-ip is honoured from there).
set -euo pipefail
cmd=${1:?usage: dovecot.sh start|stop DIR PORT}
dir=${2:?DIR missing}
port=${3:-0}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/dovecot.conf"
pidfile="$dir/run/master.pid"

stop() {
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "$cmd" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: dovecot.sh start|stop DIR PORT" >&2; exit 64 ;;
esac

DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)
[ -x "$DOVECOT" ] || { echo "dovecot.sh: dovecot is not installed (run scripts/install-peers.sh)" >&2; exit 69; }

if [ "$(id -u)" = 0 ]; then
  muser=imapkit-test; id "$muser" >/dev/null 2>&1 || muser=dovenull
  login_user=dovenull; internal_user=dovecot
else
  muser=$(id -un); login_user=$muser; internal_user=$muser
fi
uid=$(id -u "$muser"); gid=$(id -g "$muser")
mkdir -p "$dir/run" "$dir/state" "$dir/home"

users="test1:pass test2:pass test3:pass test4:pass test5:pass test6:pass test7:pass test8:pass test9:pass demouser:demopass ${DOVECOT_USERS:-}"
: > "$dir/passwd"
for entry in $users; do
  u=${entry%%:*}; p=${entry#*:}
  echo "$u:{PLAIN}$p:$uid:$gid::$dir/home/$u::" >> "$dir/passwd"
  mkdir -p "$dir/home/$u"
done
chown -R "$uid:$gid" "$dir/home"

if [ -n "${DOVECOT_OAUTH2_URL:-}" ]; then
  cat > "$dir/oauth2.conf.ext" <<EOT
introspection_mode = post
introspection_url = ${DOVECOT_OAUTH2_URL}
username_attribute = username
active_attribute = active
active_value = true
tls_ca_cert_file = /etc/ssl/certs/ca-certificates.crt
EOT
  passdb="passdb {
  driver = oauth2
  mechanisms = ${DOVECOT_OAUTH2_MECHANISMS:-xoauth2 oauthbearer}
  args = $dir/oauth2.conf.ext
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u $dir/passwd
}"
  mechs="plain login ${DOVECOT_OAUTH2_MECHANISMS:-xoauth2 oauthbearer}"
else
  passdb="passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}"
  mechs="plain login"
fi

protocols="imap"
lmtp_conf=""
if [ -n "${DOVECOT_LMTP_PORT:-}" ]; then
  protocols="imap lmtp"
  lmtp_conf="service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${DOVECOT_LMTP_PORT}
  }
}
protocol lmtp {
  auth_username_format = %Ln
}"
fi

cat > "$conf" <<EOT
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
instance_name = imapkit-test-$port
protocols = $protocols
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
login_trusted_networks = ${DOVECOT_TRUSTED_NETWORKS:-}
auth_mechanisms = $mechs
default_login_user = $login_user
default_internal_user = $internal_user
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_fsync = always
mailbox_list_index = no
protocol imap {
  mail_max_userip_connections = 20000
  imap_idle_notify_interval = 1 secs
}
$lmtp_conf
$passdb
userdb {
  driver = passwd-file
  args = username_format=%u $dir/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  process_min_avail = 1
  service_count = 0
}
service imap {
  process_limit = 20000
}
default_process_limit = 20000
default_client_limit = 20000
service anvil {
  client_limit = 40003
}
service auth {
  client_limit = 40000
}
service config {
  client_limit = 40000
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}
EOT

stop
"$DOVECOT" -c "$conf"
for _ in $(seq 1 100); do
  if [ -f "$pidfile" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
    && { [ -z "${DOVECOT_LMTP_PORT:-}" ] || (exec 3<>"/dev/tcp/127.0.0.1/$DOVECOT_LMTP_PORT") 2>/dev/null; }; then echo "dovecot.sh: running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; exit 0; fi
  sleep 0.1
done
echo "dovecot.sh: dovecot did not start; log:" >&2
tail -20 "$dir/dovecot.log" >&2 || true
exit 1
