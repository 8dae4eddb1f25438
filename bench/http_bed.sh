# Shared by bench/probe_rate.sh and bench/long_run.sh (sourced, not run): a
# private nginx on loopback that answers `return 200`, one faultline-agent on
# loopback with a key of its own, a dummy `sleep` for pause_process, and the
# experiment of N http probes against that nginx. The caller sets $work (a
# directory it removes) and $build, and calls bed_stop from its EXIT trap.

bed_nginx=""
bed_agent=""
bed_victim=""

# A free TCP port on 127.0.0.1 (no socket of any state on it now).
bed_free_port() {
    local p
    for _ in $(seq 200); do
        # below the ephemeral range (32768-60999 here): a port a client
        # socket holds (the probes open thousands) cannot be listened on
        p=$((20000 + RANDOM % 12000))
        if [ -z "$(ss -Htan "sport = :$p")" ]; then
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# bed_start_nginx: sets NGINX_PORT; nginx runs in the foreground of its own
# (daemon off) so that its master's pid is ours to stop.
bed_start_nginx() {
    local dir="$work/nginx"
    mkdir -p "$dir/logs" "$dir/tmp"
    NGINX_PORT=$(bed_free_port)
    cat >"$dir/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location = /nginx_status { stub_status; }
        location / { return 200 "ok\n"; }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 9>&- &
    bed_nginx=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nginx did not answer on 127.0.0.1:$NGINX_PORT" >&2
    cat "$dir/logs/error.log" >&2 || true
    return 1
}

# Requests nginx has handled so far (stub_status), the status request included.
bed_nginx_requests() {
    curl -fsS "http://127.0.0.1:$NGINX_PORT/nginx_status" | awk 'NR == 3 {print $3}'
}

# bed_start_agent: sets AGENT_PORT; key in $work/key, state in $work/state.
bed_start_agent() {
    [ -f "$work/key" ] || "$build/faultline" keygen "$work/key" >/dev/null
    "$build/faultline-agent" --key "$work/key" --listen 127.0.0.1:0 \
        --state-dir "$work/state" >"$work/agent.log" 2>&1 9>&- &
    bed_agent=$!
    AGENT_PORT=""
    for _ in $(seq 100); do
        AGENT_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/agent.log")
        [ -n "$AGENT_PORT" ] && return 0
        sleep 0.05
    done
    cat "$work/agent.log" >&2
    return 1
}

# bed_start_victim: a harmless process to pause (BED_VICTIM).
bed_start_victim() {
    sleep 100000 9>&- &
    bed_victim=$!
    BED_VICTIM=$bed_victim
}

# bed_experiment FILE N FAULT_SECONDS: N http probes p0..p(N-1) on the nginx,
# interval 100ms, timeout 100ms, rise 1, fall 1, all in steady_state; one
# pause_process of the victim for FAULT_SECONDS.
bed_experiment() {
    local file=$1 n=$2 secs=$3
    {
        echo "version: 1"
        echo "name: bench-probes-$n"
        echo "inventory:"
        echo "  key_file: $work/key"
        echo "  hosts:"
        echo "    local: { address: 127.0.0.1, port: $AGENT_PORT }"
        echo "probes:"
        awk -v n="$n" -v port="$NGINX_PORT" 'BEGIN {
            for (i = 0; i < n; i++)
                printf "  - { name: p%d, http: { url: \"http://127.0.0.1:%s/\" }, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }\n", i, port
        }'
        echo "steady_state:"
        awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "  - p%d\n", i }'
        echo "faults:"
        echo "  - name: pause-dummy"
        echo "    target: { hosts: [local] }"
        echo "    pause_process: { pid: $BED_VICTIM }"
        echo "    start: 0s"
        echo "    duration: ${secs}s"
    } >"$file"
}

bed_stop() {
    [ -n "$bed_victim" ] && kill -KILL "$bed_victim" 2>/dev/null # it may be stopped
    for pid in $bed_agent $bed_nginx; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $bed_agent $bed_nginx $bed_victim; do
        wait "$pid" 2>/dev/null || true
    done
    bed_agent=""
    bed_nginx=""
    bed_victim=""
}

# CPU seconds (user + system) of a live process, from /proc/PID/stat.
bed_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{
        sub(/^.*\) /, "")          # the fields after the command name
        printf "%.2f\n", ($12 + $13) / hz
    }' "/proc/$1/stat"
}
