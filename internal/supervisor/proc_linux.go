//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// platform starts workers from one dedicated goroutine locked to its OS
// thread. Pdeathsig is delivered when the *thread* that forked the child
// exits, not the process (golang/go#27505): spawning from an arbitrary
// goroutine would let the Go runtime retire that thread at any time and
// SIGKILL a healthy worker. The spawner's thread lives until Close, after
// every worker is gone.
type platform struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newPlatform() (*platform, error) {
	p := &platform{reqs: make(chan spawnReq), done: make(chan struct{})}
	go p.spawner()
	return p, nil
}

func (p *platform) spawner() {
	// Never unlocked: when this goroutine returns, its thread exits too.
	runtime.LockOSThread()
	defer close(p.done)
	for r := range p.reqs {
		r.errc <- r.cmd.Start()
	}
}

func (p *platform) start(cmd *exec.Cmd) (osProcess, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // own group: one signal reaches its children
		Pdeathsig: syscall.SIGKILL, // dies with the gateway's spawner thread
	}
	errc := make(chan error, 1)
	p.reqs <- spawnReq{cmd: cmd, errc: errc}
	if err := <-errc; err != nil {
		return nil, err
	}
	return &unixProc{pid: cmd.Process.Pid}, nil
}

func (p *platform) close() {
	close(p.reqs)
	<-p.done
}

// waitNoReap blocks until pid has exited, leaving it a zombie
// (waitid WNOWAIT) so that Wait can still reap it.
func waitNoReap(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil
	}
}

// processIdentity returns the process's start time in clock ticks since
// boot (/proc/<pid>/stat field 22), which together with the pid names one
// process for the life of the system. A zombie counts as gone.
func processIdentity(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return "", fmt.Errorf("supervisor: malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return "", fmt.Errorf("supervisor: short /proc/%d/stat", pid)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return "", fmt.Errorf("supervisor: pid %d has exited", pid)
	}
	return fields[19], nil
}
