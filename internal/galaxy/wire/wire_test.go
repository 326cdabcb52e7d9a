package wire

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

func TestKeyFile(t *testing.T) {
	// runtime.WriteKey writes key files (its test covers the file mode).
	dir := t.TempDir()
	k := bytes.Repeat([]byte{0xa5, 0x3c}, 16)
	if err := os.WriteFile(dir+"/"+KeyFileName, []byte(fmt.Sprintf("%x\n", k)), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKey(dir)
	if err != nil || !bytes.Equal(got, k) || !KeyEqual(got, k) {
		t.Fatalf("ReadKey = %x, %v; want %x", got, err, k)
	}
	if KeyEqual(nil, nil) || KeyEqual(k, k[:16]) {
		t.Fatal("KeyEqual accepts an empty or a different key")
	}
	for _, bad := range []string{"", "zz", "0011"} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadCredential) {
			t.Errorf("ParseKey(%q) = %v, want ErrBadCredential", bad, err)
		}
	}
}

func TestChangeRoundTrip(t *testing.T) {
	c := sim.Change{Attr: 7, Value: mxtypes.DoubleValue(1.5), Quality: 24, Category: 3,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC), ForceTime: true, Own: true}
	got := FromProto(ToProto(c))
	if got.Attr != c.Attr || got.Value.GetDoubleValue() != 1.5 || got.Quality != c.Quality || got.Category != c.Category ||
		!got.Time.Equal(c.Time) || !got.ForceTime || !got.Own {
		t.Fatalf("round trip %+v, want %+v", got, c)
	}
}

func TestConnFramesEnvelopes(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		_ = NewConn(a).Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Hello{Hello: &galaxyv1.Hello{ClientName: "x"}}})
		_, _ = a.Write([]byte{2, 0, 0, 0, 0xff, 0xff}) // not a protobuf envelope
	}()
	c := NewConn(b)
	env, err := c.Read()
	if err != nil || env.GetHello().GetClientName() != "x" {
		t.Fatalf("Read = %v, %v", env, err)
	}
	if _, err := c.Read(); err == nil {
		t.Fatal("a malformed envelope was accepted")
	}
}

func TestBuildModel(t *testing.T) {
	if m, err := BuildModel(&galaxyv1.Model{Source: &galaxyv1.Model_Demo{Demo: true}}); err != nil || m.Galaxy != "MxDemo" {
		t.Fatalf("demo: %v, %v", m, err)
	}
	if m, err := BuildModel(&galaxyv1.Model{Source: &galaxyv1.Model_PlantAreas{PlantAreas: 1}}); err != nil || m.Galaxy != "Plant" {
		t.Fatalf("plant: %v, %v", m, err)
	}
	if _, err := BuildModel(&galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: []byte("galaxy: [")}}); err == nil {
		t.Fatal("a broken model was accepted")
	}
	if _, err := BuildModel(&galaxyv1.Model{}); err == nil {
		t.Fatal("a model without a source was accepted")
	}
}

// TestInterestSet: references compare case-insensitively, a change past
// the bounds is refused whole with the counts it would reach, and removes
// make room in the same change.
func TestInterestSet(t *testing.T) {
	var s InterestSet
	if err := s.Update([]string{"Tank.Level", "TANK.level", "Tank.Name"}, nil); err != nil || s.Len() != 2 || !s.Has("tank.LEVEL") {
		t.Fatalf("update: %v, %d refs", err, s.Len())
	}
	refs := make([]string, MaxInterest-2)
	for i := range refs {
		refs[i] = fmt.Sprintf("O%d.PV", i)
	}
	err := s.Update(append(refs, "Extra.PV"), nil)
	var lim *InterestLimitError
	if !errors.As(err, &lim) || lim.Refs != MaxInterest+1 || s.Len() != 2 {
		t.Fatalf("past the count bound: %v (%+v), %d refs kept", err, lim, s.Len())
	}
	if err := s.Update(append(refs, "Extra.PV"), []string{"Tank.Name"}); err != nil || s.Len() != MaxInterest || s.Has("Tank.Name") {
		t.Fatalf("a remove making room: %v, %d refs", err, s.Len())
	}
	var big InterestSet
	long := strings.Repeat("x", MaxInterestBytes/2)
	err = big.Update([]string{"A." + long, "B." + long}, nil)
	if !errors.As(err, &lim) || lim.Bytes != 2*(len(long)+2) || big.Len() != 0 {
		t.Fatalf("past the byte bound: %v, %d refs", err, big.Len())
	}
	if !s.Remove("O0.PV") || s.Remove("O0.PV") {
		t.Fatal("remove")
	}
	// A reference names its attribute's ordinal; the Sim object's are not
	// the Galaxy's.
	m := sim.DemoModel()
	for i := 0; i < m.AttributeCount(); i++ {
		o, a := m.AttributeAt(i)
		ref := sim.AttributeRef(o, a)
		ord, ok := m.SharedAttribute(strings.ToUpper(ref))
		if o.Builtin() == ok || ok && ord != int32(i) {
			t.Fatalf("SharedAttribute(%q) = %d, %v", ref, ord, ok)
		}
	}
}
