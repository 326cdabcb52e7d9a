package supervisor

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// workerModeEnv makes the test binary act as a worker (the re-exec pattern):
// TestMain sees it and runs testWorker instead of the tests.
const workerModeEnv = "MXGW_SUPERVISOR_TEST_WORKER"

// Test worker modes.
const (
	modeOK           = "ok"             // full protocol, replies "ok:<kind>"
	modeWrongNonce   = "wrong-nonce"    // echoes another nonce
	modeExitEarly    = "exit-early"     // logs to stderr and exits 3 before connecting
	modeHang         = "hang"           // never connects
	modeDieOnCommand = "die-on-command" // exits 7 when a command arrives
	modeDieInHello   = "die-in-hello"   // accepts the GatewayHello, logs, exits 9
	modeChild        = "child"          // starts a grandchild, logs its pid, hangs
)

// testWorker is a tiny worker speaking the protocol with frame.Reader and
// frame.Writer. It returns the exit code.
func testWorker(mode string) int {
	args := map[string]string{}
	for _, a := range os.Args[1:] {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok {
			args[k] = v
		}
	}
	switch mode {
	case modeExitEarly:
		fmt.Fprintln(os.Stderr, `{"time":"2026-01-01T00:00:00Z","level":"ERROR","msg":"backend exploded","session":"x","detail":"no galaxy"}`)
		fmt.Fprintln(os.Stderr, "plain text line")
		return 3
	case modeHang:
		time.Sleep(time.Hour)
		return 1
	case modeChild:
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), workerModeEnv+"="+modeHang)
		if err := child.Start(); err != nil {
			return 1
		}
		fmt.Fprintf(os.Stderr, `{"level":"INFO","msg":"grandchild","grandchild_pid":%d}`+"\n", child.Process.Pid)
		time.Sleep(time.Hour)
		return 1
	}

	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return protocol.ExitNoNonce
	}
	nonce, err := hex.DecodeString(strings.TrimSpace(line))
	if err != nil || len(nonce) != protocol.NonceBytes {
		return protocol.ExitNoNonce
	}
	if args["protocol-version"] != fmt.Sprint(protocol.Version) || args["session-id"] == "" {
		return protocol.ExitBadArguments
	}
	session := args["session-id"]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := ipc.Dial(ctx, args["endpoint"])
	if err != nil {
		return protocol.ExitHandshakeFailed
	}
	defer conn.Close()
	// The worker's end of the protocol connection, as internal/worker
	// speaks it.
	pc := frame.NewConn(conn, conn, frame.ConnOptions{SessionID: session})
	var mu sync.Mutex
	send := func(corr uint64, env *workerv1.WorkerEnvelope) error {
		mu.Lock()
		defer mu.Unlock()
		env.CorrelationId = corr
		_, err := pc.Send(env)
		return err
	}

	hello, err := pc.Accept(nonce)
	if err != nil {
		return protocol.ExitHandshakeFailed
	}
	if mode == modeDieInHello {
		fmt.Fprintln(os.Stderr, "dying in the handshake")
		return 9
	}
	if mode == modeWrongNonce {
		echo := append([]byte(nil), nonce...)
		echo[0] ^= 0xFF
		_ = send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerHello{WorkerHello: &workerv1.WorkerHello{
			ProtocolVersion: protocol.Version, Nonce: echo, Pid: int32(os.Getpid()), WorkerVersion: "test-worker",
		}}})
		_, _, _ = pc.Recv() // the gateway hangs up
		return protocol.ExitHandshakeFailed
	}
	if err := pc.Answer(&workerv1.WorkerHello{Pid: int32(os.Getpid()), WorkerVersion: "test-worker"}); err != nil {
		return protocol.ExitHandshakeFailed
	}
	if err := pc.Ready(&mxgatewayv1.BackendInfo{Kind: "sim", ModelName: "test", Simulated: true}); err != nil {
		return protocol.ExitConnectionLost
	}

	interval := hello.GetHeartbeatInterval().AsDuration()
	stop := make(chan struct{})
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{BackendResponsive: true}}}) != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); hb.Wait() }()

	for {
		env, _, err := pc.Recv()
		if err != nil {
			return protocol.ExitConnectionLost
		}
		switch {
		case env.GetCommand() != nil:
			if mode == modeDieOnCommand {
				os.Exit(7)
			}
			kind := env.GetCommand().GetCommand().ProtoReflect().WhichOneof(
				env.GetCommand().GetCommand().ProtoReflect().Descriptor().Oneofs().ByName("kind")).Name()
			if send(env.GetCorrelationId(), &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_CommandReply{
				CommandReply: &workerv1.WorkerCommandReply{Reply: &mxgatewayv1.Reply{Message: "ok:" + string(kind)}}}}) != nil {
				return protocol.ExitConnectionLost
			}
		case env.GetShutdown() != nil:
			err := send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{
				TeardownWarnings: []string{"test teardown"}}}})
			if err != nil {
				return protocol.ExitConnectionLost
			}
			return protocol.ExitOK
		}
	}
}
