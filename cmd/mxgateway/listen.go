package main

import (
	"net"
	"sync"

	"golang.org/x/net/netutil"

	"github.com/mxgateway/mxgateway/internal/metrics"
)

// limitListener bounds lis to max open connections (netutil.LimitListener:
// Accept waits for a free slot, so the next connection waits in the
// kernel's backlog) and counts them in connections_open{listener=name}.
func limitListener(lis net.Listener, max int, m *metrics.Metrics, name string) net.Listener {
	return &countingListener{Listener: netutil.LimitListener(lis, max), m: m, name: name}
}

type countingListener struct {
	net.Listener
	m    *metrics.Metrics
	name string
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.m.ConnectionOpened(l.name)
	return &countedConn{Conn: c, done: func() { l.m.ConnectionClosed(l.name) }}, nil
}

type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}
