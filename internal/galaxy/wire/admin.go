package wire

import (
	"context"
	"net"
	"time"

	galaxyv1 "github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	"github.com/mxgateway/mxgateway/internal/ipc"
)

// Admin is one admin connection to the runtime serving a directory, kept
// open for any number of requests (`mxgateway galaxy admin`, the gateway's
// readiness probe of its own runtime, the benchmark's storms).
type Admin struct {
	nc net.Conn
	wc *Conn
}

// DialAdmin connects to the runtime serving dir with the key in dir and
// introduces itself as name. ctx bounds the dial and the Hello.
func DialAdmin(ctx context.Context, dir, name string) (*Admin, error) {
	key, err := ReadKey(dir)
	if err != nil {
		return nil, err
	}
	nc, err := ipc.Dial(ctx, Endpoint(dir))
	if err != nil {
		return nil, err
	}
	a := &Admin{nc: nc, wc: NewConn(nc)}
	a.deadline(ctx)
	defer a.nc.SetDeadline(time.Time{})
	if err := a.wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Hello{Hello: &galaxyv1.Hello{
		ProtocolVersion: ProtocolVersion, Credential: key, ClientName: name}}}); err != nil {
		nc.Close()
		return nil, err
	}
	return a, nil
}

// Do sends one admin request and returns the runtime's reply (whose Error
// says whether the runtime carried it out). ctx's deadline bounds the
// exchange.
func (a *Admin) Do(ctx context.Context, req *galaxyv1.AdminRequest) (*galaxyv1.AdminReply, error) {
	a.deadline(ctx)
	defer a.nc.SetDeadline(time.Time{})
	if err := a.wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Admin{Admin: req}}); err != nil {
		return nil, err
	}
	for {
		env, err := a.wc.Read()
		if err != nil {
			return nil, err
		}
		if r := env.GetAdminReply(); r != nil {
			return r, nil
		}
	}
}

// Close ends the connection.
func (a *Admin) Close() error { return a.nc.Close() }

func (a *Admin) deadline(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok {
		_ = a.nc.SetDeadline(dl)
	}
}
