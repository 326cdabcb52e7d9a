//go:build windows && 386

package com

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	ole "github.com/go-ole/go-ole"
	"golang.org/x/sys/windows"
)

// Win32 constants of the pump.
const (
	coinitApartmentThreaded = 0x2
	coinitDisableOLE1DDE    = 0x4
	pmNoRemove              = 0x0
	pmRemove                = 0x1
	wmQuit                  = 0x0012
	qsAllInput              = 0x04FF
	mwmoInputAvailable      = 0x0004
	waitObject0             = 0x0
	waitTimeout             = 0x102
)

// Errors of the STA.
var (
	ErrSTAClosed  = errors.New("com: STA closed")
	ErrSTAStopped = errors.New("com: STA thread stopped")
)

// STAOptions configure StartSTA.
type STAOptions struct {
	// Logger; default discards.
	Logger *slog.Logger
	// Idle is how long the pump waits before housekeeping (stamping
	// LastActivity); default 1 s.
	Idle time.Duration
}

type workItem struct {
	fn   func()
	done chan error
	stop bool
}

// STA is a single-threaded COM apartment: one goroutine locked to its OS
// thread for life, with a message pump. COM objects created on it must be
// used only through Do. Events of those objects arrive as window messages
// the pump dispatches, so the pump must run whenever no work does.
type STA struct {
	logger *slog.Logger
	idle   uint32

	// Memory the pump hands to Windows lives on the heap (fields of this
	// struct), never on the goroutine stack: DispatchMessage and PeekMessage
	// can call back into Go (the event sink) on this goroutine, which may
	// grow and move its stack.
	handles [1]uintptr
	m       msg

	event    windows.Handle
	threadID atomic.Uint32

	mu     sync.Mutex
	queue  []*workItem
	closed bool

	done     chan struct{}
	stopErr  atomic.Pointer[error]
	lastBeat atomic.Int64
	closeMu  sync.Mutex
	handleMu sync.Once
}

// StartSTA starts the apartment thread and waits until COM is initialised
// on it and its message queue exists.
func StartSTA(opts STAOptions) (*STA, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	idle := opts.Idle
	if idle <= 0 {
		idle = time.Second
	}
	// Auto-reset: one SetEvent wakes one wait, and the pump drains the whole
	// queue per wake, so no work item is lost between wakes.
	ev, err := windows.CreateEvent(nil, 0, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("com: create STA event: %w", err)
	}
	s := &STA{logger: logger, idle: uint32(idle / time.Millisecond), event: ev, done: make(chan struct{})}
	s.handles[0] = uintptr(ev)
	ready := make(chan error, 1)
	go s.run(ready)
	if err := <-ready; err != nil {
		<-s.done
		windows.CloseHandle(ev)
		return nil, err
	}
	return s, nil
}

func (s *STA) run(ready chan<- error) {
	// Locked for life and never unlocked: when this goroutine returns, the
	// runtime ends the thread, so nothing else ever runs on an apartment
	// thread whose COM state we own.
	runtime.LockOSThread()
	defer close(s.done)
	s.threadID.Store(windows.GetCurrentThreadId())

	if err := ole.CoInitializeEx(0, coinitApartmentThreaded|coinitDisableOLE1DDE); err != nil {
		// go-ole v1.3.0 reports S_FALSE (already initialised here) as an
		// error; it is success and needs CoUninitialize like S_OK.
		var oe *ole.OleError
		if !errors.As(err, &oe) || oe.Code() != S_FALSE {
			if errors.As(err, &oe) && oe.Code() == RPC_E_CHANGED_MODE {
				err = fmt.Errorf("com: thread already in the multithreaded apartment (RPC_E_CHANGED_MODE): %w", err)
			}
			ready <- fmt.Errorf("com: CoInitializeEx: %w", err)
			return
		}
	}
	defer ole.CoUninitialize() // last: after every work item, including teardown

	// Create the thread's message queue before anyone can post to it.
	peekMessage(&s.m, 0, 0, 0, pmNoRemove)
	s.beat()
	ready <- nil

	for {
		r, err := msgWaitForMultipleObjectsEx(1, &s.handles[0], s.idle, qsAllInput, mwmoInputAvailable)
		switch {
		case err != nil:
			s.stop(fmt.Errorf("com: MsgWaitForMultipleObjectsEx: %w", err))
			return
		case r == waitObject0:
			if s.drain() {
				s.stop(ErrSTAClosed)
				return
			}
		case r == waitObject0+1:
			if s.pump() {
				s.stop(fmt.Errorf("%w: WM_QUIT received", ErrSTAStopped))
				return
			}
		case r == waitTimeout:
		}
		s.beat()
	}
}

