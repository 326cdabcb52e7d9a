//go:build windows

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/mxgateway/mxgateway/internal/winsvc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: quirks pipe-first-instance | pipe-accept CLIENT.EXE [as-worker] | pipe-dial [--endpoint=]PIPE | removeall | spawn-orphan MARKER")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pipe-first-instance":
		pipeFirstInstance()
	case "pipe-accept":
		pipeAccept(os.Args[2], len(os.Args) > 3 && os.Args[3] == "as-worker")
	case "pipe-dial":
		pipeDial(strings.TrimPrefix(os.Args[2], "--endpoint="))
	case "removeall":
		removeAll()
	case "spawn-orphan":
		spawnOrphan(os.Args[2])
	case "sleep":
		time.Sleep(10 * time.Minute)
	case "services-session":
		servicesSession()
	case "service-config":
		serviceConfig(os.Args[2], os.Args[3])
	case "service-install":
		serviceInstall(os.Args[2], os.Args[3], os.Args[4:])
	default:
		os.Exit(2)
	}
}

func pipeName() string { return fmt.Sprintf(`\\.\pipe\mxgateway-quirks-%d`, os.Getpid()) }

func pipeFirstInstance() {
	ln, err := winio.ListenPipe(pipeName(), nil)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := winio.DialPipeContext(ctx, pipeName())
	switch {
	case err == nil:
		c.Close()
		fmt.Println("dial: connected")
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Println("dial: timeout")
	default:
		fmt.Println("dial:", err)
	}
}

func pipeAccept(client string, asWorker bool) {
	path := pipeName()
	ln, err := winio.ListenPipe(path, nil)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	defer ln.Close()
	type result struct {
		c   interface{ Fd() uintptr }
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		buf := make([]byte, 5)
		if _, err := c.Read(buf); err != nil {
			accepted <- result{err: err}
			return
		}
		accepted <- result{c: c.(interface{ Fd() uintptr })}
	}()
	arg := path
	if asWorker {
		arg = "--endpoint=" + path // a worker's flag: the Wine shim claims the first instance
	}
	cmd := exec.Command(client, "pipe-dial", arg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Println("start client:", err)
		os.Exit(1)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	select {
	case r := <-accepted:
		if r.err != nil {
			fmt.Println("accept:", r.err)
			return
		}
		var pid uint32
		if err := windows.GetNamedPipeClientProcessId(windows.Handle(r.c.Fd()), &pid); err != nil {
			fmt.Println("accept: ok, GetNamedPipeClientProcessId:", err)
			return
		}
		fmt.Printf("accept: ok peer=%d child=%d\n", pid, cmd.Process.Pid)
	case <-time.After(3 * time.Second):
		fmt.Println("accept: timeout")
	}
}

func pipeDial(path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := winio.DialPipeContext(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipe-dial:", err)
		os.Exit(1)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		fmt.Fprintln(os.Stderr, "pipe-dial write:", err)
		os.Exit(1)
	}
	time.Sleep(time.Minute) // the parent kills us
}

func removeAll() {
	dir, err := os.MkdirTemp("", "quirks-removeall-")
	if err != nil {
		fmt.Println("mkdir:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		fmt.Println("write:", err)
		os.Exit(1)
	}
	err = os.RemoveAll(dir)
	if err == nil {
		fmt.Println("removeall: ok")
		return
	}
	// os.Remove (DeleteFile, RemoveDirectory) still works: clean up.
	rerr := errors.Join(os.Remove(filepath.Join(dir, "f")), os.Remove(dir))
	fmt.Printf("removeall: %v (os.Remove: %v)\n", err, rerr)
}

// spawnOrphan starts "quirks sleep MARKER" outside any job and returns at
// once: the control for the Job Object tests (a child is not ended just
// because its parent ends).
func spawnOrphan(marker string) {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println("spawn:", err)
		os.Exit(1)
	}
	cmd := exec.Command(exe, "sleep", marker)
	if err := cmd.Start(); err != nil {
		fmt.Println("spawn:", err)
		os.Exit(1)
	}
	fmt.Printf("spawned: %d\n", cmd.Process.Pid)
}

// serviceConfig creates service name for exe with each optional setting
// winsvc.Install makes, one at a time, prints one line per setting
// ("<setting>: ok" or the error) and deletes the service again.
func serviceConfig(name, exe string) {
	m, err := mgr.Connect()
	if err != nil {
		fmt.Println("connect:", err)
		os.Exit(1)
	}
	defer m.Disconnect()
	s, err := m.CreateService(name, exe, mgr.Config{DisplayName: name, StartType: mgr.StartAutomatic}, "serve")
	if err != nil {
		fmt.Println("create:", err)
		os.Exit(1)
	}
	defer func() { _ = s.Delete(); s.Close() }()
	report := func(what string, err error) {
		if err != nil {
			fmt.Printf("%s: %v\n", what, err)
			return
		}
		fmt.Printf("%s: ok\n", what)
	}
	desc, _ := windows.UTF16PtrFromString(winsvc.Description)
	d := windows.SERVICE_DESCRIPTION{Description: desc}
	report("description", windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DESCRIPTION, (*byte)(unsafe.Pointer(&d))))
	delayed := windows.SERVICE_DELAYED_AUTO_START_INFO{IsDelayedAutoStartUp: 1}
	report("delayed-auto-start", windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed))))
	report("recovery-actions", s.SetRecoveryActions([]mgr.RecoveryAction{{Type: mgr.ServiceRestart, Delay: 5 * time.Second}}, 86400))
	report("recovery-on-non-crash-failures", s.SetRecoveryActionsOnNonCrashFailures(true))
}

