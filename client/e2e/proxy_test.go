package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections from a loopback listener to target, and
// can sever every connection it carries (the listener keeps accepting), to
// simulate a dropped network path between client and gateway.
type proxy struct {
	lis    net.Listener
	target string

	mu       sync.Mutex
	conns    []net.Conn
	accepted int // connections carried since start
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// carried returns how many connections the proxy has carried so far.
func (p *proxy) carried() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// sever closes every connection carried so far and returns how many.
func (p *proxy) sever() int {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns) / 2
}

func (p *proxy) close() {
	p.lis.Close()
	p.sever()
	p.wg.Wait()
}