func (s *STA) beat() { s.lastBeat.Store(time.Now().UnixNano()) }

// drain runs every queued work item; it returns true on a stop request.
func (s *STA) drain() bool {
	for {
		s.mu.Lock()
		items := s.queue
		s.queue = nil
		s.mu.Unlock()
		if len(items) == 0 {
			return false
		}
		for i, it := range items {
			if it.stop {
				// Items queued after the stop request fail.
				for _, rest := range items[i+1:] {
					rest.done <- ErrSTAClosed
				}
				it.done <- nil
				return true
			}
			it.done <- s.runItem(it.fn)
		}
	}
}

func (s *STA) runItem(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("com: panic on the STA: %v", r)
			s.logger.Error("panic in STA work item", "panic", fmt.Sprint(r))
		}
	}()
	fn()
	return nil
}

// pump dispatches every pending message; it returns true on WM_QUIT.
func (s *STA) pump() bool {
	for peekMessage(&s.m, 0, 0, 0, pmRemove) {
		if s.m.message == wmQuit {
			return true
		}
		translateMessage(&s.m)
		dispatchMessage(&s.m)
	}
	return false
}

// stop records why the loop ends and fails every item still queued.
func (s *STA) stop(reason error) {
	s.stopErr.Store(&reason)
	s.mu.Lock()
	s.closed = true
	items := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, it := range items {
		it.done <- ErrSTAClosed
	}
	if !errors.Is(reason, ErrSTAClosed) {
		s.logger.Error("STA stopped", "reason", reason.Error())
	}
}

// Err returns why the STA stopped, or nil while it runs.
func (s *STA) Err() error {
	if p := s.stopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// LastActivity is when the pump last woke (work, a message or the idle
// timeout). A value older than a few idle periods means the thread is stuck
// inside a call.
func (s *STA) LastActivity() time.Time { return time.Unix(0, s.lastBeat.Load()) }

// OnThread reports whether the caller runs on the STA thread.
func (s *STA) OnThread() bool { return windows.GetCurrentThreadId() == s.threadID.Load() }

func (s *STA) enqueue(it *workItem) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSTAClosed
	}
	s.queue = append(s.queue, it)
	s.mu.Unlock()
	if err := windows.SetEvent(s.event); err != nil {
		return fmt.Errorf("com: wake STA: %w", err)
	}
	return nil
}

// Do runs fn on the STA and waits for it. Called on the STA itself (from a
// work item) it runs fn directly instead of deadlocking. A panic in fn
// becomes the returned error.
func (s *STA) Do(fn func()) error {
	return s.DoContext(context.Background(), fn)
}

// DoContext is Do with a deadline for the wait. A COM call cannot be
// cancelled: on ctx expiry the item still runs later, its result unseen.
func (s *STA) DoContext(ctx context.Context, fn func()) error {
	if s.OnThread() {
		return s.runItem(fn)
	}
	it := &workItem{fn: fn, done: make(chan error, 1)}
	if err := s.enqueue(it); err != nil {
		return err
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("com: STA busy: %w", ctx.Err())
	case <-s.done:
		select {
		case err := <-it.done:
			return err
		default:
			return ErrSTAStopped
		}
	}
}

// Ping round-trips an empty work item through the STA.
func (s *STA) Ping(ctx context.Context) error {
	return s.DoContext(ctx, func() {})
}

// Close runs every work item queued before it, then ends the thread; COM is
// uninitialised last, on the thread itself. Release every COM object with
// Do before calling Close. Close is safe to call twice.
func (s *STA) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	it := &workItem{stop: true, done: make(chan error, 1)}
	if err := s.enqueue(it); err != nil && !errors.Is(err, ErrSTAClosed) {
		return err
	}
	<-s.done
	s.handleMu.Do(func() { windows.CloseHandle(s.event) })
	return nil
}
