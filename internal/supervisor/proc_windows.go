//go:build windows

package supervisor

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// platform puts every worker in its own Job Object configured with
// KILL_ON_JOB_CLOSE (the job handle lives in the gateway, so workers die with
// it however it ends) and DIE_ON_UNHANDLED_EXCEPTION (no error dialog that
// would keep a crashed worker alive).
//
// The process must be in the job before it runs a single instruction, or it
// could start a child outside the job. The ideal is CreateProcess with a
// PROC_THREAD_ATTRIBUTE_JOB_LIST, which os/exec cannot express. We use the
// documented fallback instead: create the process with CREATE_SUSPENDED,
// AssignProcessToJobObject, then resume its one (initial) thread. os/exec
// does not return the thread handle, so the thread is found with a Toolhelp
// snapshot. A process is never assigned while running.
type platform struct{}

func newPlatform() (*platform, error) { return &platform{}, nil }

func (p *platform) close() {}

const processAccess = windows.PROCESS_SET_QUOTA | windows.PROCESS_TERMINATE |
	windows.SYNCHRONIZE | windows.PROCESS_QUERY_LIMITED_INFORMATION

func (p *platform) start(cmd *exec.Cmd) (osProcess, error) {
	job, err := newJob()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_SUSPENDED}
	if err := cmd.Start(); err != nil {
		_ = windows.CloseHandle(job)
		return nil, err
	}
	pid := cmd.Process.Pid
	abort := func(h windows.Handle, err error) (osProcess, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if h != 0 {
			_ = windows.CloseHandle(h)
		}
		_ = windows.CloseHandle(job)
		return nil, err
	}
	h, err := windows.OpenProcess(processAccess, false, uint32(pid))
	if err != nil {
		return abort(0, fmt.Errorf("supervisor: open process %d: %w", pid, err))
	}
	if err := windows.AssignProcessToJobObject(job, h); err != nil {
		return abort(h, fmt.Errorf("supervisor: assign process %d to job: %w", pid, err))
	}
	if err := resumeProcess(uint32(pid)); err != nil {
		return abort(h, err)
	}
	return &winProc{job: job, proc: h}, nil
}

func newJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, fmt.Errorf("supervisor: create job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | windows.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		_ = windows.CloseHandle(job)
		return 0, fmt.Errorf("supervisor: configure job object: %w", err)
	}
	return job, nil
}

// resumeProcess resumes the threads of a process created suspended (it has
// exactly one).
func resumeProcess(pid uint32) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return fmt.Errorf("supervisor: thread snapshot: %w", err)
	}
	defer windows.CloseHandle(snap)
	entry := windows.ThreadEntry32{Size: uint32(unsafe.Sizeof(windows.ThreadEntry32{}))}
	resumed := 0
	for err = windows.Thread32First(snap, &entry); err == nil; err = windows.Thread32Next(snap, &entry) {
		if entry.OwnerProcessID != pid {
			continue
		}
		th, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, entry.ThreadID)
		if err != nil {
			return fmt.Errorf("supervisor: open thread %d: %w", entry.ThreadID, err)
		}
		_, rerr := windows.ResumeThread(th)
		_ = windows.CloseHandle(th)
		if rerr != nil {
			return fmt.Errorf("supervisor: resume thread %d: %w", entry.ThreadID, rerr)
		}
		resumed++
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return fmt.Errorf("supervisor: enumerate threads: %w", err)
	}
	if resumed == 0 {
		return fmt.Errorf("supervisor: process %d has no thread to resume", pid)
	}
	return nil
}

// winProc is a worker in its own job. Killing the job, not the pid, cannot
// hit an unrelated process; the job handle is closed only after the reap.
type winProc struct {
	job  windows.Handle
	proc windows.Handle

	mu     sync.Mutex
	exited bool
	closed bool
}

func (w *winProc) awaitExit() {
	_, _ = windows.WaitForSingleObject(w.proc, windows.INFINITE)
	w.mu.Lock()
	w.exited = true
	w.mu.Unlock()
}

func (w *winProc) kill() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false, nil
	}
	// Terminate the job even after the worker exited: it may have left
	// children in it.
	err := windows.TerminateJobObject(w.job, 1)
	return err == nil && !w.exited, err
}

func (w *winProc) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	// Closing the last job handle kills anything the worker left in it.
	_ = windows.CloseHandle(w.job)
	_ = windows.CloseHandle(w.proc)
}

// stillActive is GetExitCodeProcess's code for a running process.
const stillActive = 259

// processIdentity returns the process's creation time, which together with
// the pid names one process.
func processIdentity(pid int) (string, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return "", err
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return "", err
	}
	if code != stillActive {
		return "", fmt.Errorf("supervisor: pid %d has exited", pid)
	}
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return "", err
	}
	return strconv.FormatInt(created.Nanoseconds(), 10), nil
}

// killOrphan terminates a worker of an earlier run. Its job died with that
// gateway, so an orphan should not exist; this is belt and braces.
func killOrphan(pid int) error {
	h, err := windows.OpenProcess(windows.PROCESS_TERMINATE, false, uint32(pid))
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	return windows.TerminateProcess(h, 1)
}
