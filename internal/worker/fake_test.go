package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
)

// fakeBackend is a small MXAccess stand-in: handles per registration, a
// first OnDataChange after Advise delivered from its own event goroutine,
// write completions, and hooks to block calls, block Ping and fail methods.
type fakeBackend struct {
	openErr error

	mu       sync.Mutex
	calls    []string
	nextSH   int32
	items    map[int32]map[int32]*fakeItem // sh → ih → item
	parity   []string
	gates    map[string]chan struct{} // method → blocks until closed
	entered  chan string              // receives a method name as a gated call starts
	pingGate chan struct{}
	pinging  chan struct{} // receives when a gated Ping starts
	broken   map[string]error
	closed   bool

	evq       chan *mxgatewayv1.Event
	storm     chan int
	stormDone chan struct{}
	sink      backend.Sink
	stop      chan struct{}
	done      chan struct{}
}

type fakeItem struct {
	ref     string
	advised bool
	value   int64
}

func newFake() *fakeBackend {
	return &fakeBackend{
		items:     make(map[int32]map[int32]*fakeItem),
		gates:     make(map[string]chan struct{}),
		entered:   make(chan string, 16),
		pinging:   make(chan struct{}, 16),
		broken:    make(map[string]error),
		evq:       make(chan *mxgatewayv1.Event, 1<<16),
		storm:     make(chan int),
		stormDone: make(chan struct{}, 1),
	}
}

func (f *fakeBackend) Open(ctx context.Context, sink backend.Sink) (*mxgatewayv1.BackendInfo, error) {
	if f.openErr != nil {
		return nil, f.openErr
	}
	f.sink = sink
	f.stop = make(chan struct{})
	f.done = make(chan struct{})
	go f.eventLoop()
	return &mxgatewayv1.BackendInfo{Kind: "fake", Description: "test backend", InterfaceLevel: 5, Simulated: true}, nil
}

// eventLoop is the fake's "STA": events reach the sink one at a time.
func (f *fakeBackend) eventLoop() {
	defer close(f.done)
	for {
		select {
		case ev := <-f.evq:
			f.sink.Event(ev)
		case n := <-f.storm:
			for i := 0; i < n; i++ {
				f.sink.Event(dataChange(1, 1, int64(i)))
			}
			f.stormDone <- struct{}{}
		case <-f.stop:
			return
		}
	}
}

func (f *fakeBackend) call(method string) error {
	f.mu.Lock()
	f.calls = append(f.calls, method)
	gate := f.gates[method]
	err := f.broken[method]
	f.mu.Unlock()
	if gate != nil {
		f.entered <- method
		<-gate
	}
	return err
}

func (f *fakeBackend) gate(method string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := make(chan struct{})
	f.gates[method] = g
	return g
}

func (f *fakeBackend) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBackend) emit(ev *mxgatewayv1.Event) { f.evq <- ev }

func dataChange(sh, ih int32, v int64) *mxgatewayv1.Event {
	return &mxgatewayv1.Event{Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{
		ServerHandle: sh, ItemHandle: ih,
		Value:     &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: v}},
		Quality:   mxtypes.NewQuality(mxtypes.QualityGood),
		Timestamp: timestamppb.New(time.Unix(1700000000, 0)),
	}}}
}

func invalid(method string) error {
	return backend.NewCallError(method, mxtypes.E_INVALIDARG, "invalid handle")
}

