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

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: quirks pipe-first-instance | pipe-accept CLIENT.EXE | pipe-dial --endpoint=PIPE | removeall | spawn-orphan MARKER")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pipe-first-instance":
		pipeFirstInstance()
	case "pipe-accept":
		pipeAccept(os.Args[2])
	case "pipe-dial":
		pipeDial(strings.TrimPrefix(os.Args[2], "--endpoint="))
	case "removeall":
		removeAll()
	case "spawn-orphan":
		spawnOrphan(os.Args[2])
	case "sleep":
		time.Sleep(10 * time.Minute)
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

func pipeAccept(client string) {
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
	cmd := exec.Command(client, "pipe-dial", "--endpoint="+path)
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
