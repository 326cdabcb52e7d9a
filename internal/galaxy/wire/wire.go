// Package wire holds what the simulated Galaxy runtime and its clients share:
// the protocol version, the endpoint and credential layout of a runtime
// directory, the conversion of value changes to and from the protocol, the
// framing, and the building of a model from its description.
package wire

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"google.golang.org/protobuf/proto"
)

// ProtocolVersion is the runtime protocol's version; Hello must carry it.
const ProtocolVersion = 1

// EndpointName is the runtime's endpoint name inside its directory.
const EndpointName = "galaxy"

// KeyFileName is the credential file inside the runtime directory.
const KeyFileName = "galaxy.key"

// The environment a sim worker reads to reach the runtime: the runtime
// directory and the credential (hex). The gateway sets both when it
// launches workers.
const (
	EnvDir = "MXGW_SIM_GALAXY"
	EnvKey = "MXGW_SIM_GALAXY_KEY"
)

// MaxBatch is the most changes one ValueBatch or WriteBatch carries.
const MaxBatch = 4096

// MaxFrameBytes bounds one frame of the runtime protocol.
const MaxFrameBytes = 16 << 20

// HelloTimeout bounds the wait for a connection's Hello.
const HelloTimeout = 5 * time.Second

// ErrBadCredential is returned when a Hello's credential does not match.
var ErrBadCredential = errors.New("galaxy: bad credential")

// Endpoint returns the endpoint of the runtime serving dir.
func Endpoint(dir string) string { return ipc.NamedEndpoint(dir, EndpointName) }

// ReadKey reads the credential of the runtime serving dir.
func ReadKey(dir string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil {
		return nil, fmt.Errorf("galaxy: read key: %w", err)
	}
	return ParseKey(strings.TrimSpace(string(data)))
}

// ParseKey decodes a hex credential.
func ParseKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(s)
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("%w: not a hex key of 16 bytes or more", ErrBadCredential)
	}
	return k, nil
}

// KeyEqual compares credentials in constant time.
func KeyEqual(a, b []byte) bool { return len(a) > 0 && subtle.ConstantTimeCompare(a, b) == 1 }

// Conn frames envelopes on one connection: one reader goroutine, one
// writer goroutine.
type Conn struct {
	r *frame.Reader
	w *frame.Writer
}

// NewConn wraps rw.
func NewConn(rw io.ReadWriter) *Conn {
	opts := frame.Options{MaxFrameBytes: MaxFrameBytes}
	return &Conn{r: frame.NewReader(rw, opts), w: frame.NewWriter(rw, opts)}
}

// Read reads one envelope.
func (c *Conn) Read() (*galaxyv1.GalaxyEnvelope, error) {
	p, err := c.r.ReadPayload()
	if err != nil {
		return nil, err
	}
	env := &galaxyv1.GalaxyEnvelope{}
	if err := proto.Unmarshal(p, env); err != nil {
		return nil, fmt.Errorf("galaxy: malformed envelope: %w", err)
	}
	if env.GetBody() == nil {
		return nil, errors.New("galaxy: envelope without a body")
	}
	return env, nil
}

// Write writes one envelope.
func (c *Conn) Write(env *galaxyv1.GalaxyEnvelope) error { return c.w.WriteMessage(env) }

// ToProto converts a change for the wire.
func ToProto(c sim.Change) *galaxyv1.ValueChange {
	return &galaxyv1.ValueChange{Attribute: c.Attr, Value: c.Value, Quality: uint32(c.Quality),
		Category: c.Category, TimeUnixMs: c.Time.UnixMilli(), ForceTime: c.ForceTime, Own: c.Own, Operator: c.Operator}
}

// FromProto converts a change from the wire.
func FromProto(v *galaxyv1.ValueChange) sim.Change {
	return sim.Change{Attr: v.GetAttribute(), Value: v.GetValue(), Quality: uint16(v.GetQuality()),
		Category: v.GetCategory(), Time: time.UnixMilli(v.GetTimeUnixMs()).UTC(), ForceTime: v.GetForceTime(), Own: v.GetOwn(), Operator: v.GetOperator()}
}

// BuildModel builds the model a description names.
func BuildModel(m *galaxyv1.Model) (*sim.Model, error) {
	switch s := m.GetSource().(type) {
	case *galaxyv1.Model_Yaml:
		return sim.ParseModel(s.Yaml, "galaxy model")
	case *galaxyv1.Model_PlantAreas:
		return sim.PlantModel(int(s.PlantAreas))
	case *galaxyv1.Model_Demo:
		return sim.DemoModel(), nil
	}
	return nil, errors.New("galaxy: model without a source")
}
