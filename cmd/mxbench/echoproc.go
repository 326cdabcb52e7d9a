package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// echoArg makes mxbench run as the echo in its own process:
// `mxbench __mxbench_echo`. It prints the ceiling's address, then reads
// "<kind> <base64 Reply>" lines from stdin, sets each as the canned reply
// and answers "ok"; it exits when stdin closes.
const echoArg = "__mxbench_echo"

func runEchoProcess(stdin io.Reader, stdout io.Writer) int {
	ce, err := startCeiling()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mxbench echo:", err)
		return 1
	}
	defer ce.close()
	fmt.Fprintln(stdout, ce.addr)
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		kind, b64, ok := strings.Cut(sc.Text(), " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		r := &mxgatewayv1.Reply{}
		if !ok || err != nil || proto.Unmarshal(raw, r) != nil {
			fmt.Fprintln(os.Stderr, "mxbench echo: bad reply line")
			return 1
		}
		ce.setReply(kind, r)
		fmt.Fprintln(stdout, "ok")
	}
	return 0
}

// echoProcess is the driver's handle on an echo in its own process: the
// same ceiling as the in-process one, so that the echo crosses a process
// boundary as a call to the gateway does.
type echoProcess struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
}

func startEchoProcess() (*echoProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, echoArg)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &echoProcess{cmd: cmd, in: in, out: bufio.NewScanner(outp)}
	if !e.out.Scan() {
		e.close()
		return nil, errors.New("mxbench: the echo process printed no address")
	}
	e.addr = e.out.Text()
	return e, nil
}

// setReply sets the echo's canned reply for kind and waits until it is in
// place.
func (e *echoProcess) setReply(kind string, r *mxgatewayv1.Reply) error {
	raw, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(e.in, "%s %s\n", kind, base64.StdEncoding.EncodeToString(raw)); err != nil {
		return err
	}
	if !e.out.Scan() || e.out.Text() != "ok" {
		return errors.New("mxbench: the echo process did not take the reply")
	}
	return nil
}

func (e *echoProcess) close() {
	e.in.Close()
	_ = e.cmd.Wait()
}
