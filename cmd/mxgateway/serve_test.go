package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestServeFlagsDefaults(t *testing.T) {
	c, err := parseServeFlags([]string{"--data-dir=/tmp/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:5000" || c.HTTPListen != "127.0.0.1:5001" || c.WorkerBackend != "sim" ||
		c.SlowConsumerPolicy != "fault-session" || c.MaxMessageBytes != 16<<20 || c.HeartbeatInterval != 5*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	exe, args, err := workerCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	if exe == "" || args[0] != "worker" || !slices.Contains(args, "--backend=sim") || !slices.Contains(args, "--sim-profile=default") {
		t.Fatalf("worker command %s %q", exe, args)
	}
	c.WorkerExe, c.WorkerBackend = "/opt/mxworker.exe", "mxaccess"
	exe, args, _ = workerCommand(c)
	if exe != "/opt/mxworker.exe" || args[0] != "--backend=mxaccess" || slices.Contains(args, "--sim-profile=default") {
		t.Fatalf("configured worker command %s %q", exe, args)
	}
}

func TestServeFlagsRefuseBadValues(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--listen=0.0.0.0:5000"}, "--listen"},
		{[]string{"--listen=:5000"}, "not a loopback"},
		{[]string{"--http-listen=192.168.1.2:80"}, "--http-listen"},
		{[]string{"--listen=nonsense"}, "--listen"},
		{[]string{"--worker-backend=com"}, "--worker-backend"},
		{[]string{"--sim-profile=fast"}, "--sim-profile"},
		{[]string{"--slow-consumer-policy=drop"}, "--slow-consumer-policy"},
		{[]string{"--lease=0s"}, "--lease"},
		{[]string{"--heartbeat-grace=1s", "--heartbeat-interval=2s"}, "--heartbeat-grace"},
		{[]string{"--max-sessions=0"}, "--max-sessions"},
		{[]string{"--log-format=xml"}, "--log-format"},
		{[]string{"--log-level=loud"}, "--log-level"},
		{[]string{"extra"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseServeFlags(append([]string{"--data-dir=/tmp/x"}, tc.args...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	_, err := parseServeFlags([]string{"--listen=0.0.0.0:1", "--lease=-1s", "--max-sessions=-3"}, io.Discard)
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Fatalf("%d problems reported, want 3: %v", n, err)
	}
	if _, err := parseServeFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h = %v", err)
	}
}

func TestLoopbackAddresses(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", "localhost:5000", "[::1]:5000", "127.1.2.3:9"} {
		if err := checkLoopback("--listen", ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:5000", "[::]:5000", "10.0.0.1:5000", "example.com:5000"} {
		if err := checkLoopback("--listen", bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