// serviceInstall is winsvc.Install without what Wine 8's service manager
// does not implement (the service-config mode shows which): the Wine
// suite's stand-in for `mxgateway service install`, so that the service
// itself can run under Wine's service manager.
func serviceInstall(name, exe string, args []string) {
	m, err := mgr.Connect()
	if err != nil {
		fmt.Println("connect:", err)
		os.Exit(1)
	}
	defer m.Disconnect()
	// The display name carries the service name: display names are unique
	// too, and suites sharing a prefix may install at the same time.
	s, err := m.CreateService(name, exe, mgr.Config{DisplayName: winsvc.DisplayName + " " + name, Description: winsvc.Description,
		StartType: mgr.StartAutomatic}, args...)
	if err != nil {
		fmt.Println("create:", err)
		os.Exit(1)
	}
	s.Close()
	if err := eventlog.InstallAsEventCreate(name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		fmt.Println("event log source:", err)
		os.Exit(1)
	}
	fmt.Println("installed:", name)
}

// servicesSession prints the session id and image name the process list
// reports for services.exe: what x/sys/windows/svc.IsWindowsService (the
// .NET heuristic: parent is "services.exe" in session 0) relies on.
func servicesSession() {
	size := uint32(1 << 20)
	var buf []byte
	for {
		buf = make([]byte, size)
		err := windows.NtQuerySystemInformation(windows.SystemProcessInformation, unsafe.Pointer(&buf[0]), size, &size)
		if err == nil {
			break
		}
		if err != windows.STATUS_INFO_LENGTH_MISMATCH {
			fmt.Println("services.exe:", err)
			os.Exit(1)
		}
	}
	for off := uintptr(0); ; {
		p := (*windows.SYSTEM_PROCESS_INFORMATION)(unsafe.Pointer(&buf[off]))
		if strings.EqualFold(p.ImageName.String(), "services.exe") {
			fmt.Printf("services.exe: session=%d\n", p.SessionID)
			return
		}
		if p.NextEntryOffset == 0 {
			break
		}
		off += uintptr(p.NextEntryOffset)
	}
	fmt.Println("services.exe: not found")
}
