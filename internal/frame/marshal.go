package frame

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// vtMarshaler is what the generated MarshalVT code (buf.gen.yaml) gives
// every message of our .proto files: the size, then the encoding written
// backwards into a buffer of exactly that size.
type vtMarshaler interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
}

// Marshal encodes m as proto.Marshal does, through the generated code when
// m has it (several times faster: no reflection) and proto.Marshal
// otherwise. The generated code does not check that strings are valid
// UTF-8, which proto.Marshal refuses to encode; Marshal checks the encoding
// it produced and, for a message that fails, returns proto.Marshal's error.
func Marshal(m proto.Message) ([]byte, error) {
	return AppendMarshal(nil, m)
}

// AppendMarshal is Marshal appending to b.
func AppendMarshal(b []byte, m proto.Message) ([]byte, error) {
	vm, ok := m.(vtMarshaler)
	if !ok {
		return proto.MarshalOptions{}.MarshalAppend(b, m)
	}
	start := len(b)
	size := vm.SizeVT()
	b = slices.Grow(b, size)[:start+size]
	n, err := vm.MarshalToSizedBufferVT(b[start:])
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, fmt.Errorf("frame: encoded %d bytes of a message sized %d", n, size)
	}
	if !validStrings(b[start:], m.ProtoReflect().Descriptor()) {
		// proto.Marshal names the field; an encoding error anyway.
		if _, err := proto.Marshal(m); err != nil {
			return nil, err
		}
		return nil, errors.New("frame: string field is not valid UTF-8")
	}
	return b, nil
}

// fieldKinds says, for one message type, which field numbers hold strings
// (checked) and which hold messages (walked), indexed by field number. It
// is derived from the descriptor, so it has no list of its own to keep up
// to date.
type fieldKinds struct {
	str []bool        // str[n]: field n is a proto3 string
	sub []*fieldKinds // sub[n]: field n is a message of this type
}

var (
	kindsMu    sync.Mutex
	kindsCache sync.Map // protoreflect.MessageDescriptor -> *fieldKinds, complete
	// kindsLast is the last type looked up: the worker marshals events
	// one after another, and comparing it costs less than the map.
	kindsLast atomic.Pointer[typeKinds]
)

// typeKinds is one entry of kindsCache.
type typeKinds struct {
	md    protoreflect.MessageDescriptor
	kinds *fieldKinds
}

func kindsOf(md protoreflect.MessageDescriptor) *fieldKinds {
	if last := kindsLast.Load(); last != nil && last.md == md {
		return last.kinds
	}
	k := kindsFor(md)
	kindsLast.Store(&typeKinds{md: md, kinds: k})
	return k
}

func kindsFor(md protoreflect.MessageDescriptor) *fieldKinds {
	// Keyed by the descriptor itself, one per message type: hashing its
	// pointer is cheaper, per event, than hashing its full name.
	if k, ok := kindsCache.Load(md); ok {
		return k.(*fieldKinds)
	}
	kindsMu.Lock()
	defer kindsMu.Unlock()
	k := buildKinds(md, map[protoreflect.FullName]*fieldKinds{})
	k.prune(map[*fieldKinds]bool{})
	kindsCache.Store(md, k)
	return k
}

// buildKinds builds the tree under md; seen closes recursive types (a
// Struct holds Values that hold Structs).
func buildKinds(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*fieldKinds) *fieldKinds {
	if k, ok := seen[md.FullName()]; ok {
		return k
	}
	fields := md.Fields()
	var top protowire.Number
	for i := range fields.Len() {
		top = max(top, fields.Get(i).Number())
	}
	k := &fieldKinds{str: make([]bool, top+1), sub: make([]*fieldKinds, top+1)}
	seen[md.FullName()] = k
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.Kind() == protoreflect.StringKind && fd.Syntax() == protoreflect.Proto3:
			k.str[fd.Number()] = true
		case fd.Message() != nil: // messages, groups and map entries
			k.sub[fd.Number()] = buildKinds(fd.Message(), seen)
		}
	}
	return k
}

// prune drops the messages that hold no string at any depth (timestamps,
// qualities, statuses), so that valid skips them unread, and reports
// whether k holds a string. A type met again on its own path (a recursive
// one) counts as holding one.
func (k *fieldKinds) prune(path map[*fieldKinds]bool) bool {
	if path[k] {
		return true
	}
	path[k] = true
	defer delete(path, k)
	has := slices.Contains(k.str, true)
	for n, sub := range k.sub {
		if sub == nil {
			continue
		}
		if sub.prune(path) {
			has = true
		} else {
			k.sub[n] = nil
		}
	}
	return has
}

// validStrings reports whether every proto3 string in b, an encoding of a
// message of type md, is valid UTF-8. Unknown fields are not looked into,
// as proto.Marshal does not.
func validStrings(b []byte, md protoreflect.MessageDescriptor) bool {
	return kindsOf(md).valid(b)
}

func (k *fieldKinds) valid(b []byte) bool {
	for len(b) > 0 {
		// One-byte tags (field numbers 1 to 15), varints and lengths,
		// nearly all of those in an event, are read inline; the rest as
		// protowire reads them.
		var num protowire.Number
		var typ protowire.Type
		if c := b[0]; c >= 1<<3 && c < 0x80 {
			num, typ, b = protowire.Number(c>>3), protowire.Type(c&7), b[1:]
		} else {
			var n int
			if num, typ, n = protowire.ConsumeTag(b); n < 0 {
				return false
			}
			b = b[n:]
		}
		if typ != protowire.BytesType {
			if typ == protowire.VarintType && len(b) > 0 && b[0] < 0x80 {
				b = b[1:]
				continue
			}
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		var v []byte
		if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) { // a length below 128, all there
			v, b = b[1:1+b[0]], b[1+b[0]:]
		} else {
			var n int
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return false
			}
			b = b[n:]
		}
		if int(num) >= len(k.str) {
			continue // unknown
		}
		if k.str[num] {
			if !utf8.Valid(v) {
				return false
			}
		} else if sub := k.sub[num]; sub != nil && !sub.valid(v) {
			return false
		}
	}
	return true
}