func (f *fakeBackend) Register(clientName string) (int32, error) {
	if err := f.call("Register"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextSH++
	f.items[f.nextSH] = make(map[int32]*fakeItem)
	return f.nextSH, nil
}

func (f *fakeBackend) Unregister(sh int32) error {
	if err := f.call("Unregister"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.items[sh] == nil {
		return invalid("Unregister")
	}
	delete(f.items, sh)
	return nil
}

// AddItem gives the lowest free handle; references starting with "Bad"
// are refused, "Value=N" sets the item's value.
func (f *fakeBackend) AddItem(sh int32, ref string) (int32, error) {
	if err := f.call("AddItem"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	items := f.items[sh]
	if items == nil {
		return 0, invalid("AddItem")
	}
	if strings.HasPrefix(ref, "Bad") {
		return 0, backend.NewCallError("AddItem", mxtypes.E_ACCESSDENIED, "licence")
	}
	ih := int32(1)
	for items[ih] != nil {
		ih++
	}
	it := &fakeItem{ref: ref}
	fmt.Sscanf(ref, "Value=%d", &it.value)
	items[ih] = it
	return ih, nil
}

func (f *fakeBackend) AddItem2(sh int32, ref, ctx string) (int32, error) {
	if err := f.call("AddItem2"); err != nil {
		return 0, err
	}
	return 0, &backend.NotSupportedError{Method: "AddItem2", Reason: "interface level 2"}
}

func (f *fakeBackend) item(sh, ih int32) *fakeItem {
	return f.items[sh][ih]
}

func (f *fakeBackend) RemoveItem(sh, ih int32) error {
	if err := f.call("RemoveItem"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.item(sh, ih)
	if it == nil {
		return invalid("RemoveItem")
	}
	if it.advised {
		f.parity = append(f.parity, "RemoveItem while advised")
	}
	delete(f.items[sh], ih)
	return nil
}

func (f *fakeBackend) advise(method string, sh, ih int32) error {
	if err := f.call(method); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.item(sh, ih)
	if it == nil {
		return invalid(method)
	}
	if it.ref == "NoValue" {
		it.advised = true
		return nil
	}
	if !it.advised {
		it.advised = true
		f.evq <- dataChange(sh, ih, it.value)
	}
	return nil
}

func (f *fakeBackend) Advise(sh, ih int32) error { return f.advise("Advise", sh, ih) }
func (f *fakeBackend) AdviseSupervisory(sh, ih int32) error {
	return f.advise("AdviseSupervisory", sh, ih)
}

func (f *fakeBackend) UnAdvise(sh, ih int32) error {
	if err := f.call("UnAdvise"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.item(sh, ih)
	if it == nil {
		return invalid("UnAdvise")
	}
	it.advised = false
	return nil
}

func (f *fakeBackend) Suspend(sh, ih int32) error  { return f.call("Suspend") }
func (f *fakeBackend) Activate(sh, ih int32) error { return f.call("Activate") }
func (f *fakeBackend) AddBufferedItem(sh int32, ref string) (int32, error) {
	return f.AddItem(sh, ref)
}
func (f *fakeBackend) SetBufferedUpdateInterval(sh, ms int32) error {
	return f.call("SetBufferedUpdateInterval")
}

// Write changes the value and sends OnWriteComplete then OnDataChange.
func (f *fakeBackend) Write(sh, ih int32, v *mxgatewayv1.MxValue, user int32) error {
	if err := f.call("Write"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.item(sh, ih)
	if it == nil || !it.advised {
		return backend.NewCallError("Write", mxtypes.E_INVALIDARG, "not advised")
	}
	it.value = v.GetInt64Value()
	f.evq <- &mxgatewayv1.Event{Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{ServerHandle: sh, ItemHandle: ih}}}
	f.evq <- dataChange(sh, ih, it.value)
	return nil
}

func (f *fakeBackend) Write2(sh, ih int32, v *mxgatewayv1.MxValue, ts time.Time, user int32) error {
	return f.Write(sh, ih, v, user)
}
func (f *fakeBackend) WriteSecured(sh, ih, cur, ver int32, v *mxgatewayv1.MxValue) error {
	return f.Write(sh, ih, v, cur)
}
func (f *fakeBackend) WriteSecured2(sh, ih, cur, ver int32, v *mxgatewayv1.MxValue, ts time.Time) error {
	return f.Write(sh, ih, v, cur)
}

func (f *fakeBackend) AuthenticateUser(sh int32, user, password string) (int32, error) {
	if err := f.call("AuthenticateUser"); err != nil {
		return 0, err
	}
	if password != "secret" {
		return 0, nil
	}
	return 7, nil
}

func (f *fakeBackend) ArchestrAUserToId(sh int32, identity string) (int32, error) {
	return 0, f.call("ArchestrAUserToId")
}

func (f *fakeBackend) TakeParityWarnings() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.parity
	f.parity = nil
	return p
}

func (f *fakeBackend) Ping(ctx context.Context) error {
	f.mu.Lock()
	gate := f.pingGate
	f.mu.Unlock()
	if gate == nil {
		return nil
	}
	f.pinging <- struct{}{}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeBackend) Close() []string {
	f.mu.Lock()
	f.calls = append(f.calls, "Close")
	already := f.closed
	f.closed = true
	f.mu.Unlock()
	if !already && f.stop != nil {
		close(f.stop)
		<-f.done
	}
	return []string{"fake: nothing to unregister"}
}
